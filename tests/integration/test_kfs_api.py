"""The Key Fact Statement over HTTP: what it shows (number, validity, every charge, cooling-off, grievance
officer, recovery), a disbursal refused until the borrower accepts it, a lapsed or foreign number refused, the
acceptance recorded with time and address, its event and its mail."""

from __future__ import annotations

from datetime import date, timedelta
from decimal import Decimal

from app.domain.delinquency import PenalKind, PenalRule
from tests.conftest import bearer, eventually
from tests.integration.lending_helpers import apply_body, borrower, make_product, relogin

D = Decimal


async def _mailed(api, email: str, subject: str) -> bool:
    return subject in [m["Subject"] for m in api.mailbox.for_address(email)]


async def test_a_disbursal_is_refused_until_the_borrower_accepts_the_kfs_in_its_validity(api):
    clock, db = api.container.clock, api.container.db
    product = await make_product(api, penal_charge=PenalRule(PenalKind.PERCENT, D(2), D(1000)), cooling_off_days=5,
                                 third_party_charges=[{"name": "Credit life insurance", "amount": D(1500)}])
    who, admin = await borrower(api), bearer(await api.staff("admin"))
    h = who["headers"]
    r = await api.client.post("/loans/apply", headers=h, json=apply_body(product, amount=100000, tenure_months=12))
    assert r.status_code == 201, r.text
    loan_id, kfs = r.json()["loan_id"], r.json()["kfs"]
    today = clock.now().date()
    assert kfs["number"] == f"KFS-{loan_id}-1" and kfs["issued_on"] == today.isoformat()
    assert date.fromisoformat(kfs["valid_until"]) >= today + timedelta(days=3) and kfs["validity_working_days"] == 3
    assert kfs["third_party_charges"] == [{"name": "Credit life insurance", "amount": 1500}]
    assert kfs["processing_fee"] == 2000 and kfs["net_disbursed"] == 96500  # the fee and the premium kept back
    assert kfs["penal_charge"] == {"kind": "percent", "value": 2, "cap": 1000} and kfs["cooling_off_days"] == 5
    assert kfs["prepayment_charge_pct"] == 4 and kfs["accepted"] is None
    assert kfs["grievance_officer"] == {"name": "Grievance Officer", "email": "grievances@example.com",
                                        "phone": "+911800000000"}
    assert kfs["recovery"]["agents_used"] is False and "recovery agent" in kfs["recovery"]["policy"]
    assert (await api.client.post(f"/admin/loans/{loan_id}/approve", headers=admin)).status_code == 200

    # Not accepted: the disbursal is refused and nothing changes.
    before = await db["loans"].find_one({})
    r = await api.client.post(f"/admin/loans/{loan_id}/disburse", headers=admin)
    assert r.status_code == 409 and r.json()["error_code"] == "kfs_not_accepted", r.text
    assert await db["loans"].find_one({}) == before

    # The first issue lapses unaccepted: its number is expired, the view shows the next; a made-up one is stale.
    clock.advance(days=10)
    who = await relogin(api, who)
    h, admin = who["headers"], bearer(await api.staff("admin"))
    accept = f"/loans/my-loans/{loan_id}/kfs/accept"
    r = await api.client.post(accept, headers=h, json={"kfs_number": kfs["number"]})
    assert r.status_code == 409 and r.json()["error_code"] == "kfs_expired", r.text
    current = (await api.client.get(f"/loans/my-loans/{loan_id}", headers=h)).json()["kfs"]
    assert current["number"] not in (kfs["number"], f"KFS-{loan_id}-1") and current["issued_on"] > kfs["valid_until"]
    assert {k: v for k, v in current.items() if k not in ("number", "issued_on", "valid_until")} == {
        k: v for k, v in kfs.items() if k not in ("number", "issued_on", "valid_until")}  # the same terms
    for number in (f"KFS-{loan_id}-99", "KFS-000000000000000000000000-1"):
        r = await api.client.post(accept, headers=h, json={"kfs_number": number})
        assert r.status_code == 409 and r.json()["error_code"] == "kfs_stale", r.text
    r = await api.client.post(accept, headers=h, json={})
    assert r.status_code == 422 and r.json()["errors"][0]["loc"] == ["body", "kfs_number"]
    assert await db["loans"].find_one({}) == before and not await db["events"].find_one({"type": "loan.kfs_accepted"})

    # Accepted: recorded with the time and the caller's address, one event and one mail, then disbursed.
    r = await api.client.post(accept, headers=h, json={"kfs_number": current["number"]})
    assert r.status_code == 200, r.text
    accepted = r.json()["kfs"]["accepted"]
    assert accepted == {"number": current["number"], "at": accepted["at"], "ip_address": "203.0.113.7"}
    assert r.json()["loan"]["status"] == "APPROVED"
    stored = (await db["loans"].find_one({}))["kfs_acceptance"]
    assert stored["number"] == current["number"] and stored["ip_address"] == "203.0.113.7"
    again = await api.client.post(accept, headers=h, json={"kfs_number": current["number"]})
    assert again.status_code == 200 and again.json()["kfs"]["accepted"] == accepted  # the same answer
    events = await db["events"].find({"type": "loan.kfs_accepted"}).to_list(None)
    assert len(events) == 1 and events[0]["data"]["kfs_number"] == current["number"]
    assert await api.container.db["user_log"].count_documents({"action": "loan_kfs_accepted"}) == 1
    await eventually(lambda: _mailed(api, who["email"], "You accepted your Key Fact Statement"))
    r = await api.client.post(f"/admin/loans/{loan_id}/disburse", headers=admin)
    assert r.status_code == 200 and r.json()["status"] == "DISBURSED" and r.json()["net_disbursed"] == 96500
    assert r.json()["kfs"]["number"] == current["number"]  # the accepted issue, for good
    r = await api.client.post(accept, headers=h, json={"kfs_number": "KFS-other-1"})
    assert r.status_code == 409 and r.json()["error_code"] == "invalid_transition"  # disbursed: too late


async def test_only_the_borrower_accepts_and_not_after_the_disbursal(api):
    product = await make_product(api)
    who, other = await borrower(api), await borrower(api)
    r = await api.client.post("/loans/apply", headers=who["headers"], json=apply_body(product))
    loan_id, number = r.json()["loan_id"], r.json()["kfs"]["number"]
    accept = f"/loans/my-loans/{loan_id}/kfs/accept"
    assert (await api.client.post(accept, json={"kfs_number": number})).status_code == 401
    r = await api.client.post(accept, headers=other["headers"], json={"kfs_number": number})
    assert r.status_code == 404 and r.json()["error_code"] == "loan_not_found"
    admin = bearer(await api.staff("admin"))
    r = await api.client.post(f"/admin/loans/{loan_id}/reject", headers=admin, json={"reason": "Income unverified"})
    assert r.status_code == 200
    r = await api.client.post(accept, headers=who["headers"], json={"kfs_number": number})
    assert r.status_code == 409 and r.json()["error_code"] == "invalid_transition"
    assert (await api.container.db["loans"].find_one({}))["kfs_acceptance"] is None


async def test_a_product_s_third_party_charges_are_set_over_the_api_and_bad_ones_change_nothing(api):
    from tests.integration.test_catalogue_api import PRODUCT, _bank

    admin = await api.staff("admin")
    bank_id = await _bank(api, admin)
    charges = [{"name": "Credit life insurance", "amount": 1200.5}, {"name": "Stamp duty", "amount": 100}]
    r = await api.client.post("/admin/products", headers=bearer(admin),
                              json={**PRODUCT, "bank_id": bank_id, "third_party_charges": charges})
    assert r.status_code == 201 and r.json()["third_party_charges"] == charges, r.text
    raw = await api.container.db["loan_products"].find_one({})
    assert [c["name"] for c in raw["third_party_charges"]] == ["Credit life insurance", "Stamp duty"]
    for bad, loc in (([{"name": "X", "amount": 10}], "name"), ([{"name": "Insurance", "amount": -1}], "amount"),
                     ([{"name": "Insurance"}], "amount"), ([{"name": "Fee", "amount": 1}] * 11, None)):
        r = await api.client.post("/admin/products", headers=bearer(admin),
                                  json={**PRODUCT, "name": "Another", "bank_id": bank_id, "third_party_charges": bad})
        assert r.status_code == 422, r.text
        assert r.json()["errors"][0]["loc"][:2] == ["body", "third_party_charges"]
        assert loc is None or r.json()["errors"][0]["loc"][-1] == loc
    assert await api.container.db["loan_products"].count_documents({}) == 1
