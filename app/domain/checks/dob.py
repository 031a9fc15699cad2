"""Does the date of birth read off the document agree with the profile's: an ISO date, or a year
alone (Aadhaar cards often print only the year of birth). A PAN without one is not checked."""

from __future__ import annotations

import re
from datetime import date

from app.domain.checks import Facts, document_rule
from app.domain.documents import DocumentType
from app.domain.kyc import Check, CheckName, CheckStatus


def profile_dob(profile: dict[str, object] | None) -> date | None:
    value = (profile or {}).get("dob")
    if isinstance(value, date):
        return value
    try:
        return date.fromisoformat(str(value)) if value else None
    except ValueError:
        return None


@document_rule(CheckName.DOB_MATCH)
def dob_match(facts: Facts) -> Check | None:
    doc, name = facts.document, CheckName.DOB_MATCH
    read, dob = doc.fields.get("date_of_birth"), profile_dob(facts.user.profile)
    if doc.type == DocumentType.PAN and not read:
        return None
    if not read or dob is None:
        return Check(name, CheckStatus.REVIEW, 0.5, "No date of birth to compare (document or profile).", doc.id)
    if re.fullmatch(r"\d{4}", read):
        ok = int(read) == dob.year
        return Check(name, CheckStatus.PASS if ok else CheckStatus.FAIL, 0.9 if ok else 0.0,
                     "The year of birth agrees." if ok else "The year of birth differs from the profile.", doc.id)
    ok = read == dob.isoformat()
    return Check(name, CheckStatus.PASS if ok else CheckStatus.FAIL, 1.0 if ok else 0.0,
                 "The date of birth agrees." if ok else "The date of birth differs from the profile.", doc.id)
