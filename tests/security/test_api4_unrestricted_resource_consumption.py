"""OWASP API Security Top 10 (2023), API4: Unrestricted Resource Consumption

Items of issue 15 that belong here: model routes capped per caller (2), sizes limited by what a field is (6), bounded HTTP headers (7), a slow webhook receiver cannot delay KYC checks (12). Each test fails on the code before the fix."""

from __future__ import annotations
