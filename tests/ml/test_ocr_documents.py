"""DocumentReader with the real OCR model on documents rendered here: every ICAO MRZ
format in OCR-B (plain, guilloche and dark backgrounds, a caption above the zone, small
and rotated photos), bilingual and masked Aadhaar, PAN at ±15° and in perspective,
driving licence and voter ID. Fonts are read in place from `../shared/fonts`."""

from __future__ import annotations

import re

import pytest

from app.api.schemas.verification import DocumentValidation
from app.domain.documents import resolve_yymmdd
from tests.ml import cards, mrz_cards
from tests.ml.test_ocr_cards import check_pan

needs_ocrb = pytest.mark.skipif(not mrz_cards.fonts_present(), reason=f"{mrz_cards.OCRB} not found (MRZ typeface)")
needs_devanagari = pytest.mark.skipif(not cards.devanagari_present(), reason=f"{cards.DEVANAGARI_FONT} not found")
P = cards.Person()


def check_mrz(r, p: mrz_cards.MrzPerson) -> None:
    v = r.validation_report()
    DocumentValidation(**v)
    assert r.document_type == ("passport" if p.code[0] in "PV" else "national_id")
    assert v["format"] == p.fmt and v["checksum"] == "mrz"
    assert v["number_valid"] is True, v["check_digits"]
    assert r.document_number_raw == p.number
    assert r.fields["document_number"] == "X" * (len(p.number) - 4) + p.number[-4:]
    assert p.number not in re.sub(r"\s", "", r.extracted_text + str(r.fields))
    assert r.fields["date_of_birth"] == resolve_yymmdd(p.dob, expiry=False)
    assert r.fields["expiry_date"] == resolve_yymmdd(p.expiry, expiry=True)
    assert r.fields["full_name"] == f"{p.given} {p.surname}"
    assert r.fields["nationality"] == p.nationality
    assert v["expiry_status"] == "valid" and v["issuing_country"] == p.country
    expected = {"document_number", "date_of_birth", "expiry_date"}
    expected |= {"TD3": {"personal_number", "composite"}, "TD2": {"composite"}, "TD1": {"composite"}}.get(p.fmt, set())
    assert {c["field"] for c in v["check_digits"]} == expected and all(c["valid"] for c in v["check_digits"])


@needs_ocrb
@pytest.mark.parametrize("fmt, background, i", [
    ("TD1", "pattern", 0), ("TD2", "dark", 1), ("TD3", "plain", 2), ("MRV-A", "pattern", 3), ("MRV-B", "dark", 4),
])  # fmt: skip
def test_every_icao_format(fmt, background, i, document_reader):
    p = mrz_cards.person_for(fmt, i)
    check_mrz(document_reader.read(mrz_cards.render(p, background=background, caption=True)), p)


@needs_ocrb
@pytest.mark.parametrize("name", ["rotated 6°", "600 px wide", "blur+jpeg40"])
def test_mrz_on_degraded_photos(name, document_reader):
    p = mrz_cards.person_for("TD3", 7)
    img = mrz_cards.render(p, background="pattern")
    img = {"rotated 6°": lambda: cards.rotate_full(img, 6),
           "600 px wide": lambda: cards.scale(img, 600 / img.shape[1]),
           "blur+jpeg40": lambda: cards.jpeg(cards.blur(img, 1.2), 40)}[name]()
    check_mrz(document_reader.read(img), p)


@needs_ocrb
def test_expired_visa_is_reported_expired_not_pushed_a_century_ahead(document_reader):
    p = mrz_cards.person_for("MRV-B", 2).but(expiry="961210")
    r = document_reader.read(mrz_cards.render(p))
    v = r.validation_report()
    assert r.fields["expiry_date"] == "1996-12-10" and v["expiry_status"] == "expired"
    assert v["number_valid"] is True


@needs_devanagari
def test_bilingual_aadhaar_front(document_reader):
    r = document_reader.read(cards.aadhaar_front_bilingual(P))
    assert (r.document_type, r.side) == ("aadhaar", "front")
    assert r.fields["full_name"] == P.name and r.fields["date_of_birth"] == "1990-08-15" and r.fields["gender"] == "M"
    v = r.validation_report()
    assert (v["number_valid"], v["verhoeff"], v["number_masked"]) == (True, True, False)
    assert r.fields["document_number"] == f"XXXX XXXX {P.aadhaar[-4:]}" and P.aadhaar not in r.extracted_text


@needs_devanagari
def test_e_aadhaar_masked_number_is_read_as_masked(document_reader):
    r = document_reader.read(cards.aadhaar_front_bilingual(P, masked=True))
    v = r.validation_report()
    assert r.fields["document_number"] == f"XXXX XXXX {P.aadhaar[-4:]}"
    assert (v["number_found"], v["number_masked"], v["number_valid"], v["verhoeff"]) == (True, True, None, None)
    assert r.document_number_raw is None
    assert r.confidence > 0.7 and r.fields["full_name"] == P.name  # masked is not a checksum failure


@needs_devanagari
def test_bilingual_aadhaar_back_reads_the_english_address(document_reader):
    r = document_reader.read(cards.aadhaar_back_bilingual(P))
    assert (r.document_type, r.side) == ("aadhaar", "back")
    norm = lambda s: re.sub(r"[\s,\-]+", " ", s).strip().lower()  # noqa: E731
    assert norm(r.fields["address"]) == norm(" ".join(P.address))
    assert r.fields["father_name"] == P.father


@pytest.mark.parametrize("degrees", [-15, -8, 8, 15])
def test_pan_rotated(degrees, document_reader):
    check_pan(document_reader.read(cards.rotate_full(cards.pan_card(P), degrees)), P)


@pytest.mark.parametrize("amount", [0.06, 0.1])
def test_pan_photographed_in_perspective(amount, document_reader):
    check_pan(document_reader.read(cards.perspective(cards.pan_card(P), amount)), P)


@pytest.mark.parametrize("degrade", ["none", "rot+10"])
def test_driving_licence(degrade, document_reader):
    img = cards.driving_licence(P)
    r = document_reader.read(img if degrade == "none" else cards.rotate_full(img, 10))
    v = r.validation_report()
    assert r.document_type == "driving_licence" and v["number_valid"] is True and v["checksum"] == "format"
    assert r.document_number_raw == "MH1220110012345" and r.fields["document_number"] == "XXXXXXXXXXX2345"
    assert r.fields["full_name"] == P.name.upper() and r.fields["father_name"] == P.father.upper()
    assert r.fields["date_of_birth"] == "1990-08-15"
    assert r.fields["expiry_date"] == "2031-08-14" and v["expiry_status"] == "valid"


@pytest.mark.parametrize("degrade", ["none", "jpeg35"])
def test_voter_id(degrade, document_reader):
    img = cards.voter_id(P)
    r = document_reader.read(img if degrade == "none" else cards.jpeg(img, 35))
    v = r.validation_report()
    assert r.document_type == "voter_id" and v["number_valid"] is True
    assert r.document_number_raw == "ABC1234567" and r.fields["document_number"] == "XXXXXX4567"
    assert r.fields["full_name"] == P.name.upper() and r.fields["father_name"] == P.father.upper()
    assert r.fields["gender"] == "M" and r.fields["date_of_birth"] == "1990-08-15"
    assert v["expiry_status"] == "not_applicable"
