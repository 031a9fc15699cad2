"""How each model the service needs is built from settings (called once, in the ML pool)."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from app.config import Settings


def ocr_extractor(settings: Settings) -> Any:
    from app.ml.documents import DocumentReader
    from app.ml.ocr import load_ocr_engine

    engine = load_ocr_engine(settings.ocr_backend, str(settings.ocr_model_dir) if settings.ocr_model_dir else None)
    reader = DocumentReader(engine)
    reader.name = f"pp-ocr ({engine.name})"  # type: ignore[attr-defined]
    return reader


def face_detector(settings: Settings) -> Any:
    from app.ml.faces import load_face_detector

    return load_face_detector()


def face_matcher(settings: Settings) -> Any:
    from app.ml.faces import load_face_matcher

    return load_face_matcher(settings.face_backend, settings.face_model_dir, settings.face_match_threshold)


def liveness_detector(settings: Settings) -> Any:
    from app.ml.liveness import load_liveness_analyzer

    return load_liveness_analyzer()


def loaders(settings: Settings) -> dict[str, Callable[[], Any]]:
    """The four models `/health` reports, keyed as API.md names them."""
    return {
        "face_detector": lambda: face_detector(settings),
        "face_matcher": lambda: face_matcher(settings),
        "ocr_extractor": lambda: ocr_extractor(settings),
        "liveness_detector": lambda: liveness_detector(settings),
    }
