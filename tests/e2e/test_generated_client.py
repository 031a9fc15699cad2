"""An integrator's view: a client generated from /openapi.json with a standard generator
(openapi-python-client) imports, and its typed methods call the service."""

from __future__ import annotations

import importlib
import json
import os
import subprocess
import sys
from pathlib import Path

from tests.conftest import PASSWORD


async def test_a_client_generated_from_openapi_calls_the_service(api, tmp_path: Path):
    spec = (await api.client.get("http://testserver/openapi.json")).json()
    (tmp_path / "openapi.json").write_text(json.dumps(spec))
    bin_dir = Path(sys.executable).parent
    out = subprocess.run(
        [str(bin_dir / "openapi-python-client"), "generate", "--path", str(tmp_path / "openapi.json"),
         "--output-path", str(tmp_path / "kycflow_client"), "--meta", "none"],
        capture_output=True, text=True, cwd=tmp_path, timeout=300,
        env={**os.environ, "PATH": f"{bin_dir}{os.pathsep}{os.environ.get('PATH', '')}"},
    )
    assert out.returncode == 0, out.stdout + out.stderr
    # Only the binary file route is beyond the generator (an image, not JSON): nothing else is skipped.
    skipped = [line for line in (out.stdout + out.stderr).splitlines() if line.startswith("WARNING parsing")]
    assert skipped == ["WARNING parsing GET /api/v1/kyc/{kyc_id}/files/{file_id} within kyc."], out.stdout
    sys.path.insert(0, str(tmp_path))
    try:
        client_pkg = importlib.import_module("kycflow_client")
        register = importlib.import_module("kycflow_client.api.auth.register")
        verify = importlib.import_module("kycflow_client.api.auth.verify_otp")
        login = importlib.import_module("kycflow_client.api.auth.login")
        me = importlib.import_module("kycflow_client.api.users.me")
        models = importlib.import_module("kycflow_client.models")
    finally:
        sys.path.remove(str(tmp_path))

    transport = {"transport": api.client._transport}  # the app in this process, no network
    client = client_pkg.Client(base_url="http://testserver", httpx_args=transport)
    email = "generated.client@example.com"
    created = await register.asyncio(client=client, body=models.RegisterRequest(
        email=email, password=PASSWORD, name="Generated Client"))
    assert isinstance(created, models.RegisterResponse) and created.status == "pending_verification"
    refused = await verify.asyncio_detailed(client=client, body=models.VerifyOtpRequest(identifier=email,
                                                                                       otp="000000"))
    assert refused.status_code == 400 and refused.parsed.error_code in ("invalid_otp", "otp_expired")
    await verify.asyncio(client=client, body=models.VerifyOtpRequest(identifier=email,
                                                                     otp=api.mailbox.last_code(email)))
    tokens = await login.asyncio(client=client, body=models.LoginRequest(identifier=email, password=PASSWORD))
    assert isinstance(tokens, models.TokenPairResponse)
    authed = client_pkg.AuthenticatedClient(base_url="http://testserver", token=tokens.access_token,
                                            httpx_args=transport)
    user = await me.asyncio(client=authed)
    assert user.email == email and user.kyc_status == "PENDING" and user.role == "customer"
