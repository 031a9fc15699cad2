"""Money: exact decimal rupees, for the whole service.

Rules:
- `Decimal` only. Floats are refused everywhere, because `0.1` is not a tenth and
  a float that slipped in once stays wrong in every figure computed from it.
- Values keep their exact precision while they are being computed (interest on a
  reducing balance, rates); they are rounded half-up to paise (`round_money`) only
  where money changes hands: an instalment, a fee, a repayment, a quote.
- Input from a caller is parsed with `money(x, strict=True)`: at most 2 decimal
  places, finite, not negative (negative zero included), within `MAX_AMOUNT`.

Stored as `Decimal128` (34 significant digits) by the repositories; every value
here fits in it.
"""

from __future__ import annotations

import re
from decimal import ROUND_DOWN, ROUND_HALF_UP, Decimal, InvalidOperation

from app.domain.errors import InvalidInput

PAISE = Decimal("0.01")
ZERO = Decimal("0.00")
HUNDRED = Decimal(100)
# Far above any loan (a lakh crore); keeps every figure well inside Decimal128.
MAX_AMOUNT = Decimal("999999999999.99")
RATE_PLACES = 4  # a percentage such as 10.4567 %
# Plain ASCII decimals only: `Decimal()` would also take "1_000", "1e3" and other scripts' digits.
_PLAIN = re.compile(r"[+-]?(\d+(\.\d*)?|\.\d+)", re.ASCII)


class InvalidAmount(InvalidInput):
    """The amount must be a number of rupees with at most 2 decimal places."""

    code = "invalid_amount"


class InvalidRate(InvalidInput):
    """The rate must be a percentage with at most 4 decimal places."""

    code = "invalid_rate"


def _to_decimal(value: object, error: type[InvalidInput]) -> Decimal:
    # bool is an int subclass: `True` is not one rupee.
    if isinstance(value, float | bool) or not isinstance(value, Decimal | int | str):
        raise error(f"{value!r} is not a decimal number (floats are not accepted).")
    if isinstance(value, str) and not _PLAIN.fullmatch(value.strip()):
        raise error(f"{value!r} is not a plain decimal number.")
    try:
        number = Decimal(value.strip()) if isinstance(value, str) else Decimal(value)
    except InvalidOperation:
        raise error(f"{value!r} is not a decimal number.") from None
    if not number.is_finite():
        raise error("The number must be finite.")
    return number


def _places(number: Decimal) -> int:
    exponent = number.as_tuple().exponent
    assert isinstance(exponent, int)  # finite numbers only
    return max(0, -exponent)


def money(value: object, *, strict: bool = False) -> Decimal:
    """Parse a money value from a `Decimal`, `int` or `str` (never a float).

    Not strict (values the service itself produced or stored): any finite number,
    rounded half-up to paise. Strict (a caller's input): refused unless it already
    has at most 2 decimal places, is not negative (nor `-0`) and is at most
    `MAX_AMOUNT`; never rounded, so what was asked is what is used.
    """
    number = _to_decimal(value, InvalidAmount)
    if abs(number) > MAX_AMOUNT:
        raise InvalidAmount(f"The amount must be at most {MAX_AMOUNT}.")
    if not strict:
        return round_money(number)
    if number.is_signed():
        raise InvalidAmount("The amount must not be negative.")
    if _places(number) > 2:
        raise InvalidAmount("The amount has more than 2 decimal places.")
    return number.quantize(PAISE)


def round_money(amount: Decimal) -> Decimal:
    """Half-up to paise: 0.005 becomes 0.01. Use where money changes hands."""
    return amount.quantize(PAISE, rounding=ROUND_HALF_UP)


def floor_to(amount: Decimal, step: Decimal) -> Decimal:
    """Round down to a multiple of `step` (e.g. 100 rupees): an offer never exceeds what fits."""
    return ((amount / step).to_integral_value(rounding=ROUND_DOWN) * step).quantize(PAISE)


def percent(value: object, *, low: Decimal = ZERO, high: Decimal = HUNDRED) -> Decimal:
    """Parse a percentage (12.5 means 12.5 %), at most `RATE_PLACES` places, within [low, high].

    Kept exact: a rate is an input to computations, not an amount that changes hands.
    """
    number = _to_decimal(value, InvalidRate)
    if number.is_signed() and number.is_zero():
        number = Decimal(0)
    if _places(number) > RATE_PLACES:
        raise InvalidRate(f"The rate has more than {RATE_PLACES} decimal places.")
    if not low <= number <= high:
        raise InvalidRate(f"The rate must be between {low} and {high} %.")
    return number


def percent_of(amount: Decimal, pct: Decimal) -> Decimal:
    """`pct` % of `amount`, rounded half-up to paise (a fee or a charge)."""
    return round_money(amount * pct / HUNDRED)


def rupees(amount: Decimal | int | None) -> str:
    """Indian digit grouping (₹1,00,000.00), as borrowers and the loan book's people read amounts."""
    if amount is None:
        return "—"
    whole, paise = f"{Decimal(amount):.2f}".split(".")
    sign, whole = ("-", whole[1:]) if whole.startswith("-") else ("", whole)
    head, tail = whole[:-3], whole[-3:]
    groups = [head[max(i - 2, 0):i] for i in range(len(head), 0, -2)][::-1]
    return f"{sign}₹{','.join([*groups, tail])}.{paise}"
