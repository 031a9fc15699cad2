"""Read an identity document: OCR -> document type -> fields -> validation.

`DocumentReader.read` is synchronous and CPU-bound (the OCR call dominates); the
async gateway runs it in its pool. Per-type field parsers live in
`app/ml/document_parsers.py`; the number rules they apply are `app/domain`.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass, field
from functools import partial

import cv2
import numpy as np

from app.domain.documents import INDIAN_STATE_CODES, DocumentType, expiry_status, mask_aadhaar, mask_number
from app.domain.mrz import looks_like_mrz
from app.ml.document_parsers import PARSERS, Found, Page, find_mrz_rows, mrz_fragment, mrz_rows, read_mrz
from app.ml.ocr import OcrEngine, OcrLine, deskew_lines, text_angle

# Below this skew rows group correctly as they are (group_rows tolerates ±3°).
DESKEW_MIN_DEGREES = 1.5
# Documents that carry an expiry date (Aadhaar, PAN and voter ID cards do not).
_EXPIRING = {DocumentType.PASSPORT, DocumentType.NATIONAL_ID, DocumentType.DRIVING_LICENCE}
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
        """The API's `ocr_data` object, plus `validation` (the API's `DocumentValidation`,
        which the routes place beside `ocr_data`)."""
        return {"document_type": self.document_type, "confidence": self.confidence,
                "extracted_text": self.extracted_text, "fields": dict(self.fields),
                "validation": self.validation_report()}

    def validation_report(self) -> dict:
        """Every check made on the document, in the API's `DocumentValidation` shape."""
        v = self.validation
        expiry = self.fields.get("expiry_date")
        has_expiry = self.document_type in _EXPIRING
        pan = v.get("pan")
        return {
            "document_type": self.document_type,
            "detected_type": v.get("detected_type", self.document_type),
            "type_mismatch": bool(v.get("type_mismatch")),
            "format": v.get("mrz_format"),
            "number_found": self.document_number_raw is not None or bool(v.get("number_masked")),
            "number_valid": None if v.get("number_masked") or self.document_number_raw is None
            else bool(v.get("number_valid")),
            "number_masked": bool(v.get("number_masked")),
            "checksum": v.get("checksum", "none"),
            "check_digits": list(v.get("mrz_checks", [])),
            "verhoeff": v.get("verhoeff"),
            "pan": dict(pan) if pan else None,
            "issuing_country": v.get("issuing_country"),
            "expiry_date": expiry,
            "expiry_status": expiry_status(expiry) if has_expiry else "not_applicable",
            "mrz_reread": bool(v.get("mrz_reread")),
        }


def classify(page: Page) -> tuple[str, str | None]:
    """Document type and side from the text alone. Order matters: PAN and voter ID
    cards also say "Govt. of India", so the Aadhaar test comes after them."""
    t = page.text.upper()
    # OCR drops or inserts spaces between words ("UNIQUEIDENTIFICATION"), so keywords
    # are matched on the text without any whitespace.
    c = re.sub(r"\s+", "", t)
    mrz = find_mrz_rows(page)
    if mrz:  # a visa (V) is read from a passport page
        return (DocumentType.PASSPORT if mrz[0][:1] in ("P", "V") else DocumentType.NATIONAL_ID), None
    if "INCOMETAX" in c or "PERMANENTACCOUNT" in c:
        return DocumentType.PAN, None
    if "ELECTIONCOMMISSION" in c or "ELECTOR" in c:
        return DocumentType.VOTER_ID, None
    if "DRIVINGLICEN" in c:
        return DocumentType.DRIVING_LICENCE, None
    has_uid = re.search(r"(?<!\d)\d{4}\s?\d{4}\s?\d{4}(?!\s?\d)", t) is not None
    aadhaar_words = any(w in c for w in ("AADHAAR", "AADHAR", "आधार", "UNIQUEIDENTIFICATION", "GOVERNMENTOFINDIA"))
    if aadhaar_words or (has_uid and ("VID" in c or "ADDRESS" in c)):
        return DocumentType.AADHAAR, _aadhaar_side(t)
    return DocumentType.GENERIC, None


def _aadhaar_side(t: str) -> str:
    return "back" if "ADDRESS" in t or "पता" in t else "front"


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


def _mask_match(m: re.Match[str], *, min_digits: int, mask: Callable[[str], str]) -> str:
    return mask(m[0]) if sum(c.isdigit() for c in m[0]) >= min_digits else m[0]


def redact(text: str, raw_number: str | None = None) -> str:
    """`extracted_text` (and every field) is returned to callers, so any substring that
    looks like a sensitive number is masked to its last 4 characters (Aadhaar as
    `XXXX XXXX 1234`), plus the raw number the parser found wherever OCR put it, even
    with spaces inside (formats the table does not know, e.g. `C01X00T47`)."""
    for rx, min_digits, mask in _SENSITIVE:
        text = rx.sub(partial(_mask_match, min_digits=min_digits, mask=mask), text)
    if raw_number and len(raw_number) > 4:
        spaced = r"\s?".join(re.escape(ch) for ch in raw_number)
        text = re.sub(spaced, mask_number(raw_number), text, flags=re.I)
    return text


def _mrz_incomplete(page: Page) -> bool:
    """MRZ-looking rows with fillers are there, but no run of them validates."""
    rows = mrz_rows(page)
    if not any("<" in r.text and len(r.text) >= 20 for r in rows):
        return False
    mrz, _ = read_mrz(page)
    return mrz is None or not mrz.valid


def mrz_band(page: Page, shape: tuple[int, ...]) -> tuple[int, int] | None:
    """Rows of the image that hold the MRZ: the MRZ-looking rows found, widened by a line
    pitch or so, more when fewer rows than a zone has were found (the missing ones sit
    above or below)."""
    rows = [r for r in mrz_rows(page) if "<" in r.text or len(r.text) >= 26]
    if not rows:
        return None
    rows = rows[-3:]
    h = max(r.height for r in rows)
    pad = 1.2 * h if len(rows) >= 2 else 3.4 * h
    y0, y1 = int(max(0, min(r.top for r in rows) - pad)), int(min(shape[0], max(r.bottom for r in rows) + pad))
    return (y0, y1) if y1 - y0 >= 16 else None


def _rank(reading: DocumentReading) -> tuple:
    checks = reading.validation.get("mrz_check_digits") or {}
    return (bool(reading.validation.get("number_valid")), sum(checks.values()), reading.confidence)


def _document_confidence(found: Found) -> float:
    """Mean confidence of the fields read, scaled down when the number is missing or
    fails its checksum: a card whose number does not validate is not trustworthy."""
    if not found.conf:
        return 0.0
    base = sum(found.conf.values()) / len(found.conf)
    valid = found.validation.get("number_valid")
    factor = 1.0 if valid else (0.6 if found.number_raw else 0.5)
    if found.validation.get("number_masked"):
        factor = 0.85  # printed masked (e-Aadhaar): read, but there is nothing to check
    return round(base * factor, 4)


class DocumentReader:
    def __init__(self, ocr: OcrEngine) -> None:
        self.ocr = ocr
        self.name = f"pp-ocr ({ocr.name})"

    def read(self, image_bgr: np.ndarray, document_type: str | None = None) -> DocumentReading:
        lines = self.ocr.read(image_bgr)
        angle = text_angle(lines)
        h, w = image_bgr.shape[:2]
        if abs(angle) > DESKEW_MIN_DEGREES:
            # rows and label/value pairs are found on axis-aligned boxes: turn the boxes
            # (and, for a second pass, the image) back by the text lines' own slope
            lines = deskew_lines(lines, angle, (w / 2, h / 2))
        page = Page.from_lines(lines)
        reading = self.read_page(page, document_type)
        if document_type in (None, DocumentType.PASSPORT, DocumentType.NATIONAL_ID) and _mrz_incomplete(page):
            # second pass only when the first found MRZ rows but no valid zone, so a
            # readable document costs one OCR call
            if abs(angle) > DESKEW_MIN_DEGREES:
                image_bgr = cv2.warpAffine(image_bgr, cv2.getRotationMatrix2D((w / 2, h / 2), angle, 1.0), (w, h),
                                           flags=cv2.INTER_LINEAR, borderMode=cv2.BORDER_REPLICATE)
            band = mrz_band(page, image_bgr.shape)
            if band is not None:
                second = self.read_page(self._reread_band(image_bgr, page, band), document_type)
                second.validation["mrz_reread"] = True
                if _rank(second) > _rank(reading):
                    return second
        return reading

    def _reread_band(self, image_bgr: np.ndarray, page: Page, band: tuple[int, int]) -> Page:
        """OCR the MRZ band again, enlarged to ~36 px lines and flattened to dark ink on
        white (a dark or patterned background is what most often breaks the first pass),
        and put its lines in place of the first pass's lines in that band."""
        y0, y1 = band
        crop = image_bgr[y0:y1]
        rows = mrz_rows(page)
        line_h = float(np.median([r.height for r in rows])) if rows else 24.0
        factor = float(np.clip(36.0 / max(line_h, 1.0), 1.0, 2.5))
        factor = min(factor, 2000.0 / crop.shape[1]) if crop.shape[1] * factor > 2000 else factor
        gray = cv2.cvtColor(crop, cv2.COLOR_BGR2GRAY)
        if factor > 1.05:
            gray = cv2.resize(gray, None, fx=factor, fy=factor, interpolation=cv2.INTER_CUBIC)
        gray = cv2.GaussianBlur(gray, (3, 3), 0)
        _, ink = cv2.threshold(gray, 0, 255, cv2.THRESH_BINARY + cv2.THRESH_OTSU)
        if np.mean(ink) < 127:  # light print on a dark band: make the ink dark
            ink = 255 - ink
        read = getattr(self.ocr, "read_upright", self.ocr.read)
        lines = read(cv2.cvtColor(ink, cv2.COLOR_GRAY2BGR))
        mapped = [
            OcrLine(ln.text, ln.confidence, (int(ln.box[0] / factor), int(ln.box[1] / factor) + y0,
                                             int(ln.box[2] / factor), int(ln.box[3] / factor) + y0))
            for ln in lines
        ]  # fmt: skip
        kept = [ln for ln in page.lines if not (y0 <= ln.cy <= y1 and mrz_fragment(ln.text))]
        return Page.from_lines(kept + mapped)

    def read_page(self, page: Page, document_type: str | None = None) -> DocumentReading:
        detected, side = classify(page)
        declared = DocumentType(document_type) if document_type else None
        kind = declared or DocumentType(detected)
        if kind == DocumentType.AADHAAR and side is None:
            side = _aadhaar_side(page.text.upper())
        found = PARSERS.get(kind, PARSERS[DocumentType.GENERIC])(page)
        validation = dict(found.validation)
        validation["detected_type"] = str(detected)
        if declared and detected not in (declared, DocumentType.GENERIC):
            validation["type_mismatch"] = True
        # no field may carry a number in full either (parsers mask document_number;
        # this also covers a number OCR glued onto a name or address)
        fields = {k: redact(v, found.number_raw) if v else v for k in FIELD_KEYS for v in [found.fields.get(k)]}
        confidence = round(0.5 * page.mean_confidence, 4) if kind == DocumentType.GENERIC else _document_confidence(found)
        return DocumentReading(
            document_type=str(kind), side=side if kind == DocumentType.AADHAAR else None, confidence=confidence,
            extracted_text=redact(page.text, found.number_raw), fields=fields, validation=validation,
            field_confidence={k: round(v, 4) for k, v in found.conf.items()}, document_number_raw=found.number_raw,
        )
