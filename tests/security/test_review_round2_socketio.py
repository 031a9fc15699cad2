"""Attacker's review, round 2 (issue 21): a Socket.IO client that leaves during its handshake leaves no feed
behind (a probe that held: kept as its regression test)."""

from __future__ import annotations

import asyncio
import json

import websockets

from tests.e2e.test_live_events import served  # noqa: F401 - the fixture: the app behind uvicorn


async def test_a_handshake_dropped_during_authentication_leaves_no_feed(served, monkeypatch):  # noqa: F811
    api, c = served, served.container
    who = await api.customer()
    real = c.auth.authenticate

    async def slow(token: str):  # the client hangs up while its token is being checked
        await asyncio.sleep(0.5)
        return await real(token)

    monkeypatch.setattr(c.auth, "authenticate", slow)
    url = str(api.client.base_url).replace("http://", "ws://").removesuffix("/api/v1").removesuffix("/api/v1/")
    before = c.events_hub.viewers
    for _ in range(3):
        async with websockets.connect(f"{url}/socket.io/?EIO=4&transport=websocket") as ws:
            assert (await ws.recv()).startswith("0")  # engine.io open
            await ws.send("40" + json.dumps({"token": who["access_token"]}))
    await asyncio.sleep(1.0)  # the handlers finish; the feeds would have subscribed by now
    for _ in range(40):
        if c.events_hub.viewers == before:
            break
        await asyncio.sleep(0.1)
    assert c.events_hub.viewers == before  # not one feed per abandoned handshake, each for the token's life
