"""How each model the service needs is built from settings (called once, in the ML pool)."""

from __future__ import annotations

from collections.abc import Callable
from functools import lru_cache, partial
from typing import Any

from app.config import Settings


def ocr_extractor(settings: Settings) -> Any:
    from app.ml.documents import DocumentReader
    from app.ml.ocr import load_ocr_engine

    return DocumentReader(load_ocr_engine(settings.ocr_backend,
                                          str(settings.ocr_model_dir) if settings.ocr_model_dir else None))


@lru_cache(maxsize=1)
def _shared_detector() -> Any:
    from app.ml.face_backends import default_detector

    return default_detector()


def face_detector(settings: Settings) -> Any:
    """One detector per process: the matcher uses the very instance /health reports."""
    return _shared_detector()


def face_matcher(settings: Settings) -> Any:
    from app.ml.faces import load_face_matcher

    return load_face_matcher(settings.face_backend, settings.face_model_dir, settings.face_match_threshold,
                             detector=_shared_detector())


def liveness_detector(settings: Settings) -> Any:
    from app.ml.liveness import LivenessAnalyzer

    return LivenessAnalyzer()


BUILDERS = {"face_detector": face_detector, "face_matcher": face_matcher, "ocr_extractor": ocr_extractor,
            "liveness_detector": liveness_detector}


def loaders(settings: Settings) -> dict[str, Callable[[], Any]]:
    """The four models `/health` reports, keyed as API.md names them. Partials of
    module functions, so they can be sent to the worker processes."""
    return {key: partial(build, settings) for key, build in BUILDERS.items()}
