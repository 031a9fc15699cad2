"""The job runner against the real embedded server: interruption, crashes, timeouts, lost leases,
and the job written in the same step as the state change."""

from __future__ import annotations

import asyncio
import logging
import uuid
from dataclasses import replace
from datetime import timedelta

import pytest
from bson import ObjectId

from app.domain.audit import ClientInfo
from app.domain.jobs import JobStatus
from app.repositories.database import close_client, make_client
from app.repositories.jobs import JobRepository
from app.services.clock import Clock
from app.services.jobs import JobService, JobSettings
from tests.conftest import eventually
from tests.integration.test_users_api import PROFILE

FAST = JobSettings(workers=1, poll_seconds=0.05, lease_seconds=5, timeout_seconds=10, max_attempts=3,
                   backoff_base_seconds=2, backoff_cap_seconds=60)


@pytest.fixture
async def db(mongo_uri):
    client = make_client(mongo_uri)
    name = f"jobsvc_{uuid.uuid4().hex[:10]}"
    db = client[name]
    await JobRepository(db).ensure_indexes()
    yield db
    await client.drop_database(name)
    await close_client(client)


class Case:
    """A record the handler moves from `pending` to `done` under the expected state (idempotent)."""

    def __init__(self, db, key="case-1"):
        self.db, self.key = db, key
        self.runs: list[str] = []
        self.started = asyncio.Event()
        self.stall = True  # block the first run until cancelled
        self.crash_after_write = False  # write the result, then block (the worker dies before `complete`)

    async def create(self):
        await self.db["cases"].insert_one({"_id": self.key, "state": "pending", "applied": 0})

    async def handler(self, job):
        self.runs.append(job.attempts)
        self.started.set()
        if self.stall and len(self.runs) == 1 and not self.crash_after_write:
            await asyncio.Event().wait()
        await self.db["cases"].update_one({"_id": self.key, "state": "pending"},
                                          {"$set": {"state": "done"}, "$inc": {"applied": 1}})
        if self.stall and len(self.runs) == 1 and self.crash_after_write:
            await asyncio.Event().wait()

    async def applied(self):
        return (await self.db["cases"].find_one({"_id": self.key}))["applied"]


class FrozenClock(Clock):
    """Time moves only when the test says so: retry times can be asserted exactly."""

    def __init__(self):
        super().__init__()
        self.start = Clock().now()

    def now(self):
        return self.start + self.offset


def service(db, clock=None, settings=FAST):
    return JobService(JobRepository(db), clock or Clock(), settings)


async def test_a_worker_cancelled_mid_handler_finishes_the_job_exactly_once_after_restart(db):
    case = Case(db)
    await case.create()
    first = service(db)
    first.register("check", case.handler)
    first.start()
    job = await first.enqueue("check", "check:case-1", {"case": case.key})
    await asyncio.wait_for(case.started.wait(), 5)
    await first.stop()  # shutdown in the middle of the handler

    stored = await first.repo.get(job.id)
    assert stored.status is JobStatus.QUEUED and stored.lease_owner is None and stored.attempts == 0
    assert await case.applied() == 0

    restarted = service(db)
    restarted.register("check", case.handler)
    restarted.start()
    try:
        async def done():
            return (await restarted.repo.get(job.id)).status is JobStatus.DONE

        assert await eventually(done)
    finally:
        await restarted.stop()
    assert await case.applied() == 1 and case.runs == [1, 1]
    assert (await restarted.repo.get(job.id)).attempts == 1  # the interrupted run was not counted


async def test_a_worker_that_died_after_writing_leaves_a_retry_that_changes_nothing(db):
    clock = FrozenClock()
    case = Case(db)
    case.crash_after_write = True
    await case.create()
    dead = service(db, clock)
    dead.register("check", case.handler)
    dead.start()
    job = await dead.enqueue("check", "check:case-1", {})
    await asyncio.wait_for(case.started.wait(), 5)
    await eventually(lambda: _applied_is(case, 1))
    for task in dead._workers:  # killed: no release, the lease is left to lapse
        task.cancel()
    await asyncio.gather(*dead._workers, return_exceptions=True)

    other = service(db, clock)
    other.register("check", case.handler)
    assert not await other.run_once()  # lease still held
    clock.advance(seconds=FAST.lease_seconds)
    assert not await other.run_once()  # lease expired: queued again after the backoff
    lapsed = await other.repo.get(job.id)
    assert lapsed.status is JobStatus.QUEUED and lapsed.last_error.startswith("lease expired")
    assert lapsed.run_at == clock.now() + timedelta(seconds=FAST.backoff_base_seconds)
    clock.advance(seconds=FAST.backoff_base_seconds)
    assert await other.run_once()
    finished = await other.repo.get(job.id)
    assert finished.status is JobStatus.DONE and finished.attempts == 2
    assert await case.applied() == 1 and case.runs == [1, 2]


async def _applied_is(case, n):
    return await case.applied() == n


async def test_a_handler_past_its_timeout_is_a_failed_attempt_retried_later(db):
    clock = Clock()
    jobs = service(db, clock)

    async def slow(job):
        await asyncio.sleep(30)

    jobs.register("slow", slow, timeout=0.2)
    job = await jobs.enqueue("slow", "slow:1", {})
    assert await jobs.run_once()
    stored = await jobs.repo.get(job.id)
    assert stored.status is JobStatus.QUEUED and stored.attempts == 1
    assert stored.last_error == "timeout after 0.2 s" and stored.run_at > clock.now()


async def test_a_handler_error_is_retried_with_growing_backoff_then_failed(db):
    clock = FrozenClock()
    jobs = service(db, clock)

    async def broken(job):
        raise ValueError("bad payload")

    jobs.register("broken", broken)
    job = await jobs.enqueue("broken", "broken:1", {})
    delays = []
    for _ in range(FAST.max_attempts):
        before = clock.now()
        assert await jobs.run_once()
        stored = await jobs.repo.get(job.id)
        if stored.status is JobStatus.QUEUED:
            delays.append((stored.run_at - before).total_seconds())
            clock.advance(seconds=delays[-1])
    assert delays == [2, 4]
    assert stored.status is JobStatus.FAILED and stored.attempts == 3 and stored.last_error == "ValueError: bad payload"
    assert not await jobs.run_once()
    assert "purge_at" not in await db["jobs"].find_one({"_id": ObjectId(job.id)})  # kept for an admin's retry


async def test_a_done_job_is_deleted_by_mongodbs_ttl_monitor_after_the_retention_days(db):
    clock = FrozenClock()
    jobs = service(db, clock, replace(FAST, retention_days=12))

    async def fine(job):
        return None

    jobs.register("fine", fine)
    job = await jobs.enqueue("fine", "fine:1", {})
    assert await jobs.run_once()
    stored = await db["jobs"].find_one({"_id": ObjectId(job.id)})
    assert stored["status"] == "done" and stored["purge_at"] == stored["finished_at"] + timedelta(days=12)
    [ttl] = [ix for ix in (await db["jobs"].index_information()).values() if "expireAfterSeconds" in ix]
    assert ttl["key"] == [("purge_at", 1)] and ttl["expireAfterSeconds"] == 0


async def test_losing_the_lease_cancels_the_handler(db):
    jobs = service(db, settings=JobSettings(lease_seconds=0.3, poll_seconds=0.05))
    cancelled = asyncio.Event()

    async def long(job):
        try:
            await asyncio.sleep(30)
        except asyncio.CancelledError:
            cancelled.set()
            raise

    jobs.register("long", long)
    job = await jobs.enqueue("long", "long:1", {})
    runner = asyncio.create_task(jobs.run_once())
    await eventually(lambda: _status_is(jobs, job.id, JobStatus.RUNNING))
    await db["jobs"].update_one({}, {"$set": {"lease_owner": "another-worker"}})  # taken over
    assert await asyncio.wait_for(runner, 5)
    assert cancelled.is_set()
    stored = await jobs.repo.get(job.id)
    assert stored.status is JobStatus.RUNNING and stored.lease_owner == "another-worker"  # not ours to finish


async def _status_is(jobs, job_id, status):
    return (await jobs.repo.get(job_id)).status is status


async def test_enqueueing_wakes_an_idle_worker_at_once(db):
    jobs = service(db, settings=JobSettings(poll_seconds=30))
    ran = asyncio.Event()

    async def quick(job):
        ran.set()

    jobs.register("quick", quick)
    jobs.start()
    try:
        await asyncio.sleep(0.2)  # the worker is now idle for 30 s
        await jobs.enqueue("quick", "quick:1", {})
        await asyncio.wait_for(ran.wait(), 2)
    finally:
        await jobs.stop()


async def test_a_crash_between_job_and_state_change_never_loses_the_job(api_factory, monkeypatch):
    """The job and the change are written in one transaction: neither is."""
    api = await api_factory(job_workers=0)
    container = api.container
    tokens = await api.customer()
    user = await container.users.get((await api.client.get(
        "/users/me", headers={"Authorization": f"Bearer {tokens['access_token']}"})).json()["id"])

    async def crash(*args, **kwargs):
        raise ConnectionError("database went away")

    monkeypatch.setattr(container.users_repo, "save_profile", crash)
    with pytest.raises(ConnectionError):
        await container.users.update_profile(user, PROFILE, ClientInfo())
    monkeypatch.undo()

    assert await container.db["jobs"].count_documents({}) == 0
    stored = await container.users_repo.get(user.id)
    assert stored.profile == {} and stored.profile_risk is None


async def test_the_same_logical_job_is_queued_once(db):
    jobs = service(db)
    first = await jobs.enqueue("check", "check:case-1", {"n": 1})
    again = await jobs.enqueue("check", "check:case-1", {"n": 2})
    assert again.id == first.id and await db["jobs"].count_documents({}) == 1


async def test_stop_ends_idle_workers_even_when_a_wake_lands_with_the_cancel(db):
    """`stop()` right after `wake()` (a job committed as the service shuts down): on Python 3.11,
    `asyncio.wait_for` returns the woken event and drops the cancellation, and a worker that only
    relied on it polled on forever while `stop()` waited (a test run once stalled there)."""
    jobs = JobService(JobRepository(db), Clock(), replace(FAST, workers=2, poll_seconds=30))
    for _ in range(3):
        jobs.start()
        await asyncio.sleep(0.1)  # both workers idle, waiting for a wake or the (long) poll
        jobs.wake()
        await asyncio.wait_for(jobs.stop(), 5)
        assert not jobs.running


async def test_an_effect_an_earlier_attempt_claimed_is_skipped_and_says_so(db, caplog):
    """A mail goes at most once: the attempt after one that died mid-send skips it, and an operator can see that
    (a warning naming the job, and `kycflow_job_effects_skipped_total`)."""
    from app import metrics

    jobs, sent = service(db), []

    async def mail(job):
        await jobs.once(job, lambda: asyncio.sleep(0, sent.append(job.key)))

    jobs.register("mail", mail)
    job = await jobs.enqueue("mail", "mail:1", {})
    assert await jobs.run_once() and sent == ["mail:1"]
    before = metrics.JOB_EFFECTS_SKIPPED.labels("mail")._value.get()
    await db["jobs"].update_one({"_id": ObjectId(job.id)}, {"$set": {"status": "queued"}})  # as if it died there
    caplog.set_level(logging.WARNING, logger="kycflow.jobs")
    assert await jobs.run_once() and sent == ["mail:1"]  # never twice
    assert metrics.JOB_EFFECTS_SKIPPED.labels("mail")._value.get() == before + 1
    [record] = [r for r in caplog.records if "skipped, it may not have happened" in r.getMessage()]
    assert (record.job_id, record.kind) == (job.id, "mail")
