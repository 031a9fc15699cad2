"""Boundaries of the MRZ parser that `make mutation` found unpinned: check digits against an
implementation of ICAO 9303 part 3 §4.9 written here, how far a repair may go, the shapes
each format accepts, OCR filler noise, and dates resolved against the day given."""

from __future__ import annotations

import random
import re
import string
from datetime import date

import pytest

from app.domain import mrz
from app.domain.errors import InvalidInput
from app.domain.mrz import CheckDigit, check_digit, clean_line, looks_like_mrz, parse_mrz, repair_by_check_digit
from tests.ml.mrz_cards import WIDTH, mrz_lines, person_for

TODAY = date(2026, 11, 22)
_VALUES = "0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZ"  # value = index; the filler `<` and anything else = 0


def icao_check_digit(data: str) -> int:
    weights = [7, 3, 1] * (len(data) // 3 + 1)
    return sum(_VALUES.index(ch) * w if ch in _VALUES else 0 for ch, w in zip(data, weights)) % 10


def _retype(line: str, at: int, ch: str) -> str:
    return line[:at] + ch + line[at + 1 :]


# --- check digits ---------------------------------------------------------------------------


def test_icao_specimen_check_digits():
    # ICAO 9303 part 4, Appendix A: the specimen passport's second line.
    line = "L898902C36UTO7408122F1204159ZE184226B<<<<<10"
    assert check_digit("L898902C3") == icao_check_digit("L898902C3") == 6
    assert check_digit("740812") == 2 and check_digit("120415") == 9
    assert check_digit("ZE184226B<<<<<") == 1
    assert check_digit(line[0:10] + line[13:20] + line[21:43]) == 0


def test_check_digit_matches_an_independent_implementation():
    rnd = random.Random(9303)
    alphabet = string.ascii_uppercase + string.digits + "<" * 8 + string.ascii_lowercase + " -«"
    for _ in range(4000):
        data = "".join(rnd.choice(alphabet) for _ in range(rnd.randrange(0, 40)))
        assert check_digit(data) == icao_check_digit(data), data
    for ch in _VALUES + "<":  # every character alone, at each weight
        for pad in ("", "<", "<<"):
            assert check_digit(pad + ch) == icao_check_digit(pad + ch)


# --- how far a repair may go ----------------------------------------------------------------


def test_a_repair_needing_three_changes_is_no_repair():
    value, digit = "7O1S5B9", "1"  # only undoing all three confusions gives 7015589
    assert icao_check_digit("7015589") == 1
    assert repair_by_check_digit(value, digit) is None
    assert repair_by_check_digit(value, digit, 2) is None
    assert repair_by_check_digit(value, digit, 3) == "7015589"


def test_a_repair_of_two_changes_is_found_only_when_two_are_allowed():
    value, digit = "XY1O5B273", "5"
    assert icao_check_digit("XY1058273") == 5
    assert repair_by_check_digit(value, digit, 1) is None
    assert repair_by_check_digit(value, digit, 2) == "XY1058273"


def test_the_first_and_last_characters_are_never_digit_positions():
    # O at either end is not between two digits, so it stays even when 0 would pass
    for value, fixed in (("O23456781", "023456781"), ("12345678O", "123456780")):
        assert repair_by_check_digit(value, str(icao_check_digit(fixed))) is None


def test_a_letter_before_a_letter_is_not_a_digit_position():
    fixed = "1230A5"
    assert repair_by_check_digit("123OA5", str(icao_check_digit(fixed))) is None


def test_digits_become_letters_only_where_either_way_is_allowed():
    want = str(icao_check_digit("4Z5"))
    assert repair_by_check_digit("425", want) is None
    assert repair_by_check_digit("425", want, either_way=True) == "4Z5"


def test_visas_repair_one_confusion_and_passports_two():
    number = "XY1058273"
    for fmt, repaired in (("TD3", True), ("TD2", True), ("MRV-A", False), ("MRV-B", False)):
        lines = mrz_lines(person_for(fmt, 1).but(number=number))
        lines[1] = "XY1O5B273" + lines[1][9:]
        m = parse_mrz(lines, today=TODAY)
        assert m.format == fmt and (m.document_number == number) is repaired, fmt
        assert m.checks["document_number"] is repaired and m.valid is repaired


@pytest.mark.parametrize("fmt, row, start", [("TD3", 1, 0), ("TD2", 1, 0), ("TD1", 0, 5)])
def test_a_number_three_confusions_away_is_reported_as_read(fmt, row, start):
    assert repair_by_check_digit("XY5I7B1Z8", str(icao_check_digit("XY5178128")), 3) == "XY5178128"
    lines = mrz_lines(person_for(fmt, 0).but(number="XY5178128"))
    lines[row] = lines[row][:start] + "XY5I7B1Z8" + lines[row][start + 9 :]
    m = parse_mrz(lines, today=TODAY)
    assert m.document_number == "XY5I7B1Z8" and not m.checks["document_number"] and not m.valid


# --- cleaning and fitting rows --------------------------------------------------------------


def test_clean_line_drops_spaces_and_turns_foreign_characters_into_fillers():
    assert clean_line("p<uto eriksson-anna") == "P<UTOERIKSSON<ANNA"
    assert clean_line("AB.12 «3") == "AB<12<<3"


@pytest.mark.parametrize("line, length, head, tail, fitted", [
    ("ABC", 30, 15, 0, "ABC" + "<" * 27),  # cut short: filled with `<`, never spaces
    ("A" * 28 + "7", 36, 28, 1, "A" * 28 + "<" * 7 + "7"),  # the tail stays at the end
    ("P<UTOAB", 10, 5, 0, "P<UTOAB<<<"),
    ("P<UTOERIKSSON<<" + "<" * 30 + "ANNA", 44, 5, 0, "P<UTOERIKSSON<<" + "<" * 25 + "ANNA"),
    ("P<UTOABC<<", 8, 5, 0, "P<UTOABC"),  # surplus fillers at the end, in a run no longer than the surplus
    ("P<UTOAB<<CDE", 10, 5, 0, "P<UTOAB<<CDE"),  # the only run is just the surplus: names stay apart
    ("P<UTOA<B<C<D<", 11, 5, 0, "P<UTOA<B<C<D<"),  # no run to trim, letters at the end: left as read
    ("P<UTO" + "A" * 45, 44, 5, 0, "P<UTO" + "A" * 45),  # no filler at all: left as read
])  # fmt: skip
def test_fit_pads_and_trims_only_fillers(line, length, head, tail, fitted):
    assert mrz._fit(line, length, head, tail) == fitted


def _longest_run(line: str, delta: int) -> str:
    run = max(re.finditer(r"<+", line), key=lambda m: len(m[0]))
    return line[: run.start()] + "<" * (len(run[0]) + delta) + line[run.end() :]


def _data(m: mrz.MrzData) -> tuple:
    return (m.document_code, m.issuing_country, m.document_number, m.nationality, m.date_of_birth, m.expiry_date,
            m.sex, m.surname, m.given_names, m.optional_data, m.valid)


@pytest.mark.parametrize("fmt", list(WIDTH))
@pytest.mark.parametrize("number", ["AB1234", "C4X7Y2K91", "X1234567"])
@pytest.mark.parametrize("delta", [-3, -1, 1, 3])
def test_a_filler_run_read_longer_or_shorter_changes_nothing(fmt, number, delta):
    lines = mrz_lines(person_for(fmt, 3).but(number=number))
    clean = parse_mrz(lines, today=TODAY)
    assert clean.valid
    for row in range(len(lines)):
        noisy = list(lines)
        noisy[row] = _longest_run(noisy[row], delta)
        m = parse_mrz(noisy, today=TODAY)
        assert _data(m) == _data(clean), (row, noisy)
        if len(noisy[row]) <= WIDTH[fmt]:  # longer rows of 36 may also read as 44 (see below)
            assert m.format == fmt and m.lines == clean.lines and m.checks == clean.checks


@pytest.mark.parametrize("fmt", ["TD1", "TD2", "TD3", "MRV-A"])
def test_fillers_missing_in_a_short_number_are_put_back(fmt):
    lines = mrz_lines(person_for(fmt, 2).but(number="AB1234"))
    row = 0 if fmt == "TD1" else 1
    for shorter in ("<<", "<"):
        noisy = list(lines)
        noisy[row] = noisy[row].replace("AB1234<<<", "AB1234" + shorter, 1)
        m = parse_mrz(noisy, today=TODAY)
        assert m.valid and m.document_number == "AB1234" and m.format == fmt, noisy


@pytest.mark.parametrize("fmt", ["TD1", "TD3", "MRV-A"])
def test_fillers_added_to_a_short_number_are_taken_out(fmt):
    lines = mrz_lines(person_for(fmt, 2).but(number="AB1234"))
    row = 0 if fmt == "TD1" else 1
    for extra in ("<", "<<"):
        noisy = list(lines)
        noisy[row] = noisy[row].replace("AB1234<<<", "AB1234<<<" + extra, 1)
        m = parse_mrz(noisy, today=TODAY)
        assert m.valid and m.document_number == "AB1234" and m.format == fmt, noisy


# --- check-digit records ---------------------------------------------------------------------


def test_an_empty_field_may_print_a_filler_for_its_digit():
    checks = mrz._Checks(repair=True, max_changes=2)
    checks.field("personal_number", "<<<<<<<<<<<<<<", "<")
    checks.field("optional", "XX<<<<", "<")  # not empty: `<` is no digit
    checks.field("blank", "<<<<", "5")  # empty, but a digit was printed: it must match (0)
    checks.field("blank_zero", "<<<<", "0")
    assert checks.results == [
        CheckDigit("personal_number", "<", 0, True),
        CheckDigit("optional", "<", icao_check_digit("XX<<<<"), False),
        CheckDigit("blank", "5", 0, False),
        CheckDigit("blank_zero", "0", 0, True),
    ]


def test_a_failed_check_reports_the_digit_printed_and_the_one_computed():
    lines = mrz_lines(person_for("TD1", 0).but(optional=""))  # nothing a repair could change
    printed = (int(lines[1][29]) + 1) % 10
    m = parse_mrz([lines[0], _retype(lines[1], 29, str(printed)), lines[2]], today=TODAY)
    composite = next(c for c in m.check_digits if c.field == "composite")
    assert composite == CheckDigit("composite", str(printed), int(lines[1][29]), False)


@pytest.mark.parametrize("fmt, row, start", [("TD1", 1, 0), ("TD3", 1, 13), ("MRV-B", 1, 13)])
def test_dates_read_their_letters_as_digits_and_are_never_repaired(fmt, row, start):
    lines = mrz_lines(person_for(fmt, 0).but(dob="500101", expiry="280101"))
    lines[row] = lines[row][:start] + "S0O1O1" + lines[row][start + 6 :]
    expiry = start + 8
    lines[row] = lines[row][:expiry] + "Z8O1OI" + lines[row][expiry + 6 :]
    m = parse_mrz(lines, today=TODAY)
    assert m.date_of_birth == "1950-01-01" and m.checks["date_of_birth"] and m.valid
    assert m.expiry_date == "2028-01-01" and m.checks["expiry_date"]
    assert not any(c.repaired for c in m.check_digits)
    # a wrong date digit is reported, not guessed away
    lines[row] = lines[row][:start] + "510101" + lines[row][start + 6 :]
    m = parse_mrz(lines, today=TODAY)
    assert not m.checks["date_of_birth"] and m.date_of_birth == "1951-01-01"


# --- dates against the day given ------------------------------------------------------------


@pytest.mark.parametrize("fmt", list(WIDTH))
def test_dates_resolve_against_the_day_given_not_the_clock(fmt):
    lines = mrz_lines(person_for(fmt, 1).but(dob="700101", expiry="950101"))
    m = parse_mrz(lines, today=date(2080, 6, 1))
    assert (m.date_of_birth, m.expiry_date) == ("2070-01-01", "2095-01-01")
    m = parse_mrz(lines, today=date(2060, 6, 1))
    assert (m.date_of_birth, m.expiry_date) == ("1970-01-01", "1995-01-01")


# --- long document numbers ------------------------------------------------------------------


@pytest.mark.parametrize("fmt", ["TD1", "TD2"])
@pytest.mark.parametrize("number", ["D231458907", "D2314589073"])
def test_a_number_one_or_two_characters_too_long_overflows(fmt, number):
    p = person_for(fmt, 1).but(number=number)
    m = parse_mrz(mrz_lines(p), today=TODAY)
    assert m.document_number == number and m.valid and m.number_confirmed
    assert m.checks["document_number"] and m.optional_data == p.optional


def test_a_filler_check_digit_with_one_character_after_it_is_no_overflow():
    lines = mrz_lines(person_for("TD1", 1).but(number="D23145890", optional=""))
    lines[0] = lines[0][:14] + "<7" + lines[0][16:]
    m = parse_mrz(lines, today=TODAY)
    assert m.document_number == "D23145890" and not m.checks["document_number"]


# --- which shapes are MRZs ------------------------------------------------------------------


def _rows(n: int, width: int) -> list[str]:
    return ["P<UTO" + "<" * (width - 5)] + ["L898902C36UTO7408122F1204159ZE184226B<<<<<10"[:width].ljust(width, "<")] * (n - 1)


@pytest.mark.parametrize("n, width, ok", [
    (3, 23, False), (3, 24, True), (3, 34, True), (3, 35, False),
    (2, 25, False), (2, 26, True), (2, 48, True), (2, 49, False),
])  # fmt: skip
def test_row_lengths_each_format_accepts(n, width, ok):
    rows = _rows(n, width)
    if ok:
        assert parse_mrz(rows, today=TODAY).format in mrz.FORMATS
    else:
        with pytest.raises(InvalidInput) as caught:
            parse_mrz(rows, today=TODAY)
        assert caught.value.code == "mrz_unreadable" and caught.value.message == "Not a machine-readable zone"


def test_which_formats_are_tried_first():
    assert mrz._candidates(["P<UTO" + "<" * 31, "L" * 36]) == ["TD3", "TD2"]  # a passport is TD3 first
    assert mrz._candidates(["I<UTO" + "<" * 31, "L" * 36]) == ["TD2", "TD3"]
    assert mrz._candidates(["I<UTO" + "<" * 32, "L" * 37]) == ["TD3", "TD2"]
    assert mrz._candidates(["I<UTO" + "<" * 35, "L" * 40]) == ["TD3", "TD2"]
    assert mrz._candidates(["I<UTO" + "<" * 36, "L" * 41]) == ["TD3"]
    assert mrz._candidates(["V<UTO" + "<" * 31, "L" * 36]) == ["MRV-B", "MRV-A"]
    assert mrz._candidates(["V<UTO" + "<" * 36, "L" * 41]) == ["MRV-A"]
    assert mrz._candidates(["I<UTO" + "<" * 25] * 3) == ["TD1"]


@pytest.mark.parametrize("width", [40, 41])
def test_an_id_card_row_of_40_may_still_be_td2_but_not_one_of_41(width):
    # read as TD3, the optional data's last filler would be the personal number's digit
    lines = mrz_lines(person_for("TD2", 2).but(optional="AB12"))
    lines = [lines[0], lines[1][:28] + "<" * (width - 36) + lines[1][28:]]
    m = parse_mrz(lines, today=TODAY)
    assert (m.format == "TD2") is (width == 40)


# --- rows merged by OCR, and what looks like an MRZ ------------------------------------------


@pytest.mark.parametrize("fmt", list(WIDTH))
def test_rows_merged_by_ocr_are_split_where_they_were(fmt):
    lines = mrz_lines(person_for(fmt, 1))
    assert mrz.split_merged("".join(lines)) == lines
    assert mrz.split_merged(lines[0]) == [lines[0]]


@pytest.mark.parametrize("length, parts", [
    (56, 1), (57, 2), (63, 2), (64, 1), (68, 1), (69, 2), (75, 2), (76, 1), (84, 1), (85, 2), (91, 2), (92, 1),
])  # fmt: skip
def test_rows_without_dates_are_halved_only_near_twice_a_width(length, parts):
    text = "A<" * (length // 2) + "A" * (length % 2)
    assert len(mrz.split_merged(text)) == parts


def test_a_merged_row_is_cut_13_characters_before_its_dates():
    l1 = "P<UTO" + "ERIKSSON<<ANNA" + "<" * 7  # 26 characters
    l2 = "L898902C36UTO7408122F1204159ZE"  # dates at 13
    assert mrz.split_merged(l1 + l2) == [l1, l2]
    # the cut would leave under 26 characters before it: the dates start the second row (TD1)
    td1 = mrz_lines(person_for("TD1", 1))
    assert mrz.split_merged(td1[0] + td1[1]) == td1[:2]
    # 52 characters are enough to hold two rows
    short = "I<UTO" + "<" * 21
    assert mrz.split_merged(short + td1[1][:26]) == [short, td1[1][:26]]
    assert mrz.split_merged(short + td1[1][:25]) == [short + td1[1][:25]]
    # a cut leaving under 20 characters after it is not made
    head = "I<UTO" + "<" * 31
    assert mrz.split_merged(head + td1[1][:19]) == [head + td1[1][:19]]
    assert mrz.split_merged(head + td1[1][:20]) == [head, td1[1][:20]]


@pytest.mark.parametrize("text, looks", [
    ("ERIKSSON<<ANNA<MARIA<<<<<<", True),  # 26 characters with fillers
    ("ERIKSSON<<ANNA<MARIA<<<<<", False),  # 25
    ("eriksson << anna maria << <<<<<", True),  # case and spaces do not count
    ("ERIKSSON««ANNA«MARIA«««««««", True),  # guillemets for fillers
    ("AA01234576DEU5001013M2801016", False),  # no filler at all
    ("ERIKSSON<<ANNA<MARIA<<<< <", False),  # 25 once the space is gone
    ("ERIKSSON<<ANNA<MARIA<<<<<<.,", True),  # two foreign characters pass
    ("ERIKSSON<<ANNA<MARIA<<<<<<.,;", False),  # three do not
])  # fmt: skip
def test_what_looks_like_an_mrz_row(text, looks):
    assert looks_like_mrz(text) is looks


# --- what the composite check lets a repair do ------------------------------------------------


def test_a_wrong_composite_digit_passes_only_through_one_optional_data_change():
    lines = mrz_lines(person_for("TD1", 0))  # optional data Z00000, composite 5
    assert lines[1][29] == "5" and lines[0][15:21] == "Z00000"
    # printed 6: only Z00000 -> 200000 gives 6, so the optional data is read that way (one
    # change confirmed by one digit, as on a visa); 8: no single change gives it
    seen = {}
    for printed in "68":
        m = parse_mrz([lines[0], lines[1][:29] + printed, lines[2]], today=TODAY)
        seen[printed] = (m.valid, m.optional_data, m.document_number)
    assert seen == {"6": (True, "200000", "AA0123457"), "8": (False, "Z00000", "AA0123457")}
    assert icao_check_digit(lines[0][5:30].replace("Z00000", "200000") + lines[1][0:7] + lines[1][8:15]
                            + lines[1][18:29]) == 6


def test_the_composite_never_repairs_the_document_number():
    p = person_for("TD1", 0).but(number="AB1034567", optional="")
    lines = mrz_lines(p)
    misread = _retype(lines[0], 8, "O")  # AB1O34567: a 0 read as O ...
    misread = _retype(misread, 14, str((int(lines[0][14]) + 1) % 10))  # ... and its own digit misread too
    m = parse_mrz([misread, lines[1], lines[2]], today=TODAY)
    assert m.document_number == "AB1O34567" and not m.checks["document_number"] and not m.number_confirmed


def test_a_repair_the_composite_does_not_confirm_keeps_the_day_given():
    lines = mrz_lines(person_for("TD3", 1).but(number="XY0125456", dob="700101", expiry="950101"))
    bad = lines[1][:5] + "S" + lines[1][6:43] + str((int(lines[1][43]) + 1) % 10)  # and a wrong composite
    m = parse_mrz([lines[0], bad], today=date(2080, 6, 1))
    assert not m.valid and m.document_number == "XY012S456"
    assert (m.date_of_birth, m.expiry_date) == ("2070-01-01", "2095-01-01")


def test_the_composite_repair_changes_only_optional_data():
    # the expiry's check digit 5 read as S would give the printed composite 9: not tried
    lines = ["I<FRADZ01472143<<<<<<<<<<<<<<<", "5904169M3104105NGA<<<<<<<<<<<6", "NGUYEN<<HIROSHI<<<<<<<<<<<<<<<"]
    assert parse_mrz(lines, today=TODAY).valid
    composite = lines[0][5:30] + lines[1][0:7] + lines[1][8:15] + lines[1][18:29]
    assert composite[38] == "5" and icao_check_digit(composite[:38] + "S" + composite[39:]) == 9
    m = parse_mrz([lines[0], lines[1][:29] + "9", lines[2]], today=TODAY)
    assert not m.valid and m.lines == [lines[0], lines[1][:29] + "9", lines[2]]


@pytest.mark.parametrize("fmt", ["TD1", "TD2"])
def test_optional_data_only_the_composite_covers_is_repaired_by_it(fmt):
    p = person_for(fmt, 0).but(optional="Z97") if fmt == "TD2" else person_for(fmt, 0).but(optional="", optional2="Z97")
    lines = mrz_lines(p)
    misread = [x.replace("Z97", "297") for x in lines]
    m = parse_mrz(misread, today=TODAY)
    assert m.valid and m.optional_data == "Z97" and m.format == fmt
    assert m.lines == (lines if fmt == "TD1" else misread)  # TD1 rewrites its rows, TD2 does not


def test_a_confusion_in_a_long_number_is_reported_as_read():
    # the composite covers the number as printed, and the composite itself is never repaired
    lines = mrz_lines(person_for("TD2", 0).but(number="D231458907", optional=""))
    misread = [lines[0], lines[1][:6] + "B" + lines[1][7:]]
    m = parse_mrz(misread, today=TODAY)
    assert m.document_number == "D23145B907" and not m.valid and not any(c.repaired for c in m.check_digits)


def test_a_long_numbers_continuation_is_not_optional_data_to_repair():
    lines = mrz_lines(person_for("TD1", 0).but(number="D231458907"))
    wrong_birth = [lines[0], "8" + lines[1][1:], lines[2]]
    m = parse_mrz(wrong_birth, today=TODAY)
    assert not m.valid and m.document_number == "D231458907" and m.lines == wrong_birth
    assert m.optional_data == "Z00000" and not m.checks["date_of_birth"]


def test_td1_keeps_its_rows_code_and_both_optional_parts():
    lines = mrz_lines(person_for("TD1", 0).but(optional2="AB12"))
    m = parse_mrz(lines, today=TODAY)
    assert m.valid and m.lines == lines and m.document_code == "I"
    assert m.optional_data == "Z00000<<<<<<<<<AB12"


@pytest.mark.parametrize("fmt, code", [("TD1", "IX"), ("TD2", "IX"), ("TD3", "PX")])
def test_an_x_is_kept_in_codes_and_optional_data(fmt, code):
    p = person_for(fmt, 0).but(code=code, optional="XA12X", optional2="X" if fmt == "TD1" else "")
    m = parse_mrz(mrz_lines(p), today=TODAY)
    assert m.valid and m.document_code == code
    assert m.optional_data == ("XA12X<<<<<<<<<<X" if fmt == "TD1" else "XA12X")


def test_a_filler_check_digit_is_an_overflow_only_on_td1_and_td2():
    lines = mrz_lines(person_for("TD3", 0))  # personal number Z00000
    m = parse_mrz([lines[0], lines[1][:9] + "<" + lines[1][10:]], today=TODAY)
    assert m.document_number == "AA0123457" and m.optional_data == "Z00000" and not m.checks["document_number"]
    lines = mrz_lines(person_for("TD2", 0).but(optional=""))
    # on TD2 whatever follows goes on the number, its last character the check digit
    m = parse_mrz([lines[0], lines[1][:9] + "<" + lines[1][10:28] + "XX<<<<<" + lines[1][35:]], today=TODAY)
    assert m.document_number == "AA0123457X" and not m.checks["document_number"]


# --- rows OCR cut short or shifted ----------------------------------------------------------


@pytest.mark.parametrize("fmt", list(WIDTH))
def test_a_name_row_without_its_trailing_fillers(fmt):
    lines = mrz_lines(person_for(fmt, 0))
    row = 2 if fmt == "TD1" else 0
    cut = list(lines)
    cut[row] = lines[row].rstrip("<")
    m = parse_mrz(cut, today=TODAY)
    assert m.valid and (m.surname, m.given_names) == ("ERIKSSON", "ANNA MARIA") and m.lines == lines


@pytest.mark.parametrize("fmt", ["TD1", "TD2", "TD3"])
def test_a_data_row_without_its_filler_run_keeps_its_check_digits_at_the_end(fmt):
    lines = mrz_lines(person_for(fmt, 0).but(optional="", optional2=""))
    row = 0 if fmt == "TD1" else 1
    cut = list(lines)
    cut[row] = lines[row].rstrip("<")  # TD1's first row: the filler run ends it
    cut[1] = cut[1].replace("<", "")  # the second row: its check digits follow the run
    m = parse_mrz(cut, today=TODAY)
    assert m.valid and m.lines == lines, cut


def test_a_passport_of_burundi_with_an_eight_character_number():
    # BDI and 7 digits before the number's filler look like the dates: they are looked for from 10 on
    lines = mrz_lines(person_for("TD3", 0).but(nationality="BDI", number="X1234567"))
    m = parse_mrz(lines, today=TODAY)
    assert m.valid and m.document_number == "X1234567" and m.nationality == "BDI"


def test_a_number_that_lost_its_fillers_down_to_the_dates_at_10():
    lines = mrz_lines(person_for("TD3", 0).but(number="AB1"))
    m = parse_mrz([lines[0], lines[1].replace("AB1<<<<<<", "AB1<<<", 1)], today=TODAY)
    assert m.valid and m.document_number == "AB1"


@pytest.mark.parametrize("change", ["drop", "add"])
def test_a_full_number_with_a_character_lost_or_added_is_left_as_read(change):
    lines = mrz_lines(person_for("TD3", 0))
    l2 = lines[1][:3] + lines[1][4:] if change == "drop" else lines[1][:3] + "7" + lines[1][3:]
    m = parse_mrz([lines[0], l2], today=TODAY)
    assert not m.valid and m.document_number == l2[:9]


def test_a_td1_first_row_cut_before_its_trailing_fillers():
    lines = mrz_lines(person_for("TD1", 0))  # optional data Z00000, then fillers
    m = parse_mrz([lines[0].rstrip("<"), lines[1], lines[2]], today=TODAY)
    assert m.valid and m.optional_data == "Z00000" and m.lines == lines


def test_a_stray_character_after_a_full_td1_first_row_is_kept_but_not_read():
    lines = mrz_lines(person_for("TD1", 0).but(optional="Z00000000000001"))  # no filler left to trim
    m = parse_mrz([lines[0] + "7", lines[1], lines[2]], today=TODAY)
    assert m.valid and m.optional_data == "Z00000000000001"
    assert m.lines[0] == lines[0] + "7"
    lines = mrz_lines(person_for("TD1", 0).but(number="D23145890734", optional="Z000000000"))  # a long number
    m = parse_mrz([lines[0] + "7", lines[1], lines[2]], today=TODAY)
    assert m.valid and m.document_number == "D23145890734" and m.optional_data == "Z000000000"


def test_three_td1_rows_merged_are_split_even_when_the_first_looks_like_dates():
    # X1234567, its filler and check digit, and 123456 read like a birth date, sex and expiry
    lines = mrz_lines(person_for("TD1", 0).but(number="X1234567", optional="123456"))
    assert mrz._DATES.search(lines[0]) is not None
    assert mrz.split_merged("".join(lines)) == lines
