"""ICAO 9303 MRZ: every format's layout and check digits, the century rule, OCR-confusion
repair that a check digit must confirm, and fillers that never leak into values."""

from __future__ import annotations

import re
from datetime import date

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from app.domain import documents as d
from app.domain.errors import InvalidInput
from app.domain.mrz import check_digit, parse_mrz, repair_by_check_digit
from tests.ml.mrz_cards import WIDTH, MrzPerson, mrz_lines, person_for

TODAY = date(2026, 11, 22)
# ICAO 9303 part 7 specimens (Appendix A): the same visa as MRV-A and MRV-B.
MRV_A = ["VIUTOERIKSSON<<ANNA<MARIA<<<<<<<<<<<<<<<<<<<", "L8988901C4XXX4009078F96121096ZE184226B<<<<<<"]
MRV_B = ["VIUTOERIKSSON<<ANNA<MARIA<<<<<<<<<<<", "L8988901C4XXX4009078F9612109<<<<<<<<"]


@pytest.mark.parametrize("lines, fmt, optional", [(MRV_A, "MRV-A", "6ZE184226B"), (MRV_B, "MRV-B", "")])
def test_icao_visa_specimens(lines, fmt, optional):
    m = parse_mrz(lines, today=TODAY)
    assert m.format == fmt and m.document_code == "VI" and m.issuing_country == "UTO"
    assert (m.document_number, m.nationality, m.sex) == ("L8988901C", "XXX", "F")
    assert (m.surname, m.given_names) == ("ERIKSSON", "ANNA MARIA")
    assert m.date_of_birth == "1940-09-07"
    assert m.expiry_date == "1996-12-10"  # not 2096: the nearest century within the validity window
    assert m.optional_data == optional
    # a visa has no composite: its own three check digits are all there is
    assert m.checks == {"document_number": True, "date_of_birth": True, "expiry_date": True}
    assert m.valid and m.number_confirmed


@pytest.mark.parametrize("fmt", list(WIDTH))
@pytest.mark.parametrize("i", range(6))
def test_every_format_round_trips(fmt, i):
    p = person_for(fmt, i)
    lines = mrz_lines(p)
    assert [len(x) for x in lines] == [WIDTH[fmt]] * (3 if fmt == "TD1" else 2)
    m = parse_mrz(lines, today=TODAY)
    assert m.format == fmt
    assert m.document_number == p.number and m.nationality == p.nationality and m.issuing_country == p.country
    assert (m.surname, m.given_names, m.sex) == (p.surname, p.given, p.sex if p.sex in "MF" else "X")
    assert m.date_of_birth == d.resolve_yymmdd(p.dob, expiry=False, today=TODAY)
    assert m.expiry_date == d.resolve_yymmdd(p.expiry, expiry=True, today=TODAY)
    assert m.valid, m.check_digits
    expected = {"document_number", "date_of_birth", "expiry_date"}
    expected |= {"TD1": {"composite"}, "TD2": {"composite"}, "TD3": {"personal_number", "composite"}}.get(fmt, set())
    assert set(m.checks) == expected


@pytest.mark.parametrize("fmt, position", [("TD1", (1, 29)), ("TD2", (1, 35)), ("TD3", (1, 43))])
def test_composite_check_of_each_format_is_verified(fmt, position):
    lines = mrz_lines(person_for(fmt, 2))
    row, col = position
    wrong = str((int(lines[row][col]) + 1) % 10)
    lines[row] = lines[row][:col] + wrong + lines[row][col + 1 :]
    m = parse_mrz(lines, today=TODAY)
    assert {k for k, ok in m.checks.items() if not ok} == {"composite"}
    assert not m.valid and not m.number_confirmed


@pytest.mark.parametrize("fmt", ["TD2", "TD1"])
def test_long_document_numbers_overflow_into_optional_data(fmt):
    p = person_for(fmt, 4).but(number="D23145890734", optional="" if fmt == "TD2" else "AB12")
    m = parse_mrz(mrz_lines(p), today=TODAY)
    assert m.document_number == "D23145890734" and m.valid
    assert m.optional_data == ("" if fmt == "TD2" else "AB12")


def test_short_number_fillers_never_leak():
    p = person_for("TD3", 1).but(number="AB1234")
    lines = mrz_lines(p)
    assert lines[1].startswith("AB1234<<<")
    m = parse_mrz(lines, today=TODAY)
    assert m.document_number == "AB1234" and "<" not in m.document_number and m.valid


def test_speck_in_name_filler_is_not_a_name():
    lines = mrz_lines(person_for("TD3", 0))
    lines[0] = lines[0][:-8] + "<<K<<<<<"
    assert parse_mrz(lines, today=TODAY).given_names == "ANNA MARIA"


# --- century rule ---------------------------------------------------------------------------


@pytest.mark.parametrize("yymmdd, expiry, iso", [
    ("961210", True, "1996-12-10"),  # 2096 would be 70 years ahead
    ("300101", True, "2030-01-01"),
    ("461231", True, "2046-12-31"),  # exactly the 20-year window
    ("470101", True, "1947-01-01"),  # past it
    ("120415", True, "2012-04-15"),
    ("740812", False, "1974-08-12"),
    ("261121", False, "2026-11-21"),  # yesterday: a newborn's passport
    ("261215", False, "1926-12-15"),  # next month: a birth date is never in the future
    ("271215", False, "1927-12-15"),
    ("991301", False, None),  # no 13th month
    ("74O812", False, None),  # letters are the parser's business, not the calendar's
])  # fmt: skip
def test_two_digit_years_resolve_by_field(yymmdd, expiry, iso):
    assert d.resolve_yymmdd(yymmdd, expiry=expiry, today=TODAY) == iso


def test_expiry_status():
    assert d.expiry_status("2026-11-21", TODAY) == "expired"
    assert d.expiry_status("2026-11-22", TODAY) == "valid"
    assert d.expiry_status(None, TODAY) == "unknown"


# --- OCR confusion repair -------------------------------------------------------------------


def test_repair_must_satisfy_the_check_digit():
    assert repair_by_check_digit("L898902C3", "6") == "L898902C3"  # right as read: untouched
    fixed = repair_by_check_digit("L8989O2C3", "6")  # O read for 0
    assert fixed == "L898902C3" and check_digit(fixed) == 6
    # only a letter between digits is a suspect: digits and letters beside letters stay
    assert repair_by_check_digit("AB0123456", str((check_digit("AB0123456") + 4) % 10)) is None
    assert repair_by_check_digit("ZE184227B", "1") is None  # ZE1842278 would pass: not a digit position
    assert repair_by_check_digit("L898902C3", "<") is None
    assert repair_by_check_digit("XXXXXXXXX", "3") is None  # nothing confusable: no guess


def test_repair_gives_up_on_a_tie():
    # positions 0 and 3 share weight 7: undoing B/8 at either satisfies the same digit
    value = "1B23B5"
    digit = str(check_digit("1823B5"))
    assert check_digit("1B2385") == int(digit) and check_digit(value) != int(digit)
    assert repair_by_check_digit(value, digit) is None


@pytest.mark.parametrize("fmt", ["TD3", "TD2", "TD1"])
@pytest.mark.parametrize("wrong, right", [("O", "0"), ("I", "1"), ("B", "8"), ("S", "5"), ("Z", "2"), ("Q", "0"), ("D", "0")])
def test_confusion_in_document_number_is_repaired_and_confirmed(fmt, wrong, right):
    p = person_for(fmt, 1).but(number=f"XY7{right}43697")
    lines = mrz_lines(p)
    row, start = (0, 5) if fmt == "TD1" else (1, 0)
    lines[row] = lines[row][: start + 3] + wrong + lines[row][start + 4 :]
    m = parse_mrz(lines, today=TODAY)
    assert m.document_number == p.number and m.valid
    assert [c.field for c in m.check_digits if c.repaired] == ["document_number"]


def test_unconfirmed_repair_is_reverted_and_reported_invalid():
    lines = mrz_lines(person_for("TD3", 1).but(number="XY0125456"))
    assert parse_mrz(lines, today=TODAY).valid
    bad = lines[1][:5] + "S" + lines[1][6:43] + str((int(lines[1][43]) + 1) % 10)  # and a wrong composite
    m = parse_mrz([lines[0], bad], today=TODAY)
    assert not m.valid and not m.number_confirmed
    assert not any(c.repaired for c in m.check_digits)
    assert m.document_number == "XY012S456"  # as read, not a guess


def test_a_misread_that_no_check_digit_confirms_is_never_valid():
    p = person_for("MRV-B", 3)
    lines = mrz_lines(p)
    tried = 0
    for k, ch in enumerate("ACEHKMNPTUVWX"):  # letters no digit is confused with
        bad = ch + lines[1][1:]
        if check_digit(bad[:9]) == int(bad[9]):
            continue  # e.g. D -> N (values 10 apart at weight 7): no check digit can see it
        tried += 1
        m = parse_mrz([lines[0], bad], today=TODAY)
        assert not m.checks["document_number"] and not m.number_confirmed, (k, bad)
    assert tried >= 10


def test_dates_and_country_codes_take_their_own_alphabet():
    lines = mrz_lines(person_for("TD3", 0).but(country="UTO", nationality="UTO", dob="740812"))
    l2 = lines[1]
    l2 = l2[:10] + "UT0" + "74O8I2" + l2[19:]
    m = parse_mrz([lines[0].replace("UTO", "UT0", 1), l2], today=TODAY)
    assert (m.issuing_country, m.nationality, m.date_of_birth) == ("UTO", "UTO", "1974-08-12")
    assert m.valid


@pytest.mark.parametrize("lines", [["HELLO WORLD", "THIS IS NOT AN MRZ"], ["P<UTO" + "<" * 39], []])
def test_not_an_mrz(lines):
    with pytest.raises(InvalidInput):
        parse_mrz(lines)


def test_sex_unspecified_and_visa_detected_by_first_letter():
    p = MrzPerson(fmt="MRV-B", code="V<", sex="<", optional="")
    m = parse_mrz(mrz_lines(p), today=TODAY)
    assert m.sex is None and m.format == "MRV-B" and m.valid


def _squeeze(line: str) -> str:
    """What OCR does to long filler runs: reads about half of them."""
    return re.sub(r"<{3,}", lambda m: "<" * (len(m[0]) // 2), line)


@pytest.mark.parametrize("fmt", list(WIDTH))
@pytest.mark.parametrize("number", ["AB1234", "C4X7Y2K91"])
def test_filler_runs_shortened_by_ocr_still_parse(fmt, number):
    p = person_for(fmt, 5).but(number=number)
    lines = [_squeeze(x) for x in mrz_lines(p)]
    m = parse_mrz(lines, today=TODAY)
    assert m.format == fmt and m.document_number == number and m.valid, (lines, m.check_digits)
    assert (m.surname, m.given_names) == (p.surname, p.given)


@pytest.mark.parametrize("lines, optional", [
    # as PP-OCR read rendered documents: the `Z` of the optional data as `2`
    (["P<INDDUB0IS<<EWA<<<<<<<<<<<<<<<<<<<<<<<<<<<<", "HF01788903FRA7108086F3512229200007<<<<<<<<20"], "Z00007"),
    (["I<UT0LE02026476200010<<<<<<<<<", "8011233F3003035DEU<<<<<<<<<<<0", "MUELLER<<CHIDI<EMEKA<<<<<<<<<<"], "Z00010"),
])  # fmt: skip
def test_optional_data_confusion_repaired_by_its_checks(lines, optional):
    m = parse_mrz(lines, today=TODAY)
    assert m.valid and m.optional_data == optional
    assert m.surname in ("DUBOIS", "MUELLER") and m.issuing_country in ("IND", "UTO")


@settings(max_examples=400, deadline=None)
@given(st.lists(st.text(alphabet="ABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789<« ", min_size=0, max_size=60), max_size=4))
def test_any_ocr_text_parses_or_is_refused_cleanly(lines):
    try:
        m = parse_mrz(lines, today=TODAY)
    except InvalidInput:
        return
    assert m.format in ("TD1", "TD2", "TD3", "MRV-A", "MRV-B")
    assert "<" not in m.document_number
    assert m.number_confirmed == (m.checks["document_number"] and m.checks.get("composite", True)
                                  and bool(m.document_number))


def test_filler_lookalikes_from_a_multilingual_recogniser():
    # PP-OCR read these `<` as the hiragana く on a blurred passport
    l1 = "P<UT0KOWALSKA<<J0HN<<<<<<<<<く<く<<く<く<く<<<くくく"
    l2 = "GY05194076DEU0003274X3011113Z00050<<<<<<<<00"
    m = parse_mrz([l1, l2], today=TODAY)
    assert m.valid and (m.surname, m.given_names, m.issuing_country) == ("KOWALSKA", "JOHN", "UTO")


def test_a_filler_read_twice_between_given_names_keeps_them():
    p = person_for("MRV-A", 3).but(given="THI LAN")
    lines = mrz_lines(p)
    doubled = lines[0].replace("THI<LAN", "THI<<LAN", 1)
    assert doubled != lines[0]
    assert parse_mrz([doubled[:44], lines[1]], today=TODAY).given_names == "THI LAN"
