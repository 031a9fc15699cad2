"""Read an identity document: OCR -> document type -> fields -> validation.

`DocumentReader.read` is synchronous and CPU-bound (the OCR call dominates); the
async gateway runs it in its pool. Per-type field parsers live in
`app/ml/document_parsers.py`; the number rules they apply are `app/domain`.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field

import numpy as np

from app.domain.documents import INDIAN_STATE_CODES, DocumentType, mask_aadhaar, mask_number
from app.domain.mrz import looks_like_mrz
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


# Every format a sensitive number can take, whatever type the caller declared or the
# classifier chose: redaction must not depend on which parser ran (a PAN card declared
# `generic` still prints its PAN). Each entry: pattern, the fewest real digits a match
# must hold (the tolerant classes also match letters, so plain words never qualify),
# and the mask. Order matters: whole MRZ rows first, then the most specific formats,
# then the catch-all; a mask never matches a later pattern (it keeps <= 4 digits).
_L = "[A-Z012568]"  # a letter position: OCR reads O I Z S B G as 0 1 2 5 8 6 ...
_D = "[0-9ODQILZSBG]"  # ... and a digit position the other way round
_START, _END = "(?<![A-Z0-9])", "(?![A-Z0-9])"  # whole tokens only, never inside a word
_STATES = "|".join(sorted(INDIAN_STATE_CODES))


def _mask_compact(s: str) -> str:
    return mask_number(re.sub(r"[\s/-]", "", s))


def _mask_mrz_row(s: str) -> str:
    # MRZ rows with digits hold the document number (TD3/TD2 row 2, TD1 row 1), dates and
    # personal numbers; the name row has no digits and stays readable.
    return _mask_compact(s) if looks_like_mrz(s) else s


_SENSITIVE = tuple(
    (re.compile(pattern, re.I | re.M), min_digits, mask)
    for pattern, min_digits, mask in (
        (r"^.{26,}$", 1, _mask_mrz_row),  # a text row that is an MRZ line
        # Aadhaar (12 digits) and VID (16), in groups of 4 with spaces or dashes
        (rf"{_START}{_D}{{4}}(?:[\s-]?{_D}{{4}}){{2,3}}{_END}", 10, mask_aadhaar),
        (rf"{_START}{_L}{{5}}[ -]?{_D}{{4}}[ -]?{_L}{_END}", 2, _mask_compact),  # PAN ABCDE1234F
        (rf"{_START}{_L}{{3}}[ -]?{_D}{{7}}{_END}", 5, _mask_compact),  # voter ID (EPIC) ABC1234567
        # driving licence: state code + RTO + year + serial (MH12 20110012345, MH-12-2011-0012345);
        # real state codes only, so a label such as "Ph" before a phone number stays
        (rf"{_START}(?:{_STATES})[ /-]?\d{{2}}(?:[ /-]?\d){{7,13}}{_END}", 9, _mask_compact),
        (rf"{_START}[A-Z][ -]?{_D}{{7}}{_END}", 5, _mask_compact),  # Indian passport J8369854
        # anything else number-like: foreign passport / MRZ document numbers, MRZ fields
        # run together, phone numbers. Dates (separators) and PIN codes (6) stay.
        (rf"{_START}[A-Z0-9]{{8,}}{_END}", 6, _mask_compact),
    )
)


def redact(text: str, raw_number: str | None = None) -> str:
    """`extracted_text` (and every field) is returned to callers, so any substring that
    looks like a sensitive number is masked to its last 4 characters (Aadhaar as
    `XXXX XXXX 1234`), plus the raw number the parser found wherever OCR put it, even
    with spaces inside (formats the table does not know, e.g. `C01X00T47`)."""
    for rx, min_digits, mask in _SENSITIVE:
        text = rx.sub(lambda m, n=min_digits, f=mask: f(m[0]) if sum(c.isdigit() for c in m[0]) >= n else m[0], text)
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
        # no field may carry a number in full either (parsers mask document_number;
        # this also covers a number OCR glued onto a name or address)
        fields = {k: redact(v, found.number_raw) if v else v for k in FIELD_KEYS for v in [found.fields.get(k)]}
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
