"""What a prober sees of a real `kycflow serve`: no server banner, hardening headers on the wire,
the embedded database private to its owner."""

from __future__ import annotations

import json
import stat
from urllib.parse import urlparse

import httpx

from tests.e2e.test_server_process import _env, start_server


def test_no_banner_and_hardening_headers_on_the_wire(tmp_path):
    data_dir = tmp_path / "var"
    with start_server(tmp_path, _env(data_dir, ML_PRELOAD="false")) as (base, _):
        for path in ("/api/v1/health", "/api/v1/nowhere", "/docs"):
            r = httpx.get(f"{base}{path}", timeout=10)
            assert "server" not in r.headers, (path, r.headers)
            assert r.headers["x-content-type-options"] == "nosniff" and r.headers["x-frame-options"] == "DENY"
        r = httpx.post(f"{base}/api/v1/auth/login", content=b"{" + b" " * 100_000 + b"}",
                       headers={"Content-Type": "application/json"}, timeout=10)
        assert r.status_code == 413 and r.json()["error_code"] == "payload_too_large"
        assert r.headers["cache-control"] == "no-store"

        address_file = data_dir / "mongo.json"
        assert stat.S_IMODE(address_file.stat().st_mode) == 0o600
        assert urlparse(json.loads(address_file.read_text())["uri"]).hostname == "127.0.0.1"
