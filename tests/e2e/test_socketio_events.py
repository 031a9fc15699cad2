"""Live events over Socket.IO (`/socket.io`) with the `python-socketio` client against a real server:
each client receives its own events and no one else's, resumes after a disconnect from the last id it
saw without loss or duplicates, is disconnected when its session is revoked, and receives a KYC
status change made through another instance (a `kycflow serve` process on the same database)."""

from __future__ import annotations

import asyncio
import json
import shutil
import subprocess
import threading
import uuid
from contextlib import ExitStack
from pathlib import Path
from typing import Any

import httpx
import pytest
import socketio
from bson import ObjectId

from app.domain.audit import ClientInfo
from app.domain.kyc import assess
from tests.conftest import PASSWORD, bearer
from tests.e2e._cluster_helpers import cluster_env, headers, login, run_cli, sign_up, start_api, submit_kyc, until
from tests.e2e.test_live_events import served  # noqa: F401 - the fixture: the app behind uvicorn
from tests.integration.events_helpers import open_case_with_documents


class Viewer:
    """A `socketio.Client` (its own threads) that records every event as `(type, envelope, id)`."""

    def __init__(self, base_url: str, token: str, last_event_id: str | None = None) -> None:
        self.base_url, self.auth = base_url, {"token": token, "last_event_id": last_event_id}
        self.events: list[tuple[str, dict[str, Any], str]] = []
        self.refused: Any = None
        self.disconnected = threading.Event()
        self.sio = socketio.Client(reconnection=False)
        self.sio.on("*", lambda event, envelope, event_id: self.events.append((event, envelope, event_id)))
        self.sio.on("connect_error", lambda data: setattr(self, "refused", data))
        self.sio.on("disconnect", lambda *_: self.disconnected.set())

    async def connect(self) -> Viewer:
        await asyncio.to_thread(self.sio.connect, self.base_url, auth=self.auth, transports=["websocket"],
                                wait_timeout=10)
        return self

    async def close(self) -> None:
        await asyncio.to_thread(self.sio.disconnect)

    def types(self) -> list[str]:
        return [t for t, _, _ in self.events]


def _root(api: Any) -> str:
    return str(api.client.base_url).removesuffix("/api/v1").removesuffix("/api/v1/")


async def _submit(api: Any, user_id: str) -> str:
    c = api.container
    await open_case_with_documents(c, user_id)
    return (await c.kyc.submit(await c.users_repo.get(user_id), ClientInfo())).id


async def test_a_client_receives_its_own_events_only_and_resumes_without_loss_or_duplicates(served):  # noqa: F811
    api, root = served, _root(served)
    a, b, auditor = await api.customer(), await api.customer(), await api.staff("auditor")
    refused = Viewer(root, "not-a-token")
    try:
        await refused.connect()
    except socketio.exceptions.ConnectionError:
        pass
    assert refused.refused == {"message": "The token is invalid.", "data": {"error_code": "invalid_token"}}
    bad_id = Viewer(root, a["access_token"], last_event_id="../etc")
    try:
        await bad_id.connect()
    except socketio.exceptions.ConnectionError:
        pass
    assert bad_id.refused["data"] == {"error_code": "invalid_last_event_id"}

    va, vb, vs = [await Viewer(root, t["access_token"]).connect() for t in (a, b, auditor)]
    await until(lambda: api.container.events_hub.viewers == 3, what="three viewers")
    case_a = await _submit(api, a["user_id"])
    await until(lambda: va.events and vs.events, what="a's event")
    await asyncio.sleep(0.5)  # nothing else arrives
    [(kind, envelope, event_id)] = va.events
    assert kind == "kyc.submitted" and envelope["type"] == kind and envelope["data"]["kyc_id"] == case_a
    stored = await api.container.db["events"].find_one({"_id": ObjectId(event_id)})
    assert stored["type"] == "kyc.submitted" and envelope["timestamp"].endswith("Z")
    assert vb.events == [] and vs.types() == ["kyc.submitted"]  # staff see the review queue; b sees nothing

    # a goes away; its case is decided meanwhile; it comes back with the last id it saw.
    await va.close()
    await until(lambda: api.container.events_hub.viewers == 2, what="a to leave")
    await api.container.kyc.cases.record_checks(case_a, [], assess([]), api.container.clock.now())
    r = await api.client.put(f"/kyc/{case_a}/reject", headers=bearer(auditor), json={"reason": "document_unreadable"})
    assert r.status_code == 200, r.text
    again = await Viewer(root, a["access_token"], last_event_id=event_id).connect()
    await until(lambda: again.events, what="the replay")
    await _submit(api, b["user_id"])
    second = await _submit(api, a["user_id"])  # live again after the replay
    await until(lambda: len(again.events) == 2, what="a's new case")
    await asyncio.sleep(0.5)
    assert again.types() == ["kyc.rejected", "kyc.submitted"]  # what it missed, once, then what came after
    assert again.events[0][1]["data"]["kyc_id"] == case_a and again.events[1][1]["data"]["kyc_id"] == second
    assert again.events[0][2] > event_id and again.events[1][2] > again.events[0][2]
    assert vb.types() == ["kyc.submitted"]
    assert vs.types() == ["kyc.submitted", "kyc.rejected", "kyc.submitted", "kyc.submitted"]
    for viewer in (again, vb, vs):
        await viewer.close()


async def test_a_client_is_disconnected_when_its_session_is_revoked(served):  # noqa: F811
    api = served
    customer = await api.customer()
    viewer = await Viewer(_root(api), customer["access_token"]).connect()
    await until(lambda: api.container.events_hub.viewers == 1, what="the viewer")
    r = await api.client.post("/auth/logout", headers=bearer(customer))
    assert r.status_code in (200, 204), r.text
    assert await asyncio.to_thread(viewer.disconnected.wait, 5)  # within a heartbeat (0.5 s here)
    await _submit(api, customer["user_id"])
    await asyncio.sleep(0.5)
    assert viewer.events == [] and api.container.events_hub.viewers == 0


async def test_the_feed_ends_with_stream_end_when_the_token_expires(served):  # noqa: F811
    api = served
    customer = await api.customer()
    viewer = await Viewer(_root(api), customer["access_token"]).connect()
    await until(lambda: api.container.events_hub.viewers == 1, what="the viewer")
    api.container.clock.advance(seconds=api.settings.access_token_ttl_seconds + 1)
    assert await asyncio.to_thread(viewer.disconnected.wait, 5)
    [(kind, envelope, resume_id)] = viewer.events
    assert kind == "stream.end" and envelope["data"] == {"reason": "token_expired"} and ObjectId.is_valid(resume_id)


async def test_a_kyc_status_change_made_through_another_instance_arrives(mongo_uri, tmp_path):
    db_name = f"sio_{ObjectId()}"
    env = cluster_env(mongo_uri, db_name, tmp_path / "var", EVENTS_HEARTBEAT_SECONDS="1")
    run_cli(env, "create-user", "--email", "admin@example.com", "--password", PASSWORD, "--name", "Admin",
            "--role", "admin")
    with ExitStack() as stack:
        a_url, _ = stack.enter_context(start_api(tmp_path / "a", env))
        b_url, _ = stack.enter_context(start_api(tmp_path / "b", env))
        async with httpx.AsyncClient(base_url=f"{a_url}/api/v1", timeout=10) as a, \
                httpx.AsyncClient(base_url=f"{b_url}/api/v1", timeout=10) as b:
            customer = await sign_up(a, b, tmp_path / "var" / "outbox", f"sio-{uuid.uuid4().hex[:6]}@example.com")
            admin = await login(b, "admin@example.com")
            on_a = await Viewer(a_url, customer["access_token"]).connect()
            admin_on_a = await Viewer(a_url, admin["access_token"]).connect()
            try:
                kyc_id = await submit_kyc(b, customer)  # through instance B
                await until(lambda: on_a.types() == ["kyc.submitted"], 20, f"the event on A, got {on_a.types()}")
                assert on_a.events[0][1]["data"]["kyc_id"] == kyc_id
                assert on_a.events[0][1]["data"]["status"] == "SUBMITTED"
                r = await b.get("/kyc/me", headers=headers(customer))
                assert r.json()["status"] == "SUBMITTED"
                await until(lambda: admin_on_a.types() == ["kyc.submitted"], 20, "staff see it too")
            finally:
                await on_a.close()
                await admin_on_a.close()


NODE_CLIENT = Path(__file__).with_name("socketio_client.cjs")


def _node_client() -> bool:
    """Node with the `socket.io-client` package on NODE_PATH (not a dependency of the project)."""
    return shutil.which("node") is not None and subprocess.run(
        ["node", "-e", "require.resolve('socket.io-client')"], capture_output=True).returncode == 0


@pytest.mark.skipif(not _node_client(), reason="needs node and socket.io-client on NODE_PATH")
async def test_the_socket_io_client_package_receives_the_events_as_the_readme_shows(served):  # noqa: F811
    api = served
    customer = await api.customer()
    refused = await asyncio.create_subprocess_exec("node", str(NODE_CLIENT), _root(api), "nope", "1",
                                                   stdout=asyncio.subprocess.PIPE)
    line = json.loads(await asyncio.wait_for(refused.stdout.readline(), 20))
    assert line == {"error": "The token is invalid.", "data": {"error_code": "invalid_token"}}
    await asyncio.wait_for(refused.wait(), 20)
    node = await asyncio.create_subprocess_exec("node", str(NODE_CLIENT), _root(api), customer["access_token"], "1",
                                                stdout=asyncio.subprocess.PIPE)
    try:
        assert json.loads(await asyncio.wait_for(node.stdout.readline(), 20)) == {"connected": True}
        await until(lambda: api.container.events_hub.viewers == 1, what="the node client")
        case_id = await _submit(api, customer["user_id"])
        got = json.loads(await asyncio.wait_for(node.stdout.readline(), 20))
        assert got["type"] == "kyc.submitted" and got["envelope"]["data"]["kyc_id"] == case_id
        assert ObjectId.is_valid(got["id"]) and got["envelope"]["type"] == "kyc.submitted"
        assert await asyncio.wait_for(node.wait(), 20) == 0
    finally:
        if node.returncode is None:
            node.kill()
            await node.wait()
