"""Shared fixtures for the model tests: the fixture folder and one OCR engine per session
(loading the three ONNX sessions costs ~1 s; reading a card ~0.4 s)."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]


def fixtures_dir() -> Path:
    """`$KYC_FIXTURES_DIR`, else `<repo>/../shared/fixtures` (read in place, never copied)."""
    return Path(os.environ.get("KYC_FIXTURES_DIR") or REPO.parent / "shared" / "fixtures")


@pytest.fixture(scope="session")
def fixtures_path() -> Path:
    path = fixtures_dir()
    if not path.is_dir():
        pytest.skip(f"fixture folder {path} not found: set KYC_FIXTURES_DIR")
    return path


@pytest.fixture(scope="session")
def ocr_engine():
    from app.ml.ocr import RapidOcrEngine

    engine = RapidOcrEngine(threads=2)
    engine.warm_up()
    return engine


@pytest.fixture(scope="session")
def document_reader(ocr_engine):
    from app.ml.documents import DocumentReader

    return DocumentReader(ocr_engine)
