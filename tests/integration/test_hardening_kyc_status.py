"""`GET /users/me/kyc-status` says when the KYC status last changed, not when anything on the
account did: a password reset or a profile edit leaves it alone."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from tests.conftest import PASSWORD, bearer


def _at(value: str) -> datetime:
    return datetime.fromisoformat(value.replace("Z", "+00:00"))


async def _kyc(api: Any, tokens: dict[str, Any]) -> dict[str, Any]:
    r = await api.client.get("/users/me/kyc-status", headers=bearer(tokens))
    assert r.status_code == 200, r.text
    return r.json()


async def test_a_password_reset_and_profile_edits_do_not_move_it(api, email):
    tokens = await api.customer(email)
    created = (await api.client.get("/users/me", headers=bearer(tokens))).json()["created_at"]
    before = await _kyc(api, tokens)
    assert before == {"kyc_status": "PENDING", "risk_level": None, "updated_at": created}

    api.container.clock.advance(days=2)
    r = await api.client.post("/auth/password/forgot", json={"identifier": email})
    assert r.status_code == 200
    new_password = "a-completely-new-passphrase"
    r = await api.client.post("/auth/password/reset", json={"identifier": email, "otp": api.mailbox.last_code(email),
                                                            "new_password": new_password})
    assert r.status_code == 200, r.text
    r = await api.client.post("/auth/login", json={"identifier": email, "password": new_password})
    assert r.status_code == 200
    tokens = r.json()
    r = await api.client.patch("/users/me", headers=bearer(tokens), json={"gender": "female", "family_size": 3})
    assert r.status_code == 200
    stored = await api.container.db["user"].find_one({"email": email})
    assert stored["updated_at"] > _at(created)  # the record did change
    assert await _kyc(api, tokens) == before


async def test_it_follows_the_stored_status_change_time(api, email):
    tokens = await api.customer(email)
    changed = datetime(2026, 11, 23, 9, 30, 15, 123000, tzinfo=UTC)
    await api.container.db["user"].update_one(
        {"email": email}, {"$set": {"kyc_status": "SUBMITTED", "kyc_status_updated_at": changed}})
    body = await _kyc(api, tokens)
    assert body == {"kyc_status": "SUBMITTED", "risk_level": None, "updated_at": "2026-11-23T09:30:15.123Z"}


async def test_a_record_stored_without_the_field_falls_back_to_its_creation(api, email):
    tokens = await api.customer(email)
    created = (await api.client.get("/users/me", headers=bearer(tokens))).json()["created_at"]
    await api.container.db["user"].update_one(
        {"email": email}, {"$unset": {"kyc_status_updated_at": ""},
                           "$set": {"updated_at": datetime(2030, 1, 1, tzinfo=UTC)}})
    assert (await _kyc(api, tokens))["updated_at"] == created


async def test_a_new_account_records_when_its_status_began(api, email):
    await api.register(email, password=PASSWORD)
    stored = await api.container.db["user"].find_one({"email": email})
    assert stored["kyc_status"] == "PENDING" and stored["kyc_status_updated_at"] == stored["created_at"]


async def test_a_status_change_moves_it(api, email):
    from app.domain.users import KycStatus

    tokens = await api.customer(email)
    api.container.clock.advance(minutes=5)  # within the access token's life
    changed = api.container.clock.now()
    await api.container.users_repo.set_kyc_status(tokens["user_id"], KycStatus.SUBMITTED, changed)
    body = await _kyc(api, tokens)
    assert body["kyc_status"] == "SUBMITTED" and _at(body["updated_at"]) == changed
