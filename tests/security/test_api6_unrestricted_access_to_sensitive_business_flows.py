"""OWASP API Security Top 10 (2023), API6: Unrestricted Access to Sensitive Business Flows

Items of issue 15 that belong here: FOIR counts the whole book (3), a typed number never condemns someone else (5). Each test fails on the code before the fix."""

from __future__ import annotations
