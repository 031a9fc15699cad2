"""Swagger UI and ReDoc served from the service's own assets (no CDN, works offline)."""

from __future__ import annotations

from importlib.resources import files
from typing import Any

from fastapi import FastAPI
from fastapi.openapi.docs import get_redoc_html, get_swagger_ui_html, get_swagger_ui_oauth2_redirect_html
from fastapi.responses import HTMLResponse, Response
from fastapi.staticfiles import StaticFiles

from app.api.schemas.common import error_example

# The swagger-ui and redoc bundles that ship inside the `fastapi-offline` wheel.
ASSETS = files("fastapi_offline") / "static"
# ReDoc's menu shows a logo fetched from Redocly's CDN: the only request the bundle makes off the machine.
_REDOC_CDN_LOGO = b"https://cdn.redoc.ly/redoc/logo-mini.svg"
_LOCAL_LOGO = b"/static/docs/favicon.png"


def _envelope_for_422(schema: dict[str, Any]) -> dict[str, Any]:
    """FastAPI documents its own 422 body; ours is the error envelope, so say so."""
    envelope = {"$ref": "#/components/schemas/ErrorResponse"}
    for item in schema.get("paths", {}).values():
        for operation in item.values():
            response = operation.get("responses", {}).get("422")
            content = (response or {}).get("content", {}).get("application/json", {})
            if content.get("schema", {}).get("$ref", "").endswith("/HTTPValidationError"):
                response["description"] = "Validation failed: the envelope, with `errors` per field"
                content["schema"] = envelope
                content["example"] = error_example(422, "validation_error", "The request has invalid or missing fields.")
    for name in ("HTTPValidationError", "ValidationError"):
        schema.get("components", {}).get("schemas", {}).pop(name, None)
    return schema


# OpenAPI links: which operations take the id that a create (or a transition) answers with, so a client
# and schemathesis' stateful tests can follow create -> read -> transition. operationId: (status, the
# id's field in the body, the path parameter (or `body/` and the request body's field) it fills, the
# operations it leads to).
_LINKS: dict[str, tuple[str, str, str, tuple[str, ...]]] = {
    "add_bank": ("201", "id", "body/bank_id", ("add_product",)),
    "apply": ("201", "loan_id", "loan_id", ("my_loan", "admin_loan", "approve", "reject")),
    "open_loan": ("201", "loan_id", "loan_id", ("admin_loan", "approve", "reject", "disburse")),
    "approve": ("200", "loan_id", "loan_id", ("admin_loan", "disburse")),
    "disburse": ("200", "loan_id", "loan_id", ("statement", "raise_grievance")),
    "raise_grievance": ("201", "grievance_id", "grievance_id", ("respond_to_grievance", "close_grievance")),
    "add_product": ("201", "id", "product_id", ("product", "update_product")),
    "create_webhook": ("201", "id", "webhook_id", ("get_webhook", "rotate_webhook_secret", "list_webhook_attempts",
                                                    "disable_webhook")),
    "create": ("201", "id", "key_id", ("revoke",)),
    "create_staff": ("201", "id", "user_id", ("get_user", "set_status")),
}


def _add_links(schema: dict[str, Any]) -> dict[str, Any]:
    for item in schema.get("paths", {}).values():
        for operation in item.values():
            if (link := _LINKS.get(operation.get("operationId", ""))) is not None:
                status, field, parameter, targets = link
                value = f"$response.body#/{field}"
                fills = ({"requestBody": {parameter.removeprefix("body/"): value}} if parameter.startswith("body/")
                         else {"parameters": {parameter: value}})
                operation["responses"][status]["links"] = {target: {"operationId": target, **fills} for target in targets}
    return schema


def install_docs(app: FastAPI) -> None:
    build = app.openapi

    def openapi() -> dict[str, Any]:
        if app.openapi_schema is None:
            app.openapi_schema = _add_links(_envelope_for_422(build()))
        return app.openapi_schema

    app.openapi = openapi  # type: ignore[method-assign]

    app.mount("/static/docs", StaticFiles(directory=str(ASSETS)), name="docs-assets")
    openapi_url = app.openapi_url or "/openapi.json"

    @app.get("/docs", include_in_schema=False)
    async def swagger_ui() -> HTMLResponse:
        return get_swagger_ui_html(
            openapi_url=openapi_url, title=f"{app.title} - Swagger UI",
            swagger_js_url="/static/docs/swagger-ui-bundle.js", swagger_css_url="/static/docs/swagger-ui.css",
            swagger_favicon_url="/static/docs/favicon.png", oauth2_redirect_url="/docs/oauth2-redirect",
            swagger_ui_parameters={"persistAuthorization": True, "displayRequestDuration": True},
        )

    @app.get("/docs/oauth2-redirect", include_in_schema=False)
    async def swagger_redirect() -> HTMLResponse:
        return get_swagger_ui_oauth2_redirect_html()

    redoc_js = (ASSETS / "redoc.standalone.js").read_bytes().replace(_REDOC_CDN_LOGO, _LOCAL_LOGO)

    @app.get("/redoc/redoc.standalone.js", include_in_schema=False)
    async def redoc_bundle() -> Response:
        return Response(redoc_js, media_type="text/javascript", headers={"Cache-Control": "public, max-age=86400"})

    @app.get("/redoc", include_in_schema=False)
    async def redoc() -> HTMLResponse:
        return get_redoc_html(openapi_url=openapi_url, title=f"{app.title} - ReDoc",
                              redoc_js_url="/redoc/redoc.standalone.js",
                              redoc_favicon_url="/static/docs/favicon.png", with_google_fonts=False)
