"""An untouched Swagger UI form never stores invented data (issue 15, item 16).

`swagger_form` and `swagger_body` build what Swagger UI 5 (the bundle `/docs` serves) sends when
Execute is pressed on the defaults: a JSON body is the operation's example, else a value generated
from the schema; a form field is the property's example, else its default, else a generated value
(the first enum value, a string matching its pattern, "string"). Swagger UI leaves empty form fields
out of the request, so an optional field whose pre-filled value is "" is not sent at all.
"""

from __future__ import annotations

from typing import Any

from tests.conftest import bearer, eventually

_PATTERN_VALUE = "Gx7Q2k"  # Swagger UI fills a pattern with a random match: any non-empty text stands for it
_FILE = object()


def _resolve(spec: dict[str, Any], schema: dict[str, Any]) -> dict[str, Any]:
    """A `$ref` replaced by what it names; keywords beside it (an example, a description) win."""
    while "$ref" in schema:
        siblings = {k: v for k, v in schema.items() if k != "$ref"}
        schema = {**spec["components"]["schemas"][schema["$ref"].rsplit("/", 1)[1]], **siblings}
    return schema


def swagger_value(spec: dict[str, Any], schema: dict[str, Any]) -> Any:
    """The value Swagger UI 5's sample generator gives one schema (a form field is first merged with
    the first branch of its anyOf, as Swagger UI's form does)."""
    schema = _resolve(spec, schema)
    first = (schema.get("anyOf") or schema.get("oneOf") or [{}])[0]
    merged = {**_resolve(spec, first), **schema}
    if merged.get("examples"):
        return merged["examples"][0]
    for key in ("default", "example", "const"):
        if key in merged:
            return merged[key]
    if merged.get("enum"):
        return merged["enum"][0]
    kind = merged.get("type")
    if kind == "object" or "properties" in merged:
        return {name: swagger_value(spec, prop) for name, prop in merged.get("properties", {}).items()}
    if kind == "array":
        return [swagger_value(spec, merged.get("items", {}))]
    if kind in ("integer", "number"):
        return 0
    if kind == "boolean":
        return True
    if merged.get("contentMediaType") or merged.get("format") == "binary":
        return _FILE
    return _PATTERN_VALUE if "pattern" in merged else "string"


def _operation(spec: dict[str, Any], path: str, method: str, media: str) -> dict[str, Any]:
    content = spec["paths"][path][method]["requestBody"]["content"][media]
    return content


def swagger_form(spec: dict[str, Any], path: str, method: str = "post") -> tuple[dict[str, Any], set[str]]:
    """The multipart fields Swagger UI sends (empty ones left out), and the required field names."""
    schema = _resolve(spec, _operation(spec, path, method, "multipart/form-data")["schema"])
    sent = {}
    for name, prop in schema["properties"].items():
        value = swagger_value(spec, prop)
        if value is None:
            value = "null"  # Swagger UI writes a null sample into the field as the text "null"
        if value != "":
            sent[name] = value
    return sent, set(schema.get("required", []))


def swagger_body(spec: dict[str, Any], path: str, method: str) -> Any:
    content = _operation(spec, path, method, "application/json")
    if "example" in content:
        return content["example"]
    return swagger_value(spec, content["schema"])


def _strings(value: Any) -> list[str]:
    if isinstance(value, dict):
        return [s for item in value.values() for s in _strings(item)]
    if isinstance(value, list):
        return [s for item in value for s in _strings(item)]
    return [value] if isinstance(value, str) else []


async def _spec(api) -> dict[str, Any]:
    return (await api.client.get("http://testserver/openapi.json")).json()


async def test_untouched_kyc_upload_forms_send_only_what_the_customer_chose(api):
    spec = await _spec(api)
    for path in ("/api/v1/kyc/documents", "/api/v1/kyc/selfie"):
        sent, required = swagger_form(spec, path)
        assert set(sent) <= required, (path, sent)  # no optional field pre-filled with an invented value
    sent, _ = swagger_form(spec, "/api/v1/kyc/documents")
    assert sent["file"] is _FILE and sent["document_type"] == "aadhaar"  # both chosen by the customer

    # The one-step JSON form: the customer's own number and image are left empty, `side` is not sent.
    body = swagger_body(spec, "/api/v1/kyc/upload", "post")
    assert "side" not in body and body["document_number"] == "" and body["document_data"] == ""
    assert "string" not in _strings(body)
    who = await api.customer()
    r = await api.client.post("/kyc/upload", headers=bearer(who), json=body)
    assert r.status_code == 422 and {e["loc"][-1] for e in r.json()["errors"]} == {"document_number", "document_data"}
    assert await api.container.db["kyc_doc"].count_documents({}) == 0


async def test_the_untouched_upload_form_reads_side_and_number_from_the_card(api):
    from tests.integration.test_kyc_api import PAN, PERSON, customer

    spec = await _spec(api)
    sent, _ = swagger_form(spec, "/api/v1/kyc/documents")
    who = await customer(api)
    fields = {k: v for k, v in sent.items() if v is not _FILE} | {"document_type": "pan"}
    r = await api.client.post("/kyc/documents", headers=who["headers"], data=fields,
                              files={"file": ("pan.jpg", PAN, "image/jpeg")})
    assert r.status_code == 201, r.text
    assert r.json()["corrections"] == {} and r.json()["document_number"] == "XXXXXX" + PERSON.pan[-4:]
    stored = (await api.container.db["kyc_doc"].find_one({}))["documents"][0]
    assert stored["corrections"] == {}


async def test_the_decision_examples_store_and_mail_nothing_invented(api):
    from app.domain.kyc import assess
    from tests.integration.events_helpers import submitted_case

    spec = await _spec(api)
    auditor = await api.staff("auditor")
    for route in ("approve", "reject"):
        body = swagger_body(spec, f"/api/v1/kyc/{{kyc_id}}/{route}", "put")
        assert "string" not in _strings(body), body
        who = await api.customer()
        case = await submitted_case(api.container, who["user_id"], queue_checks=False)
        assert await api.container.kyc.cases.record_checks(case.id, [], assess([]), api.container.clock.now())
        mails = len(api.mailbox.for_address(who["email"]))
        r = await api.client.put(f"/kyc/{case.id}/{route}", headers=bearer(auditor), json=body)
        assert r.status_code == 200, (route, r.text)
        stored = (await api.container.kyc.cases.get(case.id)).decision
        assert stored.internal_note is None and stored.customer_message is None, stored
        async def notices(who: dict[str, Any] = who, mails: int = mails) -> list[Any]:  # a job sends it
            return api.mailbox.for_address(who["email"])[mails:]

        sent = await eventually(notices)
        assert len(sent) == 1
        text = sent[0].get_body(preferencelist=("plain",)).get_content()
        assert "string" not in text and "Message from the reviewer" not in text, text


async def test_the_untouched_corrections_form_corrects_nothing(api):
    from tests.integration.events_helpers import open_case_with_documents

    spec = await _spec(api)
    body = swagger_body(spec, "/api/v1/kyc/documents/{document_id}/corrections", "put")
    who = await api.customer()
    case = await open_case_with_documents(api.container, who["user_id"])
    r = await api.client.put(f"/kyc/documents/{case.documents[0].id}/corrections", headers=bearer(who), json=body)
    # The customer must type the correction; nothing is invented for them.
    assert r.status_code == 422 and r.json()["errors"][0]["loc"] == ["body", "fields", "full_name"], r.text
    assert all(d.corrections == {} for d in (await api.container.kyc.cases.get(case.id)).documents)


async def test_the_untouched_api_key_form_makes_a_key_without_invented_limits(api):
    spec = await _spec(api)
    body = swagger_body(spec, "/api/v1/admin/api-keys", "post")
    admin = await api.staff("admin")
    r = await api.client.post("/admin/api-keys", headers=bearer(admin), json=body)
    assert r.status_code == 201, r.text  # was 422: expires_at "string", rate_limit_per_minute 0
    key = r.json()
    assert key["expires_at"] is None and key["rate_limit_per_minute"] is None


async def test_the_untouched_ocr_form_lets_the_service_classify(api):
    spec = await _spec(api)
    sent, _ = swagger_form(spec, "/api/v1/ocr/extract")
    assert "document_type" not in sent  # a type from the pattern would skip classification
