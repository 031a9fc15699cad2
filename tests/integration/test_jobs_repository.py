"""`jobs` collection against the real embedded server: enqueue, exclusive claims, leases, retries."""

from __future__ import annotations

import asyncio
import uuid
from datetime import UTC, datetime, timedelta

import pytest

from app.domain.jobs import JobStatus, next_run_at
from app.domain.pages import Page, PageRequest
from app.repositories.database import close_client, make_client
from app.repositories.jobs import JobRepository

T0 = datetime(2026, 11, 22, 10, 0, tzinfo=UTC)
LEASE = 30.0


@pytest.fixture
async def repo(mongo_uri):
    client = make_client(mongo_uri)
    name = f"jobs_{uuid.uuid4().hex[:10]}"
    repo = JobRepository(client[name])
    await repo.ensure_indexes()
    yield repo
    await client.drop_database(name)
    await close_client(client)


async def add(repo, key="k1", *, kind="demo", max_attempts=3, run_at=T0):
    job, _ = await repo.enqueue(key=key, kind=kind, payload={"n": 1}, max_attempts=max_attempts, run_at=run_at, now=T0)
    return job


async def test_enqueue_is_idempotent_by_key(repo):
    first, created = await repo.enqueue(key="risk:1", kind="demo", payload={"n": 1}, max_attempts=3, run_at=T0, now=T0)
    again, created_again = await repo.enqueue(key="risk:1", kind="demo", payload={"n": 2}, max_attempts=3,
                                              run_at=T0, now=T0 + timedelta(seconds=5))
    assert created and not created_again
    assert again.id == first.id and again.payload == {"n": 1}  # the first job, untouched
    assert await repo.count() == 1
    assert first.status is JobStatus.QUEUED and first.attempts == 0


async def test_only_one_of_many_concurrent_claimers_gets_a_job(repo):
    await add(repo)
    claims = await asyncio.gather(*(repo.claim(owner=f"w{i}", kinds=["demo"], now=T0, lease_seconds=LEASE)
                                    for i in range(8)))
    won = [c for c in claims if c is not None]
    assert len(won) == 1
    doc = await repo.collection.find_one({})
    assert doc["status"] == "running" and doc["lease_owner"] == won[0].lease_owner and doc["attempts"] == 1
    assert doc["lease_until"] == T0 + timedelta(seconds=LEASE)


async def test_concurrent_claimers_never_share_a_job(repo):
    for i in range(5):
        await add(repo, f"k{i}")
    claims = await asyncio.gather(*(repo.claim(owner=f"w{i}", kinds=["demo"], now=T0, lease_seconds=LEASE)
                                    for i in range(12)))
    ids = [c.id for c in claims if c is not None]
    assert len(ids) == 5 and len(set(ids)) == 5


async def test_claim_skips_jobs_not_due_and_other_kinds(repo):
    await add(repo, "later", run_at=T0 + timedelta(minutes=1))
    await add(repo, "other", kind="webhook")
    assert await repo.claim(owner="w", kinds=["demo"], now=T0, lease_seconds=LEASE) is None
    assert (await repo.claim(owner="w", kinds=["demo"], now=T0 + timedelta(minutes=1), lease_seconds=LEASE)).key == "later"


async def test_a_lapsed_lease_lets_another_worker_take_the_job(repo):
    job = await repo.claim(owner="a", kinds=["demo"], now=(await add(repo)).run_at, lease_seconds=LEASE)
    assert await repo.renew(job.id, owner="a", now=T0 + timedelta(seconds=20), lease_seconds=LEASE)
    assert not await repo.renew(job.id, owner="b", now=T0 + timedelta(seconds=20), lease_seconds=LEASE)
    assert await repo.lapsed(kinds=["demo"], now=T0 + timedelta(seconds=49)) == []  # renewed until 50 s
    later = T0 + timedelta(seconds=50)
    [lapsed] = await repo.lapsed(kinds=["demo"], now=later)
    assert lapsed.lease_owner == "a"
    retry_at = next_run_at(later, lapsed.attempts, base=5, cap=60)
    expired = await repo.fail(lapsed, owner="a", error="lease expired", now=later, retry_at=retry_at, lapsed=True)
    assert expired.status is JobStatus.QUEUED and expired.run_at == later + timedelta(seconds=5)
    taken = await repo.claim(owner="b", kinds=["demo"], now=retry_at, lease_seconds=LEASE)
    assert taken.id == job.id and taken.lease_owner == "b" and taken.attempts == 2
    # The first worker wakes up: the job is no longer its to finish.
    assert not await repo.complete(job.id, owner="a", now=retry_at, purge_at=retry_at)
    assert not await repo.renew(job.id, owner="a", now=retry_at, lease_seconds=LEASE)
    assert await repo.complete(job.id, owner="b", now=retry_at, purge_at=retry_at)
    assert (await repo.get(job.id)).status is JobStatus.DONE


async def test_expiring_a_lease_the_holder_just_renewed_does_nothing(repo):
    await add(repo)
    await repo.claim(owner="a", kinds=["demo"], now=T0, lease_seconds=LEASE)
    [lapsed] = await repo.lapsed(kinds=["demo"], now=T0 + timedelta(seconds=LEASE))
    assert await repo.renew(lapsed.id, owner="a", now=T0 + timedelta(seconds=LEASE), lease_seconds=LEASE)
    assert await repo.fail(lapsed, owner="a", error="x", now=T0, retry_at=T0, lapsed=True) is None
    assert (await repo.get(lapsed.id)).status is JobStatus.RUNNING


async def test_a_failed_attempt_is_retried_at_its_backoff_time(repo):
    await add(repo)
    job = await repo.claim(owner="a", kinds=["demo"], now=T0, lease_seconds=LEASE)
    retry_at = next_run_at(T0, job.attempts, base=5, cap=60)
    failed = await repo.fail(job, owner="a", error="ValueError: boom", now=T0, retry_at=retry_at)
    assert failed.status is JobStatus.QUEUED and failed.run_at == T0 + timedelta(seconds=5)
    assert failed.last_error == "ValueError: boom" and failed.lease_owner is None
    assert await repo.claim(owner="a", kinds=["demo"], now=retry_at - timedelta(milliseconds=1),
                            lease_seconds=LEASE) is None
    again = await repo.claim(owner="a", kinds=["demo"], now=retry_at, lease_seconds=LEASE)
    assert again.attempts == 2
    retry_at = next_run_at(retry_at, again.attempts, base=5, cap=60)
    assert (await repo.fail(again, owner="a", error="e", now=T0, retry_at=retry_at)).run_at == retry_at
    assert retry_at == T0 + timedelta(seconds=15)  # 5 s, then 10 s


async def test_the_last_attempt_fails_the_job_and_an_admin_retry_requeues_it(repo):
    await add(repo, max_attempts=2)
    now = T0
    for attempt in (1, 2):
        job = await repo.claim(owner="a", kinds=["demo"], now=now, lease_seconds=LEASE)
        assert job.attempts == attempt
        job = await repo.fail(job, owner="a", error=f"boom {attempt}", now=now, retry_at=now)
    assert job.status is JobStatus.FAILED and job.finished_at == now and job.last_error == "boom 2"
    assert await repo.claim(owner="a", kinds=["demo"], now=now + timedelta(days=1), lease_seconds=LEASE) is None
    failed = await repo.search(status=JobStatus.FAILED)
    assert failed.total == 1 and failed.items[0].id == job.id

    retried = await repo.retry(job.id, now=now)
    assert retried.status is JobStatus.QUEUED and retried.attempts == 0 and retried.finished_at is None
    assert await repo.retry(job.id, now=now) is None  # no longer failed
    assert await repo.retry("not-an-id", now=now) is None
    assert (await repo.claim(owner="b", kinds=["demo"], now=now, lease_seconds=LEASE)).attempts == 1


async def test_release_gives_back_only_the_owners_running_jobs(repo):
    for key in ("a1", "a2", "b1"):
        await add(repo, key)
    for owner in ("a", "a", "b"):
        await repo.claim(owner=owner, kinds=["demo"], now=T0, lease_seconds=LEASE)
    later = T0 + timedelta(seconds=3)
    assert await repo.release("a", now=later) == 2
    docs = {d["key"]: d async for d in repo.collection.find({})}
    mine = [d for d in docs.values() if d["status"] == "queued"]
    assert len(mine) == 2 and all(d["attempts"] == 0 and d["run_at"] == later and d["lease_owner"] is None
                                  for d in mine)
    assert sum(d["status"] == "running" and d["lease_owner"] == "b" for d in docs.values()) == 1


async def test_list_pages_newest_first(repo):
    for i in range(5):
        job, _ = await repo.enqueue(key=f"k{i}", kind="demo", payload={}, max_attempts=1, run_at=T0,
                                    now=T0 + timedelta(seconds=i))
    page = await repo.search(status=JobStatus.QUEUED, page=PageRequest(page=2, page_size=2))
    assert page.total == 5 and [j.key for j in page.items] == ["k2", "k1"] and page.page == 2
    assert (await repo.search(status=JobStatus.FAILED)) == Page([], 0, 1, 20)
