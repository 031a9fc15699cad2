"""OWASP API Security Top 10 (2023), API6: Unrestricted Access to Sensitive Business Flows

Items of issue 15 that belong here: FOIR counts the whole book (3), a typed number never condemns someone else (5). Each test fails on the code before the fix."""

from __future__ import annotations

# --- item 3: FOIR counts the whole book -------------------------------------------------------------
# Three personal-loan products with a 0.5 FOIR limit; 150,000 over 12 months at 12 % is an EMI of
# 13,327.32. Each application is eligible alone; what decides is every open application and loan.


async def _foir_products(api, n=3):
    from tests.integration.lending_helpers import make_product

    return [await make_product(api, name=f"Book Loan {i}") for i in range(n)]


async def _apply_for(api, who, product, amount=150000):
    from tests.integration.lending_helpers import apply_body

    return await api.client.post("/loans/apply", headers=who["headers"],
                                 json=apply_body(product, amount=amount, tenure_months=12))


def _codes(body):
    return [x["code"] for x in body["reasons"]]


async def test_open_applications_count_in_foir_so_the_third_that_overflows_is_refused(api):
    from tests.integration.lending_helpers import borrower

    a, b, c = await _foir_products(api)
    # 23,345.36 + 2 x 13,327.32 = 50,000.00: two applications land exactly on the limit (allowed).
    who = await borrower(api, income=100000.0, existing_emi=23345.36)
    for product in (a, b, c):
        alone = await api.client.post("/eligibility/check", headers=who["headers"],
                                      json={"product_id": product.id, "amount": 150000, "tenure_months": 12})
        assert alone.json()["eligible"] and alone.json()["foir"] == 0.3667, alone.text
    assert (await _apply_for(api, who, a)).status_code == 201
    check = await api.client.post("/eligibility/check", headers=who["headers"],
                                  json={"product_id": b.id, "amount": 150000, "tenure_months": 12})
    assert check.json()["eligible"] and check.json()["foir"] == 0.5, check.text  # A's EMI counts
    r = await _apply_for(api, who, b)
    assert r.status_code == 201, r.text
    # The third would take the EMIs to 63.33 % of the income: refused, with the FOIR named.
    check = await api.client.post("/eligibility/check", headers=who["headers"],
                                  json={"product_id": c.id, "amount": 150000, "tenure_months": 12})
    assert not check.json()["eligible"] and _codes(check.json()) == ["foir_exceeded"]
    assert check.json()["foir"] == 0.6333
    r = await _apply_for(api, who, c)
    assert r.status_code == 422 and r.json()["error_code"] == "not_eligible", r.text
    assert _codes(r.json()) == ["foir_exceeded"] and "63.33 %" in r.json()["reasons"][0]["message"]
    assert await api.container.db["loans"].count_documents({"user_id": who["user_id"]}) == 2
    # One paisa more of declared EMIs and the second no longer fits: the limit is exact, not rounded.
    tight = await borrower(api, income=100000.0, existing_emi=23345.37)
    assert (await _apply_for(api, tight, a)).status_code == 201
    r = await _apply_for(api, tight, b)
    assert r.status_code == 422 and _codes(r.json()) == ["foir_exceeded"], r.text


async def test_applications_sent_at_once_are_judged_one_after_the_other_and_never_a_500(api):
    """Each judges the book inside its own transaction after writing the book's version: at once, they
    conflict and retry, so exactly as many pass as fit, and a conflict that outlasts the retries is a
    409 the client may retry, never a 500 (24 at once were 18 x 500)."""
    import asyncio

    from tests.integration.lending_helpers import borrower

    products = await _foir_products(api, n=8)
    # Room for three EMIs of 13,327.32 under 0.5 of 100,000 (with 5,000 declared): 8 sent at once.
    who = await borrower(api, income=100000.0, existing_emi=5000.0)
    answers = await asyncio.gather(*(_apply_for(api, who, p) for p in products))
    codes = sorted(r.status_code for r in answers)
    assert 500 not in codes and set(codes) <= {201, 409, 422}, [r.text for r in answers]
    for r in answers:
        if r.status_code == 409:
            assert r.json()["error_code"] == "concurrent_change" and r.headers["retry-after"] == "1"
        if r.status_code == 422:
            assert _codes(r.json()) == ["foir_exceeded"], r.text
    assert codes.count(201) <= 3  # never more than fit
    stored = await api.container.db["loans"].count_documents({"user_id": who["user_id"]})
    assert stored == codes.count(201)


async def test_approval_rechecks_every_open_application_and_loan(api):
    from dataclasses import replace

    from tests.conftest import bearer
    from tests.integration.lending_helpers import borrower

    a, b, c = await _foir_products(api)
    who = await borrower(api, income=85000.0, existing_emi=5000.0)
    admin = await api.staff("admin")
    ids = [(await _apply_for(api, who, p)).json()["loan_id"] for p in (a, b)]
    # A third application stored by an apply that raced the other two and did not see them.
    repo = api.container.loans.loans
    racing = await repo.add(replace(await repo.get(ids[1]), id="", product_id=c.id, product=c))
    ids.append(racing.id)
    # Together 5,000 + 3 x 13,327.32 = 52.92 % of 85,000: none can be approved while all three are open.
    for loan_id in ids:
        r = await api.client.post(f"/admin/loans/{loan_id}/approve", headers=bearer(admin))
        assert r.status_code == 422 and r.json()["error_code"] == "not_eligible", r.text
        assert _codes(r.json()) == ["foir_exceeded"] and "52.92 %" in r.json()["reasons"][0]["message"]
    statuses = {d["status"] async for d in api.container.db["loans"].find({"user_id": who["user_id"]})}
    assert statuses == {"APPLIED"}
    # The officer rejects one; the other two fit together and are approved.
    r = await api.client.post(f"/admin/loans/{ids[2]}/reject", headers=bearer(admin), json={"reason": "Over FOIR"})
    assert r.status_code == 200
    for loan_id in ids[:2]:
        r = await api.client.post(f"/admin/loans/{loan_id}/approve", headers=bearer(admin))
        assert r.status_code == 200 and r.json()["status"] == "APPROVED", r.text


async def test_approval_and_direct_loans_are_refused_once_the_book_no_longer_fits(api):
    from tests.conftest import bearer
    from tests.integration.lending_helpers import apply_body, borrower

    a, b = await _foir_products(api, 2)
    who = await borrower(api, income=85000.0, existing_emi=5000.0)
    admin = await api.staff("admin")
    applied = (await _apply_for(api, who, a)).json()["loan_id"]
    # A direct loan of 300,000 (EMI 26,654.64) fits alone (37.24 %), not beside the open application.
    r = await api.client.post("/admin/loans", headers=bearer(admin),
                              json={**apply_body(b, amount=300000, tenure_months=12), "user_id": who["user_id"]})
    assert r.status_code == 422 and r.json()["error_code"] == "not_eligible", r.text
    assert _codes(r.json()) == ["foir_exceeded"]
    assert await api.container.db["loans"].count_documents({"user_id": who["user_id"]}) == 1
    # The customer's declared EMIs grew after applying: approval judges the book as it is now.
    r = await api.client.put("/users/me/financial-details", headers=who["headers"], json={
        "monthly_income": 85000, "monthly_expenses": 20000, "existing_emi": 30000, "credit_score": 760})
    assert r.status_code == 200
    r = await api.client.post(f"/admin/loans/{applied}/approve", headers=bearer(admin))
    assert r.status_code == 422 and _codes(r.json()) == ["foir_exceeded"], r.text
    stored = await api.container.db["loans"].find_one({"user_id": who["user_id"]})
    assert stored["status"] == "APPLIED" and len(stored["history"]) == 1


# --- item 5: a typed number never condemns someone else ---------------------------------------------
# Only numbers the documents themselves show (read by OCR) in submitted or approved cases are compared;
# a number typed for an image that does not show it is a review check on the typist's own case.


async def test_a_victims_number_typed_over_another_image_never_makes_the_victims_case_a_duplicate(api):
    import numpy as np

    from tests.conftest import bearer
    from tests.integration.test_kyc_api import PERSON, SELFIE, checks_done, customer, ready_case, selfie, upload
    from tests.integration.test_verification_api import encode
    from tests.ml import cards

    victim = await customer(api)
    # One attacker types the victim's Aadhaar number over a blank image and never submits.
    blank = await customer(api, name="Vikram Singh")
    r = await upload(api, blank, "aadhaar", encode(np.full((600, 960, 3), 235, np.uint8)), number=PERSON.aadhaar)
    assert r.status_code == 201, r.text
    # Another types it over his own genuine card and submits, with his own PAN and a selfie.
    other = cards.Person(name="Vikram Singh", aadhaar=cards.aadhaar_number("34567890123"), pan="BCDPV5678L")
    typist = await customer(api, name=other.name)
    r = await upload(api, typist, "aadhaar", encode(cards.aadhaar_front(other)), number=PERSON.aadhaar)
    assert r.status_code == 201, r.text
    assert (await upload(api, typist, "pan", encode(cards.pan_card(other)))).status_code == 201
    assert (await selfie(api, typist, SELFIE)).status_code == 201
    assert (await api.client.post("/kyc/submit", headers=typist["headers"])).status_code == 202
    typed_case = await checks_done(api, typist)

    victim_case_id = await ready_case(api, victim)
    assert (await api.client.post("/kyc/submit", headers=victim["headers"])).status_code == 202
    await checks_done(api, victim)
    auditor = await api.staff("auditor")
    detail = (await api.client.get(f"/kyc/{victim_case_id}", headers=bearer(auditor))).json()
    duplicate = [c for c in detail["checks"] if c["name"] == "duplicate_document"]
    assert [c["status"] for c in duplicate] == ["pass", "pass"], duplicate
    assert detail["risk_level"] != "High", detail["checks"]

    # The typist's own case carries the doubt: a review check on the document whose image lacks the number.
    typed = (await api.client.get(f"/kyc/{typed_case['kyc_id']}", headers=bearer(auditor))).json()
    aadhaar = next(d for d in typed["documents"] if d["document_type"] == "aadhaar")
    assert aadhaar["corrections"]["document_number"] == "XXXX XXXX " + PERSON.aadhaar[-4:]
    review = [c for c in typed["checks"] if c["name"] == "corrections" and c["document_id"] == aadhaar["document_id"]]
    assert [c["status"] for c in review] == ["review"], typed["checks"]
    assert not any(c["name"] == "duplicate_document" and c["status"] == "fail" for c in typed["checks"])
    # The blank image's case (never submitted) holds the typed number only as a correction to review.
    open_case = (await api.client.get("/kyc/me", headers=blank["headers"])).json()
    assert open_case["status"] == "OPEN"
    assert open_case["documents"][0]["corrections"]["document_number"] == "XXXX XXXX " + PERSON.aadhaar[-4:]
