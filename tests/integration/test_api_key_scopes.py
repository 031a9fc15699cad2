"""Scoped API keys: each scope opens its routes only, an expired or revoked key fails at once (on
every instance), keys stored before scopes keep the verification routes, and `last_used_at` is
written coalesced, not on every request."""

from __future__ import annotations

import hashlib
import uuid
from datetime import UTC, datetime, timedelta

import pytest

from tests.conftest import bearer, eventually

# One route of each scope; a key with the scope gets past the check (here a 422 for the missing
# upload, or 200 for a challenge), a key without it gets 403 `insufficient_scope` naming the scope.
ROUTES = {
    "verify": ("POST", "/kyc/verify", 422),
    "ocr": ("POST", "/ocr/extract", 422),
    "liveness": ("GET", "/liveness/challenge", 200),
}


async def _key(api, admin, **body) -> tuple[dict, str]:
    r = await api.client.post("/admin/api-keys", headers=bearer(admin), json={"name": "Partner", **body})
    assert r.status_code == 201, r.text
    return r.json(), r.json()["api_key"]


@pytest.mark.parametrize("scope", ["verify", "ocr", "liveness"])
async def test_each_scope_opens_its_routes_and_only_them(api, scope):
    admin = await api.staff("admin")
    created, secret = await _key(api, admin, scopes=[scope])
    assert created["scopes"] == [scope] and created["expires_at"] is None
    for route_scope, (method, path, allowed) in ROUTES.items():
        r = await api.client.request(method, path, headers={"X-API-Key": secret})
        if route_scope == scope:
            assert r.status_code == allowed, r.text
        else:
            assert r.status_code == 403, r.text
            assert r.json()["error_code"] == "insufficient_scope" and f"'{route_scope}'" in r.json()["detail"]
    r = await api.client.get("/gateway/anything/x", headers={"X-API-Key": secret})
    assert r.status_code == 403 and "'gateway'" in r.json()["detail"]


async def test_a_gateway_key_reaches_the_gateway_but_no_verification_route(api):
    admin = await api.staff("admin")
    _, secret = await _key(api, admin, scopes=["gateway"])
    r = await api.client.get("/gateway/unknown/x", headers={"X-API-Key": secret})
    assert r.status_code == 404 and r.json()["error_code"] == "unknown_service"  # past the scope check
    for method, path, _ in ROUTES.values():
        r = await api.client.request(method, path, headers={"X-API-Key": secret})
        assert r.status_code == 403 and r.json()["error_code"] == "insufficient_scope"


async def test_keys_stored_before_scopes_keep_the_verification_routes_not_the_gateway(api):
    secret = f"kf_legacy00_{uuid.uuid4().hex}"
    await api.container.db["api_keys"].insert_one({
        "name": "Old key", "prefix": "legacy00", "key_hash": hashlib.sha256(secret.encode()).hexdigest(),
        "created_by": "x", "created_at": datetime.now(UTC), "revoked_at": None, "last_used_at": None})
    for method, path, allowed in ROUTES.values():
        r = await api.client.request(method, path, headers={"X-API-Key": secret})
        assert r.status_code == allowed, r.text
    r = await api.client.get("/gateway/unknown/x", headers={"X-API-Key": secret})
    assert r.status_code == 403 and r.json()["error_code"] == "insufficient_scope"
    admin = await api.staff("admin")
    listed = (await api.client.get("/admin/api-keys", headers=bearer(admin))).json()["items"]
    assert listed[0]["scopes"] == ["liveness", "ocr", "verify"]


async def test_scopes_default_to_verification_and_bad_input_is_refused_without_storing(api):
    admin = await api.staff("admin")
    created, _ = await _key(api, admin)
    assert created["scopes"] == ["liveness", "ocr", "verify"]
    now = datetime.now(UTC)
    bad = [
        ({"scopes": []}, "validation_error", "scopes"),
        ({"scopes": ["admin"]}, "validation_error", "scopes"),
        ({"scopes": ["ocr"], "rate_limit_per_minute": 0}, "validation_error", "rate_limit_per_minute"),
        ({"scopes": ["ocr"], "expires_at": (now - timedelta(minutes=1)).isoformat()}, "invalid_expiry", "expires_at"),
        ({"scopes": ["ocr"], "expires_at": (now + timedelta(days=800)).isoformat()}, "invalid_expiry", "expires_at"),
        ({"scopes": ["ocr"], "expires_at": "tomorrow"}, "validation_error", "expires_at"),
    ]
    for body, code, field in bad:
        r = await api.client.post("/admin/api-keys", headers=bearer(admin), json={"name": "x", **body})
        assert r.status_code == 422 and r.json()["error_code"] == code, (body, r.text)
        assert any(e["loc"][-1] == field or field in e["loc"] for e in r.json()["errors"]), r.json()
    assert await api.container.db["api_keys"].count_documents({}) == 1


async def test_an_expired_key_fails_at_once(api):
    admin = await api.staff("admin")
    expires = datetime.now(UTC) + timedelta(hours=1)
    created, secret = await _key(api, admin, scopes=["liveness"], expires_at=expires.isoformat())
    assert created["expires_at"].startswith(expires.strftime("%Y-%m-%dT%H:%M"))
    assert (await api.client.get("/liveness/challenge", headers={"X-API-Key": secret})).status_code == 200
    api.container.clock.advance(hours=1, seconds=1)
    r = await api.client.get("/liveness/challenge", headers={"X-API-Key": secret})
    assert r.status_code == 401 and r.json()["error_code"] == "api_key_expired"
    assert r.headers["www-authenticate"] == "Bearer"


async def test_a_key_revoked_on_one_instance_fails_on_the_other_at_once(api_factory):
    db = f"t_{uuid.uuid4().hex[:12]}"
    a, b = await api_factory(mongodb_db=db), await api_factory(mongodb_db=db)
    admin = await a.staff("admin")
    created, secret = await _key(a, admin, scopes=["liveness"])
    assert (await b.client.get("/liveness/challenge", headers={"X-API-Key": secret})).status_code == 200
    assert (await a.client.delete(f"/admin/api-keys/{created['id']}", headers=bearer(admin))).status_code == 200
    r = await b.client.get("/liveness/challenge", headers={"X-API-Key": secret})
    assert r.status_code == 401 and r.json()["error_code"] == "invalid_api_key"


async def test_last_used_at_is_written_coalesced_then_flushed(api_factory, monkeypatch):
    api = await api_factory(api_key_usage_flush_seconds=5)
    admin = await api.staff("admin")
    created, secret = await _key(api, admin, scopes=["liveness"])
    repo = api.container.api_keys.repo
    writes: list[dict] = []
    record_use = repo.record_use

    async def counted(used):
        writes.append(dict(used))
        await record_use(used)

    monkeypatch.setattr(repo, "record_use", counted)
    for _ in range(8):
        assert (await api.client.get("/liveness/challenge", headers={"X-API-Key": secret})).status_code == 200
    last_request = api.container.clock.now()
    stored = await api.container.db["api_keys"].find_one({})
    assert writes == [] and stored["last_used_at"] is None  # eight uses, no write yet

    async def flushed():
        return (await api.container.db["api_keys"].find_one({}))["last_used_at"]

    used_at = await eventually(flushed, timeout=12)
    assert used_at is not None and len(writes) == 1 and list(writes[0]) == [created["id"]]
    assert timedelta(0) <= last_request - used_at < timedelta(seconds=1)  # the latest use, not the first
    listed = (await api.client.get("/admin/api-keys", headers=bearer(admin))).json()["items"][0]
    assert listed["last_used_at"] is not None


async def test_pending_uses_are_written_at_shutdown(api_factory):
    api = await api_factory()  # the default flush period (60 s) never comes within this test
    admin = await api.staff("admin")
    _, secret = await _key(api, admin, scopes=["liveness"])
    assert (await api.client.get("/liveness/challenge", headers={"X-API-Key": secret})).status_code == 200
    assert (await api.container.db["api_keys"].find_one({}))["last_used_at"] is None
    await api.container.api_keys.close()
    assert (await api.container.db["api_keys"].find_one({}))["last_used_at"] is not None
