"""Supervise the embedded MongoDB-wire server used when `MONGODB_URI` is not set.

The server runs as a child process on `DATA_DIR/db`; its address is kept in
`DATA_DIR/mongo.json`. A second `kycflow` process finds a live server there and
connects to it rather than opening the WiredTiger files a second time.
"""

from __future__ import annotations

import fcntl
import json
import os
import socket
import subprocess
import sys
import time
from pathlib import Path
from urllib.parse import urlparse

# SecantusDB slows to ~100 writes/s after ~10k writes with retryable writes on.
URI_OPTIONS = "retryWrites=false"
START_TIMEOUT_SECONDS = 60.0


def with_options(uri: str) -> str:
    return uri + ("&" if "?" in uri else "?") + URI_OPTIONS


def _reachable(uri: str) -> bool:
    parsed = urlparse(uri)
    try:
        with socket.create_connection((parsed.hostname or "127.0.0.1", parsed.port or 27017), timeout=0.5):
            return True
    except OSError:
        return False


def _pid_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


class EmbeddedMongo:
    def __init__(self, data_dir: Path) -> None:
        self.data_dir = Path(data_dir)
        self.address_file = self.data_dir / "mongo.json"
        self.process: subprocess.Popen[bytes] | None = None
        self.uri: str | None = None

    def _running_uri(self) -> str | None:
        try:
            info = json.loads(self.address_file.read_text())
        except (OSError, ValueError):
            return None
        if _pid_alive(int(info.get("pid", 0))) and _reachable(info["uri"]):
            return str(info["uri"])
        return None

    def start(self) -> str:
        """Reuse a running server or start one; returns the driver URI."""
        self.data_dir.mkdir(parents=True, exist_ok=True)
        with open(self.data_dir / "mongo.lock", "w") as lock:
            fcntl.flock(lock, fcntl.LOCK_EX)  # two processes starting at once: one spawns
            uri = self._running_uri()
            if uri is None:
                uri = self._spawn()
        self.uri = with_options(uri)
        return self.uri

    def _spawn(self) -> str:
        self.address_file.unlink(missing_ok=True)
        log = open(self.data_dir / "mongo.log", "ab")
        self.process = subprocess.Popen(
            [
                sys.executable, "-m", "app.repositories.embedded_server",
                "--storage", str(self.data_dir / "db"),
                "--address-file", str(self.address_file),
            ],
            stdout=log, stderr=log, stdin=subprocess.DEVNULL,
        )
        log.close()
        deadline = time.monotonic() + START_TIMEOUT_SECONDS
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise RuntimeError(f"embedded MongoDB exited; see {self.data_dir / 'mongo.log'}")
            uri = self._running_uri()
            if uri:
                return uri
            time.sleep(0.05)
        self.stop()
        raise RuntimeError("embedded MongoDB did not start in time")

    def stop(self) -> None:
        if self.process is None:
            return
        self.process.terminate()
        try:
            self.process.wait(timeout=20)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait()
        self.process = None
