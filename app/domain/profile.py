"""Customer profile rules: when a profile is complete, its risk score, the details loans need,
and the identity a KYC case verified."""

from __future__ import annotations

from collections.abc import Mapping
from datetime import date
from decimal import Decimal
from typing import Any

from app.domain.errors import Conflict

PROFILE_REQUIRED = (
    "dob", "gender", "marital_status", "family_size", "working_members", "children",
    "current_address", "permanent_address",
)
# What the risk scorecard reads, so what a loan needs: marital status and gender are not among them.
# Financial and employment details are named as the whole body each is saved with.
RISK_PROFILE_FIELDS = ("dob", "family_size", "working_members", "children", "current_address", "permanent_address")
LOAN_DETAILS = (*RISK_PROFILE_FIELDS, "financial_details", "employment_details")
# Name and date of birth: what a KYC case compares with the documents.
IDENTITY_FIELDS = ("name", "dob")


class IdentityVerified(Conflict):
    """Your name and date of birth were verified by KYC and cannot change."""

    code = "identity_verified"


class IdentityUnderReview(Conflict):
    """Your KYC case is under review: your name and date of birth cannot change until it is decided."""

    code = "identity_under_review"


def _given(value: object) -> bool:
    return value not in (None, "", {})


def is_profile_complete(profile: dict[str, Any]) -> bool:
    return all(_given(profile.get(name)) for name in PROFILE_REQUIRED)


def missing_for_loans(profile: Mapping[str, Any], financial: Mapping[str, object] | None,
                      employment: Mapping[str, object] | None) -> tuple[str, ...]:
    """The details a loan needs (`LOAN_DETAILS`) that are not given, in that order."""
    given = {**{name: _given(profile.get(name)) for name in RISK_PROFILE_FIELDS},
             "financial_details": bool(financial), "employment_details": bool(employment)}
    return tuple(name for name in LOAN_DETAILS if not given[name])


def loan_risk_level(profile: Mapping[str, Any], today: date, financial: Mapping[str, object] | None,
                    employment: Mapping[str, object] | None) -> str | None:
    """The profile-risk level from the details present, or None while some a loan needs are missing.
    The same scorecard as the stored assessment, computed on the spot: it is cheap and deterministic."""
    if missing_for_loans(profile, financial, employment):
        return None
    return profile_risk_score(dict(profile), today, financial, employment)[1]


def identity_changes(verified: Mapping[str, Any], changes: Mapping[str, Any]) -> list[str]:
    """The identity fields that `changes` would move away from `verified` (sending the same value is
    no change), in `IDENTITY_FIELDS` order."""
    return [name for name in IDENTITY_FIELDS if name in changes and changes[name] != verified.get(name)]


def identity_held(changed: list[str], *, approved: bool) -> Conflict:
    """The refusal naming `changed`: verified by an approved case, or held while one is reviewed."""
    error = IdentityVerified if approved else IdentityUnderReview
    message = "Verified by KYC: it cannot change." if approved else "Held while your KYC case is reviewed."
    return error(errors=[{"field": name, "message": message} for name in changed])


def ensure_identity_unchanged(verified: Mapping[str, Any], changes: Mapping[str, Any], *, approved: bool) -> None:
    """Refuses a change of a name or date of birth that a KYC case verified (`approved`) or is
    reviewing: the checks compared those values, and an approval pins them."""
    changed = identity_changes(verified, changes)
    if changed:
        raise identity_held(changed, approved=approved)


def _age(dob: date, today: date) -> int:
    return today.year - dob.year - ((today.month, today.day) < (dob.month, dob.day))


def profile_risk_score(profile: dict[str, Any], today: date, financial: Mapping[str, object] | None = None,
                       employment: Mapping[str, object] | None = None) -> tuple[int, str, dict[str, int]]:
    """Score 0-100 (higher is riskier) from household and stability signals, and from the
    financial and employment details once the customer has given them.

    A simple, explainable scorecard: each factor adds points and is returned so a
    reviewer can see why. Levels: < 35 Low, < 65 Medium, else High.
    """
    factors: dict[str, int] = {}
    dob = profile["dob"]
    dob = date.fromisoformat(dob) if isinstance(dob, str) else dob
    age = _age(dob, today)
    factors["age"] = 20 if age < 21 else 10 if age < 25 else 15 if age > 60 else 0
    family, working = int(profile["family_size"]), int(profile["working_members"])
    dependants = max(family - working, 0)
    factors["dependants"] = min(dependants * 8, 32)
    factors["no_earner"] = 25 if working == 0 else 0
    factors["children"] = min(int(profile["children"]) * 4, 12)
    same_address = _address_key(profile["current_address"]) == _address_key(profile["permanent_address"])
    factors["address_mismatch"] = 0 if same_address else 10
    if financial:
        factors.update(financial_factors(financial, family))
    if employment:
        factors.update(employment_factors(employment))
    score = min(sum(factors.values()), 100)
    level = "Low" if score < 35 else "Medium" if score < 65 else "High"
    return score, level, factors


def _address_key(address: dict[str, Any]) -> tuple[str, ...]:
    return tuple(str(address.get(k, "")).strip().lower() for k in ("line1", "city", "state", "pincode"))


def _amount(value: object) -> Decimal:
    # Details arrive as JSON numbers: read as written in decimal, never through binary float.
    return value if isinstance(value, Decimal) else Decimal(str(value))


def financial_factors(financial: Mapping[str, object], family_size: int) -> dict[str, int]:
    """Income per household member (monthly), FOIR (EMIs already paid over income) and, when
    given, the credit score (CIBIL-style, 300-900)."""
    income = _amount(financial.get("monthly_income") or 0)
    emis = _amount(financial.get("existing_emi") or 0)
    factors: dict[str, int] = {}
    per_member = income / max(family_size, 1)
    factors["income_per_member"] = 20 if per_member < 5000 else 12 if per_member < 10000 else \
        5 if per_member < 20000 else 0
    if income <= 0:
        factors["foir"] = 25  # obligations with no income to carry them
    else:
        foir = emis / income
        factors["foir"] = 20 if foir > Decimal("0.6") else 10 if foir > Decimal("0.4") else \
            4 if foir > Decimal("0.2") else 0
    score = financial.get("credit_score")
    if isinstance(score, int):
        factors["credit_score"] = 0 if score >= 750 else 5 if score >= 700 else 12 if score >= 650 else \
            20 if score >= 600 else 30
    return factors


def employment_factors(employment: Mapping[str, object]) -> dict[str, int]:
    """Employment type (salaried is the steadiest income) and stability (years in the current job,
    and a short career overall)."""
    kind = employment.get("employment_type")
    years = float(str(employment.get("years_in_current_job") or 0))
    career = float(str(employment.get("total_experience_years") or 0))
    return {
        "employment_type": {"salaried": 0, "self_employed": 6, "business": 8}.get(str(kind), 8),
        "employment_stability": (10 if years < 1 else 5 if years < 3 else 0) + (5 if career < 2 else 0),
    }
