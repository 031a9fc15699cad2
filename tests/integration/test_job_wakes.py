"""Waking the job workers costs one claim per new job, not one (and a lease sweep) per idle worker:
on the embedded engine every command is a few milliseconds of the one process all requests share
(measured: a loan application's two jobs sent 19 worker commands beside its own 10)."""

from __future__ import annotations

import asyncio
import uuid
from collections import Counter

from pymongo import monitoring

from app.repositories.database import close_client, make_client
from app.repositories.jobs import JobRepository
from app.services.clock import Clock
from app.services.jobs import JobService, JobSettings
from tests.conftest import eventually


class _JobCommands(monitoring.CommandListener):
    """Commands on `jobs` the workers send: claims (findAndModify without upsert) and lease sweeps (find)."""

    def __init__(self) -> None:
        self.seen: Counter[str] = Counter()

    def started(self, event: monitoring.CommandStartedEvent) -> None:
        command = event.command
        if command.get(event.command_name) != "jobs":
            return
        if event.command_name == "findAndModify" and not command.get("upsert"):
            self.seen["claim"] += 1
        elif event.command_name == "find":
            self.seen["sweep"] += 1

    def succeeded(self, event: monitoring.CommandSucceededEvent) -> None:
        pass

    def failed(self, event: monitoring.CommandFailedEvent) -> None:
        pass


async def test_a_new_job_wakes_one_worker_of_its_lane_and_no_lease_sweep(mongo_uri):
    commands = _JobCommands()
    client = make_client(mongo_uri, event_listeners=[commands])
    name = f"jobwake_{uuid.uuid4().hex[:10]}"
    db = client[name]
    await JobRepository(db).ensure_indexes()
    # Three main workers and four of another lane, all idle for 30 s once started.
    jobs = JobService(JobRepository(db), Clock(), JobSettings(workers=3, poll_seconds=30, lanes={"outside": 4}))
    ran: list[str] = []

    async def handler(job):
        ran.append(job.key)

    jobs.register("quick", handler)
    jobs.register("remote", handler, lane="outside")
    jobs.start()
    try:
        async def all_looked() -> bool:  # each worker claims once as it starts
            return commands.seen["claim"] >= 7

        async def two_claims() -> bool:
            return commands.seen["claim"] >= 2

        assert await eventually(all_looked)
        await asyncio.sleep(0.2)
        commands.seen.clear()
        await jobs.enqueue("quick", "quick:1", {})
        # The woken worker claims the job, runs it, and looks once more before it idles; nobody
        # sweeps leases (that is once a poll interval).
        assert await eventually(two_claims)
        await asyncio.sleep(0.3)  # whatever else the wake set off
        assert ran == ["quick:1"]
        assert commands.seen["claim"] == 2 and commands.seen["sweep"] == 0, commands.seen
        commands.seen.clear()
        jobs.wake()  # after a commit: the kinds it queued are not known, so one worker of each lane
        assert await eventually(two_claims)
        await asyncio.sleep(0.3)
        assert commands.seen["claim"] == 2 and commands.seen["sweep"] == 0, commands.seen
    finally:
        await jobs.stop()
        await client.drop_database(name)
        await close_client(client)
