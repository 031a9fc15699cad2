"""OWASP API Security Top 10 (2023), API2: Broken Authentication

Items of issue 15 that belong here: one credential per request (1), a revoked session ends its live streams (9). Each test fails on the code before the fix."""

from __future__ import annotations
