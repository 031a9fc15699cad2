"""Boundaries of the document rules that `make mutation` found unpinned, and the Verhoeff
tables checked against an implementation derived here from the dihedral group D5."""

from __future__ import annotations

import random
from datetime import date

import pytest

from app.domain import documents as d

# --- Verhoeff, from its definition ------------------------------------------------------------


def _d5(j: int, k: int) -> int:
    """D5 product of j and k: 0-4 are rotations, 5-9 reflections (Verhoeff 1969)."""
    if j < 5 and k < 5:
        return (j + k) % 5
    if j < 5:
        return (j + k - 5) % 5 + 5
    if k < 5:
        return (j - 5 - k) % 5 + 5
    return (j - k) % 5


_SIGMA = (1, 5, 7, 6, 2, 8, 3, 0, 9, 4)  # the permutation (0 1 5 8 9 4 2 7)(3 6)


def _perm(i: int, digit: int) -> int:
    for _ in range(i % 8):
        digit = _SIGMA[digit]
    return digit


def _inverse(j: int) -> int:
    return next(k for k in range(10) if _d5(j, k) == 0)


def _verhoeff(number: str) -> int:
    c = 0
    for i, ch in enumerate(reversed(number)):
        c = _d5(c, _perm(i, int(ch)))
    return c


def _numbers(count: int) -> list[str]:
    rnd = random.Random(20260522)
    return [str(rnd.randrange(10 ** (n - 1), 10**n)) for n in (rnd.randrange(1, 16) for _ in range(count))]


def test_verhoeff_tables_are_the_d5_group():
    assert d._D == tuple(tuple(_d5(j, k) for k in range(10)) for j in range(10))
    assert d._P == tuple(tuple(_perm(i, n) for n in range(10)) for i in range(8))
    assert d._INV == tuple(_inverse(j) for j in range(10))


def test_verhoeff_matches_an_independent_implementation():
    for number in _numbers(3000) + ["0", "00", "000000000000"]:
        digit = d.verhoeff_check_digit(number)
        assert _verhoeff(number + digit) == 0, number
        assert d.verhoeff_valid(number + digit)
        for wrong in "0123456789":
            if wrong != digit:
                assert not d.verhoeff_valid(number + wrong)
                assert _verhoeff(number + wrong) != 0


@pytest.mark.parametrize("text", ["", "12a4", "1234 5678 9012", "-1", "12.4"])
def test_verhoeff_refuses_what_is_not_plain_digits(text):
    assert not d.verhoeff_valid(text)


def test_aadhaar_first_digit_from_2_to_9():
    for first in "23456789":
        body = first + "2345678901"
        assert d.is_valid_aadhaar(body + d.verhoeff_check_digit(body))


# --- PAN, licence, masking --------------------------------------------------------------------


@pytest.mark.parametrize("pan", ["ABCP1", "AB", "ABCPE1234", "ABCPE12345"])
def test_pan_holder_type_only_for_a_well_formed_pan(pan):
    assert d.pan_holder_type(pan) is None


def test_licence_issue_year_from_1901_to_this_year():
    this_year = date.today().year
    assert d.normalise_driving_licence("MH12 1900 0012345") is None
    assert d.normalise_driving_licence("MH12 1901 0012345") == "MH1219010012345"
    assert d.normalise_driving_licence(f"MH12 {this_year} 0012345") == f"MH12{this_year}0012345"
    if this_year < 2099:
        assert d.normalise_driving_licence(f"MH12 {this_year + 1} 0012345") is None


def test_masking_ignores_spaces_and_hides_a_short_number_whole():
    assert d.mask_number("ABCDE 1234F") == "XXXXXX234F"
    assert d.mask_number("AB\tCD\n12") == "XXCD12"
    assert d.mask_number("1234") == "XXXX"
    assert d.mask_number("12 34") == "XXXX"
    assert d.mask_number("12345") == "X2345"


# --- dates ------------------------------------------------------------------------------------


def test_day_month_name_without_a_date_or_month():
    assert d.parse_day_month_name("no date here", future=False) is None
    assert d.parse_day_month_name("12 FOO 1974", future=False) is None


def test_day_month_name_four_digit_years_are_taken_as_written():
    assert d.parse_day_month_name("12 AUG 0100", future=False) == "0100-08-12"
    assert d.parse_day_month_name("12 AUG 1999", future=True) == "1999-08-12"


def test_day_month_name_two_digit_expiry_years_look_ahead():
    this_year = date.today().year
    yy = (this_year + 5) % 100
    text = f"03 MARCH/MARS {yy:02d}"
    assert d.parse_day_month_name(text, future=True) == f"{this_year + 5}-03-03"
    assert d.parse_day_month_name(text, future=False) == f"{this_year + 5 - 100}-03-03"


@pytest.mark.parametrize("yy, future, today, year", [
    (10, False, date(2015, 1, 1), 2010),  # the century of 2015 is 2000, whatever 2015 // 101 says
    (16, False, date(2015, 1, 1), 1916),
    (15, False, date(2015, 1, 1), 2015),  # this year is not the future
    (5, True, date(2090, 1, 1), 2105),  # the next century, within the expiry window
    (10, True, date(2090, 1, 1), 2110),  # exactly 20 years ahead
    (11, True, date(2090, 1, 1), 2011),
    (99, True, date(2001, 6, 1), 1999),  # the previous century
])  # fmt: skip
def test_two_digit_year_centuries(yy, future, today, year):
    assert d.resolve_two_digit_year(yy, future=future, today=today) == year


def test_yymmdd_uses_the_given_day_not_the_clock():
    far = date(2080, 6, 1)
    assert d.resolve_yymmdd("700101", expiry=False, today=far) == "2070-01-01"
    assert d.resolve_yymmdd("950101", expiry=True, today=far) == "2095-01-01"
    assert d.resolve_yymmdd("800601", expiry=False, today=far) == "2080-06-01"  # born today
    assert d.resolve_yymmdd("800602", expiry=False, today=far) == "1980-06-02"  # tomorrow: a century earlier
