"""A real `kycflow serve` process on the embedded defaults, driven over HTTP."""

from __future__ import annotations

import json
import os
import re
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import httpx
import pytest

from tests.conftest import PASSWORD, free_port

KYCFLOW = str(Path(sys.executable).with_name("kycflow"))


def _env(data_dir: Path, **extra: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("MONGODB_", "SMTP_", "JWT_"))}
    env.update({"DATA_DIR": str(data_dir), "LOG_LEVEL": "INFO", "BCRYPT_ROUNDS": "4", **extra})
    return env


def _code(outbox: Path, address: str) -> str:
    for path in sorted(outbox.glob("*.eml"), reverse=True):
        text = path.read_text()
        if address in text:
            return re.search(r"code is (\d{6})", text).group(1)
    raise AssertionError(f"no mail for {address}")


def _launch(workdir: Path, env: dict[str, str], log, group: bool = False) -> tuple[str, subprocess.Popen[bytes]] | None:
    """Start `kycflow serve` on a free port; None if it exits first (e.g. the port was taken meanwhile).
    `group`: in a process group of its own, as a terminal runs it (Ctrl-C reaches the whole group)."""
    port = free_port()
    proc = subprocess.Popen([KYCFLOW, "serve", "--port", str(port)], env=env, cwd=workdir, stdout=log,
                            stderr=subprocess.STDOUT, start_new_session=group)
    base = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline and proc.poll() is None:
        try:
            # The database answers at once; models may still be loading (503 until they are).
            if httpx.get(f"{base}/api/v1/health", timeout=1).json()["database"]["ok"]:
                return base, proc
        except (httpx.HTTPError, ValueError):
            time.sleep(0.2)
    if proc.poll() is None:
        proc.kill()
        pytest.fail((workdir / "server.log").read_text())
    return None


@contextmanager
def start_server(workdir: Path, env: dict[str, str], group: bool = False) -> Iterator[tuple[str, subprocess.Popen[bytes]]]:
    """`kycflow serve` on a free port; yields its base URL once the database answers."""
    log = open(workdir / "server.log", "w")
    for _ in range(3):  # another test process may grab the free port before the server binds it
        started = _launch(workdir, env, log, group)
        if started:
            break
    else:
        pytest.fail((workdir / "server.log").read_text())
    base, proc = started
    try:
        yield base, proc
    finally:
        if proc.poll() is None:
            proc.send_signal(signal.SIGINT)
            proc.wait(timeout=30)
        log.close()


@pytest.fixture
def server(tmp_path):
    with start_server(tmp_path, _env(tmp_path / "var")) as (base, proc):
        yield base, tmp_path / "var", proc


def test_sign_up_to_users_me_on_a_fresh_data_dir(server):
    base, data_dir, _ = server
    api = httpx.Client(base_url=f"{base}/api/v1", timeout=10)
    email = "first.user@example.com"
    assert api.post("/auth/register", json={"email": email, "password": PASSWORD, "name": "First"}).status_code == 201
    r = api.post("/auth/verify-otp", json={"identifier": email, "otp": _code(data_dir / "outbox", email)})
    assert r.status_code == 200
    tokens = api.post("/auth/login", json={"identifier": email, "password": PASSWORD}).json()
    me = api.get("/users/me", headers={"Authorization": f"Bearer {tokens['access_token']}"})
    assert me.status_code == 200 and me.json()["email"] == email
    docs = httpx.get(f"{base}/docs")
    assert docs.status_code == 200 and "/static/docs/swagger-ui-bundle.js" in docs.text


def test_create_user_reuses_the_running_database_and_shutdown_is_clean(server):
    base, data_dir, proc = server
    address = json.loads((data_dir / "mongo.json").read_text())
    out = subprocess.run([KYCFLOW, "create-user", "--email", "boss@example.com", "--password", PASSWORD,
                          "--name", "Boss", "--role", "admin"], env=_env(data_dir), capture_output=True, text=True,
                         timeout=60)
    assert out.returncode == 0, out.stderr
    assert json.loads((data_dir / "mongo.json").read_text()) == address  # same server, not a second one
    api = httpx.Client(base_url=f"{base}/api/v1", timeout=10)
    r = api.post("/auth/login", json={"identifier": "boss@example.com", "password": PASSWORD})
    assert r.json()["mfa_required"] is True
    r = api.post("/auth/login/verify-otp", json={"otp_token": r.json()["otp_token"],
                                                "otp": _code(data_dir / "outbox", "boss@example.com")})
    assert r.status_code == 200 and r.json()["role"] == "admin"
    again = subprocess.run([KYCFLOW, "create-user", "--email", "boss@example.com", "--password", PASSWORD,
                            "--name", "Boss", "--role", "admin"], env=_env(data_dir), capture_output=True, text=True,
                           timeout=60)
    assert again.returncode == 1 and "identifier_taken" in again.stderr

    proc.send_signal(signal.SIGINT)
    proc.wait(timeout=30)
    assert not (data_dir / "mongo.json").exists()
    with pytest.raises(ProcessLookupError):
        os.kill(address["pid"], 0)


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    return True


def test_ctrl_c_shuts_down_in_order(tmp_path):
    """Ctrl-C in a terminal signals the service, its embedded database and its model workers together:
    the database ignores it and waits for the service, which gives its job leases back before stopping
    it; the model workers, held inside their imports by a test hook (the moment that printed
    KeyboardInterrupt tracebacks on a loaded machine), ignore it too and are stopped by the service."""
    data_dir, paused = tmp_path / "var", tmp_path / "paused"
    paused.mkdir()
    hook = str(Path(__file__).with_name("pause_worker_import"))
    env = _env(data_dir, ML_WORKERS="2", KYCFLOW_TEST_PAUSE_WORKER_IMPORT=str(paused),
               PYTHONPATH=os.pathsep.join(filter(None, [hook, os.environ.get("PYTHONPATH")])))
    with start_server(tmp_path, env, group=True) as (base, proc):
        address = json.loads((data_dir / "mongo.json").read_text())
        deadline = time.monotonic() + 60
        while len(list(paused.iterdir())) < 2 and time.monotonic() < deadline:
            time.sleep(0.1)
        workers = [int(marker.name) for marker in paused.iterdir()]
        assert len(workers) == 2, "the model workers never reached their imports"
        os.kill(address["pid"], signal.SIGINT)  # the database alone first: it must keep serving
        time.sleep(1.5)
        assert httpx.get(f"{base}/api/v1/health", timeout=5).json()["database"]["ok"]
        os.killpg(proc.pid, signal.SIGINT)  # then the whole group, as a terminal does
        proc.wait(timeout=30)
    log = (tmp_path / "server.log").read_text()
    assert "job workers stopped" in log and "leases not released" not in log, log[-3000:]
    assert "Traceback" not in log and "KeyboardInterrupt" not in log, log[-3000:]
    assert proc.returncode in (0, -signal.SIGINT), log[-3000:]  # stopped by Ctrl-C, not by a failure
    deadline = time.monotonic() + 10
    while any(map(_alive, [*workers, address["pid"]])) and time.monotonic() < deadline:
        time.sleep(0.1)
    assert not any(map(_alive, [*workers, address["pid"]]))


def test_production_refuses_to_start_without_a_jwt_secret(tmp_path):
    out = subprocess.run([KYCFLOW, "serve", "--port", str(free_port())],
                         env=_env(tmp_path / "var", ENVIRONMENT="production", MONGODB_URI="mongodb://127.0.0.1:1"),
                         capture_output=True, text=True, timeout=60)
    assert out.returncode != 0 and "JWT_SECRET must be set in production" in out.stdout + out.stderr


def test_json_logs_carry_no_colour_codes_and_health_probes_log_at_debug(tmp_path):
    """A log shipper reads one JSON object a line: no terminal colours inside (uvicorn attaches a
    coloured copy of its messages), and a probe every few seconds does not flood it at INFO."""
    env = _env(tmp_path / "var", LOG_LEVEL="DEBUG", ML_PRELOAD="false")
    with start_server(tmp_path, env) as (base, _):
        httpx.get(f"{base}/api/v1/health", timeout=5)
        assert httpx.get(f"{base}/api/v1/users/me", timeout=5).status_code == 401
    text = (tmp_path / "server.log").read_text()
    assert "\x1b" not in text and "\\u001b" not in text, [line for line in text.splitlines() if "001b" in line]
    lines = [json.loads(line) for line in text.splitlines() if line.startswith("{")]
    access = {(line["path"], line["level"]) for line in lines if line["logger"] == "kycflow.access"}
    assert ("/api/v1/health", "DEBUG") in access and ("/api/v1/health", "INFO") not in access, access
    assert ("/api/v1/users/me", "INFO") in access
    assert any(line["message"].startswith("Uvicorn running on") for line in lines)  # the line that was coloured
