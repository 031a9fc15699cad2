"""A customer's correction never silently replaces what was read: each difference is a review."""

from __future__ import annotations

from app.domain.checks import Facts, document_rule
from app.domain.kyc import Check, CheckName, CheckStatus


@document_rule(CheckName.CORRECTIONS)
def corrections(facts: Facts) -> list[Check]:
    doc, checks = facts.document, []
    for name, value in doc.visible_corrections().items():
        read = doc.fields.get(name)
        if read is not None and str(read).strip().casefold() == str(value).strip().casefold():
            continue
        detail = (f"The customer corrected {name!r} from what was read." if read is not None
                  else f"The customer gave {name!r}; the document does not show it.")
        checks.append(Check(CheckName.CORRECTIONS, CheckStatus.REVIEW, 0.5, detail, doc.id))
    return checks
