"""Customer profile rules: when a profile is complete, and its risk score."""

from __future__ import annotations

from collections.abc import Mapping
from datetime import date
from decimal import Decimal
from typing import Any

PROFILE_REQUIRED = (
    "dob", "gender", "marital_status", "family_size", "working_members", "children",
    "current_address", "permanent_address",
)


def is_profile_complete(profile: dict[str, Any]) -> bool:
    return all(profile.get(name) not in (None, "", {}) for name in PROFILE_REQUIRED)


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
