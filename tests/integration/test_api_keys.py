"""Integrator API keys: created by admins, shown once, stored hashed, revocable."""

from __future__ import annotations

import hashlib

from tests.conftest import bearer


async def test_key_lifecycle(api, email):
    admin = await api.staff("admin")
    r = await api.client.post("/admin/api-keys", headers=bearer(admin), json={"name": "Partner bank"})
    assert r.status_code == 201
    created = r.json()
    secret = created["api_key"]
    assert secret.startswith(f"kf_{created['prefix']}_") and len(secret) > 40
    stored = await api.container.db["api_keys"].find_one({})
    assert secret not in str(stored) and stored["key_hash"] == hashlib.sha256(secret.encode()).hexdigest()

    listed = (await api.client.get("/admin/api-keys", headers=bearer(admin))).json()["items"]
    assert [k["name"] for k in listed] == ["Partner bank"] and "api_key" not in listed[0]

    r = await api.client.get("/liveness/challenge", headers={"X-API-Key": secret})
    assert r.status_code == 200
    # Coalesced: the use is written later (API_KEY_USAGE_FLUSH_SECONDS), not by the request itself.
    assert (await api.container.db["api_keys"].find_one({}))["last_used_at"] is None
    await api.container.api_keys.flush_usage()
    assert (await api.container.db["api_keys"].find_one({}))["last_used_at"] is not None

    r = await api.client.delete(f"/admin/api-keys/{created['id']}", headers=bearer(admin))
    assert r.status_code == 200 and r.json()["revoked_at"]
    r = await api.client.get("/liveness/challenge", headers={"X-API-Key": secret})
    assert r.status_code == 401 and r.json()["error_code"] == "invalid_api_key"
    r = await api.client.delete(f"/admin/api-keys/{created['id']}", headers=bearer(admin))
    assert r.status_code == 404
    actions = {d["action"] async for d in api.container.db["user_log"].find({"action": {"$regex": "^api_key"}})}
    assert actions == {"api_key_created", "api_key_revoked"}


async def test_only_admins_manage_keys_and_verification_needs_a_caller(api, email):
    customer = await api.customer(email)
    auditor = await api.staff("auditor")
    for tokens in (customer, auditor):
        r = await api.client.post("/admin/api-keys", headers=bearer(tokens), json={"name": "x"})
        assert r.status_code == 403
    r = await api.client.get("/liveness/challenge")
    assert r.status_code == 401
    r = await api.client.get("/liveness/challenge", headers={"X-API-Key": "kf_nothing_here"})
    assert r.status_code == 401
    r = await api.client.get("/liveness/challenge", headers=bearer(customer))
    assert r.status_code == 200 and len(r.json()["challenge_types"]) == 2
