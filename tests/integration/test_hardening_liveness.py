"""A liveness challenge belongs to the caller who asked for it (a user or an API key): anyone else
presenting it gets the same `invalid` answer as for a challenge that does not exist, and the
challenge stays usable by its owner."""

from __future__ import annotations

from typing import Any

import pytest

from tests.conftest import bearer

UNKNOWN = "0123456789abcdef0123456789abcdef"


async def _api_key(api: Any, admin: dict[str, Any], name: str) -> dict[str, str]:
    r = await api.client.post("/admin/api-keys", headers=bearer(admin), json={"name": name})
    assert r.status_code == 201, r.text
    return {"X-API-Key": r.json()["api_key"]}


@pytest.fixture
async def callers(api: Any) -> dict[str, dict[str, str]]:
    admin = await api.staff("admin")
    return {
        "alice": bearer(await api.customer()), "bob": bearer(await api.customer()),
        "key1": await _api_key(api, admin, "Partner one"), "key2": await _api_key(api, admin, "Partner two"),
    }


async def _verify(api: Any, headers: dict[str, str], challenge_id: str) -> Any:
    # No frames: the owner is told `not_enough_frames` (the challenge was accepted as theirs),
    # anyone else is stopped at the challenge, before frames are looked at.
    return await api.client.post("/liveness/verify", headers=headers, json={"challenge_id": challenge_id, "frames": []})


def _shape(r: Any) -> tuple[int, str, str, dict[str, Any]]:
    body = r.json()
    return r.status_code, body["status"], body["message"], body["detection_results"]


@pytest.mark.parametrize("owner, intruder", [("alice", "bob"), ("alice", "key1"), ("key1", "alice"), ("key1", "key2")])
async def test_another_caller_gets_the_unknown_challenge_answer(api, callers, owner, intruder):
    r = await api.client.get("/liveness/challenge", headers=callers[owner])
    assert r.status_code == 200
    challenge_id = r.json()["challenge_id"]

    unknown = await _verify(api, callers[intruder], UNKNOWN)
    assert _shape(unknown)[:3] == (200, "invalid", "Challenge not found. Please generate a new challenge.")
    stolen = await _verify(api, callers[intruder], challenge_id)
    assert _shape(stolen) == _shape(unknown)
    assert stolen.json()["challenge_id"] == challenge_id

    stored = await api.container.db["liveness_challenges"].find_one({"_id": challenge_id})
    assert stored.get("used_at") is None  # not spent by the intruder
    r = await _verify(api, callers[owner], challenge_id)
    assert r.status_code == 400 and r.json()["error_code"] == "not_enough_frames"


async def test_the_challenge_records_its_caller(api, callers):
    r = await api.client.get("/liveness/challenge", headers=callers["alice"])
    me = (await api.client.get("/users/me", headers=callers["alice"])).json()
    stored = await api.container.db["liveness_challenges"].find_one({"_id": r.json()["challenge_id"]})
    assert stored["caller"] == f"user:{me['id']}"


async def test_a_stored_challenge_moved_to_another_caller_fails_its_signature(api, callers):
    """The binding is signed: rewriting the stored caller does not hand the challenge over."""
    r = await api.client.get("/liveness/challenge", headers=callers["alice"])
    challenge_id = r.json()["challenge_id"]
    bob = (await api.client.get("/users/me", headers=callers["bob"])).json()["id"]
    await api.container.db["liveness_challenges"].update_one({"_id": challenge_id}, {"$set": {"caller": f"user:{bob}"}})
    r = await _verify(api, callers["bob"], challenge_id)
    assert _shape(r)[:3] == (200, "invalid", "Challenge not found. Please generate a new challenge.")
