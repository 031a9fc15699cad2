"""Money rules: Decimal only, strict caller input, half-up to paise where money changes hands."""

from __future__ import annotations

from decimal import Decimal

import pytest

from app.domain.errors import InvalidInput
from app.domain.money import (
    MAX_AMOUNT,
    InvalidAmount,
    InvalidRate,
    floor_to,
    money,
    percent,
    percent_of,
    round_money,
)


@pytest.mark.parametrize("raw, expected", [
    ("12.5", "12.50"), (" 12.50 ", "12.50"), (12, "12.00"), (Decimal("0.01"), "0.01"), ("0", "0.00"),
    (Decimal("1E+3"), "1000.00"), (str(MAX_AMOUNT), str(MAX_AMOUNT)),
])
def test_strict_input_is_kept_exactly(raw, expected):
    parsed = money(raw, strict=True)
    assert isinstance(parsed, Decimal)
    assert str(parsed) == expected


@pytest.mark.parametrize("raw", [
    12.5, 0.1, True, None, {"$gt": 0}, [1], "NaN", "Infinity", "-inf", Decimal("NaN"), Decimal("-Infinity"),
    "1_000", "1e3", "١٢٣", "12,50", "", "abc", "1.2.3",
])
def test_not_a_decimal_number_is_refused_even_when_not_strict(raw):
    with pytest.raises(InvalidAmount) as caught:
        money(raw)
    assert caught.value.code == "invalid_amount"
    assert isinstance(caught.value, InvalidInput)  # the lead maps it to a 4xx, not a 500


@pytest.mark.parametrize("raw", ["-1", "-0", Decimal("-0.00"), "1.234", Decimal("0.001"), "1000000000000"])
def test_strict_input_refuses_negatives_negative_zero_sub_paise_and_huge(raw):
    with pytest.raises(InvalidAmount):
        money(raw, strict=True)


@pytest.mark.parametrize("raw, expected", [
    # Half-up, not the banker's rounding Python uses by default (1.005 → 1.00, 2.675 → 2.67).
    (Decimal("1.005"), "1.01"), (Decimal("2.675"), "2.68"), (Decimal("2.674999"), "2.67"),
    (Decimal("-0.005"), "-0.01"), ("3", "3.00"),
])
def test_not_strict_rounds_half_up_to_paise(raw, expected):
    assert str(money(raw)) == expected


def test_round_money_is_half_up():
    assert round_money(Decimal("0.005")) == Decimal("0.01")
    assert round_money(Decimal("0.0049999")) == Decimal("0.00")
    assert str(round_money(Decimal("8884.878867"))) == "8884.88"


@pytest.mark.parametrize("raw, expected", [("12.5", "12.5"), ("0", "0"), ("-0", "0"), (60, "60"), ("10.4567", "10.4567")])
def test_percent_is_exact(raw, expected):
    assert percent(raw) == Decimal(expected)


@pytest.mark.parametrize("raw", [12.5, "10.45678", "-1", "100.01", "NaN", True])
def test_bad_percent_is_refused(raw):
    with pytest.raises(InvalidRate) as caught:
        percent(raw)
    assert caught.value.code == "invalid_rate"


def test_percent_honours_the_callers_range():
    assert percent("60", high=Decimal(60)) == 60
    with pytest.raises(InvalidRate):
        percent("60.01", high=Decimal(60))


def test_percent_of_is_a_fee_rounded_half_up():
    assert percent_of(Decimal("100000"), Decimal("2")) == Decimal("2000.00")
    assert percent_of(Decimal("333.33"), Decimal("1.5")) == Decimal("5.00")  # 4.99995
    assert percent_of(Decimal("1000"), Decimal("0")) == Decimal("0.00")


def test_floor_to_never_rounds_up():
    assert floor_to(Decimal("456799.99"), Decimal(100)) == Decimal("456700.00")
    assert floor_to(Decimal("99.99"), Decimal(100)) == Decimal("0.00")
    assert floor_to(Decimal("500"), Decimal(100)) == Decimal("500.00")
