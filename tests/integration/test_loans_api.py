"""Loans over HTTP: a customer from approved KYC to a pre-closed loan, and every refusal on the way."""

from __future__ import annotations

import asyncio
from datetime import date
from decimal import Decimal

import pytest
from bson import ObjectId
from bson.decimal128 import Decimal128
from fastapi.routing import APIRoute

from app.api.routing import ExactJsonRoute
from app.domain.loan_schedule import add_months, build_schedule
from app.main import ROUTERS
from tests.conftest import bearer, eventually
from tests.integration.lending_helpers import accept_kfs, apply_body, born_years_ago, borrower, make_product, relogin

D = Decimal


def _subjects(api, email: str) -> list[str]:
    return [m["Subject"] for m in api.mailbox.for_address(email)]


async def _mailed(api, email: str, *subjects: str) -> list[str]:
    """Notices go out from a job: wait until every subject has arrived."""
    async def arrived():
        return set(subjects) <= set(_subjects(api, email))

    assert await eventually(arrived), (subjects, _subjects(api, email))
    return _subjects(api, email)


async def _actions(api, user_id: str) -> list[str]:
    docs = await api.container.db["user_log"].find({"user_id": user_id, "action": {"$regex": "^loan_"}}).sort(
        "timestamp", 1).to_list(None)
    return [d["action"] for d in docs]


async def _loan_count(api) -> int:
    return await api.container.db["loans"].count_documents({})


async def _apply(api, who, product, **overrides):
    return await api.client.post("/loans/apply", headers=who["headers"], json=apply_body(product, **overrides))


async def test_a_customer_from_approved_kyc_to_a_pre_closed_loan(api):
    clock = api.container.clock
    product = await make_product(api)
    who = await borrower(api)
    admin = await api.staff("admin")

    # Apply: APPLIED with the EMI and the Key Fact Statement agreed now.
    r = await _apply(api, who, product)
    assert r.status_code == 201, r.text
    applied = r.json()
    loan_id = applied["loan_id"]
    assert applied["status"] == "APPLIED" and applied["emi"] == 8884.88 and applied["amount"] == 100000
    assert applied["outstanding"] == 0 and applied["next_due"] is None  # nothing is owed before the disbursal
    kfs = applied["kfs"]
    assert kfs["processing_fee"] == 2000 and kfs["net_disbursed"] == 98000 and kfs["instalments"] == 12
    expected = build_schedule(D(100000), D(12), 12)
    assert kfs["total_interest"] == float(expected.total_interest) and kfs["total_payable"] == float(
        expected.total_payment) == 106618.53  # the last instalment absorbs every period's rounding
    assert kfs["apr"] > kfs["annual_interest_rate"] == 12  # the fee costs something

    # The product's terms change later: the loan keeps what was agreed.
    catalogue = api.container.catalogue
    from dataclasses import replace
    await catalogue.products.replace(product.id, replace(product, annual_interest_rate=D(18), id=None), clock.now())

    # Approve, disburse: due dates run from the disbursal day, the net amount is recorded.
    r = await api.client.post(f"/admin/loans/{loan_id}/approve", headers=bearer(admin))
    assert r.status_code == 200 and r.json()["status"] == "APPROVED", r.text
    await accept_kfs(api, loan_id, who["headers"])  # the borrower accepts the KFS: a disbursal needs it
    r = await api.client.post(f"/admin/loans/{loan_id}/disburse", headers=bearer(admin),
                              json={"payout_reference": "UTR-2026-0001"})
    assert r.status_code == 200, r.text
    loan = r.json()
    day0 = clock.now().date()
    assert loan["status"] == "DISBURSED" and loan["net_disbursed"] == 98000
    assert loan["payout_reference"] == "UTR-2026-0001" and loan["disbursed_on"] == day0.isoformat()
    assert loan["annual_interest_rate"] == 12 and loan["emi"] == 8884.88  # the snapshot, not today's 18 %
    assert [row["due_date"] for row in loan["schedule"][:2]] == [add_months(day0, 1).isoformat(),
                                                                  add_months(day0, 2).isoformat()]
    assert loan["outstanding"] == 106618.53 and loan["next_due"]["number"] == 1

    # Two instalments, each paid on its due date.
    for number in (1, 2):
        clock.advance(days=(add_months(day0, number) - clock.now().date()).days)
        who = await relogin(api, who)
        r = await api.client.post(f"/loans/my-loans/{loan_id}/repayments", headers=who["headers"],
                                  json={"amount": 8884.88})
        assert r.status_code == 201, r.text
        paid = r.json()
        assert paid["repayment"]["allocations"] == [{"instalment": number, "interest": paid["repayment"][
            "allocations"][0]["interest"], "principal": paid["repayment"]["allocations"][0]["principal"]}]
        assert paid["loan"]["next_due"]["number"] == number + 1
    assert paid["repayment"]["allocations"][0]["interest"] == float(expected.instalments[1].interest)
    assert paid["loan"]["outstanding"] == float(expected.total_payment - 2 * D("8884.88"))

    r = await api.client.get(f"/loans/my-loans/{loan_id}", headers=who["headers"])
    view = r.json()
    assert r.status_code == 200 and [p["amount"] for p in view["repayments"]] == [8884.88, 8884.88]
    assert view["schedule"][0]["paid"] and view["schedule"][1]["paid"] and not view["schedule"][2]["paid"]
    assert view["outstanding_principal"] == float(expected.instalments[1].closing_balance)
    assert view["kfs"]["apr"] == kfs["apr"]

    # Five days later: the quote, then the request.
    clock.advance(days=5)
    who = await relogin(api, who)
    r = await api.client.get(f"/loans/my-loans/{loan_id}/pre-close", headers=who["headers"])
    assert r.status_code == 200, r.text
    quote = r.json()
    principal = expected.instalments[1].closing_balance
    accrued = (principal * 12 / 100 * 5 / 365).quantize(D("0.01"))
    charge = (principal * 4 / 100).quantize(D("0.01"))
    assert quote["accrued_days"] == 5 and quote["accrued_from"] == add_months(day0, 2).isoformat()
    assert quote["outstanding_principal"] == float(principal) and quote["accrued_interest"] == float(accrued)
    assert quote["prepayment_charge"] == float(charge)
    assert quote["foreclosure_amount"] == float(principal + accrued + charge)
    r = await api.client.post(f"/loans/my-loans/{loan_id}/pre-close", headers=who["headers"])
    assert r.status_code == 200 and r.json()["loan"]["status"] == "PRE_CLOSURE_REQUESTED", r.text
    # It still takes instalments (test_loan_arrears_api), but not a part-prepayment: that would rebuild the
    # schedule under the pre-closure being settled.
    r = await api.client.post(f"/loans/my-loans/{loan_id}/prepayments", headers=who["headers"],
                              json={"amount": 1000, "keep": "tenure"})
    assert r.status_code == 409 and r.json()["error_code"] == "invalid_transition"

    # The admin confirms: CLOSED, with a final repayment of the quoted amount.
    admin = await api.staff("admin")
    r = await api.client.post(f"/admin/loans/{loan_id}/pre-close/confirm", headers=bearer(admin))
    assert r.status_code == 200, r.text
    closed = r.json()
    assert closed["loan"]["status"] == "CLOSED" and closed["loan"]["closure"] == "pre_closed"
    assert closed["loan"]["outstanding"] == 0 and closed["loan"]["next_due"] is None
    assert closed["repayment"]["kind"] == "pre_closure"
    assert closed["repayment"]["amount"] == quote["foreclosure_amount"]

    view = (await api.client.get(f"/loans/my-loans/{loan_id}", headers=who["headers"])).json()
    assert view["status"] == "CLOSED" and len(view["repayments"]) == 3
    assert [h["status"] for h in view["history"]] == ["APPLIED", "APPROVED", "DISBURSED", "PRE_CLOSURE_REQUESTED",
                                                      "CLOSED"]
    assert await _actions(api, who["user_id"]) == [
        "loan_applied", "loan_approved", "loan_kfs_accepted", "loan_disbursed", "loan_repayment", "loan_repayment",
        "loan_preclosure_requested", "loan_closed"]
    subjects = await _mailed(api, who["email"], "We received your loan application", "Your loan is approved",
                             "Your loan is disbursed", "Payment received", "Your pre-closure request is received",
                             "Your loan is closed")
    assert subjects.count("Payment received") == 2

    # Stored exactly: Decimal128 for every amount, read through the driver.
    raw = await api.container.db["loans"].find_one({"_id": ObjectId(loan_id)})
    assert raw["amount"] == Decimal128("100000.00") and isinstance(raw["emi"], Decimal128)
    assert isinstance(raw["kfs"]["apr"], Decimal128) and raw["kfs"]["total_interest"] == Decimal128("6618.53")
    assert raw["schedule_paid"] == Decimal128("17769.76") and raw["outstanding"] == Decimal128("0.00")
    assert raw["product"]["annual_interest_rate"] == Decimal128("12") and raw["open"] is False
    payments = await api.container.db["repayments"].find({"loan_id": loan_id}).to_list(None)
    assert all(isinstance(p["amount"], Decimal128) for p in payments)
    assert payments[-1]["amount"].to_decimal() == D(str(quote["foreclosure_amount"]))


async def test_paying_the_last_instalment_closes_the_loan(api):
    product = await make_product(api, min_tenure_months=1)
    who = await borrower(api, income=200000.0)  # one month's instalment is the whole loan
    admin = await api.staff("admin")
    loan_id = (await _apply(api, who, product, amount=60000, tenure_months=1)).json()["loan_id"]
    await api.client.post(f"/admin/loans/{loan_id}/approve", headers=bearer(admin))
    await accept_kfs(api, loan_id, who["headers"])
    await api.client.post(f"/admin/loans/{loan_id}/disburse", headers=bearer(admin))
    owed = (await api.client.get(f"/loans/my-loans/{loan_id}", headers=who["headers"])).json()["outstanding"]
    assert owed == 60600  # one month at 12 %
    r = await api.client.post(f"/loans/my-loans/{loan_id}/repayments", headers=who["headers"], json={"amount": owed})
    assert r.status_code == 201, r.text
    assert r.json()["loan"]["status"] == "CLOSED" and r.json()["loan"]["closure"] == "repaid"
    assert (await _actions(api, who["user_id"]))[-2:] == ["loan_repayment", "loan_closed"]
    # Closed: the same product may be applied for again.
    assert (await _apply(api, who, product, amount=60000, tenure_months=1)).status_code == 201


async def test_apply_without_approved_kyc_is_403_and_stores_nothing(api):
    product = await make_product(api)
    who = await borrower(api, kyc=False)
    r = await _apply(api, who, product)
    assert r.status_code == 403 and r.json()["error_code"] == "kyc_not_approved"
    assert await _loan_count(api) == 0


@pytest.mark.parametrize(("setup", "body", "reason"), [
    ({"dob": None}, {}, "age_unknown"),
    ({"dob": "young"}, {}, "age_below_minimum"),
    ({"dob": "old"}, {}, "age_above_maximum"),
    ({"income": None}, {}, "income_unknown"),
    ({"income": 20000.0, "existing_emi": 0.0}, {"amount": 50000, "tenure_months": 60}, "income_below_minimum"),
    ({"risk": None}, {}, "details_missing"),
    ({"risk": "High"}, {}, "risk_too_high"),
    ({"income": 30000.0, "existing_emi": 12000.0}, {}, "foir_exceeded"),
    ({}, {"amount": 600000}, "amount_out_of_range"),
    ({}, {"amount": 40000}, "amount_out_of_range"),
    ({}, {"tenure_months": 3}, "tenure_out_of_range"),
    ({}, {"tenure_months": 61}, "tenure_out_of_range"),
])
async def test_each_eligibility_rule_refuses_with_its_reason(api, setup, body, reason):
    product = await make_product(api)
    today = api.container.clock.now().date()
    ages = {"young": born_years_ago(20, today), "old": born_years_ago(60, today)}
    if setup.get("dob") in ages:
        setup = {**setup, "dob": ages[setup["dob"]]}
    who = await borrower(api, **setup)
    r = await _apply(api, who, product, **body)
    assert r.status_code == 422, r.text
    error = r.json()
    assert error["error_code"] == "not_eligible" and reason in [x["code"] for x in error["reasons"]]
    assert await _loan_count(api) == 0
    # The check route lists the same reason, and says why without refusing.
    check = await api.client.post("/eligibility/check", headers=who["headers"],
                                  json={"product_id": product.id, "amount": 100000, "tenure_months": 12, **body})
    assert check.status_code == 200 and not check.json()["eligible"]
    assert reason in [x["code"] for x in check.json()["reasons"]]


async def test_eligibility_check_offers_the_largest_amount_that_fits(api):
    product = await make_product(api)
    who = await borrower(api, income=85000.0, existing_emi=5000.0)
    r = await api.client.post("/eligibility/check", headers=who["headers"],
                              json={"product_id": product.id, "tenure_months": 36})
    body = r.json()
    assert r.status_code == 200 and body["eligible"] and body["reasons"] == []
    # Headroom 0.5 x 85,000 - 5,000 = 37,500 a month: more than the product's 500,000 needs.
    assert body["max_eligible_amount"] == 500000 and body["amount"] == 500000 and body["tenure_months"] == 36
    assert body["emi"] == 16607.15 and body["foir"] == round((5000 + 16607.15) / 85000, 4)
    # A loan already approved with us counts in the next one's FOIR.
    other = await make_product(api, name="Second Personal Loan")
    alone = (await api.client.post("/eligibility/check", headers=who["headers"],
                                   json={"product_id": other.id, "tenure_months": 12})).json()
    admin = await api.staff("admin")
    loan = await _apply(api, who, product, amount=500000, tenure_months=36)
    await api.client.post(f"/admin/loans/{loan.json()['loan_id']}/approve", headers=bearer(admin))
    again = (await api.client.post("/eligibility/check", headers=who["headers"],
                                   json={"product_id": other.id, "tenure_months": 12})).json()
    # Headroom 37,500 a month alone; 37,500 - 16,607.15 with the first loan.
    assert 0 < again["max_eligible_amount"] < alone["max_eligible_amount"] < 500000


async def test_a_second_open_application_for_the_same_product_is_409(api):
    product = await make_product(api)
    who = await borrower(api)
    first = await _apply(api, who, product)
    assert first.status_code == 201
    r = await _apply(api, who, product, amount=60000)
    assert r.status_code == 409 and r.json()["error_code"] == "duplicate_application"
    assert await _loan_count(api) == 1
    # Rejected, it is no longer open: a new application is accepted.
    admin = await api.staff("admin")
    r = await api.client.post(f"/admin/loans/{first.json()['loan_id']}/reject", headers=bearer(admin),
                              json={"reason": "Income could not be verified"})
    assert r.status_code == 200 and r.json()["status"] == "REJECTED"
    await _mailed(api, who["email"], "Your loan application was not approved")
    mail = next(m for m in api.mailbox.for_address(who["email"])
                if m["Subject"] == "Your loan application was not approved")
    assert "Reason: Income could not be verified" in mail.get_body(preferencelist=("plain",)).get_content()
    assert (await _apply(api, who, product, amount=60000)).status_code == 201


async def test_transitions_out_of_order_are_409_and_customers_cannot_make_them(api):
    product = await make_product(api)
    who = await borrower(api)
    admin = await api.staff("admin")
    loan_id = (await _apply(api, who, product)).json()["loan_id"]
    for path in ("disburse", "pre-close/confirm"):
        r = await api.client.post(f"/admin/loans/{loan_id}/{path}", headers=bearer(admin))
        assert r.status_code == 409 and r.json()["error_code"] == "invalid_transition", (path, r.text)
    r = await api.client.post(f"/loans/my-loans/{loan_id}/repayments", headers=who["headers"], json={"amount": 100})
    assert r.status_code == 409 and r.json()["error_code"] == "invalid_transition"
    # Whole sentences, not "A APPLIED loan takes no repayments."
    assert r.json()["detail"] == "The loan is APPLIED; only a disbursed, open loan takes repayments."
    r = await api.client.get(f"/loans/my-loans/{loan_id}/pre-close", headers=who["headers"])
    assert r.status_code == 409
    assert r.json()["detail"] == "The loan is APPLIED; a pre-closure quote exists only for a DISBURSED loan."
    r = await api.client.post(f"/admin/loans/{loan_id}/approve", headers=who["headers"])
    assert r.status_code == 403 and r.json()["error_code"] == "insufficient_role"
    auditor = await api.staff("auditor")
    assert (await api.client.post(f"/admin/loans/{loan_id}/approve", headers=bearer(auditor))).status_code == 403
    assert (await api.client.post(f"/admin/loans/{loan_id}/approve", headers=bearer(admin))).status_code == 200
    r = await api.client.post(f"/admin/loans/{loan_id}/approve", headers=bearer(admin))
    assert r.status_code == 409 and r.json()["error_code"] == "invalid_transition"
    assert r.json()["detail"] == "The loan is APPROVED and cannot become APPROVED."
    r = await api.client.post(f"/admin/loans/{loan_id}/reject", headers=bearer(admin), json={"reason": "Too late"})
    assert r.status_code == 409
    stored = await api.container.db["loans"].find_one({"_id": ObjectId(loan_id)})
    assert stored["status"] == "APPROVED" and [h["status"] for h in stored["history"]] == ["APPLIED", "APPROVED"]


async def test_two_admins_approving_at_once_approve_once(api):
    product = await make_product(api)
    who = await borrower(api)
    admin = await api.staff("admin")
    loan_id = (await _apply(api, who, product)).json()["loan_id"]
    answers = await asyncio.gather(*[api.client.post(f"/admin/loans/{loan_id}/approve", headers=bearer(admin))
                                     for _ in range(3)])
    assert sorted(r.status_code for r in answers) == [200, 409, 409]
    assert (await _actions(api, who["user_id"])).count("loan_approved") == 1


async def test_another_customers_loan_is_404_whatever_the_route(api):
    product = await make_product(api)
    owner, other = await borrower(api), await borrower(api)
    admin = await api.staff("admin")
    loan_id = (await _apply(api, owner, product)).json()["loan_id"]
    await api.client.post(f"/admin/loans/{loan_id}/approve", headers=bearer(admin))
    await accept_kfs(api, loan_id, owner["headers"])
    await api.client.post(f"/admin/loans/{loan_id}/disburse", headers=bearer(admin))
    for target in (loan_id, loan_id.upper(), "not-an-id", "0" * 24):
        for method, path, body in (("GET", "", None), ("GET", "/pre-close", None), ("POST", "/pre-close", None),
                                   ("POST", "/repayments", {"amount": 100})):
            r = await api.client.request(method, f"/loans/my-loans/{target}{path}", headers=other["headers"],
                                         json=body)
            assert r.status_code == 404 and r.json()["error_code"] == "loan_not_found", (target, path, r.text)
    # The owner reads it under any letter case of its id; nothing was paid by the other customer.
    r = await api.client.get(f"/loans/my-loans/{loan_id.upper()}", headers=owner["headers"])
    assert r.status_code == 200 and r.json()["repayments"] == [] and r.json()["status"] == "DISBURSED"
    assert (await api.client.get("/loans/my-loans", headers=other["headers"])).json()["total"] == 0


async def test_overpayment_is_refused_and_changes_nothing(api):
    product = await make_product(api)
    who = await borrower(api)
    admin = await api.staff("admin")
    loan_id = (await _apply(api, who, product)).json()["loan_id"]
    await api.client.post(f"/admin/loans/{loan_id}/approve", headers=bearer(admin))
    await accept_kfs(api, loan_id, who["headers"])
    await api.client.post(f"/admin/loans/{loan_id}/disburse", headers=bearer(admin))
    before = await api.container.db["loans"].find_one({"_id": ObjectId(loan_id)})
    r = await api.client.post(f"/loans/my-loans/{loan_id}/repayments", headers=who["headers"],
                              json={"amount": 106618.54})
    assert r.status_code == 422 and r.json()["error_code"] == "overpayment"
    assert await api.container.db["repayments"].count_documents({}) == 0
    after = await api.container.db["loans"].find_one({"_id": ObjectId(loan_id)})
    before.pop("notices", None), after.pop("notices", None)  # notices go out from a job, at their own pace
    assert after == before


# A numeric string too: money travels as a JSON number, as the schema says (see the test below).
@pytest.mark.parametrize("amount", [-1, -0.0, 100.005, "abc", "5000", "5000.00", {"$gt": 0}, None, 0, True, "12,5"])
async def test_malformed_amounts_are_422_and_change_nothing(api, amount):
    product = await make_product(api)
    who = await borrower(api)
    admin = await api.staff("admin")
    loan_id = (await _apply(api, who, product)).json()["loan_id"]
    await api.client.post(f"/admin/loans/{loan_id}/approve", headers=bearer(admin))
    await accept_kfs(api, loan_id, who["headers"])
    await api.client.post(f"/admin/loans/{loan_id}/disburse", headers=bearer(admin))
    r = await api.client.post(f"/loans/my-loans/{loan_id}/repayments", headers=who["headers"], json={"amount": amount})
    assert r.status_code == 422, r.text
    error = r.json()
    assert error["error_code"] == "validation_error" and error["errors"][0]["loc"][:2] == ["body", "amount"]
    assert await api.container.db["repayments"].count_documents({}) == 0
    r = await _apply(api, who, product, amount=amount)
    assert r.status_code == 422 and r.json()["errors"][0]["loc"][:2] == ["body", "amount"]
    assert await _loan_count(api) == 1


@pytest.mark.parametrize("raw", ["100.000000000000001", "99999999999.999999", "5000.001"])
async def test_an_amount_is_read_with_every_digit_it_was_sent_with(api, raw):
    """Too many decimals for a float to keep: read as a float, they rounded into a valid amount."""
    product = await make_product(api)
    who = await borrower(api)
    admin = await api.staff("admin")
    loan_id = (await _apply(api, who, product)).json()["loan_id"]
    await api.client.post(f"/admin/loans/{loan_id}/approve", headers=bearer(admin))
    await accept_kfs(api, loan_id, who["headers"])
    await api.client.post(f"/admin/loans/{loan_id}/disburse", headers=bearer(admin))
    r = await api.client.post(f"/loans/my-loans/{loan_id}/repayments", content=f'{{"amount": {raw}}}',
                              headers={**who["headers"], "Content-Type": "application/json"})
    assert r.status_code == 422 and r.json()["errors"][0]["loc"][:2] == ["body", "amount"], r.text
    assert await api.container.db["repayments"].count_documents({}) == 0


def test_every_api_route_reads_json_numbers_exactly():
    routes = [r for router in ROUTERS for r in router.routes if isinstance(r, APIRoute)]
    assert len(routes) > 50 and [r.path for r in routes if not isinstance(r, ExactJsonRoute)] == []


async def test_money_and_rates_are_json_numbers_in_the_schema(api):
    """Generated clients send numbers: the schema says `number` with standard bounds, never
    `number | string` (pydantic's default for a Decimal) or a non-standard `gt` keyword."""
    schemas = (await api.client.get("http://testserver/openapi.json")).json()
    schemas = schemas["components"]["schemas"]
    amount, rate = schemas["ApplyIn"]["properties"]["amount"], schemas["EmiIn"]["properties"]["annual_interest_rate"]
    assert amount["type"] == "number" and amount["exclusiveMinimum"] == 0 and "anyOf" not in amount
    assert rate["type"] == "number" and rate["minimum"] == 0 and rate["maximum"] == 100
    fields = [(name, key, field) for name, schema in schemas.items()
              for key, field in schema.get("properties", {}).items()]
    number_or_string = [(name, key) for name, key, field in fields
                        if {"number", "string"} <= {option.get("type") for option in field.get("anyOf", [])}]
    assert number_or_string == [] and [(name, key) for name, key, field in fields if "gt" in field] == []


async def test_idempotency_key_gives_one_loan_and_the_first_answer(api):
    product = await make_product(api)
    who = await borrower(api)
    key = {**who["headers"], "Idempotency-Key": "apply-1"}
    first = await api.client.post("/loans/apply", headers=key, json=apply_body(product))
    again = await api.client.post("/loans/apply", headers=key, json=apply_body(product))
    assert first.status_code == again.status_code == 201 and again.json() == first.json()
    assert await _loan_count(api) == 1
    r = await api.client.post("/loans/apply", headers=key, json=apply_body(product, amount=60000))
    assert r.status_code == 422 and r.json()["error_code"] == "idempotency_key_reused"
    assert await _loan_count(api) == 1


async def test_concurrent_applications_make_one_loan(api):
    product, other = await make_product(api), await make_product(api, name="Other Loan")
    who = await borrower(api)
    key = {**who["headers"], "Idempotency-Key": "apply-2"}
    same_key = await asyncio.gather(*[api.client.post("/loans/apply", headers=key, json=apply_body(product))
                                      for _ in range(2)])
    assert [r.status_code for r in same_key] == [201, 201] and same_key[0].json() == same_key[1].json()
    no_key = await asyncio.gather(*[api.client.post("/loans/apply", headers=who["headers"], json=apply_body(other))
                                    for _ in range(2)])
    assert sorted(r.status_code for r in no_key) == [201, 409]
    assert await _loan_count(api) == 2


async def test_admin_loan_book_direct_loans_and_statistics(api):
    product = await make_product(api)
    a, b = await borrower(api), await borrower(api)
    admin, auditor = await api.staff("admin"), await api.staff("auditor")
    loan_a = (await _apply(api, a, product)).json()["loan_id"]
    r = await api.client.post("/admin/loans", headers=bearer(admin),
                              json={**apply_body(product, amount=200000, tenure_months=24), "user_id": b["user_id"]})
    assert r.status_code == 201 and r.json()["status"] == "APPROVED" and r.json()["origin"] == "direct", r.text
    loan_b = r.json()["loan_id"]
    assert r.json()["kfs"]["net_disbursed"] == 196000
    await _mailed(api, b["email"], "A loan was opened for you")
    assert (await _actions(api, b["user_id"])) == ["loan_opened"]
    await accept_kfs(api, loan_b, b["headers"])
    r = await api.client.post(f"/admin/loans/{loan_b}/disburse", headers=bearer(admin))
    assert r.status_code == 200
    # Direct loans follow the same rules: KYC, eligibility, one per product.
    c = await borrower(api, kyc=False)
    r = await api.client.post("/admin/loans", headers=bearer(admin), json={**apply_body(product), "user_id": c["user_id"]})
    assert r.status_code == 403 and r.json()["error_code"] == "kyc_not_approved"
    r = await api.client.post("/admin/loans", headers=bearer(admin), json={**apply_body(product), "user_id": b["user_id"]})
    assert r.status_code == 409
    r = await api.client.post("/admin/loans", headers=bearer(admin),
                              json={**apply_body(product), "user_id": str(ObjectId())})
    assert r.status_code == 404 and r.json()["error_code"] == "user_not_found"

    r = await api.client.get("/admin/loans", headers=bearer(auditor), params={"status": "APPLIED"})
    assert r.status_code == 200 and [x["loan_id"] for x in r.json()["items"]] == [loan_a] and r.json()["total"] == 1
    r = await api.client.get("/admin/loans", headers=bearer(auditor), params={"user_id": b["user_id"].upper()})
    assert [x["loan_id"] for x in r.json()["items"]] == [loan_b]
    r = await api.client.get("/admin/loans", headers=bearer(auditor), params={"product_id": product.id,
                                                                              "page_size": 1})
    assert r.json()["total"] == 2 and len(r.json()["items"]) == 1 and r.json()["page_size"] == 1
    assert (await api.client.get("/admin/loans", headers=bearer(auditor), params={"status": "NOPE"})).status_code == 422
    assert (await api.client.get("/admin/loans", headers=a["headers"])).status_code == 403
    assert (await api.client.post(f"/admin/loans/{loan_a}/approve", headers=bearer(auditor))).status_code == 403

    r = await api.client.get("/admin/statistics", headers=bearer(auditor))
    stats = r.json()
    assert r.status_code == 200
    assert stats["by_status"]["APPLIED"] == {"count": 1, "amount": 100000}
    assert stats["by_status"]["DISBURSED"] == {"count": 1, "amount": 200000}
    assert stats["disbursed"] == {"count": 1, "amount": 200000, "net_amount": 196000}
    schedule = build_schedule(D(200000), D(12), 24)
    assert stats["outstanding"] == {"count": 1, "amount": float(schedule.total_payment)}
    assert stats["by_product"] == [{"product_id": product.id, "name": product.name, "type": "personal",
                                    "count": 2, "amount": 300000}]
    today = api.container.clock.now().date().isoformat()
    assert len(stats["daily_trend"]) == 30 and stats["daily_trend"][-1] == {
        "date": today, "applications": 2, "applied_amount": 300000, "disbursals": 1, "disbursed_amount": 200000}
    assert all(d["applications"] == 0 for d in stats["daily_trend"][:-1])

    overview = (await api.client.get("/admin/stats", headers=bearer(auditor))).json()["loans"]
    assert overview["total"] == 2 and overview["status_counts"]["APPROVED"] == 0
    assert overview["status_counts"]["DISBURSED"] == 1 and overview["disbursed_amount"] == 200000
    detail = (await api.client.get(f"/admin/users/{b['user_id']}", headers=bearer(auditor))).json()
    assert [x["loan_id"] for x in detail["loans"]] == [loan_b] and detail["loans"][0]["status"] == "DISBURSED"


async def test_products_browse_and_emi_calculator(api):
    personal = await make_product(api)
    await make_product(api, name="Home", type="home", min_amount=D(500000), max_amount=D(5000000),
                       max_tenure_months=240, annual_interest_rate=D("8.5"))
    await make_product(api, name="Retired", active=False)
    r = await api.client.get("/loans/products")
    assert r.status_code == 200 and r.json()["total"] == 2
    assert {p["name"] for p in r.json()["items"]} == {"Test Personal Loan", "Home"}
    assert r.json()["items"][0]["bank_name"] == "Test Bank"
    assert [p["name"] for p in (await api.client.get("/loans/products", params={"type": "home"})).json()["items"]] == \
        ["Home"]
    by_amount = (await api.client.get("/loans/products", params={"amount": "600000"})).json()["items"]
    assert [p["name"] for p in by_amount] == ["Home"]
    by_tenure = (await api.client.get("/loans/products", params={"tenure_months": 120})).json()["items"]
    assert [p["name"] for p in by_tenure] == ["Home"]
    assert (await api.client.get("/loans/products", params={"amount": "-5"})).status_code == 422
    r = await api.client.get(f"/loans/products/{personal.id}")
    assert r.status_code == 200 and r.json()["annual_interest_rate"] == 12 and r.json()["max_foir"] == 0.5
    for missing in ("nope", str(ObjectId())):
        r = await api.client.get(f"/loans/products/{missing}")
        assert r.status_code == 404 and r.json()["error_code"] == "product_not_found"

    r = await api.client.post("/eligibility/calculate-emi",
                              json={"principal": 100000, "annual_interest_rate": 12, "tenure_months": 12})
    assert r.status_code == 200 and r.json() == {"emi": 8884.88, "total_interest": 6618.53,
                                                 "total_payment": 106618.53, "schedule": None}
    r = await api.client.post("/eligibility/calculate-emi", json={"principal": 100000, "annual_interest_rate": 12,
                                                                  "tenure_months": 12, "include_schedule": True})
    rows = r.json()["schedule"]
    assert len(rows) == 12 and rows[-1]["closing_balance"] == 0 and rows[0]["interest"] == 1000
    for bad in ({"principal": 0}, {"principal": 100.001}, {"annual_interest_rate": 101}, {"tenure_months": 361},
                {"annual_interest_rate": 1.00001}, {"principal": "x"}):
        r = await api.client.post("/eligibility/calculate-emi",
                                  json={"principal": 100000, "annual_interest_rate": 12, "tenure_months": 12, **bad})
        assert r.status_code == 422 and r.json()["error_code"] == "validation_error", bad


async def test_disbursal_dates_a_daily_loan_from_the_disbursal_day(api):
    product = await make_product(api, name="Micro", type="micro", repayment_frequency="daily", min_amount=D(5000),
                                 max_amount=D(100000), min_tenure_months=3, max_tenure_months=12,
                                 annual_interest_rate=D(24), max_risk_level="High")
    who = await borrower(api, risk="High")
    admin = await api.staff("admin")
    r = await _apply(api, who, product, amount=30000, tenure_months=3)
    assert r.status_code == 201, r.text
    assert r.json()["kfs"]["instalments"] == 90 and r.json()["repayment_frequency"] == "daily"
    loan_id = r.json()["loan_id"]
    await api.client.post(f"/admin/loans/{loan_id}/approve", headers=bearer(admin))
    await accept_kfs(api, loan_id, who["headers"])
    loan = (await api.client.post(f"/admin/loans/{loan_id}/disburse", headers=bearer(admin))).json()
    day0 = date.fromisoformat(loan["disbursed_on"])
    assert loan["schedule"][0]["due_date"] == date.fromordinal(day0.toordinal() + 1).isoformat()
    assert loan["schedule"][-1]["due_date"] == date.fromordinal(day0.toordinal() + 90).isoformat()
    assert loan["payout_reference"].startswith("PAYOUT-")


async def test_a_notice_job_that_runs_twice_mails_once(api):
    product = await make_product(api)
    who = await borrower(api)
    loan_id = (await _apply(api, who, product)).json()["loan_id"]
    await _mailed(api, who["email"], "We received your loan application")
    jobs = api.container.db["jobs"]
    job = await eventually(lambda: jobs.find_one({"key": f"customer_notice:loan:{loan_id}:0", "status": "done"}))
    assert job is not None
    # The same job again (a lease that lapsed after the send): the job remembers the mail went.
    await jobs.update_one({"_id": job["_id"]}, {"$set": {"status": "queued"}})
    await eventually(lambda: jobs.find_one({"_id": job["_id"], "status": "done"}))
    await asyncio.sleep(0.2)
    assert _subjects(api, who["email"]).count("We received your loan application") == 1


async def test_loan_routes_take_only_a_small_json_body(api):
    who = await borrower(api)
    r = await api.client.post("/loans/apply", headers=who["headers"],
                              json={"product_id": "0" * 24, "amount": 1000, "tenure_months": 12, "purpose": "x" * 20000})
    assert r.status_code == 413 and r.json()["error_code"] == "payload_too_large"
    r = await api.client.post(f"/loans/my-loans/{'0' * 24}/repayments", headers=who["headers"],
                              content=b"{\"amount\": 1" + b"0" * 20000 + b"}")
    assert r.status_code == 413
    assert await _loan_count(api) == 0
