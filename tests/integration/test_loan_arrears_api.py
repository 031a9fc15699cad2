"""Arrears over HTTP with the clock moved: a running loan is reminded before its due date, goes overdue, draws
its product's penal charge, is classed SMA-0 then SMA-1 (events, mails, the admin book and stats), and a
payment of what is overdue and the charges cures it. The daily review runs twice without doing anything twice,
and a run after missed days catches up with one reminder."""

from __future__ import annotations

from datetime import UTC, date, datetime, time, timedelta
from decimal import Decimal
from typing import Any

from bson import Decimal128, ObjectId

from app.domain.delinquency import PenalKind, PenalRule
from app.domain.loan_schedule import RepaymentFrequency
from app.services.delinquency import REVIEW_JOB
from tests.conftest import bearer, eventually
from tests.integration.events_helpers import run_jobs
from tests.integration.lending_helpers import apply_body, borrower, make_product, relogin
from tests.integration.test_catalogue_api import PRODUCT, _bank
from tests.integration.test_console_admin import signed_in

D = Decimal
PENAL = PenalRule(PenalKind.FIXED, D(500))


def _text(mail: Any) -> str:
    return mail.get_body(preferencelist=("plain",)).get_content()


async def _running_loan(api: Any, penal: PenalRule | None = PENAL, **terms: Any) -> tuple[dict[str, Any], str, list[Any]]:
    product = await make_product(api, name="Penal Loan", penal_charge=penal, **terms)
    who = await borrower(api)
    admin = bearer(await api.staff("admin"))
    r = await api.client.post("/loans/apply", headers=who["headers"], json=apply_body(product))
    assert r.status_code == 201, r.text
    loan_id = r.json()["loan_id"]
    if number := r.json()["kfs"].get("number"):  # the borrower accepts the KFS before the disbursal
        r = await api.client.post(f"/loans/my-loans/{loan_id}/kfs/accept", headers=who["headers"],
                                  json={"kfs_number": number})
        assert r.status_code == 200, r.text
    for step in ("approve", "disburse"):
        r = await api.client.post(f"/admin/loans/{loan_id}/{step}", headers=admin)
        assert r.status_code == 200, r.text
    return who, loan_id, r.json()["schedule"]


def _to(api: Any, day: date) -> None:
    """The clock to 01:00 UTC of `day` (after that day's 00:00 run is due)."""
    clock = api.container.clock
    clock.advance(seconds=(datetime.combine(day, time(1), UTC) - clock.now()).total_seconds())


async def _review_again(api: Any, key: str) -> None:
    """The daily job once more the same day (a retry, a second worker): it must change nothing."""
    await api.container.jobs.enqueue(REVIEW_JOB, f"{REVIEW_JOB}:{key}", {})
    assert await run_jobs(api.container) == 1


async def _events(api: Any, loan_id: str, kind: str) -> list[dict[str, Any]]:
    return [e["data"] async for e in api.container.db["events"].find({"type": kind, "data.loan_id": loan_id})]


async def test_an_overdue_loan_is_charged_reminded_classified_and_cured_by_a_payment(api_factory):
    api = await api_factory(job_workers=0)
    who, loan_id, agreed = await _running_loan(api)
    due = date.fromisoformat(agreed[0]["due_date"])
    email = who["email"]
    assert await api.container.db["jobs"].count_documents({"kind": REVIEW_JOB}) == 1  # armed by the disbursal

    def mails(subject: str) -> list[Any]:
        return [m for m in api.mailbox.for_address(email) if subject in m["subject"]]

    # Three days ahead: one reminder, with the penal charge that applies (RBI: reminders state it).
    _to(api, due - timedelta(days=3))
    await run_jobs(api.container)
    await _review_again(api, "before")
    [soon] = mails("due soon")
    assert f"is due on {due}" in _text(soon) and "penal charge of 500" in _text(soon)

    # The day after the due date: one penal charge, SMA-0, overdue and classified events, one overdue mail.
    _to(api, due + timedelta(days=1))
    await run_jobs(api.container)
    await _review_again(api, "late")
    who = await relogin(api, who)
    loan = (await api.client.get(f"/loans/my-loans/{loan_id}", headers=who["headers"])).json()
    first = loan["schedule"][0]
    assert (loan["loan_class"], loan["days_past_due"], loan["overdue_amount"]) == ("SMA_0", 1, first["payment"])
    assert loan["charges"] == [{"instalment": 1, "charged_on": str(due + timedelta(days=1)), "amount": 500,
                                "paid": 0, "waived": 0}] and loan["charges_due"] == 500
    assert loan["class_history"] == [{"loan_class": "SMA_0", "on": str(due + timedelta(days=1)), "days_past_due": 1}]
    # Never interest: the schedule is the agreed one, and the principal and interest owed did not move.
    assert [(r["interest"], r["principal"]) for r in loan["schedule"]] == [(r["interest"], r["principal"])
                                                                           for r in agreed]
    assert D(str(loan["outstanding"])) == sum(D(str(r["payment"])) for r in loan["schedule"])
    [late] = mails("overdue")
    assert "1 days past due" in _text(late) and "Penal charge ₹500.00 levied" in _text(late)
    [overdue] = await _events(api, loan_id, "loan.overdue")
    assert overdue["loan_class"] == "SMA_0" and overdue["penal_charges"] == [{"instalment": 1, "amount": "500"}]
    assert [e["loan_class"] for e in await _events(api, loan_id, "loan.classified")] == ["SMA_0"]

    # 31 days late: SMA-1; an instalment late meanwhile drew its own charge (each its own); the 30-day reminder.
    today = due + timedelta(days=31)
    late = [r for r in agreed if date.fromisoformat(r["due_date"]) < today]
    charged = 500 * len(late)
    _to(api, today)
    await run_jobs(api.container)
    await _review_again(api, "sma1")
    who = await relogin(api, who)
    loan = (await api.client.get(f"/loans/my-loans/{loan_id}", headers=who["headers"])).json()
    assert (loan["loan_class"], loan["days_past_due"], len(loan["charges"])) == ("SMA_1", 31, len(late))
    assert loan["overdue_amount"] == float(sum(D(str(r["payment"])) for r in late))
    assert len(mails("overdue")) == 2 and [e["loan_class"] for e in await _events(
        api, loan_id, "loan.classified")] == ["SMA_0", "SMA_1"]
    auditor = bearer(await api.staff("auditor"))
    book = (await api.client.get("/admin/loans", headers=auditor, params={"loan_class": "SMA_1"})).json()
    assert [i["loan_id"] for i in book["items"]] == [loan_id] and book["items"][0]["charges_due"] == charged
    assert (await api.client.get("/admin/loans", headers=auditor, params={"loan_class": "NPA"})).json()["total"] == 0
    # A class is a running loan's: an application (stored as CURRENT) is not in the CURRENT book.
    other = await borrower(api)
    applied = await api.client.post("/loans/apply", headers=other["headers"], json={
        "product_id": loan["product_id"], "amount": 100000, "tenure_months": 12, "purpose": "Home renovation"})
    assert applied.status_code == 201, applied.text
    current = (await api.client.get("/admin/loans", headers=auditor, params={"loan_class": "CURRENT"})).json()
    assert current["total"] == 0
    both = {"status": "APPLIED", "loan_class": "CURRENT"}  # a status given: the class filters within it
    assert [i["loan_id"] for i in (await api.client.get("/admin/loans", headers=auditor, params=both)).json()[
        "items"]] == [applied.json()["loan_id"]]
    console, _, _ = await signed_in(api)
    page = await console.get("/console/admin/loans", params={"status": "", "loan_class": "SMA_1"})
    assert page.status_code == 200 and f'data-loan-id="{loan_id}"' in page.text, page.text
    assert "SMA-1" in page.text and "31 days past due" in page.text and "running, SMA-1" in page.text
    page = await console.get("/console/admin/loans", params={"status": "", "loan_class": "CURRENT"})
    assert f'data-loan-id="{loan_id}"' not in page.text and 'id="empty"' in page.text
    assert (await console.get("/console/admin/loans", params={"loan_class": "SMA_9"})).status_code == 400
    page = await console.get("/console/admin/loans", params={"status": "APPLIED", "loan_class": "SMA_1"})
    assert "a class is a running loan's, so choose any status" in page.text
    stats = (await api.client.get("/admin/stats", headers=auditor)).json()["loans"]
    assert stats["by_class"]["SMA_1"] == {"count": 1, "amount": loan["outstanding"],
                                          "overdue": loan["overdue_amount"], "charges_due": charged}
    assert stats["overdue_amount"] == loan["overdue_amount"] and stats["by_class"]["CURRENT"]["count"] == 0

    # Cured: what is overdue and the charges, in one payment (the instalments due, today's too, then the charges).
    due_today = sum(D(str(r["payment"])) for r in agreed if r["due_date"] == str(today))
    amount = D(str(loan["overdue_amount"])) + due_today + charged
    r = await api.client.post(f"/loans/my-loans/{loan_id}/repayments", headers=who["headers"],
                              json={"amount": float(amount)})
    assert r.status_code == 201, r.text
    assert r.json()["repayment"]["charges_paid"] == charged and r.json()["loan"]["loan_class"] == "CURRENT"
    loan = (await api.client.get(f"/loans/my-loans/{loan_id}", headers=who["headers"])).json()
    assert (loan["days_past_due"], loan["overdue_amount"], loan["charges_due"]) == (0, 0, 0)
    assert [c["paid"] for c in loan["charges"]] == [500] * len(late)
    assert [h["loan_class"] for h in loan["class_history"]] == ["SMA_0", "SMA_1", "CURRENT"]
    assert [e["loan_class"] for e in await _events(api, loan_id, "loan.classified")] == ["SMA_0", "SMA_1", "CURRENT"]
    await run_jobs(api.container)
    await _review_again(api, "cured")
    assert len(mails("overdue")) == 2


async def test_a_review_after_missed_days_catches_up_with_one_reminder(api_factory):
    api = await api_factory(job_workers=0)
    who, loan_id, agreed = await _running_loan(api, PenalRule(PenalKind.PERCENT, D(2), D(150)))
    due = date.fromisoformat(agreed[0]["due_date"])
    _to(api, due + timedelta(days=45))  # no run since the disbursal
    await run_jobs(api.container)
    raw = await api.container.db["loans"].find_one({"_id": ObjectId(loan_id)})
    arrears = raw["arrears"]
    assert arrears["loan_class"] == "SMA_1" and len(arrears["charges"]) == 2
    assert [c["charged_on"].date() for c in arrears["charges"]][0] == due + timedelta(days=1)
    assert all(c["amount"].to_decimal() == 150 for c in arrears["charges"])  # 2 % of an instalment, capped
    assert [h["loan_class"] for h in arrears["history"]] == ["SMA_1"]
    [late] = [m for m in api.mailbox.for_address(who["email"]) if "overdue" in m["subject"]]
    assert "45 days past due" in _text(late)


async def test_a_product_takes_a_penal_charge_and_refuses_one_out_of_bounds(api):
    admin = await api.staff("admin")
    bank_id = await _bank(api, admin)
    body = {**PRODUCT, "bank_id": bank_id, "penal_charge": {"kind": "percent", "value": 2, "cap": 1000}}
    r = await api.client.post("/admin/products", headers=bearer(admin), json=body)
    assert r.status_code == 201 and r.json()["penal_charge"] == {"kind": "percent", "value": 2, "cap": 1000}, r.text
    assert (await api.client.get(f"/loans/products/{r.json()['id']}")).json()["penal_charge"]["cap"] == 1000
    for penal in ({"kind": "percent", "value": 11}, {"kind": "daily", "value": 1}, {"kind": "fixed", "value": -5}):
        r = await api.client.post("/admin/products", headers=bearer(admin),
                                  json={**body, "name": "Another", "penal_charge": penal})
        assert r.status_code == 422, r.text
        assert "penal_charge" in r.json()["errors"][0]["loc"], r.json()
    assert await api.container.db["loan_products"].count_documents({}) == 1


async def test_the_console_dashboard_shows_the_book_by_class(api_factory):
    api = await api_factory(job_workers=0)
    _, loan_id, agreed = await _running_loan(api)
    _to(api, date.fromisoformat(agreed[0]["due_date"]) + timedelta(days=2))
    await run_jobs(api.container)
    console, _, _ = await signed_in(api, "auditor")
    page = (await console.get("/console/admin")).text
    table = page[page.index('id="loan-class"'):]
    table = table[:table.index("</table>")]
    link = '<td><a href="/console/admin/loans?status=&amp;loan_class={0}">{1}</a></td><td class="num">{2}</td>'
    assert link.format("SMA_0", "SMA-0", 1) in table and link.format("CURRENT", "CURRENT", 0) in table
    assert "₹500.00" in table  # the penal charge due


def _write_between_read_and_save(api: Any, monkeypatch: Any, loan_id: str, change: dict[str, Any]) -> None:
    """Another writer stores `change` on the loan (a new revision) right after the payment's first read of it."""
    repo, reads = api.container.loans.loans, []
    real = repo.get

    async def get(entity_id: str, *, user_id: str | None = None) -> Any:
        found = await real(entity_id, user_id=user_id)
        reads.append(entity_id)
        if len(reads) == 1:
            await api.container.db["loans"].update_one({"_id": ObjectId(loan_id)}, {"$set": change, "$inc": {"rev": 1}})
        return found

    monkeypatch.setattr(repo, "get", get)


async def test_a_payment_landing_on_the_daily_reviews_write_is_applied_to_the_loan_as_reviewed(api, monkeypatch):
    who, loan_id, _ = await _running_loan(api)
    _write_between_read_and_save(api, monkeypatch, loan_id, {"arrears.reminded": "1:-3"})  # the review's reminder
    r = await api.client.post(f"/loans/my-loans/{loan_id}/repayments", headers=who["headers"], json={"amount": 1000})
    assert r.status_code == 201, r.text
    stored = await api.container.db["loans"].find_one({"_id": ObjectId(loan_id)})
    assert stored["paid_total"].to_decimal() == D(1000) and stored["arrears"]["reminded"] == "1:-3"  # neither write lost
    assert await api.container.db["repayments"].count_documents({"loan_id": loan_id}) == 1


async def test_a_payment_racing_another_payment_is_still_409_loan_changed_and_stores_nothing(api, monkeypatch):
    who, loan_id, _ = await _running_loan(api)
    _write_between_read_and_save(api, monkeypatch, loan_id, {"paid_total": Decimal128("500")})  # money moved
    r = await api.client.post(f"/loans/my-loans/{loan_id}/repayments", headers=who["headers"], json={"amount": 1000})
    assert r.status_code == 409 and r.json()["error_code"] == "loan_changed", r.text
    assert await api.container.db["repayments"].count_documents({"loan_id": loan_id}) == 0
    assert (await api.container.db["loans"].find_one({"_id": ObjectId(loan_id)}))["paid_total"] == Decimal128("500")


async def test_a_preclosure_request_landing_on_the_daily_reviews_write_is_taken_on_the_loan_as_reviewed(api, monkeypatch):
    who, loan_id, _ = await _running_loan(api)
    _write_between_read_and_save(api, monkeypatch, loan_id, {"arrears.reminded": "1:-3"})
    r = await api.client.post(f"/loans/my-loans/{loan_id}/pre-close", headers=who["headers"])
    assert r.status_code == 200, r.text
    stored = await api.container.db["loans"].find_one({"_id": ObjectId(loan_id)})
    assert stored["status"] == "PRE_CLOSURE_REQUESTED" and stored["arrears"]["reminded"] == "1:-3"


async def test_a_preclosure_request_left_unpaid_still_falls_due_and_takes_the_instalment(api_factory):
    """Asking to pre-close settles nothing until an admin confirms: the loan runs on. The review charges,
    classes and reminds it; the borrower can pay the instalment, and the confirmed quote is then smaller."""
    api = await api_factory(job_workers=0)
    who, loan_id, agreed = await _running_loan(api)
    r = await api.client.post(f"/loans/my-loans/{loan_id}/pre-close", headers=who["headers"])
    assert r.status_code == 200 and r.json()["loan"]["status"] == "PRE_CLOSURE_REQUESTED", r.text
    due = date.fromisoformat(agreed[0]["due_date"])
    _to(api, due + timedelta(days=2))
    await run_jobs(api.container)
    who = await relogin(api, who)
    loan = (await api.client.get(f"/loans/my-loans/{loan_id}", headers=who["headers"])).json()
    assert (loan["status"], loan["loan_class"], loan["days_past_due"]) == ("PRE_CLOSURE_REQUESTED", "SMA_0", 2)
    assert loan["charges_due"] == 500 and [e["loan_class"] for e in await _events(api, loan_id, "loan.classified")] \
        == ["SMA_0"]
    assert [m for m in api.mailbox.for_address(who["email"]) if "overdue" in m["subject"]]
    before = (await api.client.get(f"/loans/my-loans/{loan_id}/pre-close", headers=who["headers"])).json()
    assert D(str(before["penal_charges"])) == 500

    owed = D(str(agreed[0]["payment"])) + 500
    r = await api.client.post(f"/loans/my-loans/{loan_id}/repayments", headers=who["headers"],
                              json={"amount": float(owed + D("0.01"))})  # ahead: the quote settles the rest
    assert r.status_code == 409 and r.json()["error_code"] == "preclosure_requested", r.text
    assert f"pay at most what is due today ({owed})" in r.json()["detail"]
    assert await api.container.db["repayments"].count_documents({}) == 0
    r = await api.client.post(f"/loans/my-loans/{loan_id}/repayments", headers=who["headers"],
                              json={"amount": float(owed)})
    assert r.status_code == 201, r.text
    loan = (await api.client.get(f"/loans/my-loans/{loan_id}", headers=who["headers"])).json()
    assert (loan["status"], loan["loan_class"], loan["charges_due"]) == ("PRE_CLOSURE_REQUESTED", "CURRENT", 0)
    after = (await api.client.get(f"/loans/my-loans/{loan_id}/pre-close", headers=who["headers"])).json()
    assert D(str(after["outstanding_principal"])) == D(str(before["outstanding_principal"])) - D(
        str(agreed[0]["principal"])) and D(str(after["penal_charges"])) == 0
    r = await api.client.post(f"/admin/loans/{loan_id}/pre-close/confirm", headers=bearer(await api.staff("admin")))
    assert r.status_code == 200, r.text
    assert D(str(r.json()["repayment"]["amount"])) == D(str(after["foreclosure_amount"]))


async def test_a_preclosure_confirmation_landing_on_the_daily_reviews_write_is_taken_on_the_loan_as_reviewed(
        api, monkeypatch):
    who, loan_id, _ = await _running_loan(api)
    assert (await api.client.post(f"/loans/my-loans/{loan_id}/pre-close", headers=who["headers"])).status_code == 200
    admin = bearer(await api.staff("admin"))
    _write_between_read_and_save(api, monkeypatch, loan_id, {"arrears.reminded": "1:-3"})
    r = await api.client.post(f"/admin/loans/{loan_id}/pre-close/confirm", headers=admin)
    assert r.status_code == 200, r.text
    stored = await api.container.db["loans"].find_one({"_id": ObjectId(loan_id)})
    assert stored["status"] == "CLOSED" and stored["arrears"]["reminded"] == "1:-3"
    assert await api.container.db["repayments"].count_documents({"loan_id": loan_id, "kind": "pre_closure"}) == 1


async def test_a_daily_loan_is_not_mailed_before_every_instalment_but_is_reminded_when_late(api_factory):
    """Instalments a day apart: a "due soon" mail three days ahead would be a mail every day."""
    api = await api_factory(job_workers=0)
    who, loan_id, agreed = await _running_loan(api, repayment_frequency=RepaymentFrequency.DAILY)
    first, fifth = (date.fromisoformat(agreed[i]["due_date"]) for i in (0, 4))
    assert (fifth - first).days == 4
    for day in (first - timedelta(days=1), first):
        _to(api, day)
        await run_jobs(api.container)
    _to(api, first + timedelta(days=1))  # instalment 1 unpaid: late
    await run_jobs(api.container)
    subjects = [m["subject"] for m in api.mailbox.for_address(who["email"]) if "instalment" in m["subject"]]
    assert subjects == ["Your loan instalment is overdue"]


async def test_a_loan_paid_ahead_then_pre_closed_tells_the_borrower_of_the_refund(api):
    who, loan_id, agreed = await _running_loan(api)
    ahead = sum(D(str(r["payment"])) for r in agreed) - 1  # all but a rupee, on day one: interest paid ahead
    r = await api.client.post(f"/loans/my-loans/{loan_id}/repayments", headers=who["headers"],
                              json={"amount": float(ahead)})
    assert r.status_code == 201, r.text
    assert (await api.client.post(f"/loans/my-loans/{loan_id}/pre-close", headers=who["headers"])).status_code == 200
    r = await api.client.post(f"/admin/loans/{loan_id}/pre-close/confirm", headers=bearer(await api.staff("admin")))
    assert r.status_code == 200, r.text
    final = await api.container.db["repayments"].find_one({"loan_id": loan_id, "kind": "pre_closure"})
    refund = final["breakdown"]["refund_due"].to_decimal()
    assert refund > 0 and final["amount"].to_decimal() == 0
    async def closing_mails() -> list[Any]:
        return [m for m in api.mailbox.for_address(who["email"]) if m["subject"] == "Your loan is closed"]

    [closed] = await eventually(closing_mails)  # the notice job's worker sends it
    assert f"You paid ₹{refund:,.2f} more than it took to close: it is refunded to you." in _text(closed)
