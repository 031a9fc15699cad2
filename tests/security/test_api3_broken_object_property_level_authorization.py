"""OWASP API Security Top 10 (2023), API3: Broken Object Property Level Authorization

Items of issue 15 that belong here: verified name and date of birth stay verified (4), internal notes stay internal (14), customers do not see scores (15). Each test fails on the code before the fix."""

from __future__ import annotations

# --- item 4: what KYC verified stays verified -------------------------------------------------------


async def test_verified_name_and_date_of_birth_cannot_change_and_eligibility_reads_them(api):
    from bson import ObjectId

    from tests.integration.lending_helpers import born_years_ago, borrower, make_product

    product = await make_product(api)  # ages 21-60, tenures up to 60 months
    who = await borrower(api)  # born 1990-04-12, KYC approved with that date of birth and "Asha Rao"
    users = api.container.db["user"]
    before = await users.find_one({"_id": ObjectId(who["user_id"])})
    old = born_years_ago(59, api.container.clock.now().date())  # 59: over 60 before a long loan ends

    for body, fields in (({"dob": old}, ["dob"]), ({"dob": None}, ["dob"]),
                         ({"name": "Someone Else", "dob": old, "children": 1}, ["name", "dob"])):
        r = await api.client.patch("/users/me", headers=who["headers"], json=body)
        assert r.status_code == 409 and r.json()["error_code"] == "identity_verified", (body, r.text)
        assert [e["loc"][-1] for e in r.json()["errors"]] == fields
    after = await users.find_one({"_id": ObjectId(who["user_id"])})
    assert after["profile"] == before["profile"] and after["name"] == before["name"]  # nothing stored, children neither

    # The verified values sent again, or other fields, are fine.
    r = await api.client.patch("/users/me", headers=who["headers"],
                               json={"name": "Asha Rao", "dob": "1990-04-12", "family_size": 3})
    assert r.status_code == 200 and r.json()["profile"]["family_size"] == 3, r.text

    # Eligibility reads what KYC verified, not whatever the profile says now (a record changed behind
    # the API's back, or written before names and dates were pinned).
    await users.update_one({"_id": ObjectId(who["user_id"])}, {"$set": {"profile.dob": old}})
    r = await api.client.post("/eligibility/check", headers=who["headers"],
                              json={"product_id": product.id, "amount": 100000, "tenure_months": 60})
    assert r.status_code == 200 and r.json()["eligible"] and r.json()["reasons"] == [], r.text


async def test_name_and_date_of_birth_are_held_while_the_case_is_under_review(api):
    from app.domain.users import KycStatus
    from tests.conftest import bearer

    tokens = await api.customer()
    assert (await api.client.patch("/users/me", headers=bearer(tokens), json={"dob": "1990-04-12"})).status_code == 200
    await api.container.users_repo.set_kyc_status(tokens["user_id"], KycStatus.SUBMITTED, api.container.clock.now())
    r = await api.client.patch("/users/me", headers=bearer(tokens), json={"dob": "1960-01-01"})
    assert r.status_code == 409 and r.json()["error_code"] == "identity_under_review", r.text
    assert [e["loc"][-1] for e in r.json()["errors"]] == ["dob"]
    # Rejected, the customer may correct them before the next case.
    await api.container.users_repo.set_kyc_status(tokens["user_id"], KycStatus.REJECTED, api.container.clock.now())
    r = await api.client.patch("/users/me", headers=bearer(tokens), json={"dob": "1960-01-01", "name": "Asha Rao K"})
    assert r.status_code == 200 and r.json()["profile"]["dob"] == "1960-01-01" and r.json()["name"] == "Asha Rao K"
