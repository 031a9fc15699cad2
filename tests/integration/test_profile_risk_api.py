"""The profile risk assessment reads financial and employment details too, and runs again when they change."""

from __future__ import annotations

from tests.conftest import bearer, eventually

ADDRESS = {"line1": "12 MG Road", "city": "Bengaluru", "state": "Karnataka", "pincode": "560001"}
PROFILE = {"dob": "1990-04-12", "gender": "female", "marital_status": "married", "family_size": 4,
           "working_members": 2, "children": 1, "current_address": ADDRESS, "permanent_address": ADDRESS}


async def _assessed(api, tokens, after=None):
    async def done():
        me = (await api.client.get("/users/me", headers=bearer(tokens))).json()
        risk = me["profile_risk"]
        return risk if risk and risk["status"] == "DONE" and risk != after else None

    risk = await eventually(done)
    assert risk, "the assessment did not finish"
    return risk


async def test_details_are_scored_and_a_change_reassesses(api, email):
    tokens = await api.customer(email)
    # Details before the profile is complete: stored, nothing to assess yet.
    r = await api.client.put("/users/me/financial-details", headers=bearer(tokens), json={
        "monthly_income": 30000, "monthly_expenses": 15000, "existing_emi": 15000, "credit_score": 640})
    assert r.status_code == 200
    assert (await api.client.get("/users/me", headers=bearer(tokens))).json()["profile_risk"] is None

    assert (await api.client.patch("/users/me", headers=bearer(tokens), json=PROFILE)).status_code == 200
    first = await _assessed(api, tokens)
    assert first["factors"]["income_per_member"] == 12 and first["factors"]["foir"] == 10
    assert first["factors"]["credit_score"] == 20 and "employment_type" not in first["factors"]
    assert first["score"] == 20 + 12 + 10 + 20 and first["level"] == "Medium"

    r = await api.client.put("/users/me/employment-details", headers=bearer(tokens), json={
        "employment_type": "business", "employer_name": "Own shop", "designation": "Owner",
        "years_in_current_job": 0.5, "total_experience_years": 1})
    assert r.status_code == 200
    second = await _assessed(api, tokens, after=first)
    assert second["factors"]["employment_type"] == 8 and second["factors"]["employment_stability"] == 15
    assert second["score"] == first["score"] + 23 and second["level"] == "High"

    # A better income and score lower it again.
    r = await api.client.put("/users/me/financial-details", headers=bearer(tokens), json={
        "monthly_income": 200000, "monthly_expenses": 50000, "existing_emi": 0, "credit_score": 790})
    third = await _assessed(api, tokens, after=second)
    assert {k: third["factors"][k] for k in ("income_per_member", "foir", "credit_score")} == {
        "income_per_member": 0, "foir": 0, "credit_score": 0}
    assert third["score"] == 20 + 23 and third["level"] == "Medium"
    jobs = await api.container.db["jobs"].count_documents({"kind": "profile_risk", "payload.user_id": tokens["user_id"]})
    assert jobs == 3


async def test_eligibility_answers_at_once_on_the_details_saved_and_names_what_is_missing(api):
    """No waiting for the assessment job: the risk is derived from the details present when
    eligibility needs it, and the details loans need but are missing are named (marital status and
    gender are not among them: the risk does not read them)."""
    from app.domain.users import KycStatus
    from tests.integration.lending_helpers import make_product

    product = await make_product(api)
    tokens = await api.customer()
    assert (await api.client.patch("/users/me", headers=bearer(tokens), json={"dob": "1990-04-12"})).status_code == 200
    await api.container.users_repo.set_kyc_status(tokens["user_id"], KycStatus.APPROVED, api.container.clock.now())

    async def eligibility():
        r = await api.client.post("/eligibility/check", headers=bearer(tokens),
                                  json={"product_id": product.id, "amount": 100000, "tenure_months": 12})
        assert r.status_code == 200, r.text
        return r.json()

    def missing(body):
        found = [x for x in body["reasons"] if x["code"] == "details_missing"]
        return found[0]["fields"] if found else []

    household = ["family_size", "working_members", "children", "current_address", "permanent_address"]
    first = await eligibility()
    assert not first["eligible"] and missing(first) == [*household, "financial_details", "employment_details"]
    assert "risk_not_assessed" not in [x["code"] for x in first["reasons"]]

    assert (await api.client.put("/users/me/financial-details", headers=bearer(tokens), json={
        "monthly_income": 85000, "monthly_expenses": 20000, "existing_emi": 5000, "credit_score": 760})).status_code == 200
    assert (await api.client.put("/users/me/employment-details", headers=bearer(tokens), json={
        "employment_type": "salaried", "employer_name": "Infosys", "designation": "Engineer",
        "years_in_current_job": 3, "total_experience_years": 7.5})).status_code == 200
    second = await eligibility()
    assert [x["code"] for x in second["reasons"]] == ["details_missing"] and missing(second) == household
    assert all(name in second["reasons"][0]["message"] for name in household)

    r = await api.client.patch("/users/me", headers=bearer(tokens), json={k: v for k, v in PROFILE.items()
                                                                         if k not in ("gender", "marital_status")})
    assert r.status_code == 200 and r.json()["profile_risk"] is None  # no job was even queued
    third = await eligibility()
    assert third["eligible"] and third["reasons"] == [], third
    apply = await api.client.post("/loans/apply", headers=bearer(tokens), json={
        "product_id": product.id, "amount": 100000, "tenure_months": 12, "purpose": "Home renovation"})
    assert apply.status_code == 201, apply.text

    # A riskier household answers on the spot too: 6 people, no other earner, 3 children is High.
    r = await api.client.patch("/users/me", headers=bearer(tokens), json={"family_size": 6, "working_members": 0,
                                                                         "children": 3})
    assert r.status_code == 200
    fourth = await eligibility()
    assert [x["code"] for x in fourth["reasons"]] == ["risk_too_high"]
