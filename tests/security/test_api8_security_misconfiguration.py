"""OWASP API Security Top 10 (2023), API8: Security Misconfiguration

Items of issue 15 that belong here: stored files cannot run in the auditor's browser (11), weak production settings are refused (17). Each test fails on the code before the fix."""

from __future__ import annotations
