"""OWASP API Security Top 10 (2023), API4: Unrestricted Resource Consumption

Items of issue 15 that belong here: model routes capped per caller (2), sizes limited by what a field is (6), bounded HTTP headers (7), a slow webhook receiver cannot delay KYC checks (12). Each test fails on the code before the fix."""

from __future__ import annotations

# --- item 2: every route that runs a model is capped per caller ----------------------------------

async def test_every_route_that_runs_a_model_is_capped_per_caller_and_no_other(api_factory):
    """The walk reads the code (endpoint, then the service methods it calls) for calls into the ML
    gateway; each route is then asked of the request limits as a caller whose slots are all taken."""
    from starlette.responses import PlainTextResponse

    from app.api.model_routes import api_routes
    from app.api.rate_limit import RateLimitMiddleware
    from app.main import API_PREFIX
    from tests.security._model_routes_helpers import concrete_path, routes_reaching_models

    api = await api_factory(rate_limits_enabled=False, max_in_flight_per_caller=1)
    app = api.client._transport.app  # the app behind the test client
    runs_models = routes_reaching_models(app, api.container)
    assert {("POST", f"{API_PREFIX}{path}") for path in (
        "/kyc/documents", "/kyc/selfie", "/kyc/upload", "/kyc/verify", "/ocr/extract", "/liveness/verify",
        "/liveness/detect")} <= runs_models  # the walk sees what it must
    tokens = await api.customer()
    api.container.in_flight.acquire(f"user:{tokens['user_id']}")  # the caller's one slot is taken

    async def route(scope, receive, send):
        await PlainTextResponse("served")(scope, receive, send)

    limits = RateLimitMiddleware(route, prefix=API_PREFIX)
    capped = set()
    for r in api_routes(app.routes):
        for method in sorted(r.methods - {"HEAD"}):
            path = concrete_path(r.path)
            scope = {"type": "http", "method": method, "path": path, "raw_path": path.encode(), "root_path": "",
                     "query_string": b"", "headers": [(b"authorization", f"Bearer {tokens['access_token']}".encode())],
                     "client": ("203.0.113.7", 5555), "app": app, "http_version": "1.1", "scheme": "http"}
            sent: list[dict] = []

            async def receive():
                return {"type": "http.request", "body": b"", "more_body": False}

            async def send(message, _sent=sent):
                _sent.append(message)

            await limits(scope, receive, send)
            if sent[0]["status"] == 429:
                assert b'"too_many_concurrent"' in sent[1]["body"], sent
                capped.add((method, r.path))
            else:
                assert sent[1]["body"] == b"served", (method, r.path, sent)
    assert capped == runs_models


async def test_parallel_uploads_by_one_customer_beyond_the_cap_are_refused_and_others_still_run(api, monkeypatch):
    import asyncio

    from tests.conftest import bearer, eventually

    cap = api.settings.max_in_flight_per_caller
    mine, theirs = bearer(await api.customer()), bearer(await api.customer())
    release, entered = asyncio.Event(), []
    real = api.container.ml.run

    async def held(task, *args, **kwargs):
        entered.append(task.__name__)
        await release.wait()
        return await real(task, *args, **kwargs)

    async def settled(models: int, refused: int) -> bool:
        return len(entered) == models and sum(t.done() for t in uploads) == refused

    monkeypatch.setattr(api.container.ml, "run", held)
    junk = b"\xff\xd8 not really a photo"
    uploads = [asyncio.create_task(api.client.post("/kyc/documents", headers=mine, data={"document_type": "pan"},
                                                   files={"file": ("pan.jpg", junk, "image/jpeg")}))
               for _ in range(cap + 2)]
    other = None
    try:
        assert await eventually(lambda: settled(cap, 2)), (len(entered), [t.done() for t in uploads])
        for r in [t.result() for t in uploads if t.done()]:
            assert r.status_code == 429 and r.json()["error_code"] == "too_many_concurrent", r.text
            assert r.headers["retry-after"] == "1"
        other = asyncio.create_task(api.client.post("/ocr/extract", headers=theirs,
                                                    files={"document": ("id.jpg", junk, "image/jpeg")}))
        assert await eventually(lambda: settled(cap + 1, 2))  # another customer's model work still runs
    finally:
        release.set()
    results = await asyncio.gather(*uploads, *([other] if other else []))
    assert sorted(r.status_code for r in results) == [400] * (cap + 1) + [429] * 2, [r.text for r in results]
    assert not api.container.in_flight.in_flight(f"user:{(await api.client.get('/users/me', headers=mine)).json()['id']}")
