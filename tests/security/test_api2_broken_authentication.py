"""OWASP API Security Top 10 (2023), API2: Broken Authentication

Items of issue 15 that belong here: one credential per request (1), a revoked session ends its live streams (9). Each test fails on the code before the fix."""

from __future__ import annotations

import pytest

# --- item 1: one credential per request ----------------------------------------------------------

async def _api_key(api, scopes: list[str], **body) -> str:
    from tests.conftest import bearer

    admin = await api.staff("admin")
    r = await api.client.post("/admin/api-keys", headers=bearer(admin), json={"name": "Partner", "scopes": scopes,
                                                                              **body})
    assert r.status_code == 201, r.text
    return r.json()["api_key"]


def _refused_as_duplicate(r) -> bool:
    body = r.json()
    return (r.status_code == 400 and body["error_code"] == "duplicate_credentials" and body["status_code"] == 400
            and body["request_id"] == r.headers["x-request-id"] and "one credential" in body["detail"])


async def test_two_credentials_in_one_request_are_refused_whatever_their_order(api):
    tokens = await api.customer()
    secret = await _api_key(api, ["liveness"])
    good, bogus = f"Bearer {tokens['access_token']}", "Bearer not-a-token"
    for path, headers in [
        ("/users/me", [("Authorization", good), ("Authorization", bogus)]),
        ("/users/me", [("Authorization", bogus), ("Authorization", good)]),
        ("/users/me", [("Authorization", good), ("Authorization", good)]),
        ("/liveness/challenge", [("X-API-Key", secret), ("X-API-Key", "kf_bogus_0000")]),
        ("/liveness/challenge", [("X-API-Key", "kf_bogus_0000"), ("X-API-Key", secret)]),
        ("/liveness/challenge", [("X-API-Key", secret), ("X-API-Key", secret)]),
        # A bearer token and a key together are as ambiguous: which of the two is the caller?
        ("/liveness/challenge", [("X-API-Key", secret), ("Authorization", good)]),
        ("/users/me", [("Authorization", good), ("X-API-Key", secret)]),
    ]:
        r = await api.client.get(path, headers=headers)
        assert _refused_as_duplicate(r), (path, headers, r.text)
    # One credential, once, still works.
    assert (await api.client.get("/users/me", headers={"Authorization": good})).status_code == 200
    assert (await api.client.get("/liveness/challenge", headers={"X-API-Key": secret})).status_code == 200


async def test_a_second_header_does_not_escape_an_api_keys_rate_limit(api_factory):
    api = await api_factory(rate_limits={"verification": "100/minute"})
    secret = await _api_key(api, ["liveness"], rate_limit_per_minute=2)
    now = api.container.clock.now().timestamp()
    if 60 - now % 60 < 15:  # no window boundary inside the test
        api.container.clock.advance(seconds=60 - now % 60 + 1)
    for _ in range(2):
        assert (await api.client.get("/liveness/challenge", headers={"X-API-Key": secret})).status_code == 200
    for headers in ([("X-API-Key", secret), ("X-API-Key", "kf_bogus_0000")],
                    [("X-API-Key", "kf_bogus_0000"), ("X-API-Key", secret)],
                    [("X-API-Key", secret), ("Authorization", "Bearer not-a-token")]):
        r = await api.client.get("/liveness/challenge", headers=headers)
        assert _refused_as_duplicate(r), (headers, r.text)
    r = await api.client.get("/liveness/challenge", headers={"X-API-Key": secret})
    assert r.status_code == 429 and r.json()["error_code"] == "rate_limited"


async def test_a_second_header_does_not_escape_the_in_flight_cap(api_factory, monkeypatch):
    import asyncio

    from tests.conftest import eventually

    api = await api_factory(max_in_flight_per_caller=1)
    secret = await _api_key(api, ["ocr"])
    tokens = await api.customer()
    release, entered = asyncio.Event(), []
    real = api.container.verification.extract

    async def held(document, document_type):
        entered.append(document_type)
        await release.wait()
        return await real(document, document_type)

    async def entered_count(n: int) -> bool:
        return len(entered) == n

    monkeypatch.setattr(api.container.verification, "extract", held)

    def extract(headers):
        return api.client.post("/ocr/extract", headers=headers, files={"document": ("id.jpg", b"not an image")})

    good = f"Bearer {tokens['access_token']}"
    busy = [asyncio.create_task(extract({"X-API-Key": secret})), asyncio.create_task(extract({"Authorization": good}))]
    try:
        assert await eventually(lambda: entered_count(2))  # each caller holds its one slot
        for headers in ([("X-API-Key", secret), ("X-API-Key", "kf_bogus_0000")],
                        [("Authorization", good), ("Authorization", "Bearer not-a-token")],
                        [("Authorization", good), ("X-API-Key", "kf_bogus_0000")]):
            r = await asyncio.wait_for(extract(headers), timeout=10)
            assert _refused_as_duplicate(r), (headers, r.text)
        for headers in ({"X-API-Key": secret}, {"Authorization": good}):
            r = await asyncio.wait_for(extract(headers), timeout=10)
            assert r.status_code == 429 and r.json()["error_code"] == "too_many_concurrent", r.text
        assert len(entered) == 2  # nothing more reached the models
    finally:
        release.set()
    for r in await asyncio.gather(*busy):
        assert r.status_code == 400 and r.json()["error_code"] == "invalid_image", r.text


# --- item 9: a revoked session ends its live streams ---------------------------------------------

@pytest.mark.parametrize("revocation", ["logout", "suspension", "password_change"])
async def test_a_revoked_session_ends_its_live_stream_within_one_heartbeat(api_factory, revocation):
    import asyncio

    from app.domain.events import EventType
    from tests.conftest import PASSWORD, bearer, eventually
    from tests.security._stream_helpers import LiveStream

    heartbeat = 0.5
    api = await api_factory(events_heartbeat_seconds=heartbeat, events_poll_seconds=0.05)
    c = api.container
    tokens = await api.customer()
    admin = await api.staff("admin") if revocation == "suspension" else None
    user_id = tokens["user_id"]
    stream = LiveStream.open(api, tokens["access_token"])

    async def seen(event_id: str) -> bool:
        return event_id in stream.event_ids()

    async def viewers(n: int) -> bool:
        return c.events_hub.viewers == n

    try:
        assert await eventually(lambda: viewers(1))
        before = await c.events.publish(EventType.LOAN_APPLIED, user_id=user_id, data={"loan_id": "before"})
        assert await eventually(lambda: seen(before.id)), stream.text  # the stream delivers while signed in

        if revocation == "logout":
            r = await api.client.post("/auth/logout", headers=bearer(tokens))
        elif revocation == "suspension":
            r = await api.client.put(f"/admin/users/{user_id}/status", headers=bearer(admin),
                                     json={"status": "suspended"})
        else:  # from another session: every other session is signed out
            other = (await api.client.post("/auth/login", json={"identifier": tokens["email"],
                                                                  "password": PASSWORD})).json()
            r = await api.client.post("/auth/change-password", headers=bearer(other), json={
                "current_password": PASSWORD, "new_password": "a-new-long-passphrase-77"})
        assert r.status_code == 200, r.text
        revoked_at = asyncio.get_running_loop().time()
        after = await c.events.publish(EventType.LOAN_APPROVED, user_id=user_id, data={"loan_id": "after"})

        await asyncio.wait_for(asyncio.shield(stream.task), heartbeat + 5)
        took = asyncio.get_running_loop().time() - revoked_at
        assert took < heartbeat + 1.5, took  # one heartbeat, and slack for a loaded machine
        assert stream.status == 200 and stream.event_ids() == [before.id], stream.text
        assert after.id not in stream.text  # nothing after the revocation
        assert await eventually(lambda: viewers(0))
    finally:
        await stream.close()
