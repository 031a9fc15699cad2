"""The console's admin pages over HTTP: the dashboard, users (find, view, suspend, reactivate), staff
creation, the loan book (approve, reject, disburse, confirm a pre-closure), failed jobs (retry) and
webhook deliveries (redeliver). Each action changes what its API route changes; every form needs
the session's CSRF token; an auditor is refused; a refusal is a sentence, never JSON."""

from __future__ import annotations

import uuid
from typing import Any

import pytest
from bson import ObjectId

from app.domain.audit import ClientInfo
from app.domain.pages import PageRequest
from tests.conftest import PASSWORD, bearer
from tests.integration.events_helpers import Receiver, run_jobs
from tests.integration.lending_helpers import accept_kfs, apply_body, borrower, make_product
from tests.integration.test_console import Console
from tests.integration.test_jobs_api import failed_job

ADMIN_PAGES = ["/console/admin/users", "/console/admin/loans", "/console/admin/jobs", "/console/admin/webhooks"]


@pytest.fixture
async def capi(api_factory: Any) -> Any:
    return await api_factory(job_workers=0)


async def signed_in(api: Any, role: str = "admin") -> tuple[Console, Any, str]:
    """A console signed in as a new staff member of `role`, the user, and a form token of the session."""
    console = Console(api)
    user = await console.staff(role, name=f"{role.capitalize()} Kumar")
    return console, user, await console.token("/console/kyc")


def words_only(page: str) -> None:
    assert '{"' not in page and "error_code" not in page  # the API's envelope never reaches a page


async def user_doc(api: Any, user_id: str) -> dict[str, Any]:
    return await api.container.db["user"].find_one({"_id": ObjectId(user_id)})


async def loan_doc(api: Any, loan_id: str) -> dict[str, Any]:
    return await api.container.db["loans"].find_one({"_id": ObjectId(loan_id)})


async def test_an_auditor_is_refused_the_admin_pages_and_actions_but_not_the_dashboard(capi):
    console, auditor, token = await signed_in(capi, "auditor")
    queue = await console.get("/console/kyc")
    assert 'href="/console/admin"' in queue.text and 'href="/console/admin/users"' not in queue.text
    for path in ADMIN_PAGES:
        r = await console.get(path)
        assert r.status_code == 403 and "Your role may not do this" in r.text, path
    job = await failed_job(capi)
    customer = await capi.customer()
    for path, data in ((f"/console/admin/jobs/{job.id}/retry", {}),
                       (f"/console/admin/users/{customer['user_id']}/status", {"status": "suspended"}),
                       ("/console/admin/staff", {"email": "new@example.com", "name": "New One", "password": PASSWORD,
                                                 "role": "admin"})):
        r = await console.post(path, {**data, "csrf_token": token})
        assert r.status_code == 403 and "Your role may not do this" in r.text, path
    assert (await capi.container.db["jobs"].find_one({"_id": ObjectId(job.id)}))["status"] == "failed"
    assert (await user_doc(capi, customer["user_id"]))["status"] == "active"
    assert await capi.container.db["user"].count_documents({"email": "new@example.com"}) == 0
    dashboard = await console.get("/console/admin")  # `stats:read`, which auditors hold in the API too
    assert dashboard.status_code == 200 and 'id="trend"' in dashboard.text
    signed_out = Console(capi)
    r = await signed_out.get("/console/admin/users")
    assert r.status_code == 303 and r.headers["location"].startswith("/console/login")


async def test_an_admin_finds_views_suspends_and_reactivates_a_user(capi):
    console, admin, token = await signed_in(capi)
    customer = await capi.customer()
    email = customer["email"]
    assert 'href="/console/admin/users"' in (await console.get("/console/kyc")).text
    found = await console.get("/console/admin/users", params={"q": email.upper()[:12]})
    assert found.status_code == 200 and f'data-user-id="{customer["user_id"]}"' in found.text
    none = await console.get("/console/admin/users", params={"q": "nobody-like-this"})
    assert "No user matches" in none.text and "data-user-id" not in none.text
    page = await console.get(f"/console/admin/users/{customer['user_id']}")
    assert page.status_code == 200 and email in page.text and 'id="suspend"' in page.text

    # Without the session's token nothing changes.
    r = await console.post(f"/console/admin/users/{customer['user_id']}/status", {"status": "suspended"})
    assert r.status_code == 403 and "did not come from this console" in r.text
    assert (await user_doc(capi, customer["user_id"]))["status"] == "active"

    r = await console.post(f"/console/admin/users/{customer['user_id']}/status",
                           {"status": "suspended", "csrf_token": token})
    assert r.status_code == 303 and r.headers["location"].endswith("?done=suspended")
    stored = await user_doc(capi, customer["user_id"])
    assert stored["status"] == "suspended"
    assert (await capi.client.get("/users/me", headers=bearer(customer))).status_code in (401, 403)
    page = await console.get(r.headers["location"])
    assert "The account is suspended" in page.text and 'id="reactivate"' in page.text
    r = await console.post(f"/console/admin/users/{customer['user_id']}/status", {"status": "active", "csrf_token": token})
    assert r.status_code == 303 and (await user_doc(capi, customer["user_id"]))["status"] == "active"
    assert await capi.container.db["user_log"].count_documents({"action": "status_change"}) == 2

    # Refusals in words: your own account, an unknown status, an unknown user.
    mine = await console.get(f"/console/admin/users/{admin.id}")
    assert 'id="status-form"' not in mine.text
    r = await console.post(f"/console/admin/users/{admin.id}/status", {"status": "suspended", "csrf_token": token})
    assert r.status_code == 409 and "You cannot change your own status." in r.text
    words_only(r.text)
    r = await console.post(f"/console/admin/users/{customer['user_id']}/status",
                           {"status": "pending_verification", "csrf_token": token})
    assert r.status_code == 400 and "Choose suspend or reactivate." in r.text
    r = await console.get("/console/admin/users/6741f0c2a1b2c3d4e5f60719")
    assert r.status_code == 404 and "User not found." in r.text


async def test_an_admin_creates_staff_with_the_api_s_rules(capi):
    console, admin, token = await signed_in(capi)
    email = f"neha{uuid.uuid4().hex[:6]}@example.com"
    form = {"email": email, "name": "Neha Auditor", "password": "a-long-staff-passphrase", "role": "auditor"}
    r = await console.post("/console/admin/staff", form)
    assert r.status_code == 403 and await capi.container.db["user"].count_documents({"email": email}) == 0
    r = await console.post("/console/admin/staff", {**form, "csrf_token": token})
    assert r.status_code == 303
    stored = await capi.container.db["user"].find_one({"email": email})
    assert stored["role"] == "auditor" and stored["status"] == "active" and stored["name"] == "Neha Auditor"
    listed = await console.get(r.headers["location"])
    assert "The staff account is created" in listed.text and f'data-user-id="{stored["_id"]}"' in listed.text
    assert await capi.container.db["user_log"].count_documents({"action": "staff_created", "actor_id": admin.id}) == 1

    again = await console.post("/console/admin/staff", {**form, "csrf_token": token})
    assert again.status_code == 409 and "already" in again.text.lower()
    words_only(again.text)
    for bad, words in (({"password": "short"}, "password"), ({"role": "customer"}, "The role"),
                       ({"email": "not-an-email"}, "valid email"), ({"name": ""}, "The name")):
        r = await console.post("/console/admin/staff", {**form, "email": f"x{uuid.uuid4().hex[:6]}@example.com",
                                                        **bad, "csrf_token": token})
        assert r.status_code in (400, 422) and words.lower() in r.text.lower(), (bad, r.text[-600:])
        words_only(r.text)
    assert await capi.container.db["user"].count_documents({"role": {"$in": ["auditor", "admin"]}}) == 2


async def test_an_admin_approves_rejects_disburses_and_confirms_a_pre_closure(capi):
    product = await make_product(capi)
    other = await make_product(capi, name="Second Personal Loan")
    first, second = await borrower(capi), await borrower(capi)
    ids = []
    for who, p in ((first, product), (second, product), (first, other)):
        r = await capi.client.post("/loans/apply", json=apply_body(p), headers=who["headers"])
        assert r.status_code == 201, r.text
        ids.append(r.json()["loan_id"])
    to_pay, to_reject, third = ids
    console, admin, token = await signed_in(capi)

    listed = await console.get("/console/admin/loans")
    assert listed.status_code == 200 and all(f'data-loan-id="{i}"' in listed.text for i in ids)
    assert "₹1,00,000.00" in listed.text and 'id="reason-' in listed.text

    r = await console.post(f"/console/admin/loans/{to_pay}/approve", {"status": "APPLIED"})
    assert r.status_code == 403 and (await loan_doc(capi, to_pay))["status"] == "APPLIED"
    r = await console.post(f"/console/admin/loans/{to_pay}/approve", {"status": "APPLIED", "csrf_token": token})
    assert r.status_code == 303 and r.headers["location"] == "/console/admin/loans?status=APPLIED&done=approved"
    assert (await loan_doc(capi, to_pay))["status"] == "APPROVED"
    assert "The loan is approved" in (await console.get(r.headers["location"])).text
    r = await console.post(f"/console/admin/loans/{to_pay}/approve", {"csrf_token": token})
    assert r.status_code == 409 and "APPROVED" in r.text  # the domain's sentence for a wrong transition
    words_only(r.text)

    r = await console.post(f"/console/admin/loans/{to_reject}/reject", {"reason": "no", "csrf_token": token})
    assert r.status_code == 400 and "The reason is too short" in r.text
    assert (await loan_doc(capi, to_reject))["status"] == "APPLIED"
    r = await console.post(f"/console/admin/loans/{to_reject}/reject",
                           {"reason": "Income could not be verified", "csrf_token": token})
    assert r.status_code == 303
    stored = await loan_doc(capi, to_reject)
    assert stored["status"] == "REJECTED" and stored["rejection_reason"] == "Income could not be verified"

    approved = await console.get("/console/admin/loans", params={"status": "APPROVED"})
    assert f'id="payout-{to_pay}"' in approved.text and "KFS not accepted yet: no disbursal" in approved.text
    r = await console.post(f"/console/admin/loans/{to_pay}/disburse", {"payout_reference": "UTR 12!", "csrf_token": token})
    assert r.status_code == 400 and "The payout reference" in r.text
    assert (await loan_doc(capi, to_pay))["status"] == "APPROVED"
    r = await console.post(f"/console/admin/loans/{to_pay}/disburse", {"csrf_token": token})
    assert r.status_code == 409 and "has not accepted the Key Fact Statement" in r.text  # the borrower must first
    assert (await loan_doc(capi, to_pay))["status"] == "APPROVED"
    accepted = await accept_kfs(capi, to_pay, first["headers"])
    approved = await console.get("/console/admin/loans", params={"status": "APPROVED"})
    assert f"{accepted['kfs']['number']} accepted" in approved.text and "KFS not accepted yet" not in approved.text
    r = await console.post(f"/console/admin/loans/{to_pay}/disburse",
                           {"payout_reference": "UTR20261122000123", "status": "APPROVED", "csrf_token": token})
    assert r.status_code == 303 and r.headers["location"].endswith("done=disbursed")
    stored = await loan_doc(capi, to_pay)
    assert stored["status"] == "DISBURSED" and stored["payout_reference"] == "UTR20261122000123"
    r = await console.post(f"/console/admin/loans/{third}/disburse", {"csrf_token": token})
    assert r.status_code == 409 and (await loan_doc(capi, third))["status"] == "APPLIED"

    r = await capi.client.post(f"/loans/my-loans/{to_pay}/pre-close", headers=first["headers"])
    assert r.status_code == 200, r.text
    waiting = await console.get("/console/admin/loans", params={"status": "", "loan_class": "CURRENT"})
    assert f'action="/console/admin/loans/{to_pay}/confirm"' in waiting.text
    assert 'name="loan_class" value="CURRENT"' in waiting.text
    r = await console.post(f"/console/admin/loans/{to_pay}/confirm",
                           {"csrf_token": token, "status": "", "loan_class": "CURRENT"})
    assert r.status_code == 303 and (await loan_doc(capi, to_pay))["status"] == "CLOSED"
    assert r.headers["location"] == "/console/admin/loans?status=&loan_class=CURRENT&done=closed"  # where it was
    r = await console.post(f"/console/admin/loans/{to_pay}/explode", {"csrf_token": token})
    assert r.status_code == 404 and "no such loan action" in r.text
    r = await console.get("/console/admin/loans", params={"status": "LOST"})
    assert r.status_code == 400 and "not one the loan book has" in r.text

    dashboard = await console.get("/console/admin")
    assert dashboard.status_code == 200
    assert "₹1,00,000.00" in dashboard.text and 'class="bar-applications"' in dashboard.text
    assert f"{capi.container.loans.today().isoformat()}: 3 applications, 1 disbursals." in dashboard.text
    assert "Test Personal Loan" in dashboard.text and "Second Personal Loan" in dashboard.text
    assert "<script" not in dashboard.text and "style=" not in dashboard.text


async def test_an_admin_retries_a_failed_job(capi):
    job = await failed_job(capi)
    console, admin, token = await signed_in(capi)
    page = await console.get("/console/admin/jobs")
    assert page.status_code == 200 and f'data-job-id="{job.id}"' in page.text
    assert "RuntimeError: upstream down" in page.text
    r = await console.post(f"/console/admin/jobs/{job.id}/retry", {})
    assert r.status_code == 403
    assert (await capi.container.db["jobs"].find_one({"_id": ObjectId(job.id)}))["status"] == "failed"
    r = await console.post(f"/console/admin/jobs/{job.id}/retry", {"csrf_token": token})
    assert r.status_code == 303 and r.headers["location"] == "/console/admin/jobs?done=retried"
    stored = await capi.container.db["jobs"].find_one({"_id": ObjectId(job.id)})
    assert stored["status"] == "queued" and stored["attempts"] == 0
    after = await console.get(r.headers["location"])
    assert "queued again" in after.text and f'data-job-id="{job.id}"' not in after.text
    r = await console.post(f"/console/admin/jobs/{job.id}/retry", {"csrf_token": token})
    assert r.status_code == 409 and "only a failed job can be retried" in r.text
    words_only(r.text)
    assert (await console.get("/console/admin/jobs", params={"status": "stuck"})).status_code == 400


async def test_an_admin_sees_webhook_deliveries_and_redelivers_one(capi):
    receiver = await Receiver().start()
    try:
        c = capi.container
        console, admin, token = await signed_in(capi)
        endpoint, _ = await c.webhooks.create(admin, url=receiver.url, events=["loan.applied"],
                                              description="Lender", client=ClientInfo(None, None))
        product, who = await make_product(capi), await borrower(capi)  # an application publishes loan.applied
        assert (await capi.client.post("/loans/apply", json=apply_body(product), headers=who["headers"])).status_code == 201
        await run_jobs(c)
        assert len(receiver.requests) == 1
        listed = await console.get("/console/admin/webhooks")
        assert listed.status_code == 200 and receiver.url in listed.text
        page = await console.get(f"/console/admin/webhooks/{endpoint.id}")
        [attempt] = (await c.webhooks.list_attempts(endpoint.id, page=PageRequest(1, 20))).items
        assert f'data-attempt-id="{attempt.id}"' in page.text and "loan.applied" in page.text
        action = f"/console/admin/webhooks/{endpoint.id}/attempts/{attempt.id}/redeliver"
        assert (await console.post(action, {})).status_code == 403
        r = await console.post(action, {"csrf_token": token})
        assert r.status_code == 303 and r.headers["location"].endswith("?done=redelivered")
        await run_jobs(c)
        assert len(receiver.requests) == 2
        assert receiver.requests[0].headers["webhook-id"] == receiver.requests[1].headers["webhook-id"]
        assert "(redelivery)" in (await console.get(r.headers["location"])).text
        r = await console.post(f"/console/admin/webhooks/{endpoint.id}/attempts/6741f0c2a1b2c3d4e5f60730/redeliver",
                               {"csrf_token": token})
        assert r.status_code == 404 and "Back to the endpoint" in r.text
        words_only(r.text)
        r = await console.get("/console/admin/webhooks/6741f0c2a1b2c3d4e5f60730")
        assert r.status_code == 404
    finally:
        await receiver.stop()


def test_rupees_group_digits_the_indian_way():
    from decimal import Decimal

    from app.api.console.pages import rupees

    assert rupees(Decimal("10000000")) == "₹1,00,00,000.00"
    assert rupees(Decimal("123456.5")) == "₹1,23,456.50"
    assert rupees(Decimal("999")) == "₹999.00" and rupees(Decimal("-1500")) == "-₹1,500.00" and rupees(None) == "—"



async def test_an_unknown_or_malformed_id_in_an_action_is_a_page_in_words_and_changes_nothing(capi):
    console, _, token = await signed_in(capi)
    for bad in ("zz", "6741f0c2a1b2c3d4e5f60719"):
        for path in (f"/console/admin/jobs/{bad}/retry", f"/console/admin/loans/{bad}/approve",
                     f"/console/admin/loans/{bad}/disburse", f"/console/admin/users/{bad}/status",
                     f"/console/admin/webhooks/{bad}/attempts/{bad}/redeliver"):
            r = await console.post(path, {"csrf_token": token, "status": "suspended"})
            assert r.status_code == 404 and 'id="error"' in r.text, (path, r.status_code)
            words_only(r.text)
        for path in (f"/console/admin/users/{bad}", f"/console/admin/webhooks/{bad}"):
            r = await console.get(path)
            assert r.status_code == 404 and 'id="error"' in r.text, path


async def test_a_page_number_that_is_not_one_is_a_400_page_in_words_on_every_list(capi):
    console, _, _ = await signed_in(capi)
    lists = ("/console/kyc", "/console/admin/users", "/console/admin/loans", "/console/admin/jobs",
             "/console/admin/webhooks")
    for path in lists:
        for page in ("²", "٣", "0", "-1", "1.5", "123456", ""):  # "²" and "٣" pass str.isdigit, not int()
            r = await console.get(path, params={"page": page})
            assert r.status_code == 400 and 'id="error"' in r.text, (path, page, r.status_code)
            words_only(r.text)
        assert (await console.get(path, params={"page": "1"})).status_code == 200, path
