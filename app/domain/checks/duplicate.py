"""Is the number this document shows on another account's submitted or approved case. Only the
number read off the image counts: a number typed for a document that does not show it is a
correction, and condemns nobody."""

from __future__ import annotations

from app.domain.checks import Facts, document_rule
from app.domain.kyc import Check, CheckName, CheckStatus


@document_rule(CheckName.DUPLICATE_DOCUMENT)
def duplicate(facts: Facts) -> Check | None:
    doc = facts.document
    if not doc.shown_fingerprint:
        return None
    if facts.other_owners:
        return Check(CheckName.DUPLICATE_DOCUMENT, CheckStatus.FAIL, 0.0,
                     "This document is registered to another account.", doc.id)
    return Check(CheckName.DUPLICATE_DOCUMENT, CheckStatus.PASS, 1.0, "No other account has this document.", doc.id)
