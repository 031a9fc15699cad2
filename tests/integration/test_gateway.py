"""The gateway against real upstreams on 127.0.0.1: bodies streamed both ways (50 MB, memory
bounded), headers in and out, timeouts, an upstream dying mid-answer, redirects not followed,
paths that try to leave the upstream's base, and who may use it."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import tracemalloc
from collections.abc import AsyncIterator, Iterator
from typing import Any

import httpx
import pytest
import uvicorn

from tests.conftest import bearer
from tests.integration.gateway_upstream import Upstream, free_port

MB = 1024 * 1024


@pytest.fixture
def upstreams() -> Iterator[tuple[Upstream, Upstream]]:
    with Upstream() as main, Upstream() as elsewhere:
        yield main, elsewhere


@pytest.fixture
async def gw(api_factory, upstreams) -> Any:
    main, _ = upstreams
    services = {"echo": f"{main.base}/svc", "down": f"http://127.0.0.1:{free_port()}"}  # nothing listens there
    return await api_factory(gateway_services=services, gateway_read_timeout_seconds=0.5)


@contextlib.asynccontextmanager
async def served(api: Any) -> AsyncIterator[str]:
    """The test's app behind a real uvicorn on this loop (the in-process transport buffers bodies)."""
    port = free_port()
    server = uvicorn.Server(uvicorn.Config(api.client._transport.app, host="127.0.0.1", port=port, lifespan="off",
                                           interface="asgi3",
                                           log_level="critical", access_log=False))
    task = asyncio.create_task(server.serve())
    while not server.started:
        await asyncio.sleep(0.01)
    try:
        yield f"http://127.0.0.1:{port}/api/v1"
    finally:
        server.should_exit = True
        await task


def _header(received: dict, name: str) -> list[str]:
    return [v for k, v in received["headers"] if k == name]


async def test_fifty_megabytes_stream_up_and_down_without_being_held(gw, upstreams):
    main, _ = upstreams
    admin = bearer(await gw.staff("admin"))
    size = 50 * MB

    async def upload() -> AsyncIterator[bytes]:
        block = b"u" * MB
        for _ in range(50):
            yield block

    async with served(gw) as base, httpx.AsyncClient(base_url=base, timeout=60) as client:
        tracemalloc.start()
        try:
            r = await client.post("/gateway/echo/echo", content=upload(), headers=admin)
            up_peak = tracemalloc.get_traced_memory()[1]
            tracemalloc.reset_peak()
            received = 0
            async with client.stream("GET", "/gateway/echo/download", params={"size": size}, headers=admin) as down:
                assert down.status_code == 200 and down.headers["content-length"] == str(size)
                async for chunk in down.aiter_raw():
                    received += len(chunk)
            down_peak = tracemalloc.get_traced_memory()[1]
        finally:
            tracemalloc.stop()
    assert r.status_code == 201, r.text
    assert r.json()["bytes"] == size and r.json()["chunks"] >= 50  # arrived in pieces, as sent
    assert received == size
    # Everything in this process (client, gateway, upstream) peaked far below one body: nothing held it.
    assert up_peak < 12 * MB and down_peak < 12 * MB, (up_peak / MB, down_peak / MB)


async def test_method_query_and_headers_cross_minus_credentials_and_hop_by_hop(gw, upstreams):
    main, _ = upstreams
    admin = await gw.staff("admin")
    r = await gw.client.put("/gateway/echo/echo", params={"a": "1", "b": "two words"}, content=b'{"x": 1}', headers={
        **bearer(admin), "Cookie": "session=secret", "X-Custom": "kept", "Connection": "x-secret-hop",
        "X-Secret-Hop": "dropped", "Content-Type": "application/json", "X-Forwarded-For": "10.9.9.9"})
    assert r.status_code == 200, r.text
    seen = r.json()
    assert seen["method"] == "PUT" and seen["path"] == "/svc/echo" and seen["query"] == "a=1&b=two+words"
    assert seen["body"] == '{"x": 1}' and _header(seen, "content-type") == ["application/json"]
    assert _header(seen, "x-custom") == ["kept"]
    for gone in ("authorization", "cookie", "x-api-key", "x-secret-hop"):
        assert _header(seen, gone) == [], gone
    assert _header(seen, "host") == [f"127.0.0.1:{main.port}"]
    # The caller as the service sees it (an untrusted peer's X-Forwarded-For is not believed).
    assert _header(seen, "x-forwarded-for") == ["203.0.113.7"]
    assert _header(seen, "x-forwarded-host") == ["testserver"] and _header(seen, "x-forwarded-proto") == ["http"]
    # The answer's headers come back, minus hop-by-hop ones and the upstream's cookies (see
    # tests/security/test_api10_unsafe_consumption_of_apis.py); repeated headers stay repeated.
    assert r.headers["x-upstream"] == "yes" and "x-hop" not in r.headers and "set-cookie" not in r.headers
    assert r.headers.get_list("x-repeated") == ["1", "2"]


async def test_credentials_are_forwarded_only_when_configured(api_factory, upstreams):
    main, _ = upstreams
    api = await api_factory(gateway_services={"echo": main.base}, gateway_forward_auth=True)
    admin = await api.staff("admin")
    r = await api.client.get("/gateway/echo/echo", headers={**bearer(admin), "Cookie": "c=1"})
    assert r.status_code == 200
    assert _header(r.json(), "authorization") == [bearer(admin)["Authorization"]]
    assert _header(r.json(), "cookie") == ["c=1"]


async def test_a_slow_upstream_is_a_504_and_an_unreachable_one_a_502(gw):
    admin = bearer(await gw.staff("admin"))
    started = asyncio.get_running_loop().time()
    r = await gw.client.get("/gateway/echo/slow", headers=admin)
    assert r.status_code == 504 and r.json()["error_code"] == "gateway_timeout", r.text
    assert asyncio.get_running_loop().time() - started < 2.5  # the read timeout (0.5 s), not the upstream's 3 s
    r = await gw.client.get("/gateway/down/anything", headers=admin)
    assert r.status_code == 502 and r.json()["error_code"] == "bad_gateway"
    assert r.json()["request_id"] == r.headers["x-request-id"]


async def test_an_upstream_dying_mid_answer_cuts_the_callers_stream(gw):
    admin = bearer(await gw.staff("admin"))
    async with served(gw) as base, httpx.AsyncClient(base_url=base, timeout=10) as client:
        with pytest.raises(httpx.RemoteProtocolError):  # never a clean (truncated) end, never a hang
            async with client.stream("GET", "/gateway/echo/die", headers=admin) as r:
                assert r.status_code == 200
                await asyncio.wait_for(r.aread(), timeout=5)
        r = await client.get("/gateway/echo/echo", headers=admin)  # the gateway itself is fine
        assert r.status_code == 200


async def test_redirects_come_back_as_sent_and_are_never_followed(gw, upstreams):
    _, elsewhere = upstreams
    admin = bearer(await gw.staff("admin"))
    target = f"{elsewhere.base}/stolen"
    r = await gw.client.get("/gateway/echo/redirect", params={"to": target}, headers=admin)
    assert r.status_code == 302 and r.headers["location"] == target
    await asyncio.sleep(0.2)
    assert elsewhere.hits == []


@pytest.mark.parametrize("path", [
    "/gateway/echo/%2e%2e/%2e%2e/etc/passwd",
    "/gateway/echo/a/%2E%2E/%2e%2e/x",
    "/gateway/echo/..%2f..%2fadmin",
    "/gateway/echo/%252e%252e/x",  # encoded twice
    "/gateway/echo/.%2e/x",
    "/gateway/echo/a%5c..%5cb",  # backslashes
    "/gateway/echo/http:%2F%2Fevil.example/x",  # an absolute URL
    "/gateway/echo//evil.example/x",  # scheme-relative: another host
])
async def test_paths_leaving_the_upstream_base_are_refused(gw, upstreams, path):
    main, _ = upstreams
    admin = bearer(await gw.staff("admin"))
    r = await gw.client.get(path, headers=admin)
    assert r.status_code == 400 and r.json()["error_code"] == "invalid_gateway_path", r.text
    assert main.hits == []


async def test_a_literal_dot_dot_sent_raw_is_refused(gw, upstreams):
    """HTTP clients remove `..` before sending; an attacker's raw request does not."""
    main, _ = upstreams
    admin = await gw.staff("admin")
    async with served(gw) as base:
        port = int(base.split(":")[2].split("/")[0])
        reader, writer = await asyncio.open_connection("127.0.0.1", port)
        writer.write(f"GET /api/v1/gateway/echo/a/../../x HTTP/1.1\r\nHost: t\r\nConnection: close\r\n"
                     f"Authorization: Bearer {admin['access_token']}\r\n\r\n".encode())
        await writer.drain()
        answer = await asyncio.wait_for(reader.read(), timeout=5)
        writer.close()
    assert answer.startswith(b"HTTP/1.1 400") and b"invalid_gateway_path" in answer, answer[:300]
    assert main.hits == []


async def test_an_unknown_service_is_a_404(gw):
    admin = bearer(await gw.staff("admin"))
    r = await gw.client.get("/gateway/nowhere/x", headers=admin)
    assert r.status_code == 404 and r.json()["error_code"] == "unknown_service" and "nowhere" in r.json()["detail"]


async def test_staff_and_gateway_keys_only(gw, upstreams, email):
    main, _ = upstreams
    customer = bearer(await gw.customer(email))
    r = await gw.client.get("/gateway/echo/echo", headers=customer)
    assert r.status_code == 403 and r.json()["error_code"] == "insufficient_role"
    r = await gw.client.get("/gateway/echo/echo")
    assert r.status_code == 401
    assert main.hits == []

    auditor = bearer(await gw.staff("auditor"))
    assert (await gw.client.get("/gateway/echo/echo", headers=auditor)).status_code == 200
    admin = bearer(await gw.staff("admin"))
    keys = {}
    for scopes in (["gateway"], ["verify", "ocr", "liveness"]):
        r = await gw.client.post("/admin/api-keys", headers=admin, json={"name": "k", "scopes": scopes})
        keys[scopes[0]] = r.json()["api_key"]
    r = await gw.client.get("/gateway/echo/echo", headers={"X-API-Key": keys["verify"]})
    assert r.status_code == 403 and r.json()["error_code"] == "insufficient_scope"
    r = await gw.client.post("/gateway/echo/echo", headers={"X-API-Key": keys["gateway"]}, content=b"hi")
    assert r.status_code == 201 and r.json()["body"] == "hi"
    assert _header(r.json(), "x-api-key") == []  # the key stays here


async def test_the_gateway_has_its_own_body_limit(api_factory, upstreams):
    main, _ = upstreams
    api = await api_factory(gateway_services={"echo": main.base}, gateway_max_body_bytes=64 * 1024,
                            max_json_body_bytes=1024)
    admin = bearer(await api.staff("admin"))
    r = await api.client.post("/gateway/echo/echo", content=b"x" * 60_000, headers=admin)  # over the JSON limit
    assert r.status_code == 201 and r.json()["bytes"] == 60_000
    r = await api.client.post("/gateway/echo/echo", content=b"x" * 70_000, headers=admin)  # declared: refused first
    assert r.status_code == 413 and r.json()["error_code"] == "payload_too_large"
    assert main.hits == ["/echo"]  # the refused one never reached the upstream, not even its headers

    async def chunked():  # no Content-Length: counted as it streams through
        for _ in range(10):
            yield b"y" * 10_000

    hits = len(main.hits)
    r = await api.client.post("/gateway/echo/echo", content=chunked(), headers=admin)
    assert r.status_code == 413 and r.json()["error_code"] == "payload_too_large", r.text
    assert len(main.hits) <= hits + 1  # at most the cut-off upload reached the upstream, never an answer
    await asyncio.sleep(0.2)  # the upstream runs in its own thread: a late hit would show by now
    assert main.hits.count("/echo") <= 2


async def test_a_caller_that_hangs_up_before_its_body_is_a_quiet_400_and_never_reaches_the_upstream(gw, upstreams, caplog):
    """Driven at the ASGI level: the server tells the app the client left before sending a byte of its body."""
    main, _ = upstreams
    token = bearer(await gw.staff("admin"))["Authorization"].encode()
    sent: list[dict[str, Any]] = []

    async def receive() -> dict[str, Any]:
        return {"type": "http.disconnect"}

    async def send(message: dict[str, Any]) -> None:
        sent.append(message)

    scope = {"type": "http", "asgi": {"version": "3.0"}, "http_version": "1.1", "method": "POST", "scheme": "http",
             "path": "/api/v1/gateway/echo/echo", "raw_path": b"/api/v1/gateway/echo/echo", "root_path": "",
             "query_string": b"", "server": ("testserver", 80), "client": ("203.0.113.7", 5555),
             "headers": [(b"host", b"testserver"), (b"authorization", token), (b"content-length", b"10")]}
    caplog.set_level(logging.INFO)
    await asyncio.wait_for(gw.client._transport.app(scope, receive, send), 5)
    assert [m["status"] for m in sent if m["type"] == "http.response.start"] == [400]
    assert main.hits == [] and not [r for r in caplog.records if r.levelno >= logging.ERROR]
