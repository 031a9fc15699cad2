"""OWASP API Security Top 10 (2023), API4: Unrestricted Resource Consumption

Items of issue 15 that belong here: model routes capped per caller (2), sizes limited by what a field is (6), bounded HTTP headers (7), a slow webhook receiver cannot delay KYC checks (12). Each test fails on the code before the fix."""

from __future__ import annotations

import pytest

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
    # Outside /api/v1 (the console's file view) the request limits do not run: such a route must declare
    # RUNS_MODELS and take the caller's slot itself (tests/integration/test_console.py shows its 429).
    outside = {(method, path) for method, path in runs_models if not path.startswith(API_PREFIX + "/")}
    declared = {(method, r.path) for r in app.state.model_routes for method in r.methods - {"HEAD"}}
    assert outside <= declared, outside - declared
    assert capped == runs_models - outside


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
    assert not api.container.in_flight._in_flight[f"user:{(await api.client.get('/users/me', headers=mine)).json()['id']}"]

# --- item 6: sizes are limited by what a field is ------------------------------------------------

async def _customer_with_document(api):
    from tests.integration.test_kyc_api import AADHAAR_FRONT, customer, upload

    who = await customer(api)
    r = await upload(api, who, "aadhaar", AADHAAR_FRONT)
    assert r.status_code == 201, r.text[:500]
    return who, r.json()["document_id"]


async def _corrections(api, who, document_id: str) -> dict:
    case = (await api.client.get("/kyc/me", headers=who["headers"])).json()
    return next(d for d in case["documents"] if d["document_id"] == document_id)["corrections"]


async def test_a_5_mb_name_in_corrections_is_refused_and_not_stored(api):
    who, document_id = await _customer_with_document(api)
    url = f"/kyc/documents/{document_id}/corrections"
    r = await api.client.put(url, headers=who["headers"], json={"fields": {"full_name": "A" * 5_000_000}})
    assert r.status_code == 413 and r.json()["error_code"] == "payload_too_large", r.text[:500]
    # Under the body limit, a name longer than any name is refused by the field's own limit.
    r = await api.client.put(url, headers=who["headers"], json={"fields": {"full_name": "A" * 5_000}})
    assert r.status_code == 422 and r.json()["error_code"] == "validation_error", r.text[:500]
    assert any("full_name" in map(str, err["loc"]) for err in r.json()["errors"]), r.text[:500]
    assert await _corrections(api, who, document_id) == {}
    r = await api.client.put(url, headers=who["headers"], json={"fields": {"full_name": "Rahul K Sharma"}})
    assert r.status_code == 200 and await _corrections(api, who, document_id) == {"full_name": "Rahul K Sharma"}


async def test_two_9_mb_correction_fields_are_a_413_not_a_500(api):
    who, document_id = await _customer_with_document(api)
    body = {"fields": {"full_name": "A" * 9_000_000, "address": "B" * 9_000_000}}
    r = await api.client.put(f"/kyc/documents/{document_id}/corrections", headers=who["headers"], json=body)
    assert r.status_code == 413 and r.json()["error_code"] == "payload_too_large", r.text[:500]
    assert await _corrections(api, who, document_id) == {}


async def test_corrections_take_the_json_body_limit_not_the_upload_one(api):
    """The route sits under /kyc/documents, whose POST takes files: the limit is the route's own."""
    who, document_id = await _customer_with_document(api)
    body = b'{"fields": {"full_name": "Rahul K Sharma"}' + b" " * 20_000 + b"}"  # valid JSON, over 16 KB
    r = await api.client.put(f"/kyc/documents/{document_id}/corrections", headers={
        **who["headers"], "Content-Type": "application/json"}, content=body)
    assert r.status_code == 413 and r.json()["error_code"] == "payload_too_large", r.text[:500]
    assert "16 KB" in r.json()["detail"]
    assert await _corrections(api, who, document_id) == {}


@pytest.mark.parametrize(("field", "value"), [
    ("address", "12 MG Road, " * 40), ("gender", "f" * 40), ("father_name", "Ramesh " * 40),
    ("nationality", "Indian" * 20), ("place_of_birth", "Bengaluru " * 40),
])
async def test_each_correction_has_the_length_of_what_it_is(api, field, value):
    who, document_id = await _customer_with_document(api)
    r = await api.client.put(f"/kyc/documents/{document_id}/corrections", headers=who["headers"],
                             json={"fields": {field: value}})
    assert r.status_code == 422 and r.json()["error_code"] == "validation_error", r.text[:500]
    assert any(field in map(str, err["loc"]) for err in r.json()["errors"]), r.text[:500]
    assert await _corrections(api, who, document_id) == {}


async def test_a_document_too_large_for_the_database_is_a_413_not_a_500(api, monkeypatch):
    """Whatever slips past the field limits, the driver's own size refusal is the caller's 413."""
    from pymongo.errors import DocumentTooLarge

    who, document_id = await _customer_with_document(api)

    async def too_large(*args, **kwargs):
        raise DocumentTooLarge("'update' command document too large")

    monkeypatch.setattr(api.container.kyc.cases, "set_corrections", too_large)
    r = await api.client.put(f"/kyc/documents/{document_id}/corrections", headers=who["headers"],
                             json={"fields": {"full_name": "Rahul K Sharma"}})
    assert r.status_code == 413 and r.json()["error_code"] == "payload_too_large", r.text[:500]
    assert r.json()["request_id"] == r.headers["x-request-id"]


async def test_every_request_field_has_a_size_limit(api):
    """A walk of every request body (JSON and forms): text has a maxLength, lists maxItems, maps
    maxProperties and bounded keys. A new field without a limit fails here."""
    from tests.security._sizes_helpers import unbounded_fields

    schema = (await api.client.get("http://testserver/openapi.json")).json()
    assert unbounded_fields(schema) == []


async def test_only_routes_that_take_files_or_frames_get_a_large_body_limit(api):
    """The large limits follow the route (method and template), not a path prefix."""
    from tests.body_limit_routes import large_body_routes

    app = api.client._transport.app  # type: ignore[attr-defined]
    large = {(method, path.removeprefix("/api/v1")): kind for method, path, kind in large_body_routes(app)}
    gateway = {(m, "/gateway/{service}/{path:path}"): "gateway"
               for m in ("GET", "POST", "PUT", "PATCH", "DELETE", "HEAD", "OPTIONS")}
    assert large == {
        ("POST", "/kyc/documents"): "uploads", ("POST", "/kyc/selfie"): "uploads",
        ("POST", "/kyc/upload"): "uploads", ("POST", "/kyc/verify"): "uploads", ("POST", "/ocr/extract"): "uploads",
        ("POST", "/liveness/verify"): "frames", ("POST", "/liveness/detect"): "frames", **gateway,
    }


async def test_the_repositories_turn_a_record_too_large_into_a_413_error(api):
    """Real driver, real database: a 17 MB record is the caller's RecordTooLarge, mapped to 413."""
    from app.api.errors import status_for
    from app.domain.errors import RecordTooLarge
    from app.repositories.base import GuardedCollection

    collection = GuardedCollection(api.container.db["size_probe"])
    with pytest.raises(RecordTooLarge) as raised:
        await collection.insert_one({"note": "x" * 17_000_000})
    assert status_for(raised.value) == 413 and raised.value.code == "payload_too_large"
    assert await api.container.db["size_probe"].count_documents({}) == 0


# --- item 7: HTTP headers are bounded -----------------------------------------------------------
# A real `kycflow serve` (the command `make run` and the image run), spoken to over raw sockets.

@pytest.fixture(scope="module")
def served(tmp_path_factory):
    from tests.e2e.test_server_process import _env, start_server

    workdir = tmp_path_factory.mktemp("headers")
    with start_server(workdir, _env(workdir / "var", ML_PRELOAD="false")) as (base, proc):
        yield base, proc


def _head(*fields: tuple[str, str], path: str = "/api/v1/health") -> bytes:
    lines = [f"GET {path} HTTP/1.1", "Host: 127.0.0.1", *(f"{k}: {v}" for k, v in fields), "Connection: close"]
    return ("\r\n".join(lines) + "\r\n\r\n").encode()


def _assert_431(answer):
    import json

    status, headers, body = answer
    assert status == 431, (status, headers, body[:300])
    envelope = json.loads(body)
    assert envelope["error_code"] == "header_fields_too_large" and envelope["status_code"] == 431, envelope
    assert headers.get("connection") == "close" and headers["x-request-id"] == envelope["request_id"]


def test_headers_within_the_limits_still_pass(served):
    from tests.security._sizes_helpers import raw_request

    base, _ = served
    # 50 fields of 1 KB (50 KB in all) and one field of 15 KB: under every limit.
    status, _, _ = raw_request(base, _head(*[(f"X-Pad-{i}", "a" * 1000) for i in range(50)]))
    assert status in (200, 503)  # 503 while models load: the head was read and routed either way
    status, _, _ = raw_request(base, _head(("X-Large", "b" * 15_000)))
    assert status in (200, 503)


def test_one_header_field_over_16_kb_is_a_431(served):
    from tests.security._sizes_helpers import raw_request

    _assert_431(raw_request(served[0], _head(("X-Big", "a" * 20_000))))
    _assert_431(raw_request(served[0], _head(("Cookie", "c=" + "d" * 20_000))))


def test_header_fields_over_64_kb_in_all_are_a_431(served):
    from tests.security._sizes_helpers import raw_request

    # Each field under 16 KB, 70 KB together.
    _assert_431(raw_request(served[0], _head(*[(f"X-Part-{i}", "a" * 10_000) for i in range(7)])))


def test_more_than_100_header_fields_are_a_431(served):
    from tests.security._sizes_helpers import raw_request

    _assert_431(raw_request(served[0], _head(*[(f"X-N-{i}", "1") for i in range(150)])))


def test_an_unfinished_huge_header_is_cut_off_with_a_431(served):
    """The head is never finished: the server answers 431 and closes after reading ~64 KB, instead of
    waiting for the rest (and holding it all)."""
    import socket
    from urllib.parse import urlparse

    from tests.security._sizes_helpers import _read_answer

    url = urlparse(served[0])
    with socket.create_connection((url.hostname, url.port), timeout=10) as sock:
        sock.sendall(b"GET /api/v1/health HTTP/1.1\r\nHost: 127.0.0.1\r\nX-Endless: " + b"a" * 200_000)
        _assert_431(_read_answer(sock))


def test_four_connections_sending_64_mb_headers_do_not_grow_the_server(served):
    import socket
    import threading
    from urllib.parse import urlparse

    from tests.security._sizes_helpers import rss_kb

    base, proc = served
    url = urlparse(base)
    before = rss_kb(proc.pid)
    sent: list[int] = []

    def flood() -> None:
        total = 0
        chunk = b"a" * 65536
        try:
            with socket.create_connection((url.hostname, url.port), timeout=10) as sock:
                sock.sendall(b"GET /api/v1/health HTTP/1.1\r\nHost: 127.0.0.1\r\nX-Flood: ")
                while total < 64 * 2**20:
                    sock.sendall(chunk)
                    total += len(chunk)
        except OSError:
            pass  # the server closed the connection: what we want
        sent.append(total)

    threads = [threading.Thread(target=flood) for _ in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=120)
    grown_mb = (rss_kb(proc.pid) - before) / 1024
    assert grown_mb < 20, f"the server grew by {grown_mb:.0f} MB"
    assert max(sent) < 32 * 2**20, sent  # cut off long before the 64 MB were sent


# --- item 12: a slow webhook receiver cannot delay KYC checks --------------------------------------

async def test_a_slow_webhook_receiver_never_holds_the_worker_that_runs_kyc_checks(api_factory):
    """JOB_WORKERS=1 and a receiver that takes its time (here: never answers within the 4 s delivery
    timeout): a customer's KYC checks queued while that delivery is in flight are done long before
    the delivery ends, because deliveries run in their own lane (WEBHOOK_DELIVERY_WORKERS)."""
    import asyncio

    from app.services.kyc.checks import CHECKS_JOB
    from tests.conftest import bearer, eventually
    from tests.integration.events_helpers import HANG, Receiver, submitted_case

    receiver = await Receiver().start()
    try:
        api = await api_factory(job_workers=1, webhook_timeout_seconds=4, job_poll_seconds=0.2)
        admin = await api.staff("admin")
        receiver.statuses = [HANG]
        r = await api.client.post("/admin/webhooks", headers=bearer(admin), json={
            "url": receiver.url, "events": ["kyc.checks_completed"]})
        assert r.status_code == 201, r.text
        first, second = await api.customer(), await api.customer()
        await submitted_case(api.container, first["user_id"])  # its checks publish the event delivered
        assert await eventually(lambda: asyncio.sleep(0, bool(receiver.requests)), timeout=10), "no delivery began"
        loop = asyncio.get_running_loop()
        delivery_began = loop.time()

        case = await submitted_case(api.container, second["user_id"])
        jobs = api.container.jobs.repo

        async def checks_done() -> bool:
            job = await jobs.find_entity({"key": f"{CHECKS_JOB}:{case.id}"})
            return job is not None and job.status.value == "done"

        assert await eventually(checks_done, timeout=10)
        checks_took = loop.time() - delivery_began
        hook_attempts = f"/admin/webhooks/{r.json()['id']}/attempts"

        async def timed_out() -> list[dict]:
            page = (await api.client.get(hook_attempts, headers=bearer(admin))).json()
            return [a for a in page["items"] if a["error"] == "timeout after 4 s"]

        assert await timed_out() == [], "the slow delivery ended first"  # still waiting on the receiver
        assert checks_took < 2.0, f"the checks waited {checks_took:.1f} s behind the delivery"
        assert await eventually(timed_out, timeout=10)  # and the slow one ends at its own timeout
    finally:
        await receiver.stop()


def test_make_run_and_the_image_start_the_same_bounded_server():
    """Both go through `kycflow serve`, the only start-up that installs the header limits."""
    from pathlib import Path

    root = Path(__file__).resolve().parents[2]
    assert 'CMD ["kycflow", "serve"' in (root / "Dockerfile").read_text()
    run = (root / "Makefile").read_text().split("\nrun:", 1)[1].split("\n\n", 1)[0]
    assert "/bin/kycflow serve" in run
    cli = (root / "app" / "cli.py").read_text()
    assert "http=bounded_protocol(" in cli


async def test_lanes_hold_across_worker_processes_and_each_job_runs_once(mongo_uri):
    """Two processes' job services on one database, one main worker and two delivery workers each:
    with every delivery worker held by slow receivers, the main lanes still run their jobs at once;
    claims and leases stay in the database, so each job runs exactly once."""
    import asyncio
    import uuid

    from app.repositories.database import close_client, make_client
    from app.repositories.jobs import JobRepository
    from app.services.clock import Clock
    from app.services.jobs import JobService, JobSettings
    from tests.conftest import eventually

    client = make_client(mongo_uri)
    db = client[f"lanes_{uuid.uuid4().hex[:10]}"]
    await JobRepository(db).ensure_indexes()
    release = asyncio.Event()
    runs: dict[str, list[str]] = {"slow": [], "checks": []}

    def process() -> JobService:
        jobs = JobService(JobRepository(db), Clock(), JobSettings(workers=1, poll_seconds=0.05, lanes={"out": 2}))

        async def slow(job):  # a delivery to a receiver that takes its time
            runs["slow"].append(job.key)
            await release.wait()

        async def checks(job):
            runs["checks"].append(job.key)

        jobs.register("slow", slow, lane="out")
        jobs.register("checks", checks)
        return jobs

    first, second = process(), process()
    try:
        first.start()
        second.start()
        for n in range(6):
            await first.enqueue("slow", f"slow:{n}", {})

        async def lanes_full() -> bool:
            return len(runs["slow"]) == 4

        assert await eventually(lanes_full, timeout=5)  # 2 processes x 2 delivery workers, all held
        loop = asyncio.get_running_loop()
        began = loop.time()
        for n in range(4):
            await second.enqueue("checks", f"checks:{n}", {})

        async def checks_ran() -> bool:
            return len(runs["checks"]) == 4

        assert await eventually(checks_ran, timeout=5)
        assert loop.time() - began < 1.5 and len(runs["slow"]) == 4
        release.set()

        async def all_done() -> bool:
            return await db["jobs"].count_documents({"status": "done"}) == 10

        assert await eventually(all_done, timeout=10)
        assert sorted(runs["slow"]) == [f"slow:{n}" for n in range(6)]  # each once, none twice
        assert sorted(runs["checks"]) == [f"checks:{n}" for n in range(4)]
    finally:
        release.set()
        await first.stop()
        await second.stop()
        await client.drop_database(db.name)
        await close_client(client)
