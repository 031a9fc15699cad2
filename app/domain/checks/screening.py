"""Is the customer on a loaded sanctions or PEP list: a strong hit fails, a weaker one waits for an
auditor, who reads in the detail which entry matched and why (the customer is told neither). The
service finds the hits (app/services/screening.py); this module says who is screened and what the
hits mean."""

from __future__ import annotations

from collections.abc import Sequence

from app.domain.checks.dob import profile_dob
from app.domain.kyc import Check, CheckName, CheckStatus, KycCase
from app.domain.screening import Hit, Subject, country
from app.domain.users import User

SHOWN = 3  # hits spelt out in the detail; the rest counted


def _field(case: KycCase, name: str) -> list[str]:
    values = (d.corrections.get(name) or d.fields.get(name) for d in case.documents)
    return [v for v in values if isinstance(v, str) and v.strip()]


def subject(user: User, case: KycCase | None = None) -> Subject:
    """The profile's name and date of birth, the verified name, and what the documents read or the
    customer corrected (names, nationality)."""
    names = [user.name, (user.verified_identity or {}).get("name") or ""]
    nationalities = [c for v in _field(case, "nationality") if (c := country(v))] if case else []
    names += _field(case, "full_name") if case else []
    return Subject(tuple(dict.fromkeys(n for n in names if n)), profile_dob(user.profile),
                   tuple(dict.fromkeys(nationalities)))


def screening_check(hits: Sequence[Hit], lists: Sequence[str]) -> Check:
    name = CheckName.SCREENING
    if not lists:
        return Check(name, CheckStatus.PASS, 1.0, "No watchlist is loaded: not screened.")
    if not hits:
        return Check(name, CheckStatus.PASS, 1.0, f"No match on {', '.join(lists)}.")
    strong = hits[0].strong
    more = f"; and {len(hits) - SHOWN} more" if len(hits) > SHOWN else ""
    detail = ("Strong" if strong else "Possible") + " match: " + "; ".join(h.explain() for h in hits[:SHOWN]) + more
    return Check(name, CheckStatus.FAIL if strong else CheckStatus.REVIEW, 0.0 if strong else 0.5, detail)
