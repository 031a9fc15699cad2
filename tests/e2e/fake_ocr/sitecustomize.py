"""Test hook, on PYTHONPATH for a `kycflow serve` under test with KYCFLOW_TEST_FAKE_OCR set: the
OCR model is replaced by a reader that answers at once with the document type it was told, so a
process test can upload documents without loading the real model (seconds a call on a busy CI core).
The image is still decoded (read_document does that first), so bad uploads fail as they would.
KYCFLOW_TEST_FAKE_OCR_SLOW=`<document type>:<seconds>:<marker file>` makes that type's reading
touch the marker and take that long (a request a test can catch in flight)."""

from __future__ import annotations

import os

if os.environ.get("KYCFLOW_TEST_FAKE_OCR"):
    import time
    from pathlib import Path
    from typing import Any

    from app.ml import models
    from app.ml.documents import DocumentReading

    _SLOW_TYPE, _, _SLOW = os.environ.get("KYCFLOW_TEST_FAKE_OCR_SLOW", "::").partition(":")
    _SECONDS, _, _MARKER = _SLOW.partition(":")

    class _FakeReader:
        name = "fake-ocr"

        def read(self, image: Any, document_type: str | None = None) -> DocumentReading:
            if document_type == _SLOW_TYPE:
                Path(_MARKER).touch()
                time.sleep(float(_SECONDS))
            return DocumentReading(document_type=document_type or "generic", side="front", confidence=0.95,
                                   extracted_text="", fields={"full_name": "Asha Rao"}, field_confidence={},
                                   validation={})

    def _fake_ocr(settings: Any) -> _FakeReader:
        return _FakeReader()

    models.BUILDERS["ocr_extractor"] = _fake_ocr
