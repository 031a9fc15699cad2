"""`kycflow worker` has no HTTP API, so it exposes its metrics on METRICS_PORT: a real worker process
answers GET /metrics with its own figures (the job backlog by kind read from the database) and
stops cleanly on SIGTERM."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
import uuid
from pathlib import Path

import httpx
from prometheus_client.parser import text_string_to_metric_families

from app.repositories.database import close_client, make_client
from app.repositories.jobs import JobRepository
from app.services.clock import Clock
from tests.conftest import free_port

ROOT = Path(__file__).resolve().parents[2]


async def test_the_worker_serves_its_metrics_on_its_own_port(mongo_uri, tmp_path):
    db_name, port = f"wm_{uuid.uuid4().hex[:10]}", free_port()
    client = make_client(mongo_uri)
    repo, clock = JobRepository(client[db_name]), Clock()
    await repo.ensure_indexes()
    now = clock.now()
    # Due in a day: the worker leaves it queued, so it is the backlog the scrape reports.
    await repo.enqueue(key="kyc_checks:later", kind="kyc_checks", payload={"case_id": "none"}, max_attempts=3,
                       run_at=now.replace(year=now.year + 1), now=now)
    env = {k: v for k, v in os.environ.items() if not k.startswith(("MONGODB_", "SMTP_", "JWT_", "JOB_", "METRICS_"))}
    env.update({"ENVIRONMENT": "test", "MONGODB_URI": mongo_uri, "MONGODB_DB": db_name, "DATA_DIR": str(tmp_path),
                "JWT_SECRET": "worker-test-" + "x" * 32, "ML_PRELOAD": "false", "ML_PROCESSES": "false",
                "METRICS_PORT": str(port), "PYTHONPATH": str(ROOT)})
    log = tmp_path / "worker.log"
    with open(log, "wb") as out:
        proc = subprocess.Popen([sys.executable, "-m", "app.cli", "worker"], env=env, cwd=tmp_path, stdout=out,
                                stderr=subprocess.STDOUT)
    try:
        text = ""
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline and proc.poll() is None:
            try:
                r = httpx.get(f"http://127.0.0.1:{port}/metrics", timeout=5)
                text = r.text if r.status_code == 200 else ""
                break
            except httpx.TransportError:
                time.sleep(0.2)
        assert text, log.read_text()
        samples = {(s.name, tuple(sorted(s.labels.items()))): s.value
                   for family in text_string_to_metric_families(text) for s in family.samples}
        assert samples[("kycflow_jobs", (("kind", "kyc_checks"), ("status", "queued")))] == 1
        assert ("kycflow_jobs", (("kind", "kyc_checks"), ("status", "running"))) in samples
        proc.send_signal(signal.SIGTERM)
        assert proc.wait(30) == 0, log.read_text()
    finally:
        if proc.poll() is None:
            proc.kill()
        await client.drop_database(db_name)
        await close_client(client)
