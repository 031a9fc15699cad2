"""Ids from URLs and filters are compared in canonical form: an id in capitals names the same
record (so it cannot slip past a "not yourself" rule), and anything but 24 hex digits is a 404
(in a path) or a 422 (in a filter), never a 500 and never a change."""

from __future__ import annotations

from urllib.parse import quote

import pytest

from tests.conftest import bearer


def mixed(value: str) -> str:
    return "".join(c.upper() if i % 2 else c for i, c in enumerate(value))


@pytest.mark.parametrize("spell", [str.upper, mixed], ids=["upper", "mixed"])
async def test_an_admin_cannot_suspend_themselves_by_spelling_their_id_differently(api, spell):
    admin = await api.staff("admin")
    own = spell(admin["user_id"])
    assert own != admin["user_id"] and any(c.isalpha() for c in admin["user_id"])  # ids carry hex letters
    r = await api.client.put(f"/admin/users/{own}/status", headers=bearer(admin), json={"status": "suspended"})
    assert r.status_code == 409, r.text
    assert r.json()["error_code"] == "cannot_change_own_status"
    assert (await api.container.db["user"].find_one({"email": admin["email"]}))["status"] == "active"
    assert (await api.client.get("/users/me", headers=bearer(admin))).status_code == 200  # still signed in
    assert await api.container.db["user_log"].count_documents({"action": "status_change"}) == 0


async def test_another_user_named_in_capitals_is_that_user_and_audited_canonically(api, email):
    admin, customer = await api.staff("admin"), await api.customer(email)
    upper = customer["user_id"].upper()
    r = await api.client.get(f"/admin/users/{upper}", headers=bearer(admin))
    assert r.status_code == 200 and r.json()["user_id"] == customer["user_id"] and r.json()["email"] == email
    r = await api.client.put(f"/admin/users/{upper}/status", headers=bearer(admin), json={"status": "suspended"})
    assert r.status_code == 200 and r.json()["user_id"] == customer["user_id"] and r.json()["status"] == "suspended"
    log = await api.container.db["user_log"].find_one({"action": "status_change"})
    assert log["user_id"] == customer["user_id"]  # not the spelling the admin typed
    r = await api.client.get("/audit-logs", headers=bearer(admin), params={"user_id": upper, "action": "status_change"})
    assert r.status_code == 200 and r.json()["total"] == 1
    assert r.json()["items"][0]["user_id"] == customer["user_id"]


BAD_IDS = [" {id}", "{id} ", "{id}\n", "{id}0", "{id_short}", "{id_arabic}", "$ne", "{{}}", "null", "x" * 24,
           "0x{id_short22}"]


def _bad(template: str, uid: str) -> str:
    return template.format(id=uid, id_short=uid[:23], id_short22=uid[:22], id_arabic="\u0661" * 24)


@pytest.mark.parametrize("template", BAD_IDS)
async def test_malformed_ids_in_paths_are_404_and_change_nothing(api, email, template):
    admin, customer = await api.staff("admin"), await api.customer(email)
    bad = quote(_bad(template, customer["user_id"]), safe="")
    r = await api.client.get(f"/admin/users/{bad}", headers=bearer(admin))
    assert r.status_code == 404 and r.json()["error_code"] == "user_not_found", r.text
    r = await api.client.put(f"/admin/users/{bad}/status", headers=bearer(admin), json={"status": "suspended"})
    assert r.status_code == 404 and r.json()["error_code"] == "user_not_found", r.text
    r = await api.client.delete(f"/admin/api-keys/{bad}", headers=bearer(admin))
    assert r.status_code == 404 and r.json()["error_code"] == "api_key_not_found", r.text
    assert await api.container.db["user"].count_documents({"status": "suspended"}) == 0
    assert await api.container.db["user_log"].count_documents({"action": "status_change"}) == 0


@pytest.mark.parametrize("field", ["user_id", "actor_id"])
@pytest.mark.parametrize("template", BAD_IDS)
async def test_malformed_ids_in_audit_filters_are_422(api, field, template):
    admin = await api.staff("admin")
    r = await api.client.get("/audit-logs", headers=bearer(admin), params={field: _bad(template, admin["user_id"])})
    assert r.status_code == 422, r.text
    assert r.json()["error_code"] == "validation_error" and r.json()["errors"][0]["loc"] == ["query", field]


async def test_audit_filter_by_actor_in_capitals(api, email):
    admin = await api.staff("admin")
    await api.customer(email)
    r = await api.client.put(f"/admin/users/{(await api.container.db['user'].find_one({'email': email}))['_id']}"
                             "/status", headers=bearer(admin), json={"status": "suspended"})
    assert r.status_code == 200
    r = await api.client.get("/audit-logs", headers=bearer(admin),
                             params={"actor_id": admin["user_id"].upper(), "action": "status_change"})
    assert r.status_code == 200 and r.json()["total"] == 1
    assert r.json()["items"][0]["actor_id"] == admin["user_id"]


async def test_an_api_key_revoked_by_its_id_in_capitals_is_audited_canonically(api):
    admin = await api.staff("admin")
    created = (await api.client.post("/admin/api-keys", headers=bearer(admin), json={"name": "Partner"})).json()
    r = await api.client.delete(f"/admin/api-keys/{created['id'].upper()}", headers=bearer(admin))
    assert r.status_code == 200 and r.json()["id"] == created["id"] and r.json()["revoked_at"]
    log = await api.container.db["user_log"].find_one({"action": "api_key_revoked"})
    assert log["details"]["key_id"] == created["id"]
