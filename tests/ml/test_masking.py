"""Sensitive numbers never come back in full (API.md): `redact` masks every number-like
format whatever document type was declared or detected, keeping the last 4 characters."""

from __future__ import annotations

import json
import re

import pytest

from app.ml.document_parsers import Page
from app.ml.documents import DocumentReader, redact
from app.ml.ocr import OcrLine
from tests.ml import cards

P = cards.Person()


@pytest.mark.parametrize(
    ("text", "masked"),
    [
        ("2345 6789 0123", "XXXX XXXX 0123"),  # Aadhaar
        ("234567890123", "XXXX XXXX 0123"),
        ("2345-6789-0123", "XXXX XXXX 0123"),
        ("VID: 9134 5678 9012 3456", "VID: XXXX XXXX 3456"),  # 16-digit virtual ID
        ("2345 6789 O123", "XXXX XXXX O123"),  # OCR read 0 as O
        ("ABCPS1234K", "XXXXXX234K"),  # PAN
        ("abcps1234k", "XXXXXX234k"),  # lower case
        ("ABCDE12O4F", "XXXXXX2O4F"),  # O for 0 in the digit part
        ("ABCDE1B3SF", "XXXXXXB3SF"),  # B/S for 8/5
        ("A8CDE1234F", "XXXXXX234F"),  # 8 for B in the letter part
        ("PAN: ABCDE 1234F", "PAN: XXXXXX234F"),  # OCR split the token
        ("EPIC No. ABC1234567", "EPIC No. XXXXXX4567"),  # voter ID
        ("ABCl234567", "XXXXXX4567"),  # l for 1
        ("DL No: MH12 20110012345", "DL No: XXXXXXXXXXX2345"),  # driving licence
        ("MH-12-2011-0012345", "XXXXXXXXXXX2345"),
        ("dl-0420110149646", "XXXXXXXXXXX9646"),
        ("Passport No. J8369854", "Passport No. XXXX9854"),  # Indian passport
        ("D23145890", "XXXXX5890"),  # foreign passport number
    ],
)
def test_each_format_is_masked_to_last_four(text, masked):
    assert redact(text) == masked
    assert redact(masked) == masked  # a mask never matches again


@pytest.mark.parametrize(
    "row",
    [
        "J8369854<4IND8501011M2501017<<<<<<<<<<<<<<02",  # TD3 row 2
        "J 8369854 <4IND8501011M2501017<<<<<<<< <<<<<<02",  # with OCR spaces
        "L898902C36UTO7408122F1204159ZE184226B<<<<<10",
        "I<UTOD231458907<<<<<<<<<<<<<<<",  # TD1 row 1
        "7408122F1204159UTO<<<<<<<<<<<6",  # TD1 row 2
    ],
)
def test_mrz_rows_with_numbers_are_masked(row):
    out = redact(f"REPUBLIC OF INDIA\n{row}")
    masked = out.split("\n")[1]
    assert out.startswith("REPUBLIC OF INDIA\n")
    assert masked[-4:] == row.replace(" ", "")[-4:]
    assert not re.search(r"\d", masked[:-4])


def test_mrz_name_row_stays_readable():
    row = "P<INDSHARMA<<RAHUL<KUMAR<<<<<<<<<<<<<<<<<<<<<"
    assert redact(row) == row


@pytest.mark.parametrize(
    "text",
    [
        "Rahul Kumar Sharma",
        "DOB : 15/08/1990",
        "Date of Birth 15/08/1990",
        "Year of Birth : 1990",
        "Valid Till 14/08/2031",
        "Date of Issue 12 AUG 2015",
        "S/O Suresh Kumar Sharma, 12 MG Road,",
        "Flat 1203, Tower B, Pune - 411005",
        "INCOME TAX DEPARTMENT GOVT. OF INDIA",
        "Permanent Account Number Card",
        "UNIQUE IDENTIFICATION AUTHORITY OF INDIA",
        "Aadhaar - Aam Aadmi ka Adhikar",
        "help@uidai.gov.in 1947",
        "1990-08-15",
    ],
)
def test_ordinary_text_is_untouched(text):
    assert redact(text) == text


def test_raw_number_of_unknown_format_is_masked_too():
    assert redact("Document no C01X 00T47", "C01X00T47") == "Document no XXXXX0T47"


class _Engine:
    """Fixed OCR output, one line per row: read_page without the model."""

    name = "fixed"

    def __init__(self, texts: list[str]) -> None:
        self.lines = [OcrLine(t, 0.9, (20, 10 + 40 * i, 20 + 14 * len(t), 40 + 40 * i)) for i, t in enumerate(texts)]

    def read(self, image_bgr):
        return self.lines


def test_passport_with_unparseable_mrz_does_not_leak_its_number():
    engine = _Engine(
        [
            "REPUBLIC OF INDIA",
            "Name SHARMA RAHUL",
            "J8369854<4IND8501011M2501017<<<<<<<<<<<<",  # one row of a zone: no ICAO shape
        ]
    )
    reader = DocumentReader(engine)
    page = Page.from_lines(engine.lines)
    r = reader.read_page(page, "passport")
    assert r.validation.get("mrz_found") is False  # the InvalidInput branch
    assert "8369854" not in json.dumps(r.ocr_data())


def test_generic_fields_cannot_carry_a_number():
    engine = _Engine(["Some card", "ABCPS1234K 2345 6789 0123", "DOB : 15/08/1990"])
    r = DocumentReader(engine).read_page(Page.from_lines(engine.lines), "generic")
    data = json.dumps(r.ocr_data())
    assert "ABCPS1234K" not in data and "234567890123" not in re.sub(r"\s", "", data)
    assert r.fields["date_of_birth"] == "1990-08-15"
    assert all(v is None or v == redact(v) for v in r.fields.values())


# --- real model: a declared type that does not match the card ---------------------------


def _compact(reading) -> str:
    return re.sub(r"\s", "", json.dumps(reading.ocr_data()))


@pytest.mark.parametrize("declared", ["generic", "aadhaar", "passport", "voter_id", "driving_licence"])
def test_pan_card_read_as_another_type_never_shows_the_pan(document_reader, declared):
    r = document_reader.read(cards.pan_card(P), declared)
    assert r.document_type == declared
    assert P.pan not in _compact(r) and P.pan.lower() not in _compact(r).lower()
    assert P.pan[-4:] in r.extracted_text  # masked, not dropped
    assert "INCOME TAX DEPARTMENT" in r.extracted_text  # ordinary text stays readable


@pytest.mark.parametrize("card", [cards.aadhaar_front, cards.aadhaar_back])
@pytest.mark.parametrize("declared", ["pan", "generic", "passport"])
def test_aadhaar_card_read_as_another_type_never_shows_the_number(document_reader, card, declared):
    r = document_reader.read(card(P), declared)
    assert r.document_type == declared
    assert P.aadhaar not in _compact(r)
    assert f"XXXX XXXX {P.aadhaar[-4:]}" in r.extracted_text
