"""OWASP API Security Top 10 (2023), API3: Broken Object Property Level Authorization

Items of issue 15 that belong here: verified name and date of birth stay verified (4), internal notes stay internal (14), customers do not see scores (15). Each test fails on the code before the fix."""

from __future__ import annotations
