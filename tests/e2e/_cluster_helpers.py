"""Real `kycflow serve` and `kycflow worker` processes on one shared database (the embedded server the
test session started, reached through MONGODB_URI): the two-instance, shutdown and crash tests."""

from __future__ import annotations

import asyncio
import base64
import inspect
import os
import signal
import subprocess
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import cv2
import httpx
import numpy as np
import pytest

from tests.conftest import PASSWORD
from tests.e2e.test_server_process import KYCFLOW, _code, _env, start_server

FAKE_OCR = str(Path(__file__).with_name("fake_ocr"))
# One set of keys for every process: documents one instance stored, another (or a worker) reads.
_KEY = base64.b64encode(b"k" * 32).decode()
_FINGERPRINT = base64.b64encode(b"f" * 32).decode()
CARD = bytes(cv2.imencode(".jpg", np.full((400, 640, 3), 200, np.uint8))[1].tobytes())  # the fake OCR reads it


def cluster_env(mongo_uri: str, db_name: str, data_dir: Path, **extra: str) -> dict[str, str]:
    """Settings every process shares: the database, the secrets, no models, jobs left to workers,
    quick polls, and the fake OCR (tests/e2e/fake_ocr)."""
    return _env(data_dir, **{
        "MONGODB_URI": mongo_uri, "MONGODB_DB": db_name, "JWT_SECRET": "cluster-test-" + "x" * 32,
        "DOCUMENT_ENCRYPTION_KEY": _KEY, "DOCUMENT_FINGERPRINT_KEY": _FINGERPRINT, "ML_PRELOAD": "false",
        "ML_PROCESSES": "false", "LOGIN_OTP": "off", "JOB_WORKERS": "0", "JOB_POLL_SECONDS": "0.1",
        "EVENTS_POLL_SECONDS": "0.1", "KYC_REQUIRE_SELFIE": "false", "KYCFLOW_TEST_FAKE_OCR": "1",
        "PYTHONPATH": os.pathsep.join(filter(None, [FAKE_OCR, os.environ.get("PYTHONPATH")])), **extra})


def run_cli(env: dict[str, str], *args: str) -> str:
    out = subprocess.run([KYCFLOW, *args], env=env, capture_output=True, text=True, timeout=60)
    assert out.returncode == 0, out.stderr
    return out.stdout


@contextmanager
def start_api(workdir: Path, env: dict[str, str]) -> Iterator[tuple[str, subprocess.Popen[bytes]]]:
    """`kycflow serve` with its log in `workdir/server.log`; SIGINT on the way out."""
    workdir.mkdir(parents=True, exist_ok=True)
    with start_server(workdir, env) as started:
        yield started


@contextmanager
def start_worker(workdir: Path, env: dict[str, str], **extra: str) -> Iterator[subprocess.Popen[bytes]]:
    """`kycflow worker` until it says it is ready; SIGTERM on the way out."""
    workdir.mkdir(parents=True, exist_ok=True)
    log_path = workdir / "worker.log"
    with open(log_path, "wb") as log:
        proc = subprocess.Popen([KYCFLOW, "worker"], env={**env, **extra}, cwd=workdir, stdout=log,
                                stderr=subprocess.STDOUT)
    try:
        deadline = time.monotonic() + 60
        while "job worker ready" not in log_path.read_text():
            if proc.poll() is not None or time.monotonic() > deadline:
                pytest.fail(f"worker did not start:\n{log_path.read_text()}")
            time.sleep(0.1)
        yield proc
    finally:
        if proc.poll() is None:
            proc.send_signal(signal.SIGTERM)
            proc.wait(timeout=30)


async def until(check: Any, timeout: float = 20.0, what: str = "") -> Any:
    deadline = asyncio.get_running_loop().time() + timeout
    while True:
        result = check()
        if inspect.isawaitable(result):
            result = await result
        if result:
            return result
        if asyncio.get_running_loop().time() > deadline:
            pytest.fail(f"timed out waiting for {what}")
        await asyncio.sleep(0.05)


def headers(tokens: dict[str, Any]) -> dict[str, str]:
    return {"Authorization": f"Bearer {tokens['access_token']}"}


async def sign_up(register: httpx.AsyncClient, verify: httpx.AsyncClient, outbox: Path, email: str,
                  name: str = "Asha Rao") -> dict[str, Any]:
    """A verified customer, signed in (LOGIN_OTP=off): register through one client, verify through another."""
    r = await register.post("/auth/register", json={"email": email, "password": PASSWORD, "name": name})
    assert r.status_code == 201, r.text
    r = await verify.post("/auth/verify-otp", json={"identifier": email, "otp": _code(outbox, email)})
    assert r.status_code == 200, r.text
    return await login(register, email)


async def login(client: httpx.AsyncClient, email: str) -> dict[str, Any]:
    r = await client.post("/auth/login", json={"identifier": email, "password": PASSWORD})
    assert r.status_code == 200 and "access_token" in r.json(), r.text
    return {**r.json(), "email": email}


async def submit_kyc(client: httpx.AsyncClient, tokens: dict[str, Any]) -> str:
    """Aadhaar and PAN (read by the fake OCR), then submit: the case id."""
    for kind in ("aadhaar", "pan"):
        r = await client.post("/kyc/documents", headers=headers(tokens), data={"document_type": kind},
                              files={"file": ("card.jpg", CARD, "image/jpeg")})
        assert r.status_code == 201, r.text
    r = await client.post("/kyc/submit", headers=headers(tokens))
    assert r.status_code == 202, r.text
    return str(r.json()["kyc_id"])
