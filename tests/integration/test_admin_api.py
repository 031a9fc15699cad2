"""Staff administration, roles, the audit trail and role checks."""

from __future__ import annotations

from tests.conftest import PASSWORD, bearer


async def test_customer_cannot_call_staff_routes(api, email):
    tokens = await api.customer(email)
    calls = [
        ("GET", "/admin/users", None), ("GET", "/audit-logs", None),
        ("POST", "/admin/users", {"email": "s@example.com", "password": PASSWORD, "name": "S", "role": "admin"}),
        ("PUT", f"/admin/users/{tokens['user_id']}/status", {"status": "suspended"}),
        ("GET", f"/admin/users/{tokens['user_id']}", None),
    ]
    for method, path, body in calls:
        r = await api.client.request(method, path, headers=bearer(tokens), json=body)
        assert r.status_code == 403, path
        assert r.json()["error_code"] == "insufficient_role"
    assert await api.container.db["user"].count_documents({"role": "admin"}) == 0


async def test_admin_creates_an_auditor_who_must_use_an_otp(api):
    admin = await api.staff("admin")
    body = {"email": "ravi.auditor@example.com", "password": PASSWORD, "name": "Ravi", "role": "auditor"}
    r = await api.client.post("/admin/users", headers=bearer(admin), json=body)
    assert r.status_code == 201 and r.json()["role"] == "auditor" and r.json()["status"] == "active"
    r = await api.client.post("/admin/users", headers=bearer(admin), json=body)
    assert r.status_code == 409
    r = await api.client.post("/admin/users", headers=bearer(admin), json={**body, "role": "customer"})
    assert r.status_code == 422
    r = await api.client.post("/auth/login", json={"identifier": body["email"], "password": PASSWORD})
    assert r.json()["mfa_required"] is True
    log = await api.container.db["user_log"].find_one({"action": "staff_created"})
    assert log["actor_id"] == admin["user_id"] and log["actor_role"] == "admin" and log["details"]["role"] == "auditor"


async def test_auditor_cannot_create_staff_or_suspend(api, email):
    auditor = await api.staff("auditor")
    customer = await api.customer(email)
    r = await api.client.post("/admin/users", headers=bearer(auditor),
                              json={"email": "x@example.com", "password": PASSWORD, "name": "X", "role": "admin"})
    assert r.status_code == 403 and r.json()["error_code"] == "insufficient_role"
    assert await api.container.db["user"].count_documents({"email": "x@example.com"}) == 0
    r = await api.client.put(f"/admin/users/{customer['user_id']}/status", headers=bearer(auditor),
                             json={"status": "suspended"})
    assert r.status_code == 403 and r.json()["error_code"] == "insufficient_role"
    assert (await api.client.get("/users/me", headers=bearer(customer))).json()["status"] == "active"
    r = await api.client.get("/admin/users", headers=bearer(auditor))
    assert r.status_code == 200  # auditors may browse


async def test_suspension_stops_the_user_at_once_and_reactivation_restores_login(api, email):
    admin = await api.staff("admin")
    customer = await api.customer(email)
    r = await api.client.put(f"/admin/users/{customer['user_id']}/status", headers=bearer(admin),
                             json={"status": "suspended"})
    assert r.status_code == 200 and r.json()["status"] == "suspended"
    r = await api.client.get("/users/me", headers=bearer(customer))
    assert r.status_code == 401 and r.json()["error_code"] == "session_revoked"  # suspension ends every session
    r = await api.client.post("/auth/login", json={"identifier": email, "password": PASSWORD})
    assert r.status_code == 403 and r.json()["error_code"] == "account_suspended"
    r = await api.client.post("/auth/refresh", json={"refresh_token": customer["refresh_token"]})
    assert r.status_code == 401 and r.json()["error_code"] == "session_revoked"
    r = await api.client.put(f"/admin/users/{customer['user_id']}/status", headers=bearer(admin),
                             json={"status": "active"})
    assert r.status_code == 200
    r = await api.client.post("/auth/login", json={"identifier": email, "password": PASSWORD})
    assert r.status_code == 200
    changes = [d["details"] async for d in api.container.db["user_log"].find({"action": "status_change"})]
    assert sorted((c["old"], c["new"]) for c in changes) == [("active", "suspended"), ("suspended", "active")]


async def test_suspended_token_is_403_while_session_lives(api, email):
    customer = await api.customer(email)
    # Suspension written directly (e.g. by another process): the token is refused on its next use.
    await api.container.db["user"].update_one({"email": email}, {"$set": {"status": "suspended"}})
    r = await api.client.get("/users/me", headers=bearer(customer))
    assert r.status_code == 403 and r.json()["error_code"] == "account_suspended"


async def test_status_rules(api):
    admin = await api.staff("admin")
    r = await api.client.put(f"/admin/users/{admin['user_id']}/status", headers=bearer(admin),
                             json={"status": "suspended"})
    assert r.status_code == 409
    r = await api.client.put("/admin/users/000000000000000000000000/status", headers=bearer(admin),
                             json={"status": "suspended"})
    assert r.status_code == 404
    r = await api.client.put("/admin/users/not-an-id/status", headers=bearer(admin), json={"status": "suspended"})
    assert r.status_code == 404
    r = await api.client.put(f"/admin/users/{admin['user_id']}/status", headers=bearer(admin),
                             json={"status": "deleted"})
    assert r.status_code == 422


async def test_browse_users_with_filters_and_pages(api):
    admin = await api.staff("admin")
    for i in range(3):
        await api.customer(f"browse{i}@example.com")
    r = await api.client.get("/admin/users", headers=bearer(admin), params={"role": "customer", "page_size": 2})
    body = r.json()
    assert r.status_code == 200 and body["total"] == 3 and len(body["items"]) == 2 and body["page_size"] == 2
    r = await api.client.get("/admin/users", headers=bearer(admin), params={"role": "customer", "page": 2,
                                                                             "page_size": 2})
    assert len(r.json()["items"]) == 1
    r = await api.client.get("/admin/users", headers=bearer(admin), params={"q": "browse1"})
    assert [u["email"] for u in r.json()["items"]] == ["browse1@example.com"]
    r = await api.client.get("/admin/users", headers=bearer(admin), params={"q": ".*"})
    assert r.json()["total"] == 0  # search text is literal, not a regex
    r = await api.client.get("/admin/users", headers=bearer(admin), params={"page_size": 101})
    assert r.status_code == 422
    r = await api.client.get("/audit-logs", headers=bearer(admin), params={"page": 2553796559512553666793131437195264})
    assert r.status_code == 422  # found by schemathesis: a page past int64 used to overflow the driver
    uid = body["items"][0]["user_id"]
    r = await api.client.get(f"/admin/users/{uid}", headers=bearer(admin))
    assert r.status_code == 200 and r.json()["kyc_cases"] == [] and r.json()["loans"] == []
    r = await api.client.get("/admin/users/000000000000000000000000", headers=bearer(admin))
    assert r.status_code == 404


async def test_roles_for_any_signed_in_user(api, email):
    tokens = await api.customer(email)
    r = await api.client.get("/roles", headers=bearer(tokens))
    roles = {role["name"]: set(role["permissions"]) for role in r.json()}
    assert set(roles) == {"customer", "auditor", "admin"}
    assert roles["auditor"] < roles["admin"]  # admin can do all an auditor can, and more
    assert "kyc:review" in roles["admin"] and "kyc:review" not in roles["customer"]
    assert (await api.client.get("/roles")).status_code == 401


async def test_audit_log_records_actor_ip_and_agent(api_factory, email):
    api = await api_factory(trusted_proxies="203.0.113.0/24")
    await api.customer(email)
    await api.client.post("/auth/login", json={"identifier": email, "password": "wrong-password-1"},
                          headers={"X-Forwarded-For": "198.51.100.9, 203.0.113.7", "User-Agent": "pytest-agent"})
    auditor = await api.staff("auditor")
    r = await api.client.get("/audit-logs", headers=bearer(auditor), params={"action": "login_failure"})
    entry = r.json()["items"][0]
    assert r.json()["total"] == 1
    assert entry["ip_address"] == "198.51.100.9" and entry["timestamp"].endswith("Z")
    raw = await api.container.db["user_log"].find_one({"action": "login_failure"})
    assert raw["user_agent"] == "pytest-agent"
    user_id = (await api.container.db["user"].find_one({"email": email}))["_id"]
    r = await api.client.get("/audit-logs", headers=bearer(auditor), params={"user_id": str(user_id)})
    assert {e["action"] for e in r.json()["items"]} >= {"register", "verify", "login_success", "login_failure"}
    r = await api.client.get("/audit-logs", headers=bearer(auditor), params={"from": "2999-01-01T00:00:00Z"})
    assert r.json()["total"] == 0


async def test_forwarded_for_is_ignored_from_untrusted_peers(api, email):
    await api.client.post("/auth/login", json={"identifier": email, "password": "wrong-password-1"},
                          headers={"X-Forwarded-For": "198.51.100.9"})
    raw = await api.container.db["user_log"].find_one({"action": "login_failure"})
    assert raw["ip_address"] == "203.0.113.7"
