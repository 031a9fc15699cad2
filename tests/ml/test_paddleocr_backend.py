"""The optional PaddleOCR backend (`OCR_BACKEND=paddleocr`) on a model folder built from
the rapidocr wheel's PP-OCRv6 ONNX files. paddleocr (~600 MB with paddlex) is not in the
main environment, so this module skips there; run it from an environment that has
`paddleocr==3.7.0` + this project's deps:

    python -m pytest tests/ml/test_paddleocr_backend.py -q
"""

from __future__ import annotations

import importlib.util
import socket
import sys
from pathlib import Path

import pytest

pytest.importorskip("paddleocr", reason="optional OCR backend: pip install paddleocr==3.7.0 to run these tests")

from app.domain.errors import ModelsUnavailable  # noqa: E402
from app.ml.documents import DocumentReader  # noqa: E402
from app.ml.ocr import PaddleOcrEngine, load_ocr_engine  # noqa: E402
from tests.ml import cards  # noqa: E402

SCRIPT = Path(__file__).resolve().parents[2] / "scripts" / "make_paddleocr_model_dir.py"


def _script():
    spec = importlib.util.spec_from_file_location("make_paddleocr_model_dir", SCRIPT)
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    return mod


@pytest.fixture(scope="module")
def model_dir(tmp_path_factory) -> Path:
    out = tmp_path_factory.mktemp("paddleocr-models")
    _script().build(out)
    return out


@pytest.fixture(scope="module")
def engine(model_dir):
    # Any connection attempt while PaddleOCR loads or reads is a download we must not make.
    attempts: list = []

    def audit(event, args):
        if event in ("socket.connect", "socket.getaddrinfo"):
            attempts.append((event, args))

    sys.addaudithook(audit)  # cannot be removed; it only records, and only while `attempts` is watched
    eng = load_ocr_engine("paddleocr", str(model_dir))
    eng.warm_up()
    eng.read(cards.pan_card())
    assert attempts == [], f"PaddleOCR tried to reach the network: {attempts[:3]}"
    return eng


def test_layout(model_dir):
    for sub in ("det", "rec"):
        assert (model_dir / sub / "inference.onnx").is_file()
        assert (model_dir / sub / "inference.yml").is_file()
    import yaml

    rec = yaml.safe_load((model_dir / "rec" / "inference.yml").read_text(encoding="utf-8"))
    assert rec["Global"]["model_name"] == "PP-OCRv6_small_rec"
    chars = rec["PostProcess"]["character_dict"]
    assert len(chars) == 18708 and all(len(c) == 1 for c in chars)
    assert {"A", "Z", "0", "9", "/", "'"} <= set(chars)


def test_no_paddlepaddle_needed(engine):
    assert isinstance(engine, PaddleOcrEngine)
    assert "paddle" not in sys.modules, "the onnxruntime engine should not import paddlepaddle"


def test_pan_card_like_rapidocr(engine):
    p = cards.Person()
    r = DocumentReader(engine).read(cards.pan_card(p))
    assert r.document_type == "pan"
    assert r.fields["document_number"] == "XXXXXX" + p.pan[-4:]
    assert r.document_number_raw == p.pan
    assert r.validation.get("number_valid") is True
    assert r.fields["full_name"] == p.name.upper()
    assert r.fields["father_name"] == p.father.upper()
    assert r.fields["date_of_birth"] == "1990-08-15" or r.fields["date_of_birth"] == p.dob


def test_lines_are_axis_aligned_boxes_in_reading_order(engine):
    lines = engine.read(cards.pan_card())
    texts = [ln.text for ln in lines]
    assert "ABCPS1234K" in texts
    assert texts.index("ABCPS1234K") < texts.index("RAHUL KUMAR SHARMA")
    h, w = cards.H, cards.W
    for ln in lines:
        x0, y0, x1, y1 = ln.box
        assert 0 <= x0 < x1 <= w and 0 <= y0 < y1 <= h
        assert 0.5 <= ln.confidence <= 1.0


def test_blank_image_reads_nothing(engine):
    import numpy as np

    assert engine.read(np.full((200, 300, 3), 255, np.uint8)) == []


def test_missing_folder_is_models_unavailable(tmp_path):
    with pytest.raises(ModelsUnavailable, match="not found"):
        PaddleOcrEngine(tmp_path / "nope")
    (tmp_path / "det").mkdir()
    with pytest.raises(ModelsUnavailable, match="missing"):
        PaddleOcrEngine(tmp_path)
    with pytest.raises(ModelsUnavailable, match="model_dir"):
        load_ocr_engine("paddleocr", None)


def test_socket_guard_sees_connections():
    """The network check in `engine` is only worth something if the audit event fires here."""
    seen = []
    sys.addaudithook(lambda ev, args: seen.append(ev) if ev == "socket.connect" else None)
    s = socket.socket()
    s.settimeout(0.01)
    try:
        s.connect(("127.0.0.1", 9))
    except OSError:
        pass
    finally:
        s.close()
    assert "socket.connect" in seen
