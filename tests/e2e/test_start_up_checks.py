"""`kycflow serve` with settings it must not run with: one message naming every problem, no traceback."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

from tests.conftest import free_port

KYCFLOW = str(Path(sys.executable).with_name("kycflow"))


def _env(data_dir: Path, **extra: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("MONGODB_", "SMTP_", "JWT_", "DOCUMENT_"))}
    env.update({"DATA_DIR": str(data_dir), **extra})
    return env


def test_a_production_start_with_bad_settings_lists_every_problem_once(tmp_path):
    data_dir = tmp_path / "var"
    env = _env(data_dir, ENVIRONMENT="production", JWT_SECRET="changeme-changeme",  # 17 bytes
               LOGIN_OTP="sometimes", ML_TIMEOUT_SECONDS="0", RATE_LIMITS='{"everything": "1/minute"}')
    # and no MONGODB_URI, no document keys
    out = subprocess.run([KYCFLOW, "serve", "--port", str(free_port())], env=env, cwd=tmp_path,
                         capture_output=True, text=True, timeout=60)
    assert out.returncode != 0
    assert "Traceback" not in out.stderr + out.stdout and "Uvicorn running" not in out.stderr, out.stderr
    for setting in ("JWT_SECRET", "MONGODB_URI", "DOCUMENT_ENCRYPTION_KEY", "DOCUMENT_FINGERPRINT_KEY",
                    "LOGIN_OTP", "ML_TIMEOUT_SECONDS", "RATE_LIMITS"):
        assert out.stderr.count(setting) == 1, (setting, out.stderr)
    assert "JWT_SECRET is 17 bytes" in out.stderr and "changeme" not in out.stderr  # never the secret itself
    assert not data_dir.exists() or list(data_dir.iterdir()) == []  # nothing generated, nothing started


def test_the_app_factory_refuses_the_same_way(tmp_path):
    """`uvicorn --factory app.main:app_factory`, the way around `kycflow serve`."""
    env = _env(tmp_path / "var", ENVIRONMENT="production", JWT_SECRET="changeme-changeme")
    out = subprocess.run([sys.executable, "-m", "uvicorn", "--factory", "app.main:app_factory", "--port",
                          str(free_port())], env=env, cwd=tmp_path, capture_output=True, text=True, timeout=60)
    assert out.returncode != 0 and "Traceback" not in out.stderr, out.stderr
    for setting in ("JWT_SECRET", "MONGODB_URI", "DOCUMENT_ENCRYPTION_KEY", "DOCUMENT_FINGERPRINT_KEY"):
        assert out.stderr.count(setting) == 1, (setting, out.stderr)
