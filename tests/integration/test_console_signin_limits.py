"""The console's sign-in forms count against the API's per-address limits: the password form in the
`auth` group (as `POST /auth/login`), the code form in the `otp` group (as `/auth/login/verify-otp`),
one counter per address for both doors. Past the limit a page says so in words, with Retry-After."""

from __future__ import annotations

import re
import uuid

from app.domain.rate_limits import DEFAULT_LIMITS
from app.domain.users import Role
from tests.conftest import PASSWORD
from tests.integration.test_console import Console, token_in


async def test_the_password_form_shares_the_api_s_login_limit_per_address(api_factory):
    api = await api_factory(job_workers=0, rate_limits={**DEFAULT_LIMITS, "auth": "3/minute"})
    console = Console(api)
    email = f"aud{uuid.uuid4().hex[:8]}@example.com"
    await api.container.admin.create_user(email=email, password=PASSWORD, name="Ravi", role=Role.AUDITOR)
    token = await console.token("/console/login")
    for _ in range(2):
        r = await console.post("/console/login", {"identifier": email, "password": "wrong-password-1",
                                                  "csrf_token": token})
        assert r.status_code == 401 and "Invalid identifier or password." in r.text
    assert (await api.client.post("/auth/login", json={"identifier": email, "password": "wrong-password-1"})
            ).status_code == 401  # the third request of this address, through the API's door
    r = await console.post("/console/login", {"identifier": email, "password": PASSWORD, "csrf_token": token})
    assert r.status_code == 429 and "Too many sign-in attempts from your address" in r.text
    assert 1 <= int(r.headers["retry-after"]) <= 60 and 'name="otp_token"' not in r.text
    assert not api.mailbox.for_address(email)  # refused before the password was checked: no code sent
    r = await api.client.post("/auth/login", json={"identifier": email, "password": PASSWORD})
    assert r.status_code == 429 and r.json()["error_code"] == "rate_limited"

    api.container.clock.advance(seconds=61)
    r = await console.post("/console/login", {"identifier": email, "password": PASSWORD, "csrf_token": token})
    assert r.status_code == 200 and 'name="otp_token"' in r.text


async def test_the_code_form_counts_as_the_api_s_code_checks(api_factory):
    api = await api_factory(job_workers=0, rate_limits={**DEFAULT_LIMITS, "otp": "2/minute"})
    console = Console(api)
    email = f"aud{uuid.uuid4().hex[:8]}@example.com"
    await api.container.admin.create_user(email=email, password=PASSWORD, name="Ravi", role=Role.AUDITOR)
    r = await console.post("/console/login", {"identifier": email, "password": PASSWORD,
                                              "csrf_token": await console.token("/console/login")})
    otp_token = re.search(r'name="otp_token" value="([^"]+)"', r.text).group(1)
    form = {"otp_token": otp_token, "code": "000000", "csrf_token": token_in(r.text)}
    for _ in range(2):
        assert (await console.post("/console/login/code", form)).status_code in (400, 401)
    r = await console.post("/console/login/code", {**form, "code": api.mailbox.last_code(email)})
    assert r.status_code == 429 and "Too many sign-in attempts from your address" in r.text
    assert "kycflow_console=" not in r.headers.get("set-cookie", "")
