"""Read an identity document: OCR -> document type -> fields -> validation.

`DocumentReader.read` is synchronous and CPU-bound (the OCR call dominates); the
async gateway runs it in its pool. Per-type field parsers live in
`app/ml/document_parsers.py`; the number rules they apply are `app/domain`.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field

import numpy as np

from app.domain.documents import DocumentType, mask_number
from app.ml.document_parsers import PARSERS, Found, Page, find_mrz_rows
from app.ml.ocr import OcrEngine

FIELD_KEYS = (
    "full_name", "date_of_birth", "document_number", "nationality", "issue_date",
    "expiry_date", "place_of_birth", "address", "gender", "father_name",
)  # fmt: skip


@dataclass
class DocumentReading:
    document_type: str
    side: str | None
    confidence: float
    extracted_text: str
    fields: dict[str, str | None]
    field_confidence: dict[str, float]
    validation: dict
    # The unmasked number, for hashing (duplicate detection) only: never in `fields`,
    # never logged (repr=False), never returned by the API.
    document_number_raw: str | None = field(default=None, repr=False)

    def ocr_data(self) -> dict:
        """The API's `ocr_data` object."""
        return {
            "document_type": self.document_type,
            "confidence": self.confidence,
            "extracted_text": self.extracted_text,
            "fields": dict(self.fields),
        }


def classify(page: Page) -> tuple[str, str | None]:
    """Document type and side from the text alone. Order matters: PAN and voter ID
    cards also say "Govt. of India", so the Aadhaar test comes after them."""
    t = page.upper_text
    # OCR drops or inserts spaces between words ("UNIQUEIDENTIFICATION"), so keywords
    # are matched on the text without any whitespace.
    c = re.sub(r"\s+", "", t)
    mrz = find_mrz_rows(page)
    if mrz:
        return (DocumentType.PASSPORT if mrz[0].lstrip().startswith("P") else DocumentType.NATIONAL_ID), None
    if "INCOMETAX" in c or "PERMANENTACCOUNT" in c:
        return DocumentType.PAN, None
    if "ELECTIONCOMMISSION" in c or "ELECTOR" in c:
        return DocumentType.VOTER_ID, None
    if "DRIVINGLICEN" in c:
        return DocumentType.DRIVING_LICENCE, None
    has_uid = re.search(r"(?<!\d)\d{4}\s?\d{4}\s?\d{4}(?!\s?\d)", t) is not None
    words = ("AADHAAR", "AADHAR", "आधार", "UNIQUEIDENTIFICATION", "GOVERNMENTOFINDIA")
    aadhaar_words = any(w in c for w in words)
    if aadhaar_words or (has_uid and ("VID" in c or "ADDRESS" in c)):
        return DocumentType.AADHAAR, _aadhaar_side(t)
    return DocumentType.GENERIC, None


def _aadhaar_side(t: str) -> str:
    if "ADDRESS" in t or "पता" in t:
        return "back"
    return "front"


_UID_GROUPS = re.compile(r"(?<!\d)(?:\d{4}\s?){2,3}(\d{4})(?!\d)")  # Aadhaar (12) and VID (16)


def redact(text: str, raw_number: str | None) -> str:
    """`extracted_text` is returned to callers, so the number must be masked there too:
    every Aadhaar/VID-like digit group, and the raw number wherever OCR put it (MRZ, VIZ),
    even with spaces inside."""
    text = _UID_GROUPS.sub(lambda m: "XXXX XXXX " + m.group(1), text)
    if raw_number and len(raw_number) > 4:
        spaced = r"\s?".join(re.escape(ch) for ch in raw_number)
        text = re.sub(spaced, mask_number(raw_number), text, flags=re.I)
    return text


def _document_confidence(found: Found) -> float:
    """Mean confidence of the fields read, scaled down when the number is missing or
    fails its checksum: a card whose number does not validate is not trustworthy."""
    if not found.conf:
        return 0.0
    base = sum(found.conf.values()) / len(found.conf)
    valid = found.validation.get("number_valid")
    factor = 1.0 if valid else (0.6 if found.number_raw else 0.5)
    return round(base * factor, 4)


class DocumentReader:
    def __init__(self, ocr: OcrEngine) -> None:
        self.ocr = ocr

    def read(self, image_bgr: np.ndarray, document_type: str | None = None) -> DocumentReading:
        page = Page.from_lines(self.ocr.read(image_bgr))
        return self.read_page(page, document_type)

    def read_page(self, page: Page, document_type: str | None = None) -> DocumentReading:
        detected, side = classify(page)
        declared = DocumentType(document_type) if document_type else None
        kind = declared or detected
        if kind == DocumentType.AADHAAR and side is None:
            side = _aadhaar_side(page.upper_text)
        found = PARSERS.get(kind, PARSERS[DocumentType.GENERIC])(page)
        validation = dict(found.validation)
        validation["detected_type"] = str(detected)
        if declared and detected not in (declared, DocumentType.GENERIC):
            validation["type_mismatch"] = True
        fields = {k: found.fields.get(k) for k in FIELD_KEYS}
        if kind == DocumentType.GENERIC:
            confidence = round(0.5 * page.mean_confidence, 4)
        else:
            confidence = _document_confidence(found)
        return DocumentReading(
            document_type=str(kind),
            side=side if kind == DocumentType.AADHAAR else None,
            confidence=confidence,
            extracted_text=redact(page.text, found.number_raw),
            fields=fields,
            field_confidence={k: round(v, 4) for k, v in found.conf.items()},
            validation=validation,
            document_number_raw=found.number_raw,
        )
