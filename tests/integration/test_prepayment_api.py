"""Part-prepayment and the cooling-off exit over HTTP: a loan prepaid in each mode and then pre-closed, a
cooling-off exit, and every refusal with its code and nothing stored."""

from __future__ import annotations

from datetime import timedelta
from decimal import Decimal

from bson import ObjectId

from app.domain.loan_schedule import add_months, build_schedule
from tests.conftest import bearer, eventually
from tests.integration.lending_helpers import apply_body, borrower, make_product, relogin

D = Decimal


async def _disbursed(api, who, product, **overrides) -> str:
    admin = bearer(await api.staff("admin"))
    r = await api.client.post("/loans/apply", headers=who["headers"], json=apply_body(product, **overrides))
    assert r.status_code == 201, r.text
    loan_id, kfs = r.json()["loan_id"], r.json()["kfs"]
    if "number" in kfs:  # disbursal needs the borrower's acceptance of the KFS
        r = await api.client.post(f"/loans/my-loans/{loan_id}/kfs/accept", headers=who["headers"],
                                  json={"kfs_number": kfs["number"]})
        assert r.status_code == 200, r.text
    assert (await api.client.post(f"/admin/loans/{loan_id}/approve", headers=admin)).status_code == 200
    assert (await api.client.post(f"/admin/loans/{loan_id}/disburse", headers=admin)).status_code == 200
    return loan_id


async def _to(api, who, day):
    api.container.clock.advance(days=(day - api.container.clock.now().date()).days)
    await _settled(api)
    return await relogin(api, who)


async def _settled(api):
    """The jobs the clock's move made due (the daily loan review writes the loan) have run, so the next
    request reads the loan they leave instead of racing them (a race is a 409 `loan_changed`)."""
    now, jobs = api.container.clock.now(), api.container.db["jobs"]
    api.container.jobs.wake()

    async def idle():
        return not await jobs.count_documents({"status": {"$in": ["queued", "running"]}, "run_at": {"$lte": now}})
    assert await eventually(idle, timeout=30)


async def _stored(api, loan_id):
    return await api.container.db["loans"].find_one({"_id": ObjectId(loan_id)})


async def _mailed(api, email, subject):
    async def arrived():
        return subject in [m["Subject"] for m in api.mailbox.for_address(email)]

    assert await eventually(arrived), subject


async def test_a_loan_prepaid_in_each_mode_then_pre_closed(api):
    product = await make_product(api, min_prepayment=D(5000))
    who = await borrower(api)
    loan_id = await _disbursed(api, who, product)
    day0 = api.container.clock.now().date()
    base = f"/loans/my-loans/{loan_id}"
    agreed = build_schedule(D(100000), D(12), 12)

    # Instalment 1 paid on its day; ten days later, a quote keeping the tenure, then the prepayment.
    who = await _to(api, who, add_months(day0, 1))
    assert (await api.client.post(f"{base}/repayments", headers=who["headers"], json={"amount": 8884.88})).is_success
    who = await _to(api, who, add_months(day0, 1) + timedelta(days=10))
    body, stored = {"amount": 20000, "keep": "tenure"}, await _stored(api, loan_id)
    r = await api.client.post(f"{base}/prepayments/quote", headers=who["headers"], json=body)
    assert r.status_code == 200, r.text
    quote = r.json()
    balance = agreed.instalments[0].closing_balance
    accrued = (D(20000) * 12 / 100 * 10 / 365).quantize(D("0.01"))
    rebuilt = build_schedule(balance - 20000, D(12), 11)
    assert quote["accrued_days"] == 10 and quote["accrued_interest"] == float(accrued)
    assert quote["prepayment_charge"] == 800 and quote["total"] == float(20000 + accrued + 800)
    assert quote["first_instalment"] == 2 and quote["principal_before"] == float(balance)
    assert quote["emi_before"] == 8884.88 and quote["emi_after"] == float(rebuilt.emi)
    assert quote["instalments_before"] == quote["instalments_after"] == 11
    assert await _stored(api, loan_id) == stored  # a quote changes nothing

    key = {"Idempotency-Key": "prepay-1"}
    r = await api.client.post(f"{base}/prepayments", headers={**who["headers"], **key}, json=body)
    assert r.status_code == 201, r.text
    first = r.json()
    assert first["quote"] == quote and first["repayment"]["kind"] == "prepayment"
    assert first["repayment"]["amount"] == quote["total"] and first["loan"]["emi"] == float(rebuilt.emi)
    again = await api.client.post(f"{base}/prepayments", headers={**who["headers"], **key}, json=body)
    assert again.status_code == 201 and again.json() == first  # the first answer, never a second prepayment
    view = (await api.client.get(base, headers=who["headers"])).json()
    assert len(view["schedule"]) == 12 and view["outstanding_principal"] == float(balance - 20000)
    assert [row["payment"] for row in view["schedule"][1:]] == [float(i.payment) for i in rebuilt.instalments]
    assert view["schedule_versions"] == [{
        "on": str(add_months(day0, 1) + timedelta(days=10)), "reason": "part_prepayment", "keep": "tenure",
        "first_instalment": 2, "principal": float(balance - 20000), "emi": float(rebuilt.emi), "instalments": 11,
        "previous_principal": float(balance), "previous_emi": 8884.88, "previous_instalments": 11}]
    assert [p["kind"] for p in view["repayments"]] == ["instalment", "prepayment"]

    # Instalment 2 at the new EMI; then a prepayment keeping the instalment: fewer rows.
    who = await _to(api, who, add_months(day0, 2))
    r = await api.client.post(f"{base}/repayments", headers=who["headers"], json={"amount": float(rebuilt.emi)})
    assert r.status_code == 201, r.text
    await _settled(api)
    r = await api.client.post(f"{base}/prepayments", headers=who["headers"], json={"amount": 30000,
                                                                                   "keep": "instalment"})
    assert r.status_code == 201, r.text
    shorter = r.json()["quote"]
    assert shorter["accrued_days"] == 0 and shorter["emi_after"] == float(rebuilt.emi)
    assert shorter["instalments_before"] == 10 and shorter["instalments_after"] < 10
    view = (await api.client.get(base, headers=who["headers"])).json()
    assert len(view["schedule"]) == 2 + shorter["instalments_after"] and len(view["schedule_versions"]) == 2
    assert sum(D(str(row["principal"])) for row in view["schedule"]) + 50000 == 100000
    assert view["schedule"][-1]["due_date"] == shorter["last_due_date"]

    # Pre-closed: the foreclosure is on the principal the prepayments left.
    r = await api.client.get(f"{base}/pre-close", headers=who["headers"])
    assert r.status_code == 200 and r.json()["outstanding_principal"] == view["outstanding_principal"], r.text
    assert (await api.client.post(f"{base}/pre-close", headers=who["headers"])).status_code == 200
    admin = bearer(await api.staff("admin"))
    r = await api.client.post(f"/admin/loans/{loan_id}/pre-close/confirm", headers=admin)
    assert r.status_code == 200 and r.json()["loan"]["closure"] == "pre_closed", r.text

    events = await api.container.db["events"].find({"type": "loan.prepaid"}).sort("created_at", 1).to_list(None)
    assert [(e["data"]["keep"], e["data"]["prepaid"]) for e in events] == [("tenure", "20000.00"),
                                                                           ("instalment", "30000.00")]
    assert await api.container.db["repayments"].count_documents({"loan_id": loan_id, "kind": "prepayment"}) == 2
    await _mailed(api, who["email"], "Your prepayment is received")


async def test_prepayment_refusals_store_nothing(api):
    product = await make_product(api, min_prepayment=D(5000))
    who, other = await borrower(api), await borrower(api)
    loan_id = await _disbursed(api, who, product)
    base = f"/loans/my-loans/{loan_id}"
    before = await _stored(api, loan_id)

    async def refused(headers, body, status, code):
        for path in (f"{base}/prepayments/quote", f"{base}/prepayments"):
            r = await api.client.post(path, headers=headers, json=body)
            assert (r.status_code, r.json()["error_code"]) == (status, code), r.text

    await refused(other["headers"], {"amount": 10000, "keep": "tenure"}, 404, "loan_not_found")
    await refused(who["headers"], {"amount": 4999.99, "keep": "tenure"}, 422, "prepayment_out_of_range")
    await refused(who["headers"], {"amount": 100000, "keep": "instalment"}, 422, "prepayment_out_of_range")
    await refused(who["headers"], {"amount": 10000, "keep": "both"}, 422, "validation_error")
    await refused(who["headers"], {"amount": 10000.001, "keep": "tenure"}, 422, "validation_error")
    assert await _stored(api, loan_id) == before
    who = await _to(api, who, add_months(api.container.clock.now().date(), 1) + timedelta(days=1))
    before = await _stored(api, loan_id)  # as the daily review left it: overdue
    await refused(who["headers"], {"amount": 10000, "keep": "tenure"}, 409, "instalments_overdue")
    assert await _stored(api, loan_id) == before
    assert await api.container.db["repayments"].count_documents({"loan_id": loan_id}) == 0


async def test_no_prepayment_charge_on_a_floating_rate_personal_loan(api):
    product = await make_product(api, rate_type="floating")
    who = await borrower(api)
    loan_id = await _disbursed(api, who, product)
    r = await api.client.post(f"/loans/my-loans/{loan_id}/prepayments/quote", headers=who["headers"],
                              json={"amount": 10000, "keep": "tenure"})
    assert r.status_code == 200 and r.json()["prepayment_charge"] == 0 and r.json()["prepayment_charge_pct"] == 0
    assert (await api.client.get(f"/loans/my-loans/{loan_id}/pre-close", headers=who["headers"])).json()[
        "prepayment_charge"] == 0


async def test_a_cooling_off_exit_closes_the_loan_with_principal_and_the_apr_for_the_days_used(api):
    product = await make_product(api)
    who = await borrower(api)
    loan_id = await _disbursed(api, who, product)
    base = f"/loans/my-loans/{loan_id}/cooling-off-exit"
    day0 = api.container.clock.now().date()
    who = await _to(api, who, day0 + timedelta(days=2))
    r = await api.client.get(base, headers=who["headers"])
    assert r.status_code == 200, r.text
    quote = r.json()
    apr = D(str(quote["apr"]))
    interest = (D(100000) * apr / 100 * 2 / 365).quantize(D("0.01"))  # by hand: principal × APR × days / 365
    assert apr == D("15.85") and quote["days_used"] == 2 and quote["ends_on"] == str(day0 + timedelta(days=3))
    assert quote["interest"] == float(interest) and quote["amount_due"] == float(100000 + interest)

    r = await api.client.post(base, headers=who["headers"])
    assert r.status_code == 200, r.text
    done = r.json()
    assert done["loan"]["status"] == "CLOSED" and done["loan"]["closure"] == "cooling_off_exit"
    assert done["repayment"]["kind"] == "cooling_off_exit" and done["repayment"]["amount"] == quote["amount_due"]
    assert done["loan"]["outstanding"] == 0 and done["loan"]["paid_total"] == quote["amount_due"]
    r = await api.client.post(base, headers=who["headers"])
    assert r.status_code == 409 and r.json()["error_code"] == "invalid_transition"
    types = [e["type"] for e in await api.container.db["events"].find({"data.loan_id": loan_id}).to_list(None)]
    assert types[-2:] == ["loan.cooling_off_exit", "loan.closed"]
    await _mailed(api, who["email"], "You have left your loan in the cooling-off period")


async def test_after_the_cooling_off_period_the_exit_is_409(api):
    product = await make_product(api)
    who, other = await borrower(api), await borrower(api)
    loan_id = await _disbursed(api, who, product)
    base = f"/loans/my-loans/{loan_id}/cooling-off-exit"
    assert (await api.client.get(base, headers=other["headers"])).status_code == 404
    who = await _to(api, who, api.container.clock.now().date() + timedelta(days=4))
    before = await _stored(api, loan_id)
    for method in ("GET", "POST"):
        r = await api.client.request(method, base, headers=who["headers"])
        assert r.status_code == 409 and r.json()["error_code"] == "cooling_off_ended", r.text
    assert await _stored(api, loan_id) == before


async def test_a_product_cooling_off_period_below_the_rbi_minimum_is_422(api):
    admin = bearer(await api.staff("admin"))
    bank = (await api.client.post("/admin/banks", headers=admin, json={"name": "Cool Bank", "code": "COOL"})).json()
    body = {"bank_id": bank["id"], "name": "Cool Loan", "type": "personal", "min_amount": 50000, "max_amount": 500000,
            "min_tenure_months": 6, "max_tenure_months": 60, "annual_interest_rate": 12, "processing_fee_pct": 1,
            "prepayment_charge_pct": 2, "repayment_frequency": "monthly", "min_monthly_income": 0, "min_age": 21,
            "max_age": 60, "max_foir": 0.5, "cooling_off_days": 2}
    r = await api.client.post("/admin/products", headers=admin, json=body)
    assert r.status_code == 422 and r.json()["errors"][0]["loc"] == ["body", "cooling_off_days"], r.text
    r = await api.client.post("/admin/products", headers=admin, json={**body, "cooling_off_days": 5,
                                                                       "rate_type": "floating"})
    assert r.status_code == 201, r.text
    assert (r.json()["cooling_off_days"], r.json()["rate_type"], r.json()["min_prepayment"]) == (5, "floating", 1000)


async def test_a_product_stored_before_these_terms_reads_their_defaults(api):
    product = await make_product(api)
    await api.container.db["loan_products"].update_one(
        {"_id": ObjectId(product.id)}, {"$unset": {"rate_type": "", "cooling_off_days": "", "min_prepayment": ""}})
    r = await api.client.get(f"/loans/products/{product.id}")
    assert r.status_code == 200, r.text
    assert (r.json()["rate_type"], r.json()["cooling_off_days"], r.json()["min_prepayment"]) == ("fixed", 3, 1000)


async def test_an_overdue_loan_is_charged_cured_prepaid_in_each_mode_and_pre_closed(api_factory):
    """The issue's servicing walk end to end: overdue (clock moved), a penal charge and the overdue mail, no
    prepayment while in arrears, cured by a payment, a part-prepayment in each mode, then pre-closed."""
    from datetime import UTC, datetime, time

    from app.domain.delinquency import PenalKind, PenalRule
    from tests.integration.events_helpers import run_jobs

    api = await api_factory(job_workers=0)
    product = await make_product(api, name="Walk Penal Loan", penal_charge=PenalRule(PenalKind.FIXED, D(500)))
    who = await borrower(api)
    loan_id = await _disbursed(api, who, product)
    base = f"/loans/my-loans/{loan_id}"
    first_due = add_months(api.container.clock.now().date(), 1)
    clock = api.container.clock
    clock.advance(seconds=(datetime.combine(first_due + timedelta(days=1), time(1), UTC) - clock.now()).total_seconds())
    await run_jobs(api.container)  # the daily review: overdue, a penal charge, the mail
    who = await relogin(api, who)
    loan = (await api.client.get(base, headers=who["headers"])).json()
    assert (loan["loan_class"], loan["charges_due"]) == ("SMA_0", 500)
    assert any("overdue" in m["subject"] for m in api.mailbox.for_address(who["email"]))
    r = await api.client.post(f"{base}/prepayments", headers=who["headers"], json={"amount": 20000, "keep": "tenure"})
    assert r.status_code == 409 and r.json()["error_code"] == "instalments_overdue", r.text

    r = await api.client.post(f"{base}/repayments", headers=who["headers"],
                              json={"amount": loan["overdue_amount"] + 500})
    assert r.status_code == 201 and r.json()["loan"]["loan_class"] == "CURRENT", r.text
    for amount, keep in ((20000, "tenure"), (10000, "instalment")):
        r = await api.client.post(f"{base}/prepayments", headers=who["headers"], json={"amount": amount, "keep": keep})
        assert r.status_code == 201, r.text
    loan = (await api.client.get(base, headers=who["headers"])).json()
    assert [v["keep"] for v in loan["schedule_versions"]] == ["tenure", "instalment"]
    assert len(loan["schedule"]) < 12 and loan["charges_due"] == 0
    assert sum(D(str(row["principal"])) for row in loan["schedule"]) + 30000 == 100000
    assert (await api.client.post(f"{base}/pre-close", headers=who["headers"])).status_code == 200
    r = await api.client.post(f"/admin/loans/{loan_id}/pre-close/confirm", headers=bearer(await api.staff("admin")))
    assert r.status_code == 200 and r.json()["loan"]["status"] == "CLOSED", r.text
    assert r.json()["repayment"]["amount"] > loan["outstanding_principal"]  # the principal left, and its interest
