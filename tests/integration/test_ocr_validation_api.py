"""`POST /ocr/extract` answers a `validation` block beside `ocr_data` (DocumentValidation)."""

from __future__ import annotations

import cv2
import pytest

from tests.conftest import bearer
from tests.ml import cards, mrz_cards


def png(img) -> bytes:
    ok, buf = cv2.imencode(".png", img)
    assert ok
    return buf.tobytes()


@pytest.fixture
async def caller(api, email):
    return bearer(await api.customer(email))


async def test_pan_validation_block(api, caller):
    person = cards.Person()
    r = await api.client.post("/ocr/extract", headers=caller,
                              files={"document": ("pan.png", png(cards.pan_card(person)), "image/png")})
    assert r.status_code == 200, r.text
    v = r.json()["validation"]
    assert v["document_type"] == "pan" and v["detected_type"] == "pan" and v["type_mismatch"] is False
    assert (v["number_found"], v["number_valid"], v["checksum"]) == (True, True, "format")
    assert v["pan"] == {"valid": True, "holder_type_code": "P", "holder_type": "individual"}
    assert v["format"] is None and v["check_digits"] == [] and v["expiry_status"] == "not_applicable"
    assert person.pan not in r.text


@pytest.mark.skipif(not mrz_cards.fonts_present(), reason=f"{mrz_cards.OCRB} not found (MRZ typeface)")
async def test_passport_validation_block_lists_every_check_digit(api, caller):
    p = mrz_cards.person_for("TD3", 2).but(expiry="961210")  # an expired passport: 1996, not 2096
    r = await api.client.post("/ocr/extract", headers=caller, data={"document_type": "passport"},
                              files={"document": ("p.png", png(mrz_cards.render(p)), "image/png")})
    assert r.status_code == 200, r.text
    body = r.json()
    v = body["validation"]
    assert v["format"] == "TD3" and v["checksum"] == "mrz" and v["number_valid"] is True
    assert [c["field"] for c in v["check_digits"]] == [
        "document_number", "date_of_birth", "expiry_date", "personal_number", "composite"]
    assert all(c["valid"] and c["printed"] == str(c["computed"]) for c in v["check_digits"])
    assert v["expiry_date"] == body["ocr_data"]["fields"]["expiry_date"] == "1996-12-10"
    assert v["expiry_status"] == "expired" and v["issuing_country"] == p.country
    assert p.number not in r.text
    assert "validation" not in body["ocr_data"]
