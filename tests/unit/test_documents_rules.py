"""Pure document rules: Aadhaar Verhoeff, PAN, ICAO 9303 MRZ, licence/EPIC formats, masking."""

from __future__ import annotations

from datetime import date

import pytest

from app.domain import documents as d
from app.domain.errors import InvalidInput
from app.domain.mrz import check_digit, parse_mrz

TD3 = ["P<UTOERIKSSON<<ANNA<MARIA<<<<<<<<<<<<<<<<<<<", "L898902C36UTO7408122F1204159ZE184226B<<<<<10"]
TD2 = ["I<UTOERIKSSON<<ANNA<MARIA<<<<<<<<<<<", "D231458907UTO7408122F1204159<<<<<<<6"]
TD1 = ["I<UTOD231458907<<<<<<<<<<<<<<<", "7408122F1204159UTO<<<<<<<<<<<6", "ERIKSSON<<ANNA<MARIA<<<<<<<<<<"]
TODAY = date(2025, 6, 1)


# --- Verhoeff / Aadhaar ----------------------------------------------------------------------


def test_verhoeff_known_vectors():
    # Published examples: 236 -> check 3; 12345 -> check 1.
    assert d.verhoeff_check_digit("236") == "3"
    assert d.verhoeff_valid("2363")
    assert d.verhoeff_check_digit("12345") == "1"
    assert d.verhoeff_valid("123451")
    assert not d.verhoeff_valid("123456")


def test_every_single_digit_error_and_adjacent_swap_is_caught():
    number = "23456789012" + d.verhoeff_check_digit("23456789012")
    assert d.is_valid_aadhaar(number)
    for i in range(12):
        for digit in "0123456789":
            if digit != number[i]:
                wrong = number[:i] + digit + number[i + 1 :]
                assert not d.verhoeff_valid(wrong), wrong
    for i in range(11):
        if number[i] != number[i + 1]:
            swapped = number[:i] + number[i + 1] + number[i] + number[i + 2 :]
            assert not d.verhoeff_valid(swapped), swapped


@pytest.mark.parametrize("seed", ["0234567890", "1234567890"])
def test_aadhaar_cannot_start_with_0_or_1(seed):
    base = seed + "1"
    number = base + d.verhoeff_check_digit(base)
    assert d.verhoeff_valid(number)
    assert not d.is_valid_aadhaar(number)


def test_aadhaar_accepts_grouping_and_rejects_wrong_length():
    number = "49981234567" + d.verhoeff_check_digit("49981234567")
    assert d.is_valid_aadhaar(f"{number[:4]} {number[4:8]} {number[8:]}")
    assert not d.is_valid_aadhaar(number[:-1])
    assert not d.is_valid_aadhaar("abcd efgh ijkl")


# --- PAN -------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "pan,holder",
    [("ABCPE1234F", "individual"), ("AAACR5055K", "company"), ("AAAHS1234B", "huf"), ("AABFT1234C", "firm"),
     ("AAATT1234D", "trust"), ("AAAGA1234E", "government"), ("AAAJA1234E", "artificial_juridical_person")],
)
def test_pan_holder_types(pan, holder):
    assert d.is_valid_pan(pan)
    assert d.pan_holder_type(pan) == holder


@pytest.mark.parametrize("pan", ["ABCPE1234", "ABCPE12345", "1BCPE1234F", "ABCXE1234F", "ABCPEA234F", "abcpe1234"])
def test_pan_invalid(pan):
    assert not d.is_valid_pan(pan)


# --- MRZ -------------------------------------------------------------------------------------


def test_check_digit_icao_examples():
    assert check_digit("L898902C3") == 6
    assert check_digit("740812") == 2
    assert check_digit("120415") == 9
    assert check_digit("D23145890") == 7


def _assert_anna(m, fmt, number):
    assert m.format == fmt
    assert m.document_number == number
    assert m.issuing_country == "UTO" and m.nationality == "UTO"
    assert (m.date_of_birth, m.expiry_date, m.sex) == ("1974-08-12", "2012-04-15", "F")
    assert (m.surname, m.given_names, m.full_name) == ("ERIKSSON", "ANNA MARIA", "ANNA MARIA ERIKSSON")
    assert m.valid, m.checks


def test_td3_specimen():
    m = parse_mrz(TD3, today=TODAY)
    _assert_anna(m, "TD3", "L898902C3")
    assert m.document_code == "P"
    assert m.optional_data == "ZE184226B"
    assert set(m.checks) == {"document_number", "date_of_birth", "expiry_date", "personal_number", "composite"}


def test_td2_specimen():
    m = parse_mrz(TD2, today=TODAY)
    _assert_anna(m, "TD2", "D23145890")
    assert m.document_code == "I"


def test_td1_specimen():
    m = parse_mrz(TD1, today=TODAY)
    _assert_anna(m, "TD1", "D23145890")
    assert set(m.checks) == {"document_number", "date_of_birth", "expiry_date", "composite"}


def test_td1_long_document_number_overflows_into_optional_data():
    # ICAO 9303-5 Appendix: number "D23145890734" -> first 9 chars, `<`, then "734" + check.
    num = "D23145890734"
    line1 = f"I<UTO{num[:9]}<{num[9:]}{check_digit(num)}".ljust(30, "<")
    line2_head = "7408122F1204159UTO" + "<" * 11
    composite = check_digit(line1[5:30] + line2_head[0:7] + line2_head[8:15] + line2_head[18:29])
    m = parse_mrz([line1, line2_head + str(composite), TD1[2]], today=TODAY)
    assert m.document_number == num
    assert m.valid, m.checks


@pytest.mark.parametrize(
    "line2,failed",
    [
        ("L898902C37UTO7408122F1204159ZE184226B<<<<<10", {"document_number", "composite"}),
        ("L898902C36UTO7408123F1204159ZE184226B<<<<<10", {"date_of_birth", "composite"}),
        ("L898902C36UTO7408122F1204158ZE184226B<<<<<10", {"expiry_date", "composite"}),
        ("L898902C36UTO7408122F1204159ZE184226B<<<<<11", {"composite"}),
        ("L898902C36UTO7408122F1204159ZE184227B<<<<<10", {"personal_number", "composite"}),
    ],
)
def test_broken_check_digit_is_reported_not_fixed(line2, failed):
    m = parse_mrz([TD3[0], line2], today=TODAY)
    assert not m.valid
    assert {k for k, ok in m.checks.items() if not ok} == failed


def test_ocr_confusions_in_numeric_and_alpha_fields_are_normalised():
    # O for 0 in the birth date, 0 for O in the country codes, one filler `<` dropped.
    line1 = "P<UT0ERIKSSON<<ANNA<MARIA<<<<<<<<<<<<<<<<<<<"
    line2 = "L898902C36UT074O8122F12O4159ZE184226B<<<<10"
    m = parse_mrz([line1, line2], today=TODAY)
    _assert_anna(m, "TD3", "L898902C3")


def test_not_an_mrz():
    with pytest.raises(InvalidInput):
        parse_mrz(["HELLO WORLD", "THIS IS NOT AN MRZ"])


def test_two_digit_years():
    assert d.resolve_two_digit_year(74, future=False, today=TODAY) == 1974
    assert d.resolve_two_digit_year(25, future=False, today=TODAY) == 2025
    assert d.resolve_two_digit_year(26, future=False, today=TODAY) == 1926
    assert d.resolve_two_digit_year(74, future=True, today=TODAY) == 1974  # 2074 is past the validity window
    assert d.resolve_two_digit_year(34, future=True, today=TODAY) == 2034


# --- licence, EPIC, dates, masking ------------------------------------------------------------


@pytest.mark.parametrize("text", ["MH12 20110012345", "MH-12-2011-0012345", "mh1220110012345", "DL04 20190001234"])
def test_driving_licence_valid(text):
    assert d.normalise_driving_licence(text) == text.upper().replace(" ", "").replace("-", "")


@pytest.mark.parametrize("text", ["XX12 20110012345", "MH12 2011001234", "MH12 18990012345", "MHAB 20110012345"])
def test_driving_licence_invalid(text):
    assert d.normalise_driving_licence(text) is None


def test_voter_id():
    assert d.is_valid_voter_id("ABC1234567")
    assert not d.is_valid_voter_id("AB12345678")
    assert not d.is_valid_voter_id("ABC123456")


def test_dates():
    assert d.find_dmy_dates("DOB : 15/08/1990") == ["1990-08-15"]
    assert d.find_dmy_dates("31/02/1990 or 01-12-2001") == ["2001-12-01"]
    assert d.parse_day_month_name("12 AUGUST/AOUT 74", future=False) == "1974-08-12"
    assert d.parse_day_month_name("15 APR/AVR 12", future=True) == "2012-04-15"
    assert d.is_expired("2012-04-15", TODAY) is True
    assert d.is_expired("2030-01-01", TODAY) is False
    assert d.is_expired(None) is None
    assert d.is_expired("2031-02-30", TODAY) is None and d.expiry_status("2031-02-30", TODAY) == "unknown"


def test_masking():
    assert d.mask_aadhaar("123412341234") == "XXXX XXXX 1234"
    assert d.mask_aadhaar("1234 1234 5678") == "XXXX XXXX 5678"
    assert d.mask_number("ABCDE1234F") == "XXXXXX234F"
    assert d.mask_number("L898902C3") == "XXXXX02C3"
    assert d.mask_number("ABC") == "XXX"


def test_document_types():
    assert [t.value for t in d.DocumentType] == [
        "aadhaar", "pan", "passport", "driving_licence", "voter_id", "national_id", "generic"
    ]
    assert d.DocumentType("pan") == "pan"
