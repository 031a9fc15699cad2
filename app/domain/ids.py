"""Record ids as they arrive from URLs, tokens and filters. No I/O."""

from __future__ import annotations

import re

_OBJECT_ID = re.compile(r"[0-9a-fA-F]{24}")  # ASCII only: \d or str.isalnum would let other digits in


def parse_id(value: object) -> str | None:
    """The canonical (lower-case) form of a 24-hex id, or None for anything else. Ids are compared
    only in this form: the database reads `6741...` and `6741...`.upper() as the same record."""
    if isinstance(value, str) and _OBJECT_ID.fullmatch(value):
        return value.lower()
    return None
