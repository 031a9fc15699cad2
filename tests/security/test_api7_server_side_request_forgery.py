"""OWASP API Security Top 10 (2023), API7: Server Side Request Forgery

Items of issue 15 that belong here: every IPv6 form of a private address is refused (8). Each test fails on the code before the fix."""

from __future__ import annotations
