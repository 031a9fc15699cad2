"""OWASP API Security Top 10 (2023), API10: Unsafe Consumption of APIs

Items of issue 15 that belong here: gateway paths and upstream headers (10). Each test fails on the code before the fix."""

from __future__ import annotations
