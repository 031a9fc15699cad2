"""Every domain error has an HTTP status decided for it; an undecided one is a logged 500."""

from __future__ import annotations

import importlib
import logging
import pkgutil

import httpx
import pytest
from fastapi import FastAPI

import app
from app.api.errors import STATUS, install_error_handlers
from app.api.middleware import RequestContextMiddleware
from app.domain import errors as e


def _all_subclasses(cls: type) -> set[type]:
    found = set()
    for sub in cls.__subclasses__():
        found |= {sub} | _all_subclasses(sub)
    return found


def test_every_domain_error_class_has_an_explicit_status():
    for module in pkgutil.walk_packages(app.__path__, "app."):
        importlib.import_module(module.name)  # errors defined next to their domain are counted too
    classes = {e.DomainError} | _all_subclasses(e.DomainError)
    unmapped = sorted(c.__qualname__ for c in classes if c not in STATUS and not c.__module__.startswith("tests"))
    assert unmapped == ["DomainError"], f"no HTTP status decided for: {unmapped}"


async def test_an_unmapped_domain_error_is_a_500_in_the_envelope_and_logged(caplog: pytest.LogCaptureFixture):
    class Undecided(e.DomainError):
        code = "undecided"

    api = FastAPI()
    install_error_handlers(api)
    api.add_middleware(RequestContextMiddleware)

    @api.get("/boom")
    async def boom() -> None:
        raise Undecided("secret internals")

    transport = httpx.ASGITransport(app=api)
    with caplog.at_level(logging.ERROR, logger="kycflow.errors"):
        async with httpx.AsyncClient(transport=transport, base_url="http://t") as client:
            r = await client.get("/boom")
    body = r.json()
    assert r.status_code == 500 and body["error_code"] == "internal_error" and body["status_code"] == 500
    assert "secret internals" not in r.text and body["request_id"] == r.headers["x-request-id"]
    assert any("Undecided" in rec.getMessage() for rec in caplog.records)


def test_a_subclass_keeps_its_own_status():
    assert STATUS[e.AccountLocked] == 403 and STATUS[e.InvalidOtp] == 400 and STATUS[e.FileTooLarge] == 413
