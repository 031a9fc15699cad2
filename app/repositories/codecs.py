"""Money at the storage boundary: `Decimal` in the service, `Decimal128` in MongoDB.

The driver refuses a `Decimal` (it has no lossless default), and a float would lose paise,
so every repository that stores money passes its document through `to_db` and what it reads
through `from_db`. Older records (and the user details saved before this) may hold a float or
an int: read back exactly as written in decimal, `Decimal(str(x))`, never `Decimal(x)`
(which would keep the binary error of 0.1).
"""

from __future__ import annotations

from datetime import UTC, date, datetime
from decimal import Decimal
from typing import Any

from bson.decimal128 import Decimal128


def to_db(value: Any) -> Any:
    """`value` with every `Decimal` (at any depth of dicts, lists and tuples) as `Decimal128`."""
    if isinstance(value, Decimal):
        return Decimal128(value)
    if isinstance(value, dict):
        return {k: to_db(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [to_db(v) for v in value]
    return value


def from_db(value: Any) -> Decimal | None:
    """A stored amount as `Decimal`: from `Decimal128`, a float or an int (exactly); None stays None."""
    if value is None:
        return None
    if isinstance(value, Decimal128):
        return value.to_decimal()
    if isinstance(value, Decimal):
        return value
    if isinstance(value, bool) or not isinstance(value, int | float | str):
        raise TypeError(f"not a stored amount: {type(value).__name__}")
    return Decimal(str(value))


def date_to_db(day: date | None) -> datetime | None:
    """BSON has no date type: a calendar day is stored as its midnight UTC."""
    return None if day is None else datetime(day.year, day.month, day.day, tzinfo=UTC)


def date_from_db(value: datetime | None) -> date | None:
    return None if value is None else value.date()
