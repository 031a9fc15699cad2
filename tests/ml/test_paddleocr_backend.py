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
from tests.ml.test_ocr_cards import DEGRADE, P, check_aadhaar_back, check_aadhaar_front, check_pan  # noqa: E402

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


# Records socket use while `_NET["on"]` is set: a connection attempt while PaddleOCR
# loads or reads would be a download, which this service must never make.
_NET: dict = {"on": False, "seen": []}


def _audit(event, args):
    if _NET["on"] and event in ("socket.connect", "socket.getaddrinfo"):
        _NET["seen"].append((event, args))


sys.addaudithook(_audit)  # audit hooks cannot be removed; this one is inert unless switched on


@pytest.fixture(scope="module")
def engine(model_dir):
    _NET.update(on=True, seen=[])
    try:
        eng = load_ocr_engine("paddleocr", str(model_dir))
        eng.read(cards.pan_card())
    finally:
        _NET["on"] = False
    assert _NET["seen"] == [], f"PaddleOCR tried to reach the network: {_NET['seen'][:3]}"
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


@pytest.mark.parametrize("font", ["dejavu-sans", "pil-default"])
def test_pan_card_like_rapidocr(font, engine, document_reader):
    """Same card, same parser: the PaddleOCR reading passes the RapidOCR card checks and
    yields the same fields as the default backend."""
    img = cards.pan_card(P, font=font)
    r = DocumentReader(engine).read(img)
    check_pan(r, P)
    assert r.document_number_raw == P.pan
    assert r.fields == document_reader.read(img).fields


@pytest.mark.parametrize("degrade", ["rot-3", "jpeg30", "scale0.6"])
def test_pan_degraded(degrade, engine):
    check_pan(DocumentReader(engine).read(DEGRADE[degrade](cards.pan_card(P, font="dejavu-sans"))), P)


def test_aadhaar_front_and_back(engine):
    reader = DocumentReader(engine)
    check_aadhaar_front(reader.read(cards.aadhaar_front(P, font="dejavu-sans")), P)
    check_aadhaar_back(reader.read(cards.aadhaar_back(P, font="dejavu-sans")), P)


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
    """The network check in `engine` is only worth something if the audit event fires."""
    _NET.update(on=True, seen=[])
    s = socket.socket()
    s.settimeout(0.01)
    try:
        s.connect(("127.0.0.1", 9))
    except OSError:
        pass
    finally:
        s.close()
        _NET["on"] = False
    assert [ev for ev, _ in _NET["seen"]] == ["socket.connect"]
