"""Periodic re-KYC with the clock moved: an approval holds until its document expires (or its risk period
ends), the customer is mailed 30 days ahead (once, however often the daily job runs), then is RE_KYC_DUE:
new loan applications are refused, running loans go on, and the approved case asks for what needs renewing;
renewed and approved, the status is back with a new validity."""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Any

from bson import ObjectId

from app.domain.kyc_renewal import add_years
from app.services.kyc.renewals import RENEWAL_JOB
from tests.conftest import bearer
from tests.console_cases import submitted_case
from tests.integration.events_helpers import run_jobs
from tests.integration.lending_helpers import EMPLOYMENT, HOUSEHOLDS, accept_kfs, apply_body, make_product, relogin
from tests.integration.test_kyc_api import AADHAAR_FRONT, case_detail, upload


def _at(value: str) -> datetime:
    return datetime.fromisoformat(value.replace("Z", "+00:00"))


def _loan_terms(loan: dict[str, Any]) -> dict[str, Any]:
    """The loan but what the daily arrears job keeps (its own revision and figures as the clock moves)."""
    return {k: v for k, v in loan.items() if k not in ("arrears", "rev", "updated_at")}


def mails(api, email: str, subject: str) -> list[Any]:
    return [m for m in api.mailbox.for_address(email) if subject in m["subject"]]


async def _approved_borrower(api) -> dict[str, Any]:
    """A submitted case (High risk: 2 years) whose Aadhaar reads an expiry a year ahead, approved through
    the API; the customer has what a loan needs."""
    case = await submitted_case(api.container)
    expiry = (api.container.clock.now() + timedelta(days=365)).date()
    db = api.container.db
    await db["kyc_doc"].update_one({"_id": ObjectId(case["kyc_id"])},
                                   {"$set": {"documents.0.fields.expiry_date": expiry.isoformat(),
                                             "documents.1.number_masked": "XXXXXX234X"}})  # as PANs are masked
    await db["user"].update_one({"_id": ObjectId(case["user_id"])}, {"$set": {
        "profile": {"dob": "1990-04-12", **HOUSEHOLDS["Low"]}, "employment_details": EMPLOYMENT,
        "financial_details": {"monthly_income": 85000.0, "monthly_expenses": 20000.0, "existing_emi": 0.0}}})
    auditor = bearer(await api.staff("auditor"))
    r = await api.client.put(f"/kyc/{case['kyc_id']}/approve", headers=auditor, json={})
    assert r.status_code == 200, r.text
    return {**case, "expiry": expiry}


async def test_an_approval_expires_is_noticed_once_refuses_new_loans_and_is_renewed(api_factory):
    api = await api_factory(job_workers=0)
    clock, db = api.container.clock, api.container.db
    case = await _approved_borrower(api)
    who = await relogin(api, {"email": case["email"]})
    # Valid to the end of the document's expiry day, sooner than the High risk's 2 years.
    until = datetime.combine(case["expiry"] + timedelta(days=1), datetime.min.time(), clock.now().tzinfo)
    me = (await api.client.get("/users/me", headers=who["headers"])).json()
    assert me["kyc_status"] == "APPROVED" and _at(me["kyc_valid_until"]) == until
    assert _at((await api.client.get("/kyc/me", headers=who["headers"])).json()["valid_until"]) == until
    assert _at((await case_detail(api, case["kyc_id"]))["valid_until"]) == until
    approved = await db["events"].find_one({"type": "kyc.approved", "user_id": case["user_id"]})
    assert _at(approved["data"]["valid_until"]) == until

    # A running loan: applied, approved and disbursed while KYC is valid.
    admin = bearer(await api.staff("admin"))
    r = await api.client.post("/loans/apply", headers=who["headers"], json=apply_body(await make_product(api)))
    assert r.status_code == 201, r.text
    loan_id = r.json()["loan_id"]
    await accept_kfs(api, loan_id, who["headers"])
    for step in ("approve", "disburse"):
        assert (await api.client.post(f"/admin/loans/{loan_id}/{step}", headers=admin)).status_code == 200
    await run_jobs(api.container)
    clock.advance(days=1)
    await run_jobs(api.container)  # a daily run with nothing due: no notice yet
    assert mails(api, case["email"], "runs out soon") == []

    # 30 days ahead: one notice, however often the job runs.
    clock.advance(seconds=(until - timedelta(days=30) - clock.now()).total_seconds() + 60)
    await run_jobs(api.container)
    await api.container.jobs.enqueue(RENEWAL_JOB, f"{RENEWAL_JOB}:again", {})
    assert await run_jobs(api.container) == 1  # the sweep once more: nothing new to send
    [notice] = mails(api, case["email"], "runs out soon")
    assert f"valid until {until:%Y-%m-%d}" in notice.get_body(preferencelist=("plain",)).get_content()
    assert await db["events"].count_documents({"type": "kyc.expiring", "user_id": case["user_id"]}) == 1
    assert (await db["user"].find_one({"_id": ObjectId(case["user_id"])}))["kyc_status"] == "APPROVED"
    loan_before = _loan_terms(await db["loans"].find_one({"_id": ObjectId(loan_id)}))

    # Past the end: RE_KYC_DUE, the approved case asks for the expired Aadhaar again (the period still runs).
    clock.advance(days=31)
    await run_jobs(api.container)
    await run_jobs(api.container)
    who = await relogin(api, who)
    assert (await api.client.get("/users/me", headers=who["headers"])).json()["kyc_status"] == "RE_KYC_DUE"
    mine = (await api.client.get("/kyc/me", headers=who["headers"])).json()
    assert mine["kyc_id"] == case["kyc_id"] and mine["status"] == "RESUBMISSION_REQUESTED"
    assert mine["resubmission"]["items"] == [{"kind": "document", "document_type": "aadhaar", "side": "front"}]
    assert mine["missing"] == ["aadhaar (front)"]
    [due] = mails(api, case["email"], "needs renewing")
    assert "your aadhaar (front)" in due.get_body(preferencelist=("plain",)).get_content()
    expired = [e async for e in db["events"].find({"type": "kyc.expired", "user_id": case["user_id"]})]
    assert len(expired) == 1 and expired[0]["data"]["kyc_id"] == case["kyc_id"]
    assert await db["user_log"].count_documents({"action": "kyc_expired", "user_id": case["user_id"]}) == 1
    r = await api.client.patch("/users/me", headers=who["headers"], json={"name": "Someone Else"})
    assert r.status_code == 409  # the name the renewal is checked against stays held

    # New applications are refused with their own code; the running loan is untouched and still repaid.
    r = await api.client.post("/loans/apply", headers=who["headers"],
                              json=apply_body(await make_product(api, name="Second Loan")))
    assert r.status_code == 403 and r.json()["error_code"] == "re_kyc_due", r.text
    assert await db["loans"].count_documents({"user_id": case["user_id"]}) == 1
    assert _loan_terms(await db["loans"].find_one({"_id": ObjectId(loan_id)})) == loan_before
    r = await api.client.post(f"/loans/my-loans/{loan_id}/repayments", headers=who["headers"], json={"amount": 100})
    assert r.status_code == 201, r.text

    # Renewed in the same case and approved: APPROVED again, valid for the new risk level's period.
    r = await upload(api, who, "aadhaar", AADHAAR_FRONT, side="front")
    assert r.status_code == 201 and r.json()["kyc_id"] == case["kyc_id"], r.text
    r = await api.client.post("/kyc/submit", headers=who["headers"])
    assert r.status_code == 202, r.text
    await run_jobs(api.container)
    auditor = bearer(await api.staff("auditor"))  # the first one's token ran out with the clock
    r = await api.client.put(f"/kyc/{case['kyc_id']}/approve", headers=auditor, json={})
    assert r.status_code == 200 and r.json()["status"] == "APPROVED", r.text
    detail = await case_detail(api, case["kyc_id"])
    years = {"High": 2, "Medium": 8, "Low": 10}[detail["risk_level"]]
    renewed = add_years(_at(detail["decided_at"]), years)  # the new Aadhaar shows no expiry: the period
    me = (await api.client.get("/users/me", headers=who["headers"])).json()
    assert me["kyc_status"] == "APPROVED" and _at(me["kyc_valid_until"]) == renewed == _at(detail["valid_until"])
    [renewal] = detail["rounds"]
    assert renewal["requested_by"] == "system" and renewal["replaced"] == ["aadhaar (front)"]
    r = await api.client.post("/loans/apply", headers=who["headers"],
                              json=apply_body(await make_product(api, name="Third Loan")))
    assert r.status_code == 201, r.text


async def test_a_missed_day_is_caught_up_and_a_lapsed_period_asks_for_a_live_selfie(api_factory):
    """The job did not run for the whole notice window: the next run marks the customer due at once
    (no notice of an end already past), and the period's end asks for a selfie with liveness."""
    api = await api_factory(job_workers=0)
    case = await submitted_case(api.container)
    r = await api.client.put(f"/kyc/{case['kyc_id']}/approve", headers=bearer(await api.staff("auditor")), json={})
    assert r.status_code == 200
    await run_jobs(api.container)
    api.container.clock.advance(days=3 * 366)
    await run_jobs(api.container)
    user = await api.container.db["user"].find_one({"_id": ObjectId(case["user_id"])})
    assert user["kyc_status"] == "RE_KYC_DUE"
    stored = await api.container.db["kyc_doc"].find_one({"_id": ObjectId(case["kyc_id"])})
    assert stored["status"] == "RESUBMISSION_REQUESTED"
    assert stored["rounds"][-1]["items"] == [{"kind": "liveness", "document_type": None, "side": None}]
    assert mails(api, case["email"], "runs out soon") == []
    assert len(mails(api, case["email"], "needs renewing")) == 1


async def test_an_auditor_may_send_a_renewal_back_however_many_rounds_came_before(api_factory):
    """KYC_MAX_RESUBMISSIONS caps the rounds auditors ask since the last renewal, not the case's whole history."""
    api = await api_factory(job_workers=0, kyc_max_resubmissions=1)
    case = await submitted_case(api.container)
    kyc_id, db = case["kyc_id"], api.container.db
    body = {"items": ["selfie"], "customer_message": "Take the selfie again in daylight."}

    async def resubmitted() -> None:  # as if the customer had sent what was asked and the checks had run again
        await db["kyc_doc"].update_one({"_id": ObjectId(kyc_id)}, {"$set": {"status": "SUBMITTED",
                                                                            "checks_state": "DONE"}})

    auditor = bearer(await api.staff("auditor"))
    assert (await api.client.put(f"/kyc/{kyc_id}/request-resubmission", headers=auditor, json=body)).status_code == 200
    await resubmitted()
    assert (await api.client.put(f"/kyc/{kyc_id}/approve", headers=auditor, json={})).status_code == 200
    api.container.clock.advance(days=3 * 366)
    await run_jobs(api.container)
    await resubmitted()
    auditor = bearer(await api.staff("auditor"))
    r = await api.client.put(f"/kyc/{kyc_id}/request-resubmission", headers=auditor, json=body)
    assert r.status_code == 200, r.text
    await resubmitted()
    r = await api.client.put(f"/kyc/{kyc_id}/request-resubmission", headers=auditor, json=body)
    assert r.status_code == 409 and r.json()["error_code"] == "resubmission_limit_reached"
    assert [r["requested_by"] == "system" for r in (await db["kyc_doc"].find_one({"_id": ObjectId(kyc_id)}))["rounds"]] == [
        False, True, False]
