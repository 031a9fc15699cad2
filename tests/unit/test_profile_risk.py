"""Profile risk with financial and employment factors: every factor named, each band at its edge."""

from __future__ import annotations

from datetime import date

import pytest

from app.domain.profile import employment_factors, financial_factors, profile_risk_score

TODAY = date(2026, 11, 22)
ADDRESS = {"line1": "12 MG Road", "city": "Bengaluru", "state": "Karnataka", "pincode": "560001"}
PROFILE = {"dob": "1990-04-12", "gender": "female", "marital_status": "married", "family_size": 4,
           "working_members": 2, "children": 1, "current_address": ADDRESS, "permanent_address": ADDRESS}


def test_without_details_the_household_scorecard_is_unchanged():
    score, level, factors = profile_risk_score(PROFILE, TODAY)
    assert factors == {"age": 0, "dependants": 16, "no_earner": 0, "children": 4, "address_mismatch": 0}
    assert (score, level) == (20, "Low")


def test_details_add_their_factors_and_can_change_the_level():
    financial = {"monthly_income": 30000.0, "monthly_expenses": 20000.0, "existing_emi": 15000.0, "credit_score": 640}
    employment = {"employment_type": "business", "employer_name": "Own", "designation": "Owner",
                  "years_in_current_job": 0.5, "total_experience_years": 1.5}
    score, level, factors = profile_risk_score(PROFILE, TODAY, financial, employment)
    # 7,500 per member (12), FOIR 0.5 (10), score 640 (20), business (8), < 1 year and < 2 years' career (15)
    assert factors["income_per_member"] == 12 and factors["foir"] == 10 and factors["credit_score"] == 20
    assert factors["employment_type"] == 8 and factors["employment_stability"] == 15
    assert score == 20 + 12 + 10 + 20 + 8 + 15 and level == "High"


@pytest.mark.parametrize(("income", "members", "points"), [
    (19999.99, 1, 5), (20000, 1, 0), (40000, 4, 5), (39999.99, 4, 12), (39999.99, 8, 20), (0, 3, 20),
])
def test_income_per_member_bands(income, members, points):
    assert financial_factors({"monthly_income": income, "existing_emi": 0}, members)["income_per_member"] == points


@pytest.mark.parametrize(("emi", "points"), [(0, 0), (20000, 0), (20000.01, 4), (40000, 4), (40001, 10),
                                             (60000, 10), (60000.01, 20)])
def test_foir_bands_are_exact_at_their_edges(emi, points):
    # Floats as stored by the users API: 0.1 + 0.2 errors would move an edge if read through float.
    assert financial_factors({"monthly_income": 100000.0, "existing_emi": emi}, 1)["foir"] == points


def test_no_income_with_obligations_is_the_riskiest_foir_and_a_missing_score_is_no_factor():
    factors = financial_factors({"monthly_income": 0, "existing_emi": 5000}, 2)
    assert factors["foir"] == 25 and "credit_score" not in factors


@pytest.mark.parametrize(("score", "points"), [(900, 0), (750, 0), (749, 5), (700, 5), (699, 12), (650, 12),
                                               (649, 20), (600, 20), (599, 30), (300, 30)])
def test_credit_score_bands(score, points):
    assert financial_factors({"monthly_income": 50000, "existing_emi": 0, "credit_score": score}, 1)[
        "credit_score"] == points


@pytest.mark.parametrize(("kind", "years", "career", "type_points", "stability"), [
    ("salaried", 5, 10, 0, 0), ("salaried", 2.9, 10, 0, 5), ("self_employed", 0.9, 10, 6, 10),
    ("business", 3, 3, 8, 0), ("salaried", 1, 1.9, 0, 10),
])
def test_employment_type_and_stability(kind, years, career, type_points, stability):
    factors = employment_factors({"employment_type": kind, "years_in_current_job": years,
                                  "total_experience_years": career})
    assert factors == {"employment_type": type_points, "employment_stability": stability}
