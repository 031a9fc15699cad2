"""Verification routes over HTTP with the real models (loaded once per worker)."""

from __future__ import annotations

import io

import cv2
import numpy as np
import pytest
from PIL import Image

from tests.conftest import bearer
from tests.ml import cards


def encode(img_bgr: np.ndarray, ext: str = ".jpg") -> bytes:
    ok, buf = cv2.imencode(ext, img_bgr)
    assert ok
    return buf.tobytes()


def pdf_of(img_bgr: np.ndarray) -> bytes:
    out = io.BytesIO()
    Image.fromarray(cv2.cvtColor(img_bgr, cv2.COLOR_BGR2RGB)).save(out, format="PDF", resolution=150)
    return out.getvalue()


@pytest.fixture
async def caller(api, email):
    return bearer(await api.customer(email))


async def test_ocr_extract_reads_a_pan_card_and_masks_the_number(api, caller):
    person = cards.Person()
    r = await api.client.post("/ocr/extract", headers=caller,
                              files={"document": ("pan.png", encode(cards.pan_card(person), ".png"), "image/png")})
    assert r.status_code == 200, r.text
    data = r.json()["ocr_data"]
    assert data["document_type"] == "pan" and data["fields"]["document_number"] == "XXXXXX234K"
    assert data["fields"]["full_name"] == person.name.upper() and data["fields"]["date_of_birth"] == "1990-08-15"
    assert person.pan not in r.text and 0.5 < data["confidence"] <= 1
    assert r.json()["processing_time_ms"] > 0 and r.json()["timestamp"].endswith("Z")


async def test_ocr_extract_reads_the_first_page_of_a_pdf(api, caller):
    person = cards.Person()
    r = await api.client.post("/ocr/extract", headers=caller, data={"document_type": "aadhaar"},
                              files={"document": ("scan.pdf", pdf_of(cards.aadhaar_front(person)), "application/pdf")})
    assert r.status_code == 200, r.text
    fields = r.json()["ocr_data"]["fields"]
    assert fields["document_number"] == "XXXX XXXX " + person.aadhaar[-4:]
    assert person.aadhaar not in r.text and person.aadhaar[:4] + " " + person.aadhaar[4:8] not in r.text


@pytest.mark.parametrize("payload, code", [
    (b"", "invalid_image"),
    (b"just some text, not an image", "invalid_image"),
    (b"\xff\xd8\xff\xe0" + b"\x00" * 40, "invalid_image"),  # a JPEG header and nothing else
])
async def test_hostile_uploads_are_400(api, caller, payload, code):
    r = await api.client.post("/ocr/extract", headers=caller, files={"document": ("id.jpg", payload, "image/jpeg")})
    assert r.status_code == 400 and r.json()["error_code"] == code


async def test_truncated_png_and_oversized_files(api_factory, email):
    api = await api_factory(max_upload_bytes=50_000)
    caller = bearer(await api.customer(email))
    png = encode(cards.pan_card(), ".png")
    r = await api.client.post("/ocr/extract", headers=caller, files={"document": ("a.png", png[:30_000], "")})
    assert r.status_code == 400 and r.json()["error_code"] == "invalid_image"
    noise = encode(np.random.default_rng(1).integers(0, 255, (400, 400, 3), dtype=np.uint8), ".png")
    r = await api.client.post("/ocr/extract", headers=caller, files={"document": ("big.png", noise, "image/png")})
    assert r.status_code == 413 and r.json()["error_code"] == "file_too_large"


async def test_oversized_bodies_are_refused_before_parsing(api_factory, email):
    api = await api_factory(max_upload_bytes=50_000, max_frames=10, max_frame_bytes=10_000)
    caller = bearer(await api.customer(email))
    big = b"x" * 2_000_000  # over two uploads plus slack (~1.1 MB here)
    r = await api.client.post("/ocr/extract", headers=caller, files={"document": ("a.png", big, "image/png")})
    assert r.status_code == 413 and r.json()["error_code"] == "payload_too_large"

    async def chunks():  # no Content-Length: counted as it streams
        for _ in range(30):
            yield b"y" * 50_000

    r = await api.client.post("/liveness/detect", headers={**caller, "content-type": "application/json"},
                              content=chunks())
    assert r.status_code == 413 and r.json()["request_id"] == r.headers["x-request-id"], r.text


async def test_bad_document_type_is_422(api, caller):
    r = await api.client.post("/ocr/extract", headers=caller, data={"document_type": "library_card"},
                              files={"document": ("a.png", encode(cards.pan_card(), ".png"), "image/png")})
    assert r.status_code == 422 and r.json()["error_code"] == "validation_error"
    assert [e["loc"] for e in r.json()["errors"]] == [["body", "document_type"]]


async def test_a_model_that_cannot_load_gives_503_and_degraded_health(api_factory, email, tmp_path):
    # A real failure: the PaddleOCR backend pointed at a folder that does not exist.
    api = await api_factory(own_models=True, ocr_backend="paddleocr", ocr_model_dir=tmp_path / "missing")
    caller = bearer(await api.customer(email))
    r = await api.client.post("/ocr/extract", headers=caller,
                              files={"document": ("a.png", encode(cards.pan_card(), ".png"), "image/png")})
    assert r.status_code == 503 and r.json()["error_code"] == "models_unavailable"
    health = await api.client.get("/health")
    assert health.status_code == 503 and health.json()["status"] == "degraded"
    assert health.json()["models"]["ocr_extractor"]["error"]
