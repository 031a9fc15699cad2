"""Was the document read: a number and enough confidence pass, anything less goes to a person."""

from __future__ import annotations

from app.domain.checks import Facts, document_rule
from app.domain.kyc import Check, CheckName, CheckStatus

OCR_PASS = 0.60  # the document's read confidence (with a number read) that passes


@document_rule(CheckName.OCR)
def ocr(facts: Facts) -> Check:
    doc = facts.document
    if doc.confidence >= OCR_PASS and doc.number_masked is not None:
        return Check(CheckName.OCR, CheckStatus.PASS, doc.confidence, "The document was read.", doc.id)
    return Check(CheckName.OCR, CheckStatus.REVIEW, min(doc.confidence, 0.5),
                 "The document was read only in part; a person should look." if doc.confidence
                 else "Nothing could be read from the document.", doc.id)
