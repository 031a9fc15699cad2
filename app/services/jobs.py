"""One durable job mechanism for the whole service (collection `jobs`).

A job is written in the same step as the state change that needs it, claimed by a worker
under a lease the worker renews while the handler runs, retried with exponential backoff
after an error, a timeout or a lapsed lease (a crashed or cut-off worker), and `failed`
after `JOB_MAX_ATTEMPTS`, where admins see it (`GET /admin/jobs?status=failed`) and may
retry it. Workers run in the API process (`JOB_WORKERS`) or alone (`kycflow worker`).

**Lanes** (see `register`) only filter what a worker claims; claims and leases stay in the database,
so any number of processes share a lane.

**Same step as the state change.** A job is queued in the unit of work of the change that needs
it (`enqueue(..., tx=tx)`): both commit or neither does, and the workers are woken after the commit.

**The handler contract** (`register(kind, handler)`; `handler(job)` is awaited):
- *Idempotent.* A job may run more than once: a lease can lapse while a slow handler still
  works, a worker can die after writing its result but before marking the job done. So a
  handler writes its result under the state it expects (`find_one_and_update` filtered on
  a status or a marker carried in `job.payload`) and treats "already done" or "no longer
  wanted" as success. It never appends or increments unconditionally, and sends through `once`.
- *Raise to retry.* Any exception, or running past the timeout, is a failed attempt: the
  job is queued again at `now + backoff` (see `app/domain/jobs.py`). Return normally when
  there is nothing to do. Error messages are stored in `last_error`: never put secrets or
  document numbers in them.
- *Cancellable.* At shutdown, or when the lease is lost, the handler task is cancelled;
  the job goes back to the queue and runs again from the start.
"""

from __future__ import annotations

import asyncio
import logging
import os
import socket
import uuid
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime, time, timedelta
from typing import Any

from app import metrics
from app.domain.audit import AuditAction, ClientInfo
from app.domain.jobs import Job, JobNotFailed, JobNotFound, JobStatus, next_run_at
from app.domain.pages import Page, PageRequest
from app.domain.users import User
from app.logging_setup import job_kind_var
from app.repositories.jobs import JobRepository
from app.repositories.transactions import UnitOfWork
from app.services.audit import AuditService
from app.services.clock import Clock

log = logging.getLogger("kycflow.jobs")
Handler = Callable[[Job], Awaitable[None]]


@dataclass(frozen=True)
class JobSettings:
    workers: int = 1
    poll_seconds: float = 1.0
    lease_seconds: float = 30.0
    timeout_seconds: float = 300.0
    max_attempts: int = 5
    backoff_base_seconds: float = 5.0
    backoff_cap_seconds: float = 900.0
    retention_days: int = 30  # a done job is kept this long, then MongoDB's TTL monitor deletes it
    # Workers of each lane beside the `workers` of the main one (a lane not named here gets one).
    lanes: dict[str, int] = field(default_factory=dict)


@dataclass(frozen=True)
class _Kind:
    handler: Handler
    timeout: float
    max_attempts: int | None = None  # None: the JobSettings value
    backoff_base: float | None = None
    backoff_cap: float | None = None
    lane: str | None = None  # None: the main lane


class JobService:
    def __init__(self, repo: JobRepository, clock: Clock, settings: JobSettings,
                 audit: AuditService | None = None) -> None:
        self.repo, self.clock, self.settings, self.audit = repo, clock, settings, audit
        # Unique per process and per service: a lease names the worker that may finish the job.
        self.owner = f"{socket.gethostname()}:{os.getpid()}:{uuid.uuid4().hex[:8]}"
        self._kinds: dict[str, _Kind] = {}
        self._workers: list[asyncio.Task[None]] = []
        # Per lane: the idle workers' wake-ups, and whether a wake found none of them idle.
        self._idle_workers: dict[str | None, list[asyncio.Future[None]]] = {}
        self._missed: set[str | None] = set()
        self._next_sweep: dict[tuple[str, ...], float] = {}
        self._stopping = False

    # --- registry and enqueueing ---------------------------------------------------------

    def register(self, kind: str, handler: Handler, *, timeout: float | None = None, max_attempts: int | None = None,
                 backoff_base: float | None = None, backoff_cap: float | None = None, lane: str | None = None) -> None:
        """A kind may bring its own attempts and backoff (webhook deliveries retry for 24 h), and its own
        `lane`: workers of their own that claim only the lane's kinds, so a kind that waits on the
        outside world (a slow webhook receiver) never holds the workers every other kind needs."""
        self._kinds[kind] = _Kind(handler, timeout or self.settings.timeout_seconds, max_attempts, backoff_base,
                                  backoff_cap, lane)

    @property
    def kinds(self) -> list[str]:
        return sorted(self._kinds)

    def lane_kinds(self, lane: str | None) -> list[str]:
        return sorted(kind for kind, spec in self._kinds.items() if spec.lane == lane)

    async def enqueue(self, kind: str, key: str, payload: dict[str, Any], *, tx: UnitOfWork | None = None,
                      run_at: datetime | None = None) -> Job:
        """Queue `kind` once per `key` (a second call returns the first job). With `tx`, inside that
        unit of work (the workers wake after its commit)."""
        now = self.clock.now()
        spec = self._kinds.get(kind)
        attempts = spec.max_attempts if spec and spec.max_attempts else self.settings.max_attempts
        job, created = await (tx.jobs if tx else self.repo).enqueue(key=key, kind=kind, payload=payload,
                                                                    max_attempts=attempts, run_at=run_at or now, now=now)
        if created and tx is None:
            self.wake(kind)
        return job

    async def arm_daily(self, kind: str, tx: UnitOfWork | None = None) -> None:
        """Tomorrow's 00:00 UTC run of a daily job, queued once per day whoever asks (its handler arms the next
        first, so a run that fails for good leaves the days after it running)."""
        day = self.clock.now().date() + timedelta(days=1)
        await self.enqueue(kind, f"{kind}:{day}", {}, tx=tx, run_at=datetime.combine(day, time(), UTC))

    async def once(self, job: Job, effect: Callable[[], Awaitable[None]]) -> None:
        """Run a handler's outside effect that cannot be undone (a mail) at most once per job: claimed
        on the job first, so a run again (a lease lapsed after the send) skips it. An effect that
        raises gives the claim back, and the job retries with backoff."""
        if not await self.repo.claim_effect(job.id):
            # An earlier attempt claimed it and then died or lost its lease: sent, or cut off mid-send. Never
            # twice; so that a lost one can be found, say so (the log and a counter).
            metrics.JOB_EFFECTS_SKIPPED.labels(job.kind).inc()
            log.warning("job effect claimed by an earlier attempt: skipped, it may not have happened",
                        extra={"job_id": job.id, "kind": job.kind, "attempts": job.attempts})
            return
        try:
            await effect()
        except BaseException:
            await self.repo.release_effect(job.id)
            raise

    def wake(self, kind: str | None = None) -> None:
        """One idle worker of `kind`'s lane (of every lane without a kind) looks for work now. One, not
        all: each woken worker sends a claim, and a job needs one (eight per job were measured)."""
        spec = self._kinds.get(kind) if kind else None
        for lane in [spec.lane] if spec else {*self._idle_workers, *(s.lane for s in self._kinds.values())}:
            waiting = self._idle_workers.get(lane, [])
            while waiting and waiting[-1].done():
                waiting.pop()
            if waiting:
                waiting.pop().set_result(None)
            else:  # all busy: the next one to finish looks again instead of waiting
                self._missed.add(lane)

    # --- workers -------------------------------------------------------------------------

    @property
    def running(self) -> bool:
        return any(not task.done() for task in self._workers)

    def start(self, workers: int | None = None) -> None:
        """`workers` (JOB_WORKERS) for the main lane, and each other lane's own (JobSettings.lanes);
        none at all with 0 (a process that leaves the jobs to `kycflow worker`)."""
        count = self.settings.workers if workers is None else workers
        if count <= 0 or self.running:
            return
        self._idle_workers, self._missed = {}, set()
        self._stopping = False
        lanes = sorted({spec.lane for spec in self._kinds.values() if spec.lane is not None})
        sizes: dict[str | None, int] = {None: count, **{lane: max(1, self.settings.lanes.get(lane, 1)) for lane in lanes}}
        loop = asyncio.get_running_loop()
        self._workers = [loop.create_task(self._work(n, lane), name=f"job-worker-{lane or 'main'}-{n}")
                         for lane, size in sizes.items() for n in range(size)]
        log.info("job workers started", extra={"workers": count, "lanes": {lane: sizes[lane] for lane in lanes},
                                               "owner": self.owner, "kinds": self.kinds})

    async def stop(self) -> None:
        """Cancel the workers (a running handler included) and give their leases back."""
        workers, self._workers = self._workers, []
        self._stopping = True  # see `_work`
        for task in workers:
            task.cancel()
        await asyncio.gather(*workers, return_exceptions=True)
        try:
            released = await self.repo.release(self.owner, now=self.clock.now())
        except Exception:  # database gone: the leases lapse on their own and the jobs are retried
            log.warning("job leases not released", exc_info=True, extra={"owner": self.owner})
            return
        if workers or released:
            log.info("job workers stopped", extra={"released": released, "owner": self.owner})

    async def _work(self, n: int, lane: str | None = None) -> None:
        # Cancelled by `stop()`, which also says so in `_stopping`: on Python 3.11 `asyncio.wait_for`
        # drops a cancellation that lands as the awaited event fires (a `wake()` during shutdown), and
        # a worker relying on the cancellation alone polled on while `stop()` waited for it, forever.
        while not self._stopping:
            try:
                ran = await self.run_once(self.lane_kinds(lane))
            except asyncio.CancelledError:
                raise
            except Exception:  # the database went away for a moment: wait and look again
                log.exception("job worker error", extra={"worker": n})
                ran = False
            if not ran:
                await self._idle(lane)

    async def _idle(self, lane: str | None) -> None:
        if lane in self._missed:
            self._missed.discard(lane)
            return
        woken = asyncio.get_running_loop().create_future()
        waiting = self._idle_workers.setdefault(lane, [])
        waiting.append(woken)
        try:
            await asyncio.wait_for(woken, self.settings.poll_seconds)
        except TimeoutError:
            pass
        finally:
            if woken in waiting:
                waiting.remove(woken)

    async def run_once(self, kinds: list[str] | None = None) -> bool:
        """Expire lapsed leases, then claim and run one due job of `kinds` (default: every kind);
        False when none was due."""
        kinds = self.kinds if kinds is None else kinds
        if not kinds:
            return False
        now = self.clock.now()
        # A lease lasts `lease_seconds`: a sweep for lapsed ones once a poll interval is soon enough,
        # where a worker woken for every new job sent it beside each claim.
        if now.timestamp() >= self._next_sweep.get(tuple(kinds), 0.0):
            self._next_sweep[tuple(kinds)] = now.timestamp() + self.settings.poll_seconds
            for lapsed in await self.repo.lapsed(kinds=kinds, now=now):
                await self._failed(lapsed, lapsed.lease_owner or "", "lease expired: the worker stopped or hung",
                                   lapsed=True)
        job = await self.repo.claim(owner=self.owner, kinds=kinds, now=now, lease_seconds=self.settings.lease_seconds)
        if job is None:
            return False
        await self._run(job)
        return True

    async def _run(self, job: Job) -> None:
        kind = self._kinds[job.kind]
        metrics.JOB_ATTEMPTS.labels(job.kind).inc()
        marked = job_kind_var.set(job.kind)  # the handler's task copies it; the worker's own calls stay unmarked
        try:
            handler = asyncio.ensure_future(asyncio.wait_for(kind.handler(job), kind.timeout))
        finally:
            job_kind_var.reset(marked)
        renewer = asyncio.ensure_future(self._renew(job, handler))
        try:
            await asyncio.wait({handler})
        finally:  # also on cancellation (shutdown): stop both, `stop` releases the lease
            renewer.cancel()
            handler.cancel()
            await asyncio.gather(renewer, handler, return_exceptions=True)
        if renewer.done() and not renewer.cancelled() and renewer.result() is False:
            log.warning("job lease lost while running", extra={"job_id": job.id, "kind": job.kind})
            return
        if handler.cancelled():  # cancelled by the lease loss path above, nothing to record
            return
        error = handler.exception()
        if error is None:
            now = self.clock.now()
            if not await self.repo.complete(job.id, owner=self.owner, now=now,
                                            purge_at=now + timedelta(days=self.settings.retention_days)):
                log.warning("job finished after its lease was taken", extra={"job_id": job.id, "kind": job.kind})
            return
        message = (f"timeout after {kind.timeout:g} s" if isinstance(error, TimeoutError)
                   else f"{type(error).__name__}: {error}")
        log.warning("job attempt failed", extra={"job_id": job.id, "kind": job.kind, "attempt": job.attempts,
                                                 "error": message})
        await self._failed(job, self.owner, message)

    async def _renew(self, job: Job, handler: asyncio.Future[None]) -> bool:
        """Keep the lease while the handler runs; on losing it, cancel the handler (someone else runs it)."""
        interval = self.settings.lease_seconds / 3
        while True:
            await asyncio.sleep(interval)
            if not await self.repo.renew(job.id, owner=self.owner, now=self.clock.now(),
                                         lease_seconds=self.settings.lease_seconds):
                handler.cancel()
                return False

    async def _failed(self, job: Job, owner: str, error: str, *, lapsed: bool = False) -> Job | None:
        now = self.clock.now()
        spec = self._kinds.get(job.kind)
        base = spec.backoff_base if spec and spec.backoff_base is not None else self.settings.backoff_base_seconds
        cap = spec.backoff_cap if spec and spec.backoff_cap is not None else self.settings.backoff_cap_seconds
        retry_at = next_run_at(now, job.attempts, base=base, cap=cap)
        updated = await self.repo.fail(job, owner=owner, error=error, now=now, retry_at=retry_at, lapsed=lapsed)
        if updated is not None:
            metrics.JOB_FAILURES.labels(job.kind, "true" if updated.status is JobStatus.FAILED else "false").inc()
        if updated is not None and updated.status is JobStatus.FAILED:
            log.error("job failed for good", extra={"job_id": job.id, "kind": job.kind, "attempts": job.attempts,
                                                    "error": error})
        return updated

    # --- admin ---------------------------------------------------------------------------

    async def list(self, *, status: JobStatus | None, page: PageRequest, actor: User,
                   client: ClientInfo) -> Page[Job]:
        jobs = await self.repo.search(status=status, page=page)
        if self.audit:
            await self.audit.record(AuditAction.JOBS_VIEWED, user_id=None, actor=actor, client=client,
                                    status=status.value if status else None, page=page.page)
        return jobs

    async def retry(self, job_id: str, *, actor: User, client: ClientInfo) -> Job:
        """A failed job back to the queue with its attempts reset."""
        job = await self.repo.retry(job_id, now=self.clock.now())
        if job is None:
            current = await self.repo.get(job_id)
            if current is None:
                raise JobNotFound()
            raise JobNotFailed(f"The job is {current.status.value}; only a failed job can be retried.")
        if self.audit:
            await self.audit.record(AuditAction.JOB_RETRIED, user_id=None, actor=actor, client=client,
                                    job_id=job.id, kind=job.kind, key=job.key)
        self.wake()
        return job
