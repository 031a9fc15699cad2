"""HTTP hardening: body limits per route, security headers, edge-of-calendar dates, input sanity,
the API-key page envelope, OpenAPI error examples and an offline ReDoc."""

from __future__ import annotations

import re
from collections import defaultdict
from datetime import UTC, date, datetime, timedelta

import pytest

from tests.body_limit_routes import large_body_routes
from tests.conftest import PASSWORD, bearer

# --- body size per route ---------------------------------------------------------------------


async def test_json_routes_refuse_a_body_over_a_few_kb_before_parsing(api):
    body = b'{"identifier": "a@example.com", "password": "' + b"x" * 20_000 + b'"}'
    r = await api.client.post("/auth/login", content=body, headers={"Content-Type": "application/json"})
    assert r.status_code == 413 and r.json()["error_code"] == "payload_too_large", r.text
    assert "16 KB" in r.json()["detail"] and r.json()["request_id"] == r.headers["x-request-id"]


async def test_a_chunked_body_without_content_length_is_refused_too(api, email):
    await api.register(email)

    async def chunks():
        for _ in range(40):
            yield b" " * 1024  # whitespace: valid JSON padding, so only the size can refuse it

    r = await api.client.patch("/users/me", content=chunks(), headers={"Content-Type": "application/json"})
    assert "content-length" not in r.request.headers
    assert r.status_code == 413 and r.json()["error_code"] == "payload_too_large"


async def test_a_normal_json_body_still_passes(api, email):
    tokens = await api.customer(email)
    r = await api.client.patch("/users/me", headers=bearer(tokens), json={"name": "Asha R. " + "a" * 100})
    assert r.status_code == 200, r.text


async def test_upload_routes_keep_the_upload_limit(api, email):
    tokens = await api.customer(email)
    # 1 MB is far over the JSON limit but well within an upload: not refused for its size.
    files = {"document": ("d.png", b"\x00" * 1_000_000, "image/png")}
    r = await api.client.post("/ocr/extract", headers=bearer(tokens), files=files)
    assert r.status_code != 413 and r.json()["error_code"] == "invalid_image", r.text


async def test_every_route_that_takes_files_gets_the_upload_limit(api):
    """Derived from the route: a new multipart route gets the upload limit without a table to update."""
    schema = (await api.client.get("http://testserver/openapi.json")).json()
    uploads = {("POST", path) for path, item in schema["paths"].items() for method, op in item.items()
               if "multipart/form-data" in op.get("requestBody", {}).get("content", {})}
    assert {("POST", "/api/v1/kyc/verify"), ("POST", "/api/v1/ocr/extract")} <= uploads
    large = {(method, path): kind for method, path, kind in large_body_routes(api.client._transport.app)}
    assert all(large.get(route) == "uploads" for route in uploads), (uploads, large)


# --- security headers ----------------------------------------------------------------------


@pytest.mark.parametrize("path", ["/api/v1/health", "/api/v1/nowhere", "/docs", "/redoc", "/openapi.json"])
async def test_security_headers_on_every_response(api, path):
    r = await api.client.get(f"http://testserver{path}")
    assert r.headers["x-content-type-options"] == "nosniff"
    assert r.headers["x-frame-options"] == "DENY"
    assert r.headers["referrer-policy"] == "no-referrer"
    assert "strict-transport-security" not in r.headers  # plain http here
    assert "server" not in r.headers


async def test_responses_with_tokens_or_personal_data_are_not_stored(api, email):
    tokens = await api.customer(email)
    r = await api.client.post("/auth/login", json={"identifier": email, "password": PASSWORD})
    assert r.status_code == 200 and r.headers["cache-control"] == "no-store"
    r = await api.client.get("/users/me", headers=bearer(tokens))
    assert r.status_code == 200 and r.headers["cache-control"] == "no-store"
    r = await api.client.post("/auth/login", json={"identifier": email, "password": "wrong-password-1"})
    assert r.status_code == 401 and r.headers["cache-control"] == "no-store"


async def test_docs_pages_still_load_and_are_not_framed(api):
    for path in ("/docs", "/redoc"):
        r = await api.client.get(f"http://testserver{path}")
        assert r.status_code == 200 and "<html" in r.text.lower()
        assert "content-security-policy" not in r.headers  # Swagger UI's inline script must run


async def test_hsts_over_tls_and_via_a_trusted_proxy_only(api_factory):
    api = await api_factory(trusted_proxies=["203.0.113.0/24"])
    r = await api.client.get("https://testserver/api/v1/health")
    assert r.headers["strict-transport-security"].startswith("max-age=")
    r = await api.client.get("/health", headers={"X-Forwarded-Proto": "https"})
    assert r.headers["strict-transport-security"].startswith("max-age=")

    untrusted = await api_factory(trusted_proxies=["10.0.0.0/8"])
    r = await untrusted.client.get("/health", headers={"X-Forwarded-Proto": "https"})
    assert "strict-transport-security" not in r.headers


# --- dates at the edge of the calendar, integers past int64 -----------------------------------


@pytest.mark.parametrize("params", [
    {"from": "9999-12-31T23:59:59-14:00"},
    {"to": "0001-01-01T00:00:00+14:00"},
    {"from": "2026-01-01T00:00:00Z", "to": "9999-12-31T23:00:00-05:00"},
])
async def test_audit_log_dates_that_overflow_utc_are_a_422(api, params):
    admin = await api.staff("admin")
    r = await api.client.get("/audit-logs", headers=bearer(admin), params=params)
    body = r.json()
    assert r.status_code == 422 and body["error_code"] == "validation_error", r.text
    assert {tuple(err["loc"]) for err in body["errors"]} <= {("query", "from"), ("query", "to")}


async def test_audit_log_dates_at_the_edge_that_fit_still_work(api):
    admin = await api.staff("admin")
    r = await api.client.get("/audit-logs", headers=bearer(admin),
                             params={"from": "0001-01-01T00:00:00Z", "to": "9999-12-31T23:59:59Z"})
    assert r.status_code == 200 and r.json()["total"] >= 1, r.text


async def test_page_numbers_past_int64_are_a_422(api):
    admin = await api.staff("admin")
    for path in ("/audit-logs", "/admin/users", "/admin/api-keys"):
        r = await api.client.get(path, headers=bearer(admin), params={"page": str(2**63)})
        assert r.status_code == 422 and r.json()["errors"][0]["loc"] == ["query", "page"], (path, r.text)


# --- input sanity ----------------------------------------------------------------------------

BAD_NAMES = ["Asha\x00Rao", "Asha\u202eoaR", "Asha\u2066Rao", "Asha\x07Rao", "Asha\u202aRao", "Asha\u2069Rao"]


@pytest.mark.parametrize("name", BAD_NAMES)
async def test_names_with_control_or_bidi_characters_are_refused(api, email, name):
    r = await api.client.post("/auth/register", json={"email": email, "password": PASSWORD, "name": name})
    assert r.status_code == 422 and r.json()["errors"][0]["loc"] == ["body", "name"], r.text
    assert await api.container.db["users"].count_documents({}) == 0


async def test_profile_and_staff_names_are_checked_the_same_way(api, email):
    tokens = await api.customer(email)
    r = await api.client.patch("/users/me", headers=bearer(tokens), json={"name": "Asha\u202eoaR"})
    assert r.status_code == 422 and r.json()["errors"][0]["loc"] == ["body", "name"]
    r = await api.client.patch("/users/me", headers=bearer(tokens),
                               json={"current_address": {"line1": "12\x00 MG Road", "city": "Bengaluru",
                                                         "state": "Karnataka", "pincode": "560001"}})
    assert r.status_code == 422 and r.json()["errors"][0]["loc"] == ["body", "current_address", "line1"]
    assert (await api.client.get("/users/me", headers=bearer(tokens))).json()["name"] == "Asha Rao"

    admin = await api.staff("admin")
    r = await api.client.post("/admin/users", headers=bearer(admin), json={
        "email": "x" + email, "password": PASSWORD, "name": "Ravi\u2067Auditor", "role": "auditor"})
    assert r.status_code == 422 and r.json()["errors"][0]["loc"] == ["body", "name"]


async def test_ordinary_non_latin_names_are_kept(api, email):
    tokens = await api.customer(email)
    r = await api.client.patch("/users/me", headers=bearer(tokens), json={"name": "आशा राव O'Neil-Müller"})
    assert r.status_code == 200 and r.json()["name"] == "आशा राव O'Neil-Müller"


@pytest.mark.parametrize("dob", [
    (date.today() + timedelta(days=2)).isoformat(), "1850-01-01", "0001-01-01",
])
async def test_a_date_of_birth_in_the_future_or_too_long_ago_is_refused(api, email, dob):
    tokens = await api.customer(email)
    r = await api.client.patch("/users/me", headers=bearer(tokens), json={"dob": dob})
    assert r.status_code == 422 and r.json()["errors"][0]["loc"] == ["body", "dob"], r.text
    assert "dob" not in (await api.client.get("/users/me", headers=bearer(tokens))).json()["profile"]


async def test_a_plausible_date_of_birth_is_kept(api, email):
    tokens = await api.customer(email)
    dob = (datetime.now(UTC).date() - timedelta(days=365 * 30)).isoformat()
    r = await api.client.patch("/users/me", headers=bearer(tokens), json={"dob": dob})
    assert r.status_code == 200 and r.json()["profile"]["dob"] == dob


async def test_years_in_job_cannot_exceed_total_experience(api, email):
    tokens = await api.customer(email)
    body = {"employment_type": "salaried", "employer_name": "Infosys", "designation": "Engineer",
            "years_in_current_job": 8, "total_experience_years": 5}
    r = await api.client.put("/users/me/employment-details", headers=bearer(tokens), json=body)
    assert r.status_code == 422 and r.json()["errors"][0]["loc"] == ["body", "total_experience_years"], r.text
    r = await api.client.get("/users/me/employment-details", headers=bearer(tokens))
    assert r.status_code == 404
    r = await api.client.put("/users/me/employment-details", headers=bearer(tokens),
                             json={**body, "years_in_current_job": 5})
    assert r.status_code == 200


@pytest.mark.parametrize("amount", ["-0", "-0.00", -0.0])
async def test_negative_zero_amounts_are_refused(api, email, amount):
    tokens = await api.customer(email)
    body = {"monthly_income": 85000, "monthly_expenses": amount, "existing_emi": 0}
    r = await api.client.put("/users/me/financial-details", headers=bearer(tokens), json=body)
    assert r.status_code == 422 and r.json()["errors"][0]["loc"] == ["body", "monthly_expenses"], r.text
    r = await api.client.get("/users/me/financial-details", headers=bearer(tokens))
    assert r.status_code == 404


# --- API keys are listed in the page envelope ------------------------------------------------


async def test_api_keys_are_listed_in_pages(api):
    admin = await api.staff("admin")
    for i in range(3):
        r = await api.client.post("/admin/api-keys", headers=bearer(admin), json={"name": f"key {i}"})
        assert r.status_code == 201
    r = await api.client.get("/admin/api-keys", headers=bearer(admin), params={"page": 1, "page_size": 2})
    body = r.json()
    assert r.status_code == 200 and body["total"] == 3 and body["page"] == 1 and body["page_size"] == 2
    assert [k["name"] for k in body["items"]] == ["key 2", "key 1"] and "api_key" not in body["items"][0]
    r = await api.client.get("/admin/api-keys", headers=bearer(admin), params={"page": 2, "page_size": 2})
    assert [k["name"] for k in r.json()["items"]] == ["key 0"]
    r = await api.client.get("/admin/api-keys", headers=bearer(admin), params={"page_size": 101})
    assert r.status_code == 422 and r.json()["errors"][0]["loc"] == ["query", "page_size"]


# --- OpenAPI examples ----------------------------------------------------------------------


def _examples(content: dict) -> list[dict]:
    media = content.get("application/json", {})
    found = [media["example"]] if "example" in media else []
    return found + [item["value"] for item in media.get("examples", {}).values()]


async def test_every_error_example_matches_the_status_it_is_documented_under(api):
    schema = (await api.client.get("http://testserver/openapi.json")).json()
    assert "example" not in schema["components"]["schemas"]["ErrorResponse"]  # it would show under every status
    checked = 0
    for path, item in schema["paths"].items():
        for method, operation in item.items():
            for status, response in operation["responses"].items():
                if not status.startswith(("4", "5")) or path.endswith("/health"):
                    continue
                examples = _examples(response.get("content", {}))
                assert examples, f"{method.upper()} {path} {status} has no example"
                for example in examples:
                    assert example["status_code"] == int(status), (method, path, status, example)
                    assert example["error_code"] and example["detail"]
                    checked += 1
    assert checked > 50


async def test_login_documents_its_own_refusals(api):
    schema = (await api.client.get("http://testserver/openapi.json")).json()
    responses = schema["paths"]["/api/v1/auth/login"]["post"]["responses"]
    codes_401 = {e["error_code"] for e in _examples(responses["401"]["content"])}
    codes_403 = {e["error_code"] for e in _examples(responses["403"]["content"])}
    assert codes_401 == {"invalid_credentials"} and "account_locked" in codes_403
    verify = schema["paths"]["/api/v1/auth/verify-otp"]["post"]["responses"]
    assert "invalid_otp" in {e["error_code"] for e in _examples(verify["400"]["content"])}


async def test_each_message_route_documents_its_own_sentence(api):
    schema = (await api.client.get("http://testserver/openapi.json")).json()
    assert "example" not in schema["components"]["schemas"]["Message"]
    sentences: dict[str, list[str]] = defaultdict(list)
    for path, item in schema["paths"].items():
        for method, operation in item.items():
            ok = operation["responses"].get("200", {}).get("content", {}).get("application/json", {})
            if ok.get("schema", {}).get("$ref", "").endswith("/Message"):
                assert "example" in ok, f"{method.upper()} {path} has no message example"
                sentences[ok["example"]["message"]].append(f"{method} {path}")
    assert len(sentences) >= 5
    assert all(len(routes) == 1 for routes in sentences.values()), sentences
    assert sentences["Signed out."] == ["post /api/v1/auth/logout"]


# --- ReDoc makes no request off the machine ---------------------------------------------------

# What a browser fetches by itself: an element's src (HTML attribute or a React prop), a stylesheet
# link, a CSS url() or @import. Plain links (`href` of an anchor) are only followed when clicked.
_FETCHED = re.compile(r"""src\s*[=:]\s*["'](https?:)?//|<link[^>]+href=["'](https?:)?//|url\(\s*["']?(https?:)?//"""
                      r"""|@import\s+["']?(https?:)?//""")


async def test_redoc_loads_nothing_from_outside(api):
    html = (await api.client.get("http://testserver/redoc")).text
    assert not _FETCHED.search(html), html
    scripts = re.findall(r"""<script[^>]+src=["']([^"']+)["']""", html)
    links = re.findall(r"""<link[^>]+href=["']([^"']+)["']""", html)
    assert scripts and all(src.startswith("/") for src in scripts + links), (scripts, links)
    for src in scripts + links:
        r = await api.client.get(f"http://testserver{src}")
        assert r.status_code == 200, src
        if src.endswith(".js"):
            assert "cdn.redoc.ly" not in r.text
            assert not _FETCHED.search(r.text), _FETCHED.search(r.text)
