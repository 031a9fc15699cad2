"""A throwaway `kycflow serve` in a temp DATA_DIR, started and always stopped by the bench; it runs
through bench/serve.py, which records the database commands of the requests the bench marks."""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import httpx
from bson import json_util

from app.repositories.embedded import with_options
from bench.serve import LOG_NAME


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _kycflow() -> list[str]:
    script = Path(sys.executable).parent / "kycflow"  # the console script of this venv
    return [str(script)] if script.exists() else [sys.executable, "-m", "app.cli"]


class BenchServer:
    def __init__(self, **env: str) -> None:
        self._tmp = tempfile.TemporaryDirectory(prefix="kycflow-bench-")
        self.data_dir = Path(self._tmp.name)
        self.port = _free_port()
        self.base_url = f"http://127.0.0.1:{self.port}"
        # Explicit empties beat any `.env` in the repo: embedded DB in our temp dir, mail to the outbox.
        self.env = {**os.environ, "DATA_DIR": str(self.data_dir), "MONGODB_URI": "", "SMTP_HOST": "",
                    "LOGIN_OTP": "off", "LOG_LEVEL": "WARNING", "ENVIRONMENT": "development", **env}
        self.proc: subprocess.Popen[bytes] | None = None
        self.health: dict[str, Any] = {}  # the last /health answer seen while starting

    def __enter__(self) -> BenchServer:
        try:
            self.start()
        except BaseException:
            self.stop()
            raise
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()

    def start(self, timeout: float = 180.0) -> None:
        log = open(self.data_dir / "server.log", "wb")
        # Own session: Ctrl-C reaches only the bench, which then shuts the server down in order
        # (uvicorn lifespan -> embedded DB stop); killpg is the fallback for the whole tree.
        self.proc = subprocess.Popen([sys.executable, "-m", "bench.serve", "serve", "--host", "127.0.0.1",
                                      "--port", str(self.port)],
                                     env=self.env, stdout=log, stderr=subprocess.STDOUT,
                                     stdin=subprocess.DEVNULL, start_new_session=True)
        log.close()
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise RuntimeError(f"server exited with {self.proc.returncode}:\n{self.log_tail()}")
            try:
                resp = httpx.get(f"{self.base_url}/api/v1/health", timeout=5)
                self.health = resp.json()
            except (httpx.HTTPError, ValueError):
                resp = None
            # 200 = ready. Models preload in the background (503 meanwhile), and we wait for them so
            # loading doesn't eat the CPU we measure; a model that *failed* won't come back, so a 503
            # with nothing left loading is "up but degraded": go on and let the report say so.
            if resp is not None and (resp.status_code == 200 or (
                    resp.status_code == 503 and self.health.get("database", {}).get("ok")
                    and all(m["loaded"] or m["error"] for m in self.health.get("models", {}).values()))):
                return
            time.sleep(0.25)
        raise RuntimeError(f"server not healthy after {timeout:.0f}s:\n{self.log_tail()}")

    def create_user(self, *args: str) -> None:
        # Same env and DATA_DIR, so the CLI finds mongo.json and reuses the running embedded DB.
        out = subprocess.run([*_kycflow(), "create-user", *args], env=self.env, capture_output=True, text=True)
        if out.returncode != 0:
            raise RuntimeError(f"create-user failed: {out.stderr or out.stdout}")

    @property
    def db_uri(self) -> str:
        """The embedded database the service started (written to DATA_DIR), as its clients reach it."""
        return with_options(json.loads((self.data_dir / "mongo.json").read_text())["uri"])

    def commands(self, request_id: str) -> list[dict[str, Any]]:
        """The commands recorded for one marked request (bench/serve.py), in the order they were sent."""
        try:
            lines = (self.data_dir / LOG_NAME).read_text().splitlines()
        except FileNotFoundError:
            return []
        found = [entry for entry in map(json_util.loads, lines) if entry["request_id"] == request_id]
        return sorted(found, key=lambda entry: entry["start"])

    def log_tail(self, lines: int = 30) -> str:
        try:
            return "\n".join((self.data_dir / "server.log").read_text(errors="replace").splitlines()[-lines:])
        except OSError:
            return ""

    def stop(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.proc.send_signal(signal.SIGINT)
            try:
                self.proc.wait(timeout=30)
            except subprocess.TimeoutExpired:
                os.killpg(self.proc.pid, signal.SIGKILL)
                self.proc.wait()
        if self.proc is not None:
            try:  # the embedded DB is a grandchild; make sure nothing of the tree outlives us
                os.killpg(self.proc.pid, signal.SIGKILL)
            except ProcessLookupError:
                pass
        self.proc = None
        self._tmp.cleanup()
