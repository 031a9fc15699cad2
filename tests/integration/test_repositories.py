"""Repositories on the real wire protocol (PyMongo async)."""

from __future__ import annotations

import asyncio
import uuid
from datetime import UTC, datetime, timedelta

import pytest
from bson import ObjectId

from app.domain.audit import AuditEntry
from app.domain.errors import Conflict
from app.domain.otp import OtpPurpose
from app.domain.pages import PageRequest
from app.domain.sessions import Session
from app.domain.users import Role, UserStatus
from app.repositories.database import close_client, make_client, ping
from app.repositories.otps import OtpRepository
from app.repositories.rate_events import RateEventRepository
from app.repositories.user_log import UserLogRepository
from app.repositories.users import MAX_SESSIONS, UserRepository

NOW = datetime(2026, 1, 2, 3, 4, 5, 123000, tzinfo=UTC)


@pytest.fixture
async def db(mongo_uri):
    client = make_client(mongo_uri)
    database = client[f"repo_{uuid.uuid4().hex[:10]}"]
    yield database
    await client.drop_database(database.name)
    await close_client(client)


async def test_users_unique_identifiers_and_updates(db):
    repo = UserRepository(db)
    await repo.ensure_indexes()
    assert (await ping(db))["ok"]
    a = await repo.add(name="A", password_hash="h", role=Role.CUSTOMER, status=UserStatus.ACTIVE, now=NOW,
                       email="a@example.com")
    await repo.add(name="B", password_hash="h", role=Role.CUSTOMER, status=UserStatus.ACTIVE, now=NOW,
                   phone="+919876543210")
    await repo.add(name="C", password_hash="h", role=Role.AUDITOR, status=UserStatus.ACTIVE, now=NOW,
                   phone="+919876543211")  # no email: the partial unique index allows many
    with pytest.raises(Conflict):
        await repo.add(name="D", password_hash="h", role=Role.CUSTOMER, status=UserStatus.ACTIVE, now=NOW,
                       email="a@example.com")
    assert (await repo.get_by_identifier("+919876543210")).name == "B"
    assert (await repo.get(a.id)).created_at == NOW
    assert await repo.get("nonsense") is None
    updated = await repo.save_profile(a.id, profile={"dob": "1990-04-12"}, name="A2", now=NOW)
    assert updated.name == "A2" and updated.profile == {"dob": "1990-04-12"}
    assert await repo.save_profile("nonsense", profile={}, name="A3", now=NOW) is None
    users = await repo.search(role="customer", page=PageRequest(page=1, page_size=1))
    assert users.total == 2 and len(users.items) == 1


async def test_sessions_live_in_the_user_and_rotate_only_from_the_live_token(db):
    repo = UserRepository(db)
    user = await repo.add(name="A", password_hash="h", role=Role.CUSTOMER, status=UserStatus.ACTIVE, now=NOW,
                          email="s@example.com")

    def session(sid: str, jti: str, **kw) -> Session:
        return Session(id=sid, user_id=user.id, refresh_jti=jti, created_at=kw.get("created", NOW),
                       expires_at=kw.get("expires", NOW + timedelta(days=1)))

    await repo.add_session(session("s1", "j1"), NOW)
    assert await repo.rotate_session(user.id, "s1", "j1", "j2", NOW + timedelta(days=2))
    assert not await repo.rotate_session(user.id, "s1", "j1", "j3", NOW)  # a spent id cannot rotate
    found, live = await repo.get_with_session(user.id, "s1")
    assert found.email == "s@example.com" and live.refresh_jti == "j2" and live.expires_at == NOW + timedelta(days=2)
    await repo.add_session(session("s2", "k1"), NOW)
    assert await repo.revoke_sessions(user.id, "test", NOW, keep="s2") == 1
    assert (await repo.get_with_session(user.id, "s1"))[1].revoked_reason == "test"
    assert (await repo.get_with_session(user.id, "s2"))[1].is_active(NOW)
    assert (await repo.get_with_session(user.id, "nope"))[1] is None
    assert await repo.get_with_session("000000000000000000000000", "s2") == (None, None)


async def test_logins_racing_a_sign_out_everywhere_are_all_signed_out(db):
    repo = UserRepository(db)
    user = await repo.add(name="R", password_hash="h", role=Role.CUSTOMER, status=UserStatus.ACTIVE, now=NOW,
                          email="r@example.com")
    logins = [repo.add_session(Session(id=f"s{i}", user_id=user.id, refresh_jti="j", created_at=NOW,
                                       expires_at=NOW + timedelta(days=1)), NOW) for i in range(8)]
    await asyncio.gather(*logins[:4])
    results = await asyncio.gather(*logins[4:], repo.revoke_sessions(user.id, "reset", NOW))
    doc = await db["user"].find_one({"_id": ObjectId(user.id)})
    assert len(doc["sessions"]) == 8  # no login was lost to the concurrent write
    revoked = {sid for sid, s in doc["sessions"].items() if s["revoked_at"] is not None}
    assert len(revoked) == results[-1] >= 4  # every session that existed when the revoke applied is revoked


async def test_expired_and_surplus_sessions_are_pruned_at_login(db):
    repo = UserRepository(db)
    user = await repo.add(name="A", password_hash="h", role=Role.CUSTOMER, status=UserStatus.ACTIVE, now=NOW,
                          email="p@example.com")
    old = Session(id="old", user_id=user.id, refresh_jti="j", created_at=NOW, expires_at=NOW + timedelta(hours=1))
    await repo.add_session(old, NOW)
    for i in range(MAX_SESSIONS + 2):
        later = NOW + timedelta(hours=2, minutes=i)
        await repo.add_session(Session(id=f"s{i}", user_id=user.id, refresh_jti="j", created_at=later,
                                       expires_at=later + timedelta(days=1)), later)
    doc = await db["user"].find_one({"email": "p@example.com"})
    assert "old" not in doc["sessions"] and len(doc["sessions"]) == MAX_SESSIONS
    assert "s0" not in doc["sessions"] and f"s{MAX_SESSIONS + 1}" in doc["sessions"]


async def test_otps_and_rate_events(db):
    otps, events = OtpRepository(db), RateEventRepository(db)
    await otps.ensure_indexes()
    await events.ensure_indexes()
    for code_hash in ("first", "second"):
        await otps.replace(user_id="u1", purpose=OtpPurpose.LOGIN, code_hash=code_hash, expires_at=NOW, max_attempts=5,
                           now=NOW, token_hash="t-" + code_hash)
    assert (await otps.find_entity({"user_id": "u1", "purpose": OtpPurpose.LOGIN.value})).code_hash == "second"
    assert await otps.find_by_token("t-first") is None
    otp = await otps.find_by_token("t-second")
    assert (await otps.claim_attempt(otp.id, 2)).attempts == 1
    assert (await otps.claim_attempt(otp.id, 2)).attempts == 2
    assert await otps.claim_attempt(otp.id, 2) is None  # no try left
    assert (await otps.find_entity({"user_id": "u1", "purpose": OtpPurpose.LOGIN.value})).attempts == 2
    assert await otps.consume(otp.id) and not await otps.consume(otp.id)
    for minutes in (1, 2, 3):
        await events.add("k", NOW + timedelta(minutes=minutes), timedelta(hours=1))
    assert len(await events.times_since("k", NOW + timedelta(minutes=1))) == 2


async def test_user_log_search(db):
    repo = UserLogRepository(db)
    await repo.ensure_indexes()
    for i, action in enumerate(("login_success", "login_failure", "login_failure")):
        await repo.add(AuditEntry(action=action, timestamp=NOW + timedelta(minutes=i), user_id="u1", actor_id="u1"))
    found = await repo.search(action="login_failure")
    assert found.total == 2 and found.items[0].timestamp > found.items[1].timestamp
    found = await repo.search(user_id="u1", since=NOW + timedelta(seconds=30), until=NOW + timedelta(minutes=1))
    assert found.total == 1


async def test_every_repository_the_container_uses_gets_its_indexes(api):
    """Walk the services the container holds: each repository they use was built (and indexed) by it."""
    from app.repositories.base import RepositoryBase

    built = {id(r) for r in api.container.repositories}
    seen, stack, found = set(), [api.container], []
    while stack:
        obj = stack.pop()
        if id(obj) in seen or not hasattr(obj, "__dict__"):
            continue
        seen.add(id(obj))
        if isinstance(obj, RepositoryBase):
            found.append(obj)
            continue
        if type(obj).__module__.startswith("app."):
            stack.extend(vars(obj).values())
    assert found and all(id(r) in built for r in found), [type(r).__name__ for r in found if id(r) not in built]
    collections = {r.collection_name for r in found}
    assert {"user", "kyc_doc", "user_log", "loans", "jobs", "events"} <= collections
