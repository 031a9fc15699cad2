"""Money at the storage boundary: `Decimal` in the service, `Decimal128` in MongoDB.

The driver has no default for `Decimal` (a float would lose paise), so every repository's database
carries one type codec (`with_money`, applied in `RepositoryBase`): a `Decimal` anywhere in a
document, an update or a filter is written as `Decimal128`, and every `Decimal128` read comes back
as the same `Decimal`, exponent kept. Rounding stays the domain's (`app/domain/money.py`): a value
with more than Decimal128's 34 digits is refused (`decimal.Inexact`), never rounded here.
Records written before that or by hand (user details, products) and `$sum`s over nothing hold JSON
numbers: `from_db` reads them exactly in decimal, `Decimal(str(x))`, never `Decimal(x)` (which would
keep the binary error of 0.1).
"""

from __future__ import annotations

from datetime import UTC, date, datetime
from decimal import Decimal
from typing import Any

from bson.codec_options import TypeCodec, TypeRegistry
from bson.decimal128 import Decimal128


class DecimalCodec(TypeCodec):
    python_type = Decimal
    bson_type = Decimal128

    def transform_python(self, value: Decimal) -> Decimal128:
        return Decimal128(value)

    def transform_bson(self, value: Decimal128) -> Decimal:
        return value.to_decimal()


_MONEY = TypeRegistry([DecimalCodec()])


def with_money(db: Any) -> Any:
    """`db` with the money codec on its codec options (the client's others, tz_aware included, kept)."""
    return db.with_options(codec_options=db.codec_options.with_options(type_registry=_MONEY))


def from_db(value: Any) -> Decimal | None:
    """A stored number as `Decimal`: a Decimal as is, a float or an int exactly; None stays None."""
    if value is None or isinstance(value, Decimal):
        return value
    if isinstance(value, bool) or not isinstance(value, int | float | str):
        raise TypeError(f"not a stored amount: {type(value).__name__}")
    return Decimal(str(value))


def date_to_db(day: date | None) -> datetime | None:
    """BSON has no date type: a calendar day is stored as its midnight UTC."""
    return None if day is None else datetime(day.year, day.month, day.day, tzinfo=UTC)


def date_from_db(value: datetime | None) -> date | None:
    return None if value is None else value.date()
