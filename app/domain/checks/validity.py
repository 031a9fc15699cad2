"""What the engine's `validation` says of the number and dates (checksums, format, expiry)."""

from __future__ import annotations

from app.domain.checks import Facts, document_rule
from app.domain.documents import is_expired
from app.domain.kyc import Check, CheckName, CheckStatus


@document_rule(CheckName.DOCUMENT_VALIDITY)
def validity(facts: Facts) -> Check:
    doc, name = facts.document, CheckName.DOCUMENT_VALIDITY
    expiry = doc.fields.get("expiry_date")
    if is_expired(str(expiry) if expiry else None, facts.today):
        return Check(name, CheckStatus.FAIL, 0.0, "The document has expired.", doc.id)
    validation = doc.validation or {}
    valid = validation.get("number_valid", validation.get("valid"))
    if valid is False:
        return Check(name, CheckStatus.FAIL, 0.0, validation.get("detail") or "The document number failed its checks.",
                     doc.id)
    if valid is True:
        return Check(name, CheckStatus.PASS, 1.0, "The document number passed its checks.", doc.id)
    return Check(name, CheckStatus.REVIEW, 0.5, "The document number could not be checked.", doc.id)
