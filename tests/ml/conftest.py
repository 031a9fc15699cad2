"""Shared fixtures for the model tests: the fixture folder and one OCR engine per session
(loading the three ONNX sessions costs ~1 s; reading a card ~0.4 s)."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.ml.face_fixtures import fixtures_dir  # `$KYC_FIXTURES_DIR`, else `<repo>/../shared/fixtures`


@pytest.fixture(scope="session")
def fixtures_path() -> Path:
    path = fixtures_dir()
    if not path.is_dir():
        pytest.skip(f"fixture folder {path} not found: set KYC_FIXTURES_DIR")
    return path


@pytest.fixture(scope="session")
def ocr_engine():
    from app.ml.ocr import RapidOcrEngine

    return RapidOcrEngine(threads=2)


@pytest.fixture(scope="session")
def document_reader(ocr_engine):
    from app.ml.documents import DocumentReader

    return DocumentReader(ocr_engine)


@pytest.fixture(scope="session")
def face_detector():
    from app.ml.face_backends import default_detector

    return default_detector()


@pytest.fixture(scope="session")
def face_matcher(face_detector):
    from app.ml.faces import DlibFaceEmbedder, FaceMatcher

    return FaceMatcher(face_detector, DlibFaceEmbedder())


@pytest.fixture(scope="session")
def liveness_analyzer():
    from app.ml.liveness import LivenessAnalyzer

    return LivenessAnalyzer()
