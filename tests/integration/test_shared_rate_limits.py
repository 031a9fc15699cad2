"""Request limits per caller and route group, counted in MongoDB so every instance shares them;
X-RateLimit-* on limited routes, 429 `rate_limited` with Retry-After; the per-caller cap on heavy
requests in flight (429 `too_many_concurrent`, at once)."""

from __future__ import annotations

import asyncio
import uuid

from tests.conftest import bearer, eventually


def _quota(r) -> tuple[int, int, int]:
    return (int(r.headers["x-ratelimit-limit"]), int(r.headers["x-ratelimit-remaining"]),
            int(r.headers["x-ratelimit-reset"]))


def _clear_of_window_end(*apis, window: int, margin: int = 20) -> None:
    """Move the apps' clocks past a window boundary that would fall inside the test."""
    now = apis[0].container.clock.now().timestamp()
    left = window - now % window
    if left < margin:
        for api in apis:
            api.container.clock.advance(seconds=left + 1)


async def test_two_instances_share_one_limit(api_factory, email):
    db = f"t_{uuid.uuid4().hex[:12]}"
    a = await api_factory(mongodb_db=db, rate_limits={"default": "5/minute"})
    b = await api_factory(mongodb_db=db, rate_limits={"default": "5/minute"})
    tokens = await a.customer(email)  # /auth routes are another group: they count nothing here
    _clear_of_window_end(a, b, window=60)
    seen = []
    for api in (a, b, a, b, b):
        r = await api.client.get("/users/me", headers=bearer(tokens))
        assert r.status_code == 200, r.text
        seen.append(_quota(r))
    assert [remaining for _, remaining, _ in seen] == [4, 3, 2, 1, 0]  # each instance counts the other's
    assert {limit for limit, _, _ in seen} == {5} and len({reset for _, _, reset in seen}) == 1
    reset = seen[0][2]
    assert reset % 60 == 0

    for api in (a, b):
        r = await api.client.get("/users/me", headers=bearer(tokens))
        assert r.status_code == 429 and r.json()["error_code"] == "rate_limited", r.text
        assert r.json()["request_id"] == r.headers["x-request-id"]
        assert _quota(r) == (5, 0, reset)
        now = api.container.clock.now().timestamp()
        assert abs(int(r.headers["retry-after"]) - (reset - now)) <= 2

    a.container.clock.advance(seconds=reset - a.container.clock.now().timestamp() + 1)  # the next window
    r = await a.client.get("/users/me", headers=bearer(tokens))
    assert r.status_code == 200 and _quota(r) == (5, 4, reset + 60)
    # One counter document per caller, group and window: the two windows of this caller.
    docs = [d async for d in a.container.db["rate_counters"].find({})]
    assert sorted(d["n"] for d in docs if d["_id"].startswith("user:")) == [1, 7]


async def test_anonymous_callers_are_limited_by_address_and_proxies_are_believed_only_when_trusted(api_factory):
    api = await api_factory(rate_limits={"auth": "3/hour"}, trusted_proxies=["203.0.113.7/32"])
    _clear_of_window_end(api, window=3600)
    login = {"identifier": "nobody@example.com", "password": "wrong-password-123"}
    for remaining in (2, 1, 0):
        r = await api.client.post("/auth/login", json=login)
        assert r.status_code == 401 and _quota(r)[:2] == (3, remaining), r.text
    r = await api.client.post("/auth/login", json=login)
    assert r.status_code == 429 and r.json()["error_code"] == "rate_limited"
    # The test client's address is a trusted proxy here: the address it forwards is the caller.
    r = await api.client.post("/auth/login", json=login, headers={"X-Forwarded-For": "198.51.100.9"})
    assert r.status_code == 401 and _quota(r)[:2] == (3, 2)

    untrusted = await api_factory(rate_limits={"auth": "1/hour"})
    _clear_of_window_end(untrusted, window=3600)
    assert (await untrusted.client.post("/auth/login", json=login)).status_code == 401
    r = await untrusted.client.post("/auth/login", json=login, headers={"X-Forwarded-For": "198.51.100.10"})
    assert r.status_code == 429  # a forged X-Forwarded-For from an untrusted peer changes nothing


async def test_route_groups_count_apart_and_health_is_never_limited(api_factory, email):
    api = await api_factory(rate_limits={"default": "2/hour", "otp": "1/hour"})
    _clear_of_window_end(api, window=3600)
    await api.register(email)  # auth group
    r = await api.client.post("/auth/verify-otp", json={"identifier": email, "otp": api.mailbox.last_code(email)})
    assert r.status_code == 200 and _quota(r)[:2] == (1, 0)  # otp group
    r = await api.client.post("/auth/verify-otp", json={"identifier": email, "otp": "000000"})
    assert r.status_code == 429 and r.json()["error_code"] == "rate_limited"
    for _ in range(3):
        r = await api.client.get("/health")
        assert r.status_code == 200 and "x-ratelimit-limit" not in r.headers


async def test_an_api_key_has_its_own_limit(api_factory):
    api = await api_factory(rate_limits={"verification": "100/minute"})
    admin = await api.staff("admin")
    _clear_of_window_end(api, window=60, margin=15)
    created = (await api.client.post("/admin/api-keys", headers=bearer(admin),
                                     json={"name": "Small", "scopes": ["liveness"], "rate_limit_per_minute": 2})).json()
    other = (await api.client.post("/admin/api-keys", headers=bearer(admin),
                                   json={"name": "Default", "scopes": ["liveness"]})).json()
    assert created["rate_limit_per_minute"] == 2
    for remaining in (1, 0):
        r = await api.client.get("/liveness/challenge", headers={"X-API-Key": created["api_key"]})
        assert r.status_code == 200 and _quota(r)[:2] == (2, remaining)
    r = await api.client.get("/liveness/challenge", headers={"X-API-Key": created["api_key"]})
    assert r.status_code == 429 and 1 <= int(r.headers["retry-after"]) <= 60
    r = await api.client.get("/liveness/challenge", headers={"X-API-Key": other["api_key"]})
    assert r.status_code == 200 and _quota(r)[:2] == (100, 99)  # another key: the group's limit, its own count


async def test_the_otp_limits_of_auth_still_report_their_own_quota(api, email):
    await api.customer(email)
    r = await api.client.post("/auth/password/forgot", json={"identifier": email})
    assert r.status_code == 200 and _quota(r)[:2] == (5, 4)  # the hourly code quota, not the group's
    r = await api.client.post("/auth/password/forgot", json={"identifier": email})
    assert r.status_code == 429 and r.json()["detail"] == "Please wait before asking for another code."


async def test_limits_off_count_nothing(api_factory, email):
    api = await api_factory(rate_limits_enabled=False, rate_limits={"default": "1/hour"})
    tokens = await api.customer(email)
    for _ in range(3):
        r = await api.client.get("/users/me", headers=bearer(tokens))
        assert r.status_code == 200 and "x-ratelimit-limit" not in r.headers
    assert await api.container.db["rate_counters"].count_documents({}) == 0


async def test_model_requests_in_flight_are_capped_per_caller(api_factory, email, monkeypatch):
    api = await api_factory(max_in_flight_per_caller=2)
    first, second = bearer(await api.customer(email)), bearer(await api.customer())
    release, entered = asyncio.Event(), []
    real = api.container.verification.extract

    async def held(document, document_type):
        entered.append(document_type)
        await release.wait()
        return await real(document, document_type)

    def extract(headers):
        return api.client.post("/ocr/extract", headers=headers, files={"document": ("id.jpg", b"not an image")})

    monkeypatch.setattr(api.container.verification, "extract", held)
    busy = [asyncio.create_task(extract(first)) for _ in range(2)]
    assert await eventually(lambda: _true(len(entered) == 2))
    r = await asyncio.wait_for(extract(first), timeout=5)
    assert r.status_code == 429 and r.json()["error_code"] == "too_many_concurrent", r.text
    assert r.headers["retry-after"] == "1" and "2" in r.json()["detail"]
    assert len(entered) == 2  # refused before the route ran
    # A route that runs no model is not capped (`GET /liveness/challenge` only signs a challenge).
    assert (await asyncio.wait_for(api.client.get("/liveness/challenge", headers=first), timeout=5)).status_code == 200

    other = asyncio.create_task(extract(second))  # another caller: free
    assert await eventually(lambda: _true(len(entered) == 3))
    release.set()
    for r in await asyncio.gather(*busy, other):
        assert r.status_code == 400 and r.json()["error_code"] == "invalid_image"
    monkeypatch.setattr(api.container.verification, "extract", real)
    r = await extract(first)  # slots given back
    assert r.status_code == 400 and r.json()["error_code"] == "invalid_image"
    assert not api.container.in_flight._in_flight  # nobody holds a slot any more


async def _true(value: bool) -> bool:
    return value


async def test_far_from_the_limit_one_update_claims_several_requests(api_factory, email, monkeypatch):
    for batch, writes_expected, counted in ((16, 2, 32), (1, 20, 20)):
        api = await api_factory(rate_limits={"default": "1000/minute"}, rate_limit_batch=batch)
        tokens = await api.customer()
        _clear_of_window_end(api, window=60, margin=15)
        repo = api.container.request_limits.repo
        writes = []
        hit = repo.hit

        async def counted_hit(*args, _hit=hit, _writes=writes):
            _writes.append(args)
            return await _hit(*args)

        monkeypatch.setattr(repo, "hit", counted_hit)
        remaining = []
        for _ in range(20):
            r = await api.client.get("/users/me", headers=bearer(tokens))
            assert r.status_code == 200
            remaining.append(_quota(r)[1])
        assert remaining == list(range(999, 979, -1))  # as one instance sees it: exact here
        assert len(writes) == writes_expected, batch
        doc = await api.container.db["rate_counters"].find_one({"_id": {"$regex": "^user:.*\\|default\\|"}})
        assert doc["n"] == counted  # claimed places: 20 used, the rest this instance's until the window ends


async def test_claims_never_let_two_instances_exceed_the_limit_together(api_factory, email):
    db = f"t_{uuid.uuid4().hex[:12]}"
    a = await api_factory(mongodb_db=db, rate_limits={"default": "40/minute"})
    b = await api_factory(mongodb_db=db, rate_limits={"default": "40/minute"})
    tokens = await a.customer(email)
    _clear_of_window_end(a, b, window=60, margin=20)
    served, refused_in_a_row = 0, 0
    while refused_in_a_row < 4:  # until both instances have nothing left to give
        for api in (a, b, b, a, a, a):
            r = await api.client.get("/users/me", headers=bearer(tokens))
            assert r.status_code in (200, 429), r.text
            served += r.status_code == 200
            refused_in_a_row = refused_in_a_row + 1 if r.status_code == 429 else 0
    assert served == 40


async def test_browsers_can_read_a_429_and_preflights_are_not_counted(api_factory):
    origin = "https://app.example.com"
    api = await api_factory(rate_limits={"auth": "1/hour"}, cors_origins=[origin])
    _clear_of_window_end(api, window=3600)
    preflight = {"Origin": origin, "Access-Control-Request-Method": "POST",
                 "Access-Control-Request-Headers": "content-type"}
    for _ in range(3):
        assert (await api.client.options("/auth/login", headers=preflight)).status_code == 200
    login = {"identifier": "nobody@example.com", "password": "wrong-password-123"}
    r = await api.client.post("/auth/login", json=login, headers={"Origin": origin})
    assert r.status_code == 401  # the preflights left the one request of the hour
    r = await api.client.post("/auth/login", json=login, headers={"Origin": origin})
    assert r.status_code == 429 and r.headers["access-control-allow-origin"] == origin
    exposed = {h.strip().lower() for h in r.headers["access-control-expose-headers"].split(",")}
    assert {"retry-after", "x-ratelimit-limit", "x-ratelimit-remaining", "x-ratelimit-reset"} <= exposed


async def test_requests_arriving_together_share_claims_instead_of_wasting_them(api_factory, email):
    api = await api_factory(rate_limits={"default": "40/minute"})
    tokens = await api.customer(email)
    _clear_of_window_end(api, window=60, margin=20)
    answers = await asyncio.gather(*(api.client.get("/users/me", headers=bearer(tokens)) for _ in range(40)))
    assert [r.status_code for r in answers] == [200] * 40  # all 40 places served, none stranded in claims
    r = await api.client.get("/users/me", headers=bearer(tokens))
    assert r.status_code == 429
