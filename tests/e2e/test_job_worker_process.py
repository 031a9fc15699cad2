"""`kycflow worker` as a real process: killed in the middle of a job, a second worker finishes it
exactly once; SIGTERM gives the running job back."""

from __future__ import annotations

import asyncio
import os
import signal
import subprocess
import sys
import uuid
from pathlib import Path

import pytest

from app.repositories.database import close_client, make_client
from app.repositories.jobs import JobRepository
from app.services.clock import Clock

CHILD = Path(__file__).with_name("job_worker_child.py")
ROOT = Path(__file__).resolve().parents[2]


def _env(mongo_uri: str, db_name: str, data_dir: Path) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("MONGODB_", "SMTP_", "JWT_", "JOB_"))}
    env.update({
        "ENVIRONMENT": "test", "MONGODB_URI": mongo_uri, "MONGODB_DB": db_name, "DATA_DIR": str(data_dir),
        "JWT_SECRET": "worker-test-" + "x" * 32, "LOG_LEVEL": "INFO", "ML_PRELOAD": "false", "ML_PROCESSES": "false",
        # A lapsed lease is noticed within a second and retried 0.2 s later.
        "JOB_WORKERS": "1", "JOB_LEASE_SECONDS": "1", "JOB_POLL_SECONDS": "0.1", "JOB_BACKOFF_BASE_SECONDS": "0.2",
        "PYTHONPATH": str(ROOT),
    })
    return env


async def _until(check, timeout: float, proc: subprocess.Popen[bytes], log: Path):
    deadline = asyncio.get_running_loop().time() + timeout
    while asyncio.get_running_loop().time() < deadline:
        result = await check()
        if result:
            return result
        if proc.poll() is not None:
            pytest.fail(f"worker exited with {proc.returncode}:\n{log.read_text()}")
        await asyncio.sleep(0.05)
    pytest.fail(f"timed out; worker log:\n{log.read_text()}")


@pytest.fixture
async def db(mongo_uri):
    client = make_client(mongo_uri)
    name = f"worker_{uuid.uuid4().hex[:10]}"
    yield client[name]
    await client.drop_database(name)
    await close_client(client)


async def test_a_killed_worker_s_job_is_finished_exactly_once_by_the_next(mongo_uri, db, tmp_path):
    repo, clock = JobRepository(db), Clock()
    await repo.ensure_indexes()
    await db["cases"].insert_many([{"_id": "case-1", "state": "pending", "applied": 0},
                                   {"_id": "case-2", "state": "pending", "applied": 0}])
    now = clock.now()
    job, _ = await repo.enqueue(key="stall:case-1", kind="stall", payload={"case": "case-1", "stall": "first"},
                                max_attempts=3, run_at=now, now=now)
    env = _env(mongo_uri, db.name, tmp_path)
    procs: list[subprocess.Popen[bytes]] = []

    def spawn(name: str) -> tuple[subprocess.Popen[bytes], Path]:
        log = tmp_path / f"{name}.log"
        with open(log, "wb") as out:
            proc = subprocess.Popen([sys.executable, str(CHILD)], env=env, cwd=tmp_path, stdout=out,
                                    stderr=subprocess.STDOUT)
        procs.append(proc)
        return proc, log

    try:
        first, log1 = spawn("first")

        async def first_run():
            return await db["runs"].find_one({"key": job.key, "attempt": 1})

        run = await _until(first_run, 20, first, log1)
        assert run["pid"] == first.pid
        first.send_signal(signal.SIGKILL)  # in the middle of the job: no chance to give it back
        await asyncio.to_thread(first.wait, 10)
        held = await repo.get(job.id)
        assert held.status.value == "running" and held.lease_owner.split(":")[1] == str(first.pid)

        second, log2 = spawn("second")

        async def done():
            stored = await repo.get(job.id)
            return stored if stored.status.value == "done" else None

        finished = await _until(done, 20, second, log2)
        case = await db["cases"].find_one({"_id": "case-1"})
        assert case["applied"] == 1 and case["by"] == second.pid
        assert finished.attempts == 2 and finished.last_error is None
        assert [r["attempt"] for r in await db["runs"].find({"key": job.key}).sort("attempt").to_list()] == [1, 2]

        # SIGTERM while a job runs: the worker exits cleanly and the job is queued again at once.
        now = clock.now()
        other, _ = await repo.enqueue(key="stall:case-2", kind="stall", payload={"case": "case-2", "stall": "always"},
                                      max_attempts=3, run_at=now, now=now)

        async def second_running():
            return await db["runs"].find_one({"key": other.key})

        await _until(second_running, 10, second, log2)
        second.send_signal(signal.SIGTERM)
        assert await asyncio.to_thread(second.wait, 15) == 0, log2.read_text()
        released = await repo.get(other.id)
        assert released.status.value == "queued" and released.lease_owner is None and released.attempts == 0
        assert (await db["cases"].find_one({"_id": "case-2"}))["applied"] == 0
    finally:
        for proc in procs:
            if proc.poll() is None:
                proc.kill()
                proc.wait()
