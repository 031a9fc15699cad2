"""Shared test plumbing: one embedded MongoDB-wire server per test worker (or the
real server in MONGODB_URI), a real local SMTP server, and an app per test on a
fresh database."""

from __future__ import annotations

import asyncio
import os
import re
import socket
import threading
import uuid
from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass, field
from email import message_from_bytes, policy
from pathlib import Path
from typing import Any

import httpx
import pytest
from aiosmtpd.controller import Controller

from app.bootstrap import Container
from app.config import Settings
from app.domain.users import Role
from app.main import create_app
from app.repositories.database import close_client, make_client
from app.repositories.embedded import EmbeddedMongo

PASSWORD = "tangerine-harbour-42"


@pytest.fixture(scope="session")
def mongo_uri(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    if os.environ.get("MONGODB_URI"):
        yield os.environ["MONGODB_URI"]
        return
    server = EmbeddedMongo(tmp_path_factory.mktemp("mongo"))
    yield server.start()
    server.stop()


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@dataclass
class Mailbox:
    """Messages the local SMTP server received."""

    messages: list[Any] = field(default_factory=list)

    async def handle_DATA(self, server: Any, session: Any, envelope: Any) -> str:  # noqa: N802 - aiosmtpd API
        msg = message_from_bytes(envelope.content, policy=policy.default)
        self.messages.append({"to": list(envelope.rcpt_tos), "msg": msg})
        return "250 OK"

    def for_address(self, address: str) -> list[Any]:
        return [m["msg"] for m in self.messages if address in m["to"]]

    def last_code(self, address: str) -> str:
        mails = self.for_address(address)
        assert mails, f"no mail for {address}"
        text = mails[-1].get_body(preferencelist=("plain",)).get_content()
        match = re.search(r"\b(\d{6})\b", text)
        assert match, text
        return match.group(1)


@pytest.fixture(scope="session")
def smtp() -> Iterator[tuple[Mailbox, int]]:
    mailbox = Mailbox()
    port = free_port()
    controller = Controller(mailbox, hostname="127.0.0.1", port=port)
    controller.start()
    yield mailbox, port
    controller.stop()


def make_settings(mongo_uri: str, data_dir: Path, smtp_port: int | None, **overrides: Any) -> Settings:
    values: dict[str, Any] = dict(
        environment="test", mongodb_uri=mongo_uri, mongodb_db=f"t_{uuid.uuid4().hex[:12]}", data_dir=data_dir,
        jwt_secret="test-secret-" + "x" * 32, bcrypt_rounds=4, smtp_host="127.0.0.1" if smtp_port else None,
        smtp_port=smtp_port or 25, login_otp="staff", ml_preload=False,
        ml_processes=False,
    )
    values.update(overrides)
    return Settings(**values)


@dataclass
class Api:
    """An app on its own database, a client for it, and the mailbox."""

    client: httpx.AsyncClient
    container: Container
    mailbox: Mailbox
    settings: Settings

    async def register(self, email: str | None = None, *, password: str = PASSWORD, name: str = "Asha Rao",
                       phone: str | None = None) -> dict[str, Any]:
        body: dict[str, Any] = {"password": password, "name": name}
        if email:
            body["email"] = email
        if phone:
            body["phone"] = phone
        r = await self.client.post("/auth/register", json=body)
        assert r.status_code == 201, r.text
        return r.json()

    async def customer(self, email: str | None = None, password: str = PASSWORD) -> dict[str, Any]:
        """A verified, signed-in customer: returns the token pair plus the email."""
        email = email or f"c{uuid.uuid4().hex[:8]}@example.com"
        await self.register(email, password=password)
        r = await self.client.post("/auth/verify-otp", json={"identifier": email, "otp": self.mailbox.last_code(email)})
        assert r.status_code == 200, r.text
        r = await self.client.post("/auth/login", json={"identifier": email, "password": password})
        assert r.status_code == 200, r.text
        return {**r.json(), "email": email}

    async def staff(self, role: str = "admin", password: str = PASSWORD) -> dict[str, Any]:
        """An active staff member signed in through the login OTP."""
        email = f"{role}{uuid.uuid4().hex[:8]}@example.com"
        await self.container.admin.create_user(email=email, password=password, name=f"Staff {role}",
                                               role=Role(role))
        r = await self.client.post("/auth/login", json={"identifier": email, "password": password})
        assert r.status_code == 200 and r.json()["mfa_required"], r.text
        r = await self.client.post("/auth/login/verify-otp",
                                   json={"otp_token": r.json()["otp_token"], "otp": self.mailbox.last_code(email)})
        assert r.status_code == 200, r.text
        return {**r.json(), "email": email}


def bearer(tokens: dict[str, Any]) -> dict[str, str]:
    return {"Authorization": f"Bearer {tokens['access_token']}"}


class SharedModels:
    """Real models, each loaded at most once per test worker and shared by every test app."""

    def __init__(self) -> None:
        from app.ml import models

        self._settings = Settings(_env_file=None)
        self._builders = models.loaders(self._settings)
        self._cache: dict[str, Any] = {}
        self._lock = threading.Lock()

    def get(self, key: str) -> Any:
        with self._lock:
            if key not in self._cache:
                self._cache[key] = self._builders[key]()
            return self._cache[key]

    def loaders(self) -> dict[str, Any]:
        return {key: (lambda k=key: self.get(k)) for key in self._builders}


@pytest.fixture(scope="session")
def shared_models() -> SharedModels:
    return SharedModels()


@pytest.fixture
async def api_factory(
    mongo_uri: str, smtp: tuple[Mailbox, int], tmp_path: Path, shared_models: SharedModels
) -> AsyncIterator[Any]:
    """Build apps with setting overrides; every app gets a fresh database, dropped afterwards."""
    mailbox, port = smtp
    stack: list[tuple[Any, Settings]] = []

    async def build(own_models: bool = False, db_listeners: list[Any] | None = None, **overrides: Any) -> Api:
        """`own_models`: build models from this app's settings instead of sharing the worker's;
        `db_listeners`: PyMongo command listeners on the app's client (round-trip and index tests)."""
        smtp_port = overrides.pop("smtp_port", port)
        settings = make_settings(mongo_uri, tmp_path / f"data{len(stack)}", smtp_port, **overrides)
        app = create_app(settings, ml_loaders=None if own_models else shared_models.loaders(),
                         db_listeners=db_listeners)
        ctx = app.router.lifespan_context(app)
        await ctx.__aenter__()
        stack.append((ctx, settings))
        transport = httpx.ASGITransport(app=app, client=("203.0.113.7", 5555))
        client = httpx.AsyncClient(transport=transport, base_url="http://testserver/api/v1")
        return Api(client=client, container=app.state.container, mailbox=mailbox, settings=settings)

    yield build
    for ctx, settings in reversed(stack):
        await ctx.__aexit__(None, None, None)
        client = make_client(mongo_uri)
        await client.drop_database(settings.mongodb_db)
        await close_client(client)


@pytest.fixture
async def api(api_factory: Any) -> Api:
    return await api_factory()


@pytest.fixture
def email() -> str:
    return f"u{uuid.uuid4().hex[:10]}@example.com"


async def eventually(check: Any, timeout: float = 5.0) -> Any:
    """Poll an async predicate until it returns a truthy value."""
    deadline = asyncio.get_running_loop().time() + timeout
    while True:
        result = await check()
        if result or asyncio.get_running_loop().time() > deadline:
            return result
        await asyncio.sleep(0.05)
