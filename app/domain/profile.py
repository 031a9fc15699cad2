"""Customer profile rules: when a profile is complete, and its risk score."""

from __future__ import annotations

from datetime import date
from typing import Any

PROFILE_REQUIRED = (
    "dob", "gender", "marital_status", "family_size", "working_members", "children",
    "current_address", "permanent_address",
)


def is_profile_complete(profile: dict[str, Any]) -> bool:
    return all(profile.get(name) not in (None, "", {}) for name in PROFILE_REQUIRED)


def _age(dob: date, today: date) -> int:
    return today.year - dob.year - ((today.month, today.day) < (dob.month, dob.day))


def profile_risk_score(profile: dict[str, Any], today: date) -> tuple[int, str, dict[str, int]]:
    """Score 0-100 (higher is riskier) from household and stability signals.

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
    score = min(sum(factors.values()), 100)
    level = "Low" if score < 35 else "Medium" if score < 65 else "High"
    return score, level, factors


def _address_key(address: dict[str, Any]) -> tuple[str, ...]:
    return tuple(str(address.get(k, "")).strip().lower() for k in ("line1", "city", "state", "pincode"))
