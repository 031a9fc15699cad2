"""Finding the MRZ among OCR boxes (no model): captions between and beside the lines,
rows OCR merged, rows without fillers, and the band a second pass re-reads."""

from __future__ import annotations

from app.ml.document_parsers import Page, mrz_rows, parse_mrz_document, read_mrz
from app.ml.documents import _mrz_incomplete, classify, mrz_band
from app.ml.ocr import OcrLine
from tests.ml.mrz_cards import mrz_lines, person_for

H = 30  # line height in pixels


def box(text: str, x: int, y: int, conf: float = 0.95) -> OcrLine:
    return OcrLine(text, conf, (x, y, x + 20 * len(text), y + H))


def page_of(*lines: OcrLine) -> Page:
    return Page.from_lines(list(lines))


def visual_zone() -> list[OcrLine]:
    return [box("PASSPORT", 40, 20), box("Surname", 300, 80), box("NGUYEN", 300, 110), box("Date of birth", 300, 160),
            box("06.02.53", 300, 190)]


def test_caption_between_and_beside_the_lines_is_ignored():
    p = person_for("TD3", 3)
    l1, l2 = mrz_lines(p)
    page = page_of(*visual_zone(), box("MACHINE READABLE ZONE - DO NOT WRITE", 60, 380), box(l1, 60, 420),
                   box("Signature of bearer", 60, 465), box(l2, 60, 500), box("Holder", 1000, 500))
    mrz, rows = read_mrz(page)
    assert mrz is not None and mrz.valid and mrz.document_number == p.number
    assert [r.text for r in rows] == [l1, l2]
    assert classify(page)[0] == "passport"


def test_two_lines_merged_into_one_row_are_split():
    for fmt in ("TD3", "TD2", "MRV-A"):
        p = person_for(fmt, 1)
        page = page_of(*visual_zone(), box("".join(mrz_lines(p)), 60, 420))
        mrz, _ = read_mrz(page)
        assert mrz is not None and mrz.format == fmt and mrz.valid, fmt


def test_td1_with_two_rows_merged_and_fragments_in_one_row():
    p = person_for("TD1", 2)
    l1, l2, l3 = mrz_lines(p)
    page = page_of(*visual_zone(), box(l1[:12], 60, 400), box(l1[12:], 60 + 20 * 13, 402), box(l2 + l3, 60, 440))
    mrz, _ = read_mrz(page)
    assert mrz is not None and mrz.format == "TD1" and mrz.valid and mrz.document_number == p.number


def test_a_row_without_any_filler_is_taken_inside_a_zone():
    p = person_for("TD3", 4).but(number="K12345678", optional="AB1234567890CD")
    l1, l2 = mrz_lines(p)
    assert "<" not in l2
    mrz, _ = read_mrz(page_of(*visual_zone(), box(l1, 60, 420), box(l2, 60, 470)))
    assert mrz is not None and mrz.valid and mrz.optional_data == "AB1234567890CD"


def test_long_uppercase_print_without_fillers_is_no_mrz():
    page = page_of(box("INCOMETAXDEPARTMENTGOVTOFINDIA", 40, 20), box("PERMANENTACCOUNTNUMBERCARD", 40, 70))
    assert read_mrz(page) == (None, mrz_rows(page))
    assert not _mrz_incomplete(page)


def test_incomplete_zone_asks_for_a_second_pass_over_its_band():
    p = person_for("TD1", 5)
    l1, l2, _ = mrz_lines(p)
    page = page_of(*visual_zone(), box(l1, 60, 400), box(l2[:20], 60, 445))  # third row missed, second cut
    assert _mrz_incomplete(page)
    y0, y1 = mrz_band(page, (600, 900, 3))
    assert y0 < 400 and y1 > 445 + H + H  # room for the row that was missed
    found = parse_mrz_document(page)
    assert found.validation["number_valid"] is False


def test_invalid_zone_never_reports_its_number_as_valid():
    p = person_for("TD3", 6)
    l1, l2 = mrz_lines(p)
    bad = l2[:3] + ("7" if l2[3] != "7" else "6") + l2[4:]  # a misread digit in the number
    found = parse_mrz_document(page_of(box(l1, 60, 420), box(bad, 60, 470)))
    assert found.validation["number_valid"] is False
    assert found.validation["mrz_check_digits"]["document_number"] is False


def test_a_name_letter_read_as_filler_is_taken_from_the_visual_zone():
    p = person_for("MRV-B", 4)  # ARJUN SILVA
    l1, l2 = mrz_lines(p)
    broken = l1.replace("ARJUN", "ARJ<N")
    viz = [box("Given names", 300, 80), box("ARJUN", 300, 110), box("Surname", 300, 160), box("SILVA", 300, 190)]
    found = parse_mrz_document(page_of(*viz, box(broken, 60, 420), box(l2, 60, 470)))
    assert found.fields["full_name"] == "ARJUN SILVA"
    # with nothing printed to confirm it, the name stays as read
    assert parse_mrz_document(page_of(box(broken, 60, 420), box(l2, 60, 470))).fields["full_name"] == "ARJ N SILVA"


def test_a_misread_name_letter_is_corrected_only_by_one_printed_word():
    p = person_for("TD3", 1)
    l1, l2 = mrz_lines(p)
    given = p.given.split()[0]
    doubled = given[0] + given[1] + given[1:]  # one letter read twice
    broken = l1.replace(given, doubled, 1)
    viz = [box("Given names", 300, 80), box(p.given, 300, 110), box("Surname", 300, 160), box(p.surname, 300, 190)]
    found = parse_mrz_document(page_of(*viz, box(broken, 60, 420), box(l2, 60, 470)))
    assert found.fields["full_name"] == f"{p.given} {p.surname}"
    unprinted = parse_mrz_document(page_of(box(broken, 60, 420), box(l2, 60, 470)))
    assert unprinted.fields["full_name"].split()[0] == doubled


def test_names_and_dates_printed_on_a_card_are_no_mrz_fragments():
    from app.ml.document_parsers import mrz_fragment

    assert mrz_fragment("VENKAT REDDY") is None and mrz_fragment("02/10/1954") is None
    assert mrz_fragment("Date of Birth") is None
    assert mrz_fragment("P<UTOERIKSSON<<ANNA <MARIA<<<<<<<<<<<<<<<<<<") == "P<UTOERIKSSON<<ANNA<MARIA" + "<" * 18
    page = page_of(box("KAVITA REDDY", 86, 517), box("VENKAT REDDY", 86, 607), box("02/10/1954", 668, 606))
    assert mrz_rows(page) == [] and not _mrz_incomplete(page)


def test_masked_aadhaar_number_in_either_group_order():
    from app.ml.document_parsers import parse_aadhaar

    for printed in ("XXXX XXXX 6969", "6969 XXXX XXXX", "xxxx xxxx 6969"):
        found = parse_aadhaar(page_of(box("GOVERNMENT OF INDIA", 400, 30), box(printed, 234, 456)))
        assert found.fields["document_number"] == "XXXX XXXX 6969", printed
        assert found.validation["number_masked"] is True and found.validation["number_valid"] is None
        assert found.number_raw is None


def test_a_name_letter_read_as_a_filler_at_a_word_start():
    p = person_for("MRV-A", 3).but(given="THI LAN", surname="TANAKA")
    l1, l2 = mrz_lines(p)
    broken = l1.replace("THI<LAN", "THI<<AN", 1)
    viz = [box("Given names", 300, 80), box("THI LAN", 300, 110), box("Surname", 300, 160), box("TANAKA", 300, 190)]
    found = parse_mrz_document(page_of(*viz, box(broken, 60, 420), box(l2, 60, 470)))
    assert found.fields["full_name"] == "THI LAN TANAKA"
