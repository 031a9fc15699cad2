"""A dropped database connection (idle timeout of a firewall, a load balancer or the embedded server)
never answers 500: idle connections are closed by the client first, a read is retried once, a
write answers 503 `database_unavailable`. The embedded server is private to its owner."""

from __future__ import annotations

import asyncio
import json
import stat
from urllib.parse import urlparse

import pytest
from pymongo.errors import AutoReconnect, NetworkTimeout

from app.domain.errors import ServiceUnavailable
from app.repositories.base import GuardedCollection
from app.repositories.embedded import EmbeddedMongo
from tests.conftest import bearer


class DroppingProxy:
    """A TCP relay in front of the database whose open connections can be cut, as an idle timeout does."""

    def __init__(self, target: str) -> None:
        parsed = urlparse(target)
        self.host, self.port = parsed.hostname or "127.0.0.1", parsed.port or 27017
        self.query = parsed.query
        self.writers: set[asyncio.StreamWriter] = set()
        self.live: set[tuple[asyncio.StreamReader, asyncio.StreamReader]] = set()
        self.silenced: set[asyncio.StreamReader] = set()

    async def start(self) -> str:
        self.server = await asyncio.start_server(self._relay, "127.0.0.1", 0)
        port = self.server.sockets[0].getsockname()[1]
        return f"mongodb://127.0.0.1:{port}/?directConnection=true" + (f"&{self.query}" if self.query else "")

    async def _relay(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        up_reader, up_writer = await asyncio.open_connection(self.host, self.port)
        self.writers |= {writer, up_writer}

        self.live.add((reader, up_reader))

        async def pipe(src: asyncio.StreamReader, dst: asyncio.StreamWriter) -> None:
            try:
                while data := await src.read(65536):
                    if src in self.silenced:
                        continue  # a firewall that forgot the connection: bytes vanish, nobody is told
                    dst.write(data)
                    await dst.drain()
            except (ConnectionError, OSError):
                pass
            finally:
                dst.close()

        await asyncio.gather(pipe(reader, up_writer), pipe(up_reader, writer))

    def forget_all(self) -> None:
        """Silently stop relaying every open connection (no FIN, no RST), as a NAT or firewall does
        with connections idle past its timeout; new connections still pass."""
        for pair in self.live:
            self.silenced.update(pair)

    def drop_all(self) -> None:
        for writer in self.writers:
            writer.transport.abort()  # RST, like a firewall forgetting the connection
        self.writers.clear()

    async def close(self) -> None:
        self.drop_all()
        self.server.close()


@pytest.fixture
async def proxy(mongo_uri):
    relay = DroppingProxy(mongo_uri)
    uri = await relay.start()
    yield relay, uri
    await relay.close()


async def test_a_read_after_the_connections_were_dropped_is_answered(proxy, api_factory, email):
    relay, uri = proxy
    api = await api_factory(mongodb_uri=uri)
    tokens = await api.customer(email)
    assert (await api.client.get("/users/me", headers=bearer(tokens))).status_code == 200

    relay.drop_all()
    await asyncio.sleep(0.1)
    r = await api.client.get("/users/me", headers=bearer(tokens))
    assert r.status_code == 200 and r.json()["email"] == email, r.text


async def test_connections_idle_past_the_limit_are_never_reused(proxy, api_factory, email):
    """A firewall that forgets an idle connection tells no one: a request sent on it would wait forever.
    The client closes connections idle past MONGO_MAX_IDLE_SECONDS itself, so the next request after a
    quiet spell (here, a write) goes out on a fresh one."""
    relay, uri = proxy
    api = await api_factory(mongodb_uri=uri, mongo_max_idle_seconds=0.3)
    tokens = await api.customer(email)
    await asyncio.sleep(0.6)  # idle past maxIdleTimeMS
    relay.forget_all()
    r = await asyncio.wait_for(
        api.client.patch("/users/me", headers=bearer(tokens), json={"name": "Asha Quiet"}), timeout=8)
    assert r.status_code == 200 and r.json()["name"] == "Asha Quiet", r.text


async def test_idle_connections_are_closed_before_a_network_timeout_would(api_factory):
    api = await api_factory()
    assert api.container.client.options.pool_options.max_idle_time_seconds == 60
    short = await api_factory(mongo_max_idle_seconds=5)
    assert short.container.client.options.pool_options.max_idle_time_seconds == 5


class _Flaky:
    """A collection whose first `failures` calls lose their connection."""

    def __init__(self, failures: int, error: type[Exception] = AutoReconnect) -> None:
        self.failures, self.error, self.calls = failures, error, 0

    async def _call(self) -> dict:
        self.calls += 1
        if self.calls <= self.failures:
            raise self.error("connection closed")
        return {"ok": 1}

    async def find_one(self, *args, **kwargs) -> dict:
        return await self._call()

    async def update_one(self, *args, **kwargs) -> dict:
        return await self._call()


async def test_a_read_is_retried_once_then_answers_503():
    flaky = _Flaky(1, NetworkTimeout)
    assert await GuardedCollection(flaky).find_one({}) == {"ok": 1} and flaky.calls == 2

    down = _Flaky(5)
    with pytest.raises(ServiceUnavailable) as caught:
        await GuardedCollection(down).find_one({})
    assert caught.value.code == "database_unavailable" and down.calls == 2


async def test_a_write_is_never_resent_and_answers_503():
    flaky = _Flaky(1)
    with pytest.raises(ServiceUnavailable) as caught:
        await GuardedCollection(flaky).update_one({}, {"$set": {"a": 1}})
    assert caught.value.code == "database_unavailable" and flaky.calls == 1


async def test_a_write_on_a_lost_connection_is_a_503_envelope(api, email, monkeypatch):
    tokens = await api.customer(email)
    collection = api.container.users_repo.collection

    async def lost(*args, **kwargs):
        raise AutoReconnect("connection closed")

    monkeypatch.setattr(collection._collection, "find_one_and_update", lost)
    monkeypatch.setattr(collection._collection, "update_one", lost)
    r = await api.client.patch("/users/me", headers=bearer(tokens), json={"name": "Asha Rao Two"})
    assert r.status_code == 503 and r.json()["error_code"] == "database_unavailable", r.text
    assert r.headers["retry-after"] == "1"


async def test_the_embedded_server_is_loopback_only_and_its_address_file_private(tmp_path):
    server = EmbeddedMongo(tmp_path)
    uri = await asyncio.to_thread(server.start)
    try:
        assert urlparse(uri).hostname == "127.0.0.1"
        address_file = tmp_path / "mongo.json"
        assert stat.S_IMODE(address_file.stat().st_mode) == 0o600
        assert urlparse(json.loads(address_file.read_text())["uri"]).hostname == "127.0.0.1"
    finally:
        await asyncio.to_thread(server.stop)
