"""OWASP API Security Top 10 (2023), API10: Unsafe Consumption of APIs

Items of issue 15 that belong here: gateway paths and upstream headers (10). Each test fails on the code before the fix."""

from __future__ import annotations

# --- item 10: gateway paths and what an upstream's answer may carry back ------------------------

_TRAVERSALS = [
    "a/..;/secret",  # a path parameter: Tomcat and Spring take `..;` as `..`
    "..;/secret",
    "a/..;jsessionid=1/secret",
    "a/.;/secret",
    "a/%2e%2e;/secret",
    "a/%252e%252e%253b/secret",
    "%c0%ae%c0%ae/secret",  # overlong UTF-8 for '.', as old IIS and some Java decoders read it
    "%c0%ae%c0%ae%c0%afsecret",  # ... and for '/'
    "a/%C0%AE%C0%AE/secret",
    "%e0%80%ae%e0%80%ae/secret",  # three-byte overlong '.'
    "%f0%80%80%ae%f0%80%80%ae/secret",  # four-byte overlong '.'
    "%c1%9c..%c1%9csecret",  # overlong backslash
    "..%c0%afsecret",
    "%252e%c0%ae/secret",
    "%u002e%u002e/secret",  # IIS's %u escapes
    "..%u2216secret",
    "%ef%bc%8e%ef%bc%8e/secret",  # full-width dots: '..' once NFKC-normalized
    "a/%e2%80%a5/secret",  # U+2025 TWO DOT LEADER: '..' under NFKC
    "..%ef%bc%8fsecret",  # full-width solidus: '/' under NFKC
    "a%ef%bc%bc..%ef%bc%bcsecret",  # full-width reverse solidus
    "a/.../secret",  # Windows servers trim trailing dots: '...' is '..'
    "a/..%20/secret",  # ... and trailing spaces
    "a/%ff/secret",  # not UTF-8 at all
]


async def test_path_parameters_overlong_utf8_and_look_alike_dots_never_reach_the_upstream(api_factory):
    """Sent as raw HTTP (clients would normalise some of these): each is 400 with the traversal
    error code, and the upstream sees none of them; a UTF-8 path and a harmless `;` still pass."""
    import asyncio

    from tests.conftest import bearer
    from tests.integration.gateway_upstream import Upstream
    from tests.integration.test_gateway import served

    with Upstream() as main:
        gw = await api_factory(gateway_services={"echo": f"{main.base}/svc"})
        token = (await gw.staff("admin"))["access_token"]
        assert (await gw.client.get("/gateway/echo/caf%C3%A9;v=1/echo", headers={
            "Authorization": f"Bearer {token}"})).status_code == 200
        assert main.hits == ["/svc/café;v=1/echo"]
        main.hits.clear()
        async with served(gw) as base:
            port = int(base.split(":")[2].split("/")[0])
            for tail in _TRAVERSALS:
                reader, writer = await asyncio.open_connection("127.0.0.1", port)
                writer.write(f"GET /api/v1/gateway/echo/{tail} HTTP/1.1\r\nHost: t\r\nConnection: close\r\n"
                             f"Authorization: Bearer {token}\r\n\r\n".encode())
                await writer.drain()
                answer = await asyncio.wait_for(reader.read(), timeout=5)
                writer.close()
                assert answer.startswith(b"HTTP/1.1 400") and b'"invalid_gateway_path"' in answer, (tail, answer[:400])
        r = await gw.client.get("/gateway/echo/a/..;/secret", headers=bearer({"access_token": token}))
        assert r.status_code == 400 and r.json()["error_code"] == "invalid_gateway_path"
        assert main.hits == []


async def test_an_upstreams_cookies_identity_and_origin_wide_policies_never_reach_the_caller(api_factory):
    """Set-Cookie would land on the service's origin, Server and X-Powered-By name the upstream's
    software, and HSTS, Alt-Svc, Clear-Site-Data, framing, sniffing, referrer and CORS policies are
    the service's to set: none crosses; the service's own security headers stand."""
    from tests.conftest import bearer
    from tests.integration.gateway_upstream import LEAKY_HEADERS, Upstream

    with Upstream() as main:
        gw = await api_factory(gateway_services={"echo": f"{main.base}/svc"}, trusted_proxies=["203.0.113.7"])
        admin = bearer(await gw.staff("admin"))
        for path in ("/gateway/echo/leaky", "/gateway/echo/echo"):
            r = await gw.client.get(path, headers={**admin, "X-Forwarded-Proto": "https"})
            assert r.status_code == 200 and r.headers["x-upstream"] == "yes", r.text
            for name in {k.decode() for k, _ in LEAKY_HEADERS} - {"strict-transport-security", "x-frame-options",
                                                                 "x-content-type-options", "referrer-policy"}:
                assert name not in r.headers, (path, name, r.headers.get_list(name))
            assert r.headers.get_list("strict-transport-security") == ["max-age=31536000; includeSubDomains"]
            assert r.headers.get_list("x-frame-options") == ["DENY"]
            assert r.headers.get_list("x-content-type-options") == ["nosniff"]
            assert r.headers.get_list("referrer-policy") == ["no-referrer"]
            # What an upstream serves is not the service's page: a browser runs none of it in this origin.
            assert "sandbox" in r.headers["content-security-policy"]
