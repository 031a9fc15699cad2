"""Variants of issue 15's security items (1-12) and of items 14-16, tried the way the outside prober
who filed it would: other header spellings, other routes, other encodings, races, slow peers.

Each test names the item it probes. A variant that found a hole was fixed with its test; one whose
fix is not local is an `xfail(strict=True)` naming the hole (it turns into a failure once fixed)."""

from __future__ import annotations

import asyncio
import json
import socket
import threading
import time
from typing import Any

import pytest

from tests.conftest import bearer, eventually

# --- item 1: one credential per request -----------------------------------------------------------


async def _key(api, scopes: list[str], **body: Any) -> str:
    admin = await api.staff("admin")
    r = await api.client.post("/admin/api-keys", headers=bearer(admin), json={"name": "Probe", "scopes": scopes, **body})
    assert r.status_code == 201, r.text
    return r.json()["api_key"]


def _duplicate(r) -> bool:
    return r.status_code == 400 and r.json()["error_code"] == "duplicate_credentials"


async def test_item1_any_spelling_or_mix_of_two_credentials_is_refused_on_every_kind_of_route(api):
    tokens = await api.customer()
    secret = await _key(api, ["liveness"])
    good = f"Bearer {tokens['access_token']}"
    variants = [
        [("authorization", good), ("AUTHORIZATION", "Bearer not-a-token")],  # names differ only in case
        [("Authorization", good), ("Authorization", "")],  # an empty second header is still a second
        [("Authorization", "Basic dXNlcjpwYXNz"), ("Authorization", good)],  # another scheme first
        [("x-api-key", secret), ("Authorization", "Basic dXNlcjpwYXNz")],  # a key and any Authorization
        [("X-Api-Key", secret), ("X-API-KEY", "")],
    ]
    # A private route, a public one (a credential there is meaningless, but two are still ambiguous for
    # the limits), the live stream and the gateway.
    for method, path in (("GET", "/users/me"), ("POST", "/auth/login"), ("GET", "/events"),
                         ("GET", "/gateway/none/x"), ("GET", "/liveness/challenge")):
        for headers in variants:
            r = await api.client.request(method, path, headers=headers, json={} if method == "POST" else None)
            assert _duplicate(r), (method, path, headers, r.status_code, r.text)


async def test_item1_two_values_joined_in_one_header_never_authenticate_as_either(api):
    tokens = await api.customer()
    secret = await _key(api, ["liveness"])
    good = tokens["access_token"]
    for value in (f"Bearer {good}, Bearer not-a-token", f"Bearer not-a-token, Bearer {good}", f"Bearer {good},"):
        r = await api.client.get("/users/me", headers={"Authorization": value})
        assert r.status_code == 401, (value, r.text)
    for value in (f"{secret}, kf_bogus_0000", f"kf_bogus_0000,{secret}"):
        r = await api.client.get("/liveness/challenge", headers={"X-API-Key": value})
        assert r.status_code == 401, (value, r.text)
    # Whitespace around one value is the same credential in the limits and in the route.
    assert (await api.client.get("/users/me", headers={"Authorization": f"Bearer  {good} "})).status_code == 200
    assert (await api.client.get("/liveness/challenge", headers={"X-API-Key": f" {secret} "})).status_code == 200


# --- item 2: every route that runs a model is capped per caller -------------------------------------


async def test_item2_the_cap_is_one_per_caller_across_all_model_routes_and_credentials_of_others_are_apart(
        api_factory, monkeypatch):
    from tests.integration.test_kyc_api import SELFIE

    api = await api_factory(max_in_flight_per_caller=1, rate_limits_enabled=False)
    who = await api.customer()
    other = await api.customer()
    release, entered = asyncio.Event(), []
    real = api.container.ml.run

    async def held(*args: Any, **kwargs: Any) -> Any:
        entered.append(args[0])
        await release.wait()
        return await real(*args, **kwargs)

    monkeypatch.setattr(api.container.ml, "run", held)

    async def count(n: int) -> bool:
        return len(entered) == n

    selfie = asyncio.create_task(api.client.post("/kyc/selfie", headers=bearer(who),
                                                 files={"file": ("me.jpg", SELFIE, "image/jpeg")}))
    try:
        assert await eventually(lambda: count(1))
        # The same customer on other model routes: the one slot is taken, whatever the route.
        for method, path, kwargs in (
                ("POST", "/ocr/extract", {"files": {"document": ("id.jpg", b"x")}}),
                ("POST", "/kyc/documents", {"data": {"document_type": "pan"}, "files": {"file": ("p.jpg", b"x")}}),
                ("POST", "/kyc/upload", {"json": {"document_type": "pan", "document_number": "ABCPE1234F",
                                                  "document_data": "eA=="}}),
                ("POST", "/liveness/detect", {"json": {"frames": ["eA=="]}})):
            r = await asyncio.wait_for(api.client.request(method, path, headers=bearer(who), **kwargs), 10)
            assert r.status_code == 429 and r.json()["error_code"] == "too_many_concurrent", (path, r.text)
        # Another customer is not behind this one: their request reaches the models.
        theirs = asyncio.create_task(api.client.post("/ocr/extract", headers=bearer(other),
                                                     files={"document": ("id.jpg", b"not an image")}))
        assert await eventually(lambda: count(2)), theirs
    finally:
        release.set()
    r = await asyncio.wait_for(theirs, 10)
    assert r.status_code == 400 and r.json()["error_code"] == "invalid_image", r.text
    assert (await selfie).status_code == 201


# --- item 3: FOIR counts the whole book ------------------------------------------------------------


async def test_item3_a_rejected_application_no_longer_counts(api):
    from tests.integration.lending_helpers import apply_body, borrower, make_product

    a, b = await make_product(api, name="Probe A"), await make_product(api, name="Probe B")
    who = await borrower(api, income=100000.0, existing_emi=30000.0)  # room for one 13,327.32 EMI, not two
    body = {"amount": 150000, "tenure_months": 12}
    r = await api.client.post("/loans/apply", headers=who["headers"], json=apply_body(a, **body))
    assert r.status_code == 201, r.text
    first = r.json()["loan_id"] if "loan_id" in r.json() else r.json()["id"]
    r = await api.client.post("/loans/apply", headers=who["headers"], json=apply_body(b, **body))
    assert r.status_code == 422 and r.json()["error_code"] == "not_eligible", r.text
    admin = await api.staff("admin")
    r = await api.client.post(f"/admin/loans/{first}/reject", headers=bearer(admin), json={"reason": "Not now"})
    assert r.status_code == 200, r.text
    r = await api.client.post("/loans/apply", headers=who["headers"], json=apply_body(b, **body))
    assert r.status_code == 201, r.text


async def test_item3_two_applications_sent_at_once_are_never_both_approved(api):
    from tests.integration.lending_helpers import apply_body, borrower, make_product

    a, b = await make_product(api, name="Race A"), await make_product(api, name="Race B")
    who = await borrower(api, income=100000.0, existing_emi=30000.0)
    body = {"amount": 150000, "tenure_months": 12}
    answers = await asyncio.gather(*(api.client.post("/loans/apply", headers=who["headers"],
                                                     json=apply_body(p, **body)) for p in (a, b)))
    ids = [r.json().get("loan_id") or r.json().get("id") for r in answers if r.status_code == 201]
    admin = await api.staff("admin")
    approvals = await asyncio.gather(*(api.client.post(f"/admin/loans/{i}/approve", headers=bearer(admin))
                                       for i in ids))
    assert sum(r.status_code == 200 for r in approvals) <= 1, [r.text for r in approvals]


async def test_item3_two_direct_loans_opened_at_once_never_both_pass_the_foir_limit(api):
    """Was a hole: eligibility was judged before the insert, so each saw a book without the other."""
    from tests.integration.lending_helpers import apply_body, borrower, make_product

    a, b = await make_product(api, name="Direct A"), await make_product(api, name="Direct B")
    who = await borrower(api, income=100000.0, existing_emi=30000.0)
    admin = await api.staff("admin")
    answers = await asyncio.gather(*(api.client.post("/admin/loans", headers=bearer(admin), json={
        **apply_body(p, amount=150000, tenure_months=12), "user_id": who["user_id"]}) for p in (a, b)))
    assert sorted(r.status_code for r in answers) == [201, 422], [r.text for r in answers]
    assert next(r for r in answers if r.status_code == 422).json()["error_code"] == "not_eligible"


# --- item 4: what KYC verified stays verified --------------------------------------------------------


async def test_item4_look_alike_names_and_dates_never_replace_the_verified_ones(api):
    from bson import ObjectId

    from tests.integration.lending_helpers import borrower

    who = await borrower(api)  # KYC approved as "Asha Rao", born 1990-04-12
    users = api.container.db["user"]
    before = await users.find_one({"_id": ObjectId(who["user_id"])})
    for body in ({"name": "ASHA RAO"}, {"name": "Asha  Rao"}, {"name": "Asha Rao\u200b"}, {"name": "Ａｓｈａ Rao"},
                 {"name": "Asha Raо"},  # a Cyrillic o
                 {"dob": "1990-4-12"}, {"dob": "12/04/1990"}, {"dob": "1991-04-12"}, {"dob": "1990-04-12T10:00:00"},
                 {"name": None}, {"dob": ""}):
        r = await api.client.patch("/users/me", headers=who["headers"], json=body)
        assert r.status_code in (409, 422), (body, r.status_code, r.text)
    # The same date in another form pydantic reads is the same date: no change, nothing stored differently.
    for body in ({"dob": "1990-04-12T00:00:00"}, {"name": " Asha Rao "}):
        r = await api.client.patch("/users/me", headers=who["headers"], json=body)
        assert r.status_code in (200, 409, 422), (body, r.status_code, r.text)
    after = await users.find_one({"_id": ObjectId(who["user_id"])})
    assert (after["name"], after["profile"].get("dob")) == (before["name"], before["profile"].get("dob"))
    me = (await api.client.get("/users/me", headers=who["headers"])).json()
    assert me["name"] == "Asha Rao" and me["profile"]["dob"] == "1990-04-12"


# --- item 6: sizes are limited by what a field is ----------------------------------------------------


def _nested(depth: int) -> bytes:
    return b'{"a":' + b"[" * depth + b"]" * depth + b"}"


async def test_item6_deeply_nested_json_is_a_4xx_in_the_envelope_never_a_500(api):
    tokens = await api.customer()
    admin = await api.staff("admin")
    for method, path, who in (("POST", "/auth/login", None), ("PATCH", "/users/me", tokens),
                              ("POST", "/eligibility/check", tokens), ("POST", "/admin/webhooks", admin),
                              ("PUT", "/users/me/financial-details", tokens), ("POST", "/liveness/detect", tokens)):
        for depth in (5_000, 7_900):  # within the 16 KB JSON limit
            r = await api.client.request(method, path, content=_nested(depth),
                                         headers={"content-type": "application/json", **(bearer(who) if who else {})})
            assert 400 <= r.status_code < 500 and "error_code" in r.json(), (path, depth, r.status_code, r.text[:200])


async def test_item6_huge_query_strings_and_form_fields_are_refused_or_harmless_never_a_500(api):
    tokens = await api.customer()
    admin = await api.staff("admin")
    big = "a" * 30_000  # httpx refuses URLs over 64 KB
    for path in (f"/loans/products?type={big}", f"/admin/users?search={big}", f"/admin/users?q={big}",
                 f"/audit-logs?action={big}", f"/kyc/pending?document_type={big}", f"/admin/loans?status={big}",
                 f"/admin/webhooks?page={big}", f"/users/me?{big}=1"):
        r = await api.client.get(path, headers=bearer(admin))
        assert r.status_code < 500, (path[:40], r.status_code, r.text[:200])
    # Multipart text fields and file names: a field over its length is a 422, a long file name is not kept.
    for data in ({"document_type": big}, {"document_type": "pan", "document_number": big},
                 {"document_type": "pan", "side": big}):
        r = await api.client.post("/kyc/documents", headers=bearer(tokens), data=data,
                                  files={"file": ("card.jpg", b"\xff\xd8\xff not really")})
        assert r.status_code == 422 and r.json()["error_code"] == "validation_error", (list(data), r.text[:200])
    r = await api.client.post("/ocr/extract", headers=bearer(tokens), data={"document_type": big},
                              files={"document": ("x.jpg", b"x")})
    assert r.status_code == 422, r.text[:200]
    r = await api.client.post("/ocr/extract", headers=bearer(tokens), files={"document": (big + ".jpg", b"x")})
    assert 400 <= r.status_code < 500, r.text[:200]
    assert await api.container.db["kyc_doc"].count_documents({"documents.0": {"$exists": True}}) == 0


async def test_item6_long_lists_in_json_bodies_are_refused(api):
    admin = await api.staff("admin")
    r = await api.client.post("/admin/webhooks", headers=bearer(admin),
                              json={"url": "https://example.com/h", "events": ["kyc.approved"] * 500})
    assert r.status_code == 422, r.text[:200]
    r = await api.client.post("/admin/api-keys", headers=bearer(admin), json={"name": "n", "scopes": ["ocr"] * 1000})
    assert r.status_code == 422, r.text[:200]


# --- item 7: HTTP heads are bounded (in time too) ----------------------------------------------------


async def _app(scope, receive, send):  # a tiny ASGI app behind the protocol under test
    if scope["type"] != "http":
        return
    await send({"type": "http.response.start", "status": 200, "headers": [(b"content-length", b"2")]})
    await send({"type": "http.response.body", "body": b"ok"})


@pytest.fixture(scope="module")
def bounded_server():
    """uvicorn with `kycflow serve`'s protocol (the same limits) and a 1 s head timeout, in a thread."""
    import uvicorn

    from app.http_protocol import bounded_protocol
    from tests.conftest import free_port

    protocol = bounded_protocol(16 * 1024, 64 * 1024, 100)
    protocol.head_timeout = 1.0
    port = free_port()
    server = uvicorn.Server(uvicorn.Config(_app, host="127.0.0.1", port=port, http=protocol, log_config=None,
                                           lifespan="off", access_log=False))
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    deadline = time.monotonic() + 10
    while not server.started and time.monotonic() < deadline:
        time.sleep(0.02)
    yield port
    server.should_exit = True
    thread.join(timeout=10)


def _answer(sock: socket.socket, limit: float) -> tuple[bytes, float]:
    """Everything the server sends until it closes (or `limit` seconds pass), and when it closed."""
    start, got = time.monotonic(), b""
    sock.settimeout(0.1)
    while time.monotonic() - start < limit:
        try:
            chunk = sock.recv(65536)
        except TimeoutError:
            continue
        except ConnectionError:
            break
        if not chunk:
            break
        got += chunk
    return got, time.monotonic() - start


def test_item7_a_request_line_of_64_kb_is_refused(bounded_server):
    with socket.create_connection(("127.0.0.1", bounded_server), timeout=5) as sock:
        sock.sendall(b"GET /" + b"a" * 65_536 + b" HTTP/1.1\r\nHost: x\r\n\r\n")
        got, _ = _answer(sock, 5)
    assert got.split(b"\r\n", 1)[0] in (b"HTTP/1.1 431 Request Header Fields Too Large", b"HTTP/1.1 414 URI Too Long",
                                        b"HTTP/1.1 400 Bad Request"), got[:200]


def test_item7_folded_continuation_lines_count_toward_the_field_limit(bounded_server):
    folded = b"X-Folded: a\r\n" + b"".join(b" " + b"b" * 8000 + b"\r\n" for _ in range(3))
    with socket.create_connection(("127.0.0.1", bounded_server), timeout=5) as sock:
        sock.sendall(b"GET / HTTP/1.1\r\nHost: x\r\n" + folded + b"\r\n")
        got, _ = _answer(sock, 5)
    assert not got.startswith(b"HTTP/1.1 200"), got[:200]  # 431, or 400 where folding is refused outright


def test_item7_a_head_trickled_a_field_at_a_time_is_cut_off(bounded_server):
    """Slowloris: every byte used to reset nothing and nothing timed the head; a connection could hold
    its slot forever by sending one short field every few seconds."""
    with socket.create_connection(("127.0.0.1", bounded_server), timeout=5) as sock:
        sock.sendall(b"GET / HTTP/1.1\r\nHost: x\r\n")
        start = time.monotonic()
        closed_after = None
        for i in range(30):  # 6 s of trickling at most
            time.sleep(0.2)
            try:
                sock.sendall(f"X-Slow-{i}: 1\r\n".encode())
            except OSError:
                closed_after = time.monotonic() - start
                break
            sock.settimeout(0.001)
            try:
                if sock.recv(65536) == b"":
                    closed_after = time.monotonic() - start
                    break
            except (TimeoutError, BlockingIOError):
                pass
            except OSError:
                closed_after = time.monotonic() - start
                break
    assert closed_after is not None and closed_after < 3, closed_after


def test_item7_a_connection_that_sends_nothing_is_closed(bounded_server):
    with socket.create_connection(("127.0.0.1", bounded_server), timeout=5) as sock:
        got, took = _answer(sock, 5)
    assert took < 3, took
    assert got == b"" or got.startswith(b"HTTP/1.1 408"), got[:200]


def test_item7_a_prompt_head_and_keep_alive_still_work(bounded_server):
    with socket.create_connection(("127.0.0.1", bounded_server), timeout=5) as sock:
        for _ in range(2):
            time.sleep(0.6)  # idle between requests: within uvicorn's keep-alive, under the head timeout
            sock.sendall(b"GET / HTTP/1.1\r\nHost: x\r\n\r\n")
            sock.settimeout(5)
            assert sock.recv(65536).startswith(b"HTTP/1.1 200")


# --- item 8: webhook targets in every numeric spelling -------------------------------------------------


_NON_PUBLIC_TARGETS = [
    "http://2130706433/hook", "http://0x7f.1/hook", "http://0177.0.0.1/hook", "http://127.1/hook",
    "http://0/hook", "http://0.0.0.0/hook", "http://[::]/hook", "http://[::1]/hook", "http://[::ffff:7f00:1]/hook",
    "http://[::127.0.0.1]/hook", "http://[fe80::1%25eth0]/hook", "http://[fe80::a9fe:a9fe]/hook",
    "http://169.254.169.254/latest/meta-data", "http://0xa9fea9fe/hook", "http://[::ffff:169.254.169.254]/",
    "http://[64:ff9b::a9fe:a9fe]/", "http://100.64.0.1/hook", "http://[fd00::1]/hook", "http://localhost/hook",
    "http://localhost./hook", "http://[0:0:0:0:0:ffff:10.0.0.1]/hook",
]


async def test_item8_every_spelling_of_a_non_public_target_is_refused(api):
    admin = await api.staff("admin")
    for url in _NON_PUBLIC_TARGETS:
        r = await api.client.post("/admin/webhooks", headers=bearer(admin),
                                  json={"url": url, "events": ["kyc.approved"]})
        assert r.status_code == 422 and r.json()["error_code"] == "invalid_webhook_url", (url, r.text)
    assert (await api.client.get("/admin/webhooks", headers=bearer(admin))).json()["total"] == 0


async def test_item8_deliveries_never_follow_a_redirect(api):
    client = api.container.webhooks._http()
    assert client.follow_redirects is False and client._trust_env is False


# --- item 9: a revoked session ends its live streams ------------------------------------------------


async def test_item9_a_reused_refresh_token_ends_the_stream_and_a_plain_refresh_does_not(api_factory):
    from app.domain.events import EventType
    from tests.security._stream_helpers import LiveStream

    heartbeat = 0.3
    api = await api_factory(events_heartbeat_seconds=heartbeat, events_poll_seconds=0.05)
    c = api.container
    tokens = await api.customer()
    stream = LiveStream.open(api, tokens["access_token"])
    try:
        async def viewers(n: int) -> bool:
            return c.events_hub.viewers == n

        assert await eventually(lambda: viewers(1))
        r = await api.client.post("/auth/refresh", json={"refresh_token": tokens["refresh_token"]})
        assert r.status_code == 200, r.text
        await asyncio.sleep(heartbeat * 3)
        assert not stream.ended, stream.text  # the session lives on: the stream too
        kept = await c.events.publish(EventType.LOAN_APPLIED, user_id=tokens["user_id"], data={"loan_id": "kept"})
        assert await eventually(lambda: asyncio.sleep(0, kept.id in stream.event_ids()))
        # The spent refresh token comes back: the whole session is revoked, and with it the stream.
        r = await api.client.post("/auth/refresh", json={"refresh_token": tokens["refresh_token"]})
        assert r.status_code == 401 and r.json()["error_code"] == "refresh_token_reused", r.text
        after = await c.events.publish(EventType.LOAN_APPROVED, user_id=tokens["user_id"], data={"loan_id": "after"})
        assert stream.task is not None
        await asyncio.wait_for(asyncio.shield(stream.task), heartbeat + 3)
        assert after.id not in stream.text
    finally:
        await stream.close()


# --- item 10: gateway paths and answers -----------------------------------------------------------


@pytest.mark.parametrize("tail", [
    "%2e%2e%3b/secret", "a/%2e%2e%3bx/secret", "..%3b/secret", "a/..;/secret", "%252e%252e%253b/secret",
    "%25252e%25252e/secret", "a/%c0%ae%c0%ae/secret", "%e0%80%ae%e0%80%ae/secret", "%c0%2e%c0%2e/secret",
    "..%5csecret", "%5c..%5csecret", "a\\..\\secret", "%2e%2e%2fsecret", "a%2f..%2fsecret", "a/..%00/b",
    "%u002e%u002e/secret", "a/.%2E/b", "a/%2E%2e;jsessionid=1/b", "%ef%bc%8e%ef%bc%8e/secret", "a/..%20/b",
    "a/...%09/b", "%2fetc/passwd", "//evil.example/x", "http:%2f%2fevil/x", "a/%e2%80%a5/b", "a/%ef%bc%8f..%ef%bc%8fb",
    "a/．．/b", "%2e", ".",
])
def test_item10_every_guise_of_a_dot_segment_is_refused(tail):
    from app.domain.gateway import GatewayPathRefused, upstream_url

    with pytest.raises(GatewayPathRefused):
        upstream_url("http://upstream:9000/api", tail, "")


def test_item10_plain_paths_with_dots_and_parameters_still_pass():
    from app.domain.gateway import upstream_url

    for tail in ("a/b..c/d", "v1/items;id=3", "file.tar.gz", "a/.well-known/x", "caf%C3%A9"):
        assert upstream_url("http://upstream:9000/api", tail, "x=..%2f").startswith("http://upstream:9000/api/")


def test_item10_cookies_and_identity_never_come_back_in_any_spelling():
    from app.domain.gateway import response_headers

    sent = [(b"SET-COOKIE", b"a=1"), (b"set-cookie", b"b=2"), (b"Set-Cookie2", b"c=3"), (b"Server", b"nginx"),
            (b"server", b"gunicorn"), (b"SERVER", b"x"), (b"X-Powered-By", b"PHP"), (b"Connection", b"x-secret"),
            (b"X-Secret", b"1"), (b"Trailer", b"x-checksum"), (b"Access-Control-Allow-Origin", b"*"),
            (b"Content-Security-Policy", b"default-src *"), (b"Content-Type", b"text/html")]
    kept = response_headers(sent)
    names = [k.lower() for k, _ in kept]
    for gone in (b"set-cookie", b"set-cookie2", b"server", b"x-powered-by", b"x-secret", b"trailer",
                 b"access-control-allow-origin", b"connection"):
        assert gone not in names, (gone, kept)
    assert (b"content-security-policy", b"sandbox") in kept  # an upstream's own CSP cannot loosen it


# --- item 11: stored files never run in the auditor's browser ------------------------------------------


_DISGUISED = [
    ("card.svg", b'<svg xmlns="http://www.w3.org/2000/svg" onload="alert(1)"><rect width="9" height="9"/></svg>'),
    ("card.jpg", b"<!doctype html><html><body><script>alert(document.domain)</script></body></html>"),
    ("card.png", b"\x89PNG\r\n\x1a\n<script>alert(1)</script>"),
    ("card.pdf", b"<html><script>alert(1)</script></html>%PDF-1.4 junk"),
]


async def test_item11_html_svg_and_broken_images_in_disguise_are_never_stored(api):
    who = await api.customer()
    for name, content in _DISGUISED:
        r = await api.client.post("/kyc/documents", headers=bearer(who), data={"document_type": "pan"},
                                  files={"file": (name, content, "image/jpeg")})
        assert 400 <= r.status_code < 500, (name, r.text[:200])
    # (The upload opens the customer's case before reading the file: an empty case may remain.)
    assert await api.container.db["kyc_doc"].count_documents({"documents.0": {"$exists": True}}) == 0
    assert await api.container.db["kyc_files.files"].count_documents({}) == 0


async def test_item11_a_customer_cannot_read_files_even_their_own_original(api):
    from tests.integration.events_helpers import submitted_case

    owner, stranger = await api.customer(), await api.customer()
    case = await submitted_case(api.container, owner["user_id"], queue_checks=False)
    file_id = case.documents[0].file_id
    for who in (owner, stranger):
        for query in ("", "?original=true", "?original=1"):
            r = await api.client.get(f"/kyc/{case.id}/files/{file_id}{query}", headers=bearer(who))
            assert r.status_code == 403, (query, r.status_code, r.text[:200])


# --- item 12: slow webhook receivers cannot delay KYC checks -------------------------------------------


async def test_item12_more_slow_receivers_than_delivery_workers_still_leave_kyc_checks_running(api_factory):
    from app.services.kyc.checks import CHECKS_JOB
    from tests.integration.events_helpers import HANG, Receiver, submitted_case

    receiver = await Receiver().start()
    try:
        api = await api_factory(job_workers=1, webhook_delivery_workers=2, webhook_timeout_seconds=3,
                                job_poll_seconds=0.1)
        admin = await api.staff("admin")
        receiver.statuses = [HANG] * 6
        for i in range(6):  # three times the delivery lane's workers, each hanging
            r = await api.client.post("/admin/webhooks", headers=bearer(admin), json={
                "url": f"{receiver.url}?n={i}", "events": ["kyc.checks_completed"]})
            assert r.status_code == 201, r.text
        first, second = await api.customer(), await api.customer()
        await submitted_case(api.container, first["user_id"])
        assert await eventually(lambda: asyncio.sleep(0, len(receiver.requests) >= 2), timeout=10)
        began = asyncio.get_running_loop().time()
        case = await submitted_case(api.container, second["user_id"])

        async def done() -> bool:
            job = await api.container.jobs.repo.find_entity({"key": f"{CHECKS_JOB}:{case.id}"})
            return job is not None and job.status.value == "done"

        assert await eventually(done, timeout=10)
        assert asyncio.get_running_loop().time() - began < 2.0
    finally:
        await receiver.stop()


async def test_item12_a_receiver_that_trickles_its_head_forever_is_cut_at_the_timeout(api_factory):
    from app.domain.events import EventType

    async def trickle(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            await reader.readuntil(b"\r\n\r\n")
            writer.write(b"HTTP/1.1 200 OK\r\n")
            for _ in range(200):
                writer.write(b"X-Slow: 1\r\n")
                await writer.drain()
                await asyncio.sleep(0.1)
        except (ConnectionError, asyncio.IncompleteReadError, asyncio.CancelledError):
            pass
        finally:
            writer.close()

    server = await asyncio.start_server(trickle, "127.0.0.1", 0)
    port = server.sockets[0].getsockname()[1]
    try:
        api = await api_factory(job_workers=0, webhook_timeout_seconds=1)
        admin = await api.staff("admin")
        r = await api.client.post("/admin/webhooks", headers=bearer(admin), json={
            "url": f"http://127.0.0.1:{port}/hook", "events": ["loan.applied"]})
        assert r.status_code == 201, r.text
        endpoint = await api.container.webhooks.endpoints.get(r.json()["id"])
        event = await api.container.events.publish(EventType.LOAN_APPLIED, user_id="u", data={"loan_id": "x"})
        start = time.monotonic()
        outcome = await asyncio.wait_for(api.container.webhooks.send(endpoint, event), 10)
        assert time.monotonic() - start < 2.5 and outcome.error == "timeout after 1 s", outcome
    finally:
        server.close()


# --- items 14-16: internal notes, scores, untouched forms ---------------------------------------------


async def _decided(api, *, approved: bool, note: str) -> tuple[dict[str, Any], str]:
    from app.domain.kyc import assess
    from tests.integration.events_helpers import submitted_case

    who = await api.customer()
    case = await submitted_case(api.container, who["user_id"], queue_checks=False)
    assert await api.container.kyc.cases.record_checks(case.id, [], assess([]), api.container.clock.now())
    auditor = await api.staff("auditor")
    body: dict[str, Any] = {"internal_note": note, "customer_message": "Please upload a clearer photo."}
    if not approved:
        body["reasons"] = ["document_unreadable", "face_mismatch"]
    r = await api.client.put(f"/kyc/{case.id}/{'approve' if approved else 'reject'}", headers=bearer(auditor), json=body)
    assert r.status_code == 200, r.text
    return who, case.id


async def test_item14_the_internal_note_reaches_nothing_a_customer_can_read(api):
    note = "INTERNAL: possible impersonation"
    who, case_id = await _decided(api, approved=False, note=note)
    seen = [await api.client.get(p, headers=bearer(who)) for p in ("/kyc/me", "/users/me", "/users/me/kyc-status")]
    assert all(r.status_code == 200 for r in seen)
    assert all("impersonation" not in r.text for r in seen), [r.text for r in seen]
    # Events (the customer's live stream and every webhook carry the same data) and mails.
    events = [e async for e in api.container.db["events"].find({"user_id": who["user_id"]})]
    assert events and "impersonation" not in json.dumps(events, default=str)
    for mail in api.mailbox.for_address(who["email"]):
        assert "impersonation" not in mail.get_body(preferencelist=("plain",)).get_content()
    # The audit trail holds it, and only staff read the trail.
    r = await api.client.get("/audit-logs", headers=bearer(who))
    assert r.status_code == 403, r.text
    r = await api.client.get(f"/kyc/{case_id}", headers=bearer(who))
    assert r.status_code == 403, r.text


async def test_item15_the_kyc_status_route_shows_no_risk_level_to_the_customer(api_factory):
    from tests.integration.events_helpers import run_jobs, submitted_case

    api = await api_factory(job_workers=0)  # the checks run here, not in a background worker
    who = await api.customer()
    await submitted_case(api.container, who["user_id"])
    await run_jobs(api.container)
    stored = await api.container.users_repo.get(who["user_id"])
    assert stored is not None and stored.risk_level is not None  # the checks ran and rated the case
    r = await api.client.get("/users/me/kyc-status", headers=bearer(who))
    assert r.status_code == 200 and r.json()["risk_level"] is None, r.text
    for path in ("/users/me", "/kyc/me"):
        body = (await api.client.get(path, headers=bearer(who))).json()
        assert stored.risk_level not in json.dumps({k: v for k, v in body.items() if k != "profile_risk"}), body
    events = [e async for e in api.container.db["events"].find({"user_id": who["user_id"]})]
    assert all(set(e["data"]) <= {"kyc_id", "status", "checks_state", "reason", "reasons"} for e in events), events
    # Staff still see it.
    admin = await api.staff("admin")
    detail = (await api.client.get(f"/admin/users/{who['user_id']}", headers=bearer(admin))).json()
    assert stored.risk_level in json.dumps(detail)


async def test_item16_an_untouched_disburse_form_stores_no_invented_payout_reference(api):
    from tests.integration.lending_helpers import accept_kfs, apply_body, borrower, make_product
    from tests.integration.test_swagger_defaults import swagger_body

    spec = (await api.client.get("http://testserver/openapi.json")).json()
    body = swagger_body(spec, "/api/v1/admin/loans/{loan_id}/disburse", "post")
    product = await make_product(api)
    who = await borrower(api)
    admin = await api.staff("admin")
    r = await api.client.post("/admin/loans", headers=bearer(admin), json={
        **apply_body(product, amount=100000, tenure_months=12), "user_id": who["user_id"]})
    assert r.status_code == 201, r.text
    loan_id = r.json().get("loan_id") or r.json()["id"]
    await accept_kfs(api, loan_id, who["headers"])
    r = await api.client.post(f"/admin/loans/{loan_id}/disburse", headers=bearer(admin), json=body)
    assert r.status_code == 200, r.text
    stored = await api.container.db["loans"].find_one({})
    examples = {v for v in (body or {}).values() if isinstance(v, str)}
    assert not examples & {str(v) for v in stored.values()}, (body, stored.get("payout_reference"))
