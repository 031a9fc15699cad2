"""Cross-cutting HTTP behaviour: envelope, request ids, health, docs and the OpenAPI schema."""

from __future__ import annotations

import httpx
import pytest

from app.api.middleware import RequestContextMiddleware


async def test_health_reports_the_database(api):
    r = await api.client.get("/health")
    body = r.json()
    assert r.status_code == 200 and body["status"] == "healthy" and body["database"]["ok"] is True, body
    assert body["version"] and body["timestamp"].endswith("Z")


async def test_health_degraded_when_the_database_is_gone(api_factory):
    api = await api_factory()
    await api.container.client.close()
    r = await api.client.get("/health")
    assert r.status_code == 503 and r.json()["status"] == "degraded" and r.json()["database"]["ok"] is False


async def test_request_id_is_echoed_or_made(api):
    r = await api.client.get("/health", headers={"X-Request-ID": "abc-123"})
    assert r.headers["x-request-id"] == "abc-123"
    r = await api.client.get("/health", headers={"X-Request-ID": "bad id with spaces"})
    assert r.headers["x-request-id"] != "bad id with spaces" and len(r.headers["x-request-id"]) == 32


@pytest.mark.parametrize("method, path, status, code", [
    ("GET", "/nowhere", 404, "not_found"),
    ("DELETE", "/auth/login", 405, "method_not_allowed"),
])
async def test_framework_errors_use_the_envelope(api, method, path, status, code):
    r = await api.client.request(method, path)
    body = r.json()
    assert r.status_code == status and body["error_code"] == code and body["status_code"] == status
    assert body["request_id"] == r.headers["x-request-id"]


async def test_unexpected_errors_are_a_500_envelope_with_the_request_id():
    async def boom(scope, receive, send):
        raise RuntimeError("kaboom")

    transport = httpx.ASGITransport(app=RequestContextMiddleware(boom))
    async with httpx.AsyncClient(transport=transport, base_url="http://t") as client:
        r = await client.get("/x")
    assert r.status_code == 500 and r.json()["error_code"] == "internal_error"
    assert "kaboom" not in r.text and r.json()["request_id"] == r.headers["x-request-id"]


async def test_access_log_is_json_without_secrets(api, email, caplog):
    import logging

    from app.logging_setup import JsonFormatter

    caplog.set_level(logging.INFO, logger="kycflow.access")
    await api.register(email)
    record = next(r for r in caplog.records if r.name == "kycflow.access")
    line = JsonFormatter().format(record)
    import json

    entry = json.loads(line)
    assert entry["method"] == "POST" and entry["path"] == "/api/v1/auth/register" and entry["status"] == 201
    assert entry["duration_ms"] >= 0 and entry["request_id"]
    assert "tangerine" not in line and api.mailbox.last_code(email) not in line


async def test_docs_are_self_hosted(api):
    client = httpx.AsyncClient(transport=api.client._transport, base_url="http://testserver")
    for path in ("/docs", "/redoc"):
        html = (await client.get(path)).text
        assert "/static/docs/" in html and "cdn.jsdelivr" not in html and "fonts.googleapis" not in html
    r = await client.get("/static/docs/swagger-ui-bundle.js")
    assert r.status_code == 200 and len(r.content) > 100_000
    r = await client.get("/static/docs/redoc.standalone.js")
    assert r.status_code == 200


async def test_openapi_names_every_schema_and_documents_every_route(api):
    client = httpx.AsyncClient(transport=api.client._transport, base_url="http://testserver")
    spec = (await client.get("/openapi.json")).json()
    assert spec["components"]["securitySchemes"]["HTTPBearer"]["scheme"] == "bearer"
    assert "ErrorResponse" in spec["components"]["schemas"]
    for path, item in spec["paths"].items():
        for method, op in item.items():
            assert op.get("summary") and op.get("tags"), (method, path)
            assert {"200", "201", "202"} & set(op["responses"]), (method, path)  # a success is documented
            for status, response in op["responses"].items():
                schema = response.get("content", {}).get("application/json", {}).get("schema", {})
                if status.startswith(("4", "5")) and status != "422":
                    assert schema.get("$ref", "").endswith("/ErrorResponse") or path.endswith("/health"), (path, status)
    assert "HTTPValidationError" not in spec["components"]["schemas"]  # our 422s are the envelope too
    four22 = spec["paths"]["/api/v1/users/me"]["patch"]["responses"]["422"]["content"]["application/json"]["schema"]
    assert four22["$ref"].endswith("/ErrorResponse")
    # every schema an integrator generates a client from carries an example
    schemas = spec["components"]["schemas"]
    for name in ("UserOut", "TokenPairResponse", "KycVerifyResponse", "OcrExtractResponse", "ChallengeResponse",
                 "LivenessVerifyResponse", "AuditLogOut"):
        assert "example" in schemas[name], name
    # ErrorResponse examples sit on each route's responses, one per status (test_http_hardening)
    # request bodies are named schemas, not inline objects
    body = spec["paths"]["/api/v1/auth/register"]["post"]["requestBody"]["content"]["application/json"]["schema"]
    assert body["$ref"].endswith("/RegisterRequest")
    assert spec["components"]["schemas"]["RegisterRequest"]["example"]["email"]


def test_operation_ids_are_unique_and_short():
    """Generated clients name their methods after operation ids: one per route, no URL soup."""
    import collections

    from app.main import create_app

    spec = create_app().openapi()
    ids = [op["operationId"] for item in spec["paths"].values() for op in item.values()]
    assert [i for i, n in collections.Counter(ids).items() if n > 1] == []
    assert all("api_v1" not in i for i in ids)
