"""DocumentReader on rendered Aadhaar and PAN cards with the real OCR model: every font
family on the machine, then rotation, blur, JPEG and scale on one font."""

from __future__ import annotations

import re

import pytest

from app.api.schemas.verification import DocumentValidation
from app.domain.documents import is_valid_aadhaar
from tests.ml import cards

P = cards.Person()
FEMALE = cards.Person(
    name="Priya Nair", father="Gopal Nair", dob="03/11/1985", gender="Female",
    aadhaar=cards.aadhaar_number("98765432101"), pan="AAAPN4321Q",
    address=("D/O Gopal Nair, Flat 4B, Lake View,", "Kadavanthra, Kochi,", "Kerala - 682020"),
)  # fmt: skip

FONTS = cards.available_fonts()
DEGRADE = {
    "rot+3": lambda im: cards.rotate(im, 3),
    "rot-3": lambda im: cards.rotate(im, -3),
    "blur1.5": lambda im: cards.blur(im, 1.5),
    "jpeg30": lambda im: cards.jpeg(im, 30),
    "scale0.6": lambda im: cards.scale(im, 0.6),
    "rot-2+jpeg50": lambda im: cards.jpeg(cards.rotate(im, -2), 50),
}


def _assert_no_raw_number(reading, raw: str) -> None:
    assert reading.document_number_raw == raw
    compact = re.sub(r"\s", "", repr(reading) + reading.extracted_text)
    assert raw not in compact and raw not in str(reading.fields)


def check_aadhaar_front(r, p: cards.Person, year_only: bool = False):
    assert (r.document_type, r.side) == ("aadhaar", "front")
    assert r.fields["full_name"] == p.name
    d, m, y = p.dob.split("/")
    assert r.fields["date_of_birth"] == (y if year_only else f"{y}-{m}-{d}")
    assert r.fields["gender"] == p.gender[0]
    assert r.fields["document_number"] == f"XXXX XXXX {p.aadhaar[-4:]}"
    assert r.validation["number_valid"] is True and r.validation["checksum"] == "verhoeff"
    _assert_no_raw_number(r, p.aadhaar)
    assert r.confidence > 0.8


def check_aadhaar_back(r, p: cards.Person):
    assert (r.document_type, r.side) == ("aadhaar", "back")
    assert r.fields["document_number"] == f"XXXX XXXX {p.aadhaar[-4:]}"
    assert r.validation["number_valid"] is True
    norm = lambda s: re.sub(r"[\s,\-]+", " ", s).strip().lower()  # noqa: E731
    assert norm(r.fields["address"]) == norm(" ".join(p.address))
    assert r.fields["father_name"] == p.father
    _assert_no_raw_number(r, p.aadhaar)


def check_pan(r, p: cards.Person, holder: str = "individual"):
    assert r.document_type == "pan"
    assert r.fields["full_name"] == p.name.upper()
    assert r.fields["father_name"] == p.father.upper()
    d, m, y = p.dob.split("/")
    assert r.fields["date_of_birth"] == f"{y}-{m}-{d}"
    assert r.fields["document_number"] == "XXXXXX" + p.pan[-4:]
    assert r.validation == {**r.validation, "number_valid": True, "checksum": "format", "holder_type": holder}
    _assert_no_raw_number(r, p.pan)
    assert r.confidence > 0.8


@pytest.mark.parametrize("font", FONTS)
def test_aadhaar_front_fonts(font, document_reader):
    check_aadhaar_front(document_reader.read(cards.aadhaar_front(P, font=font)), P)


@pytest.mark.parametrize("font", FONTS)
def test_aadhaar_back_fonts(font, document_reader):
    check_aadhaar_back(document_reader.read(cards.aadhaar_back(P, font=font)), P)


@pytest.mark.parametrize("font", FONTS)
def test_pan_fonts(font, document_reader):
    check_pan(document_reader.read(cards.pan_card(P, font=font)), P)


@pytest.mark.parametrize("name", list(DEGRADE))
def test_aadhaar_front_degraded(name, document_reader):
    check_aadhaar_front(document_reader.read(DEGRADE[name](cards.aadhaar_front(FEMALE, font="dejavu-serif"))), FEMALE)


@pytest.mark.parametrize("name", list(DEGRADE))
def test_pan_degraded(name, document_reader):
    check_pan(document_reader.read(DEGRADE[name](cards.pan_card(P, font="dejavu-sans"))), P)


@pytest.mark.parametrize("name", ["rot+3", "jpeg30"])
def test_aadhaar_back_degraded(name, document_reader):
    check_aadhaar_back(document_reader.read(DEGRADE[name](cards.aadhaar_back(FEMALE, font="pil-default"))), FEMALE)


def test_year_of_birth_only(document_reader):
    r = document_reader.read(cards.aadhaar_front(P, font="dejavu-sans", year_only=True))
    check_aadhaar_front(r, P, year_only=True)


def test_wrong_aadhaar_checksum_is_flagged_and_lowers_confidence(document_reader):
    good = P.aadhaar
    bad = good[:-1] + str((int(good[-1]) + 1) % 10)
    assert not is_valid_aadhaar(bad)
    r_good = document_reader.read(cards.aadhaar_front(P, font="dejavu-sans"))
    r_bad = document_reader.read(cards.aadhaar_front(cards.Person(aadhaar=bad), font="dejavu-sans"))
    assert r_bad.validation["number_valid"] is False
    assert r_bad.fields["document_number"] == f"XXXX XXXX {bad[-4:]}"
    assert r_bad.confidence < 0.7 * r_good.confidence


def test_declared_type_wins_and_mismatch_is_reported(document_reader):
    r = document_reader.read(cards.pan_card(P, font="dejavu-sans"), document_type="aadhaar")
    assert r.document_type == "aadhaar"
    assert r.validation["detected_type"] == "pan" and r.validation["type_mismatch"] is True
    assert r.fields["document_number"] is None and r.confidence < 0.6


def test_reading_shape_matches_api(document_reader):
    r = document_reader.read(cards.pan_card(P, font="pil-default"))
    data = r.ocr_data()
    assert set(data) == {"document_type", "confidence", "extracted_text", "fields", "validation"}
    DocumentValidation(**data["validation"])  # the API's schema accepts it as it is
    assert list(data["fields"]) == [
        "full_name", "date_of_birth", "document_number", "nationality", "issue_date",
        "expiry_date", "place_of_birth", "address", "gender", "father_name",
    ]  # fmt: skip
    assert "INCOME TAX DEPARTMENT" in data["extracted_text"]
    assert set(r.field_confidence) <= set(data["fields"])
    assert all(0 < v <= 1 for v in r.field_confidence.values())
