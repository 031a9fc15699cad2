"""Small factories for the lending tests: a catalogue product and borrowers set up through the
repositories (fast), then driven over HTTP."""

from __future__ import annotations

from datetime import date
from decimal import Decimal
from typing import Any

from bson import ObjectId

from app.domain.kyc_renewal import Validity, add_years
from app.domain.loan_schedule import RepaymentFrequency
from app.domain.loans import LoanProduct, LoanType
from app.domain.users import KycStatus
from app.services.catalogue import product_of
from tests.conftest import PASSWORD, Api, bearer

D = Decimal
TERMS: dict[str, Any] = dict(
    name="Test Personal Loan", type=LoanType.PERSONAL, min_amount=D(50000), max_amount=D(500000),
    min_tenure_months=6, max_tenure_months=60, annual_interest_rate=D(12), processing_fee_pct=D(2),
    prepayment_charge_pct=D(4), repayment_frequency=RepaymentFrequency.MONTHLY, min_monthly_income=D(25000),
    min_age=21, max_age=60, max_foir=D("0.5"), max_risk_level="Medium",
)


async def make_product(api: Api, **overrides: Any) -> LoanProduct:
    """A bank (made once per app) and a product on it, through the catalogue's repositories."""
    catalogue = api.container.catalogue
    bank = await catalogue.banks.by_code("TST")
    if bank is None:
        bank = await catalogue.banks.add(name="Test Bank", code="TST", active=True, now=api.container.clock.now())
    product = product_of({**TERMS, **overrides, "bank_id": bank.id})
    return await catalogue.products.add(product, api.container.clock.now())


def born_years_ago(years: int, today: date) -> str:
    """A date of birth `years` years before `today` (the 28th at the latest: every month has one)."""
    return date(today.year - years, today.month, min(today.day, 28)).isoformat()


ADDRESS = {"line1": "12 MG Road", "city": "Bengaluru", "state": "Karnataka", "pincode": "560001"}
# Households the profile-risk scorecard puts at each level (with the default job and income):
# one earner alone scores 0 (Low); six with no other earner and three children, on two addresses, High.
HOUSEHOLDS: dict[str, dict[str, Any]] = {
    "Low": {"family_size": 1, "working_members": 1, "children": 0, "current_address": ADDRESS,
            "permanent_address": ADDRESS},
    "High": {"family_size": 6, "working_members": 0, "children": 3, "current_address": ADDRESS,
             "permanent_address": {**ADDRESS, "city": "Mysuru"}},
}
EMPLOYMENT = {"employment_type": "salaried", "employer_name": "Infosys", "designation": "Engineer",
              "years_in_current_job": 5, "total_experience_years": 10}


async def borrower(api: Api, *, kyc: bool = True, dob: str | None = "1990-04-12", income: float | None = 85000.0,
                   existing_emi: float = 5000.0, risk: str | None = "Low") -> dict[str, Any]:
    """A signed-in customer whose stored profile is what eligibility reads; `risk` picks a household
    the scorecard puts at that level (None: no household details, so a loan's details are missing).
    Financial details are stored as the users API stores them (JSON numbers), to prove they are read
    exactly."""
    tokens = await api.customer()
    fields: dict[str, Any] = {"profile": {**({"dob": dob} if dob else {}), **HOUSEHOLDS.get(risk or "", {})},
                              "employment_details": EMPLOYMENT}
    if income is not None:
        fields["financial_details"] = {"monthly_income": income, "monthly_expenses": 20000.0,
                                       "existing_emi": existing_emi, "credit_score": 760}
    # Written straight through the driver, as records saved before Decimal128 look (floats).
    await api.container.db["user"].update_one({"_id": ObjectId(tokens["user_id"])}, {"$set": fields})
    if kyc:
        # Valid past any test's clock: these borrowers are about loans; periodic re-KYC has its own tests.
        until = add_years(api.container.clock.now(), 50)
        await api.container.users_repo.set_kyc_status(tokens["user_id"], KycStatus.APPROVED, api.container.clock.now(),
                                                      validity=Validity(until, until))
    return {**tokens, "headers": bearer(tokens)}


async def relogin(api: Api, who: dict[str, Any]) -> dict[str, Any]:
    """A fresh token after the clock moved past the old one's lifetime."""
    r = await api.client.post("/auth/login", json={"identifier": who["email"], "password": PASSWORD})
    assert r.status_code == 200, r.text
    return {**who, **r.json(), "headers": bearer(r.json())}


def apply_body(product: LoanProduct, **overrides: Any) -> dict[str, Any]:
    return {"product_id": product.id, "amount": 100000, "tenure_months": 12, "purpose": "Home renovation",
            **overrides}


async def accept_kfs(api: Api, loan_id: str, headers: dict[str, str]) -> dict[str, Any]:
    """The borrower accepts the Key Fact Statement shown (a disbursal needs it)."""
    number = (await api.client.get(f"/loans/my-loans/{loan_id}", headers=headers)).json()["kfs"]["number"]
    r = await api.client.post(f"/loans/my-loans/{loan_id}/kfs/accept", headers=headers, json={"kfs_number": number})
    assert r.status_code == 200, r.text
    return dict(r.json())
