"""The staff console (/console) over HTTP without a browser: sign-in with the mailed code, the
cookie and page headers, CSRF, staff only, revocation (logout, password change, suspension, idle,
lifetime), the queue, the case page and its files, claims, and decisions (console and API agree)."""

from __future__ import annotations

import re
import uuid
from typing import Any

import httpx
import pytest
from bson import ObjectId

from app.domain.users import Role
from tests.conftest import PASSWORD, bearer, eventually
from tests.console_cases import submitted_case


class Console:
    """One browser's worth of cookies against the app, speaking the console's forms."""

    def __init__(self, api: Any) -> None:
        self.api = api
        self.http = httpx.AsyncClient(transport=api.client._transport, base_url="http://testserver")

    async def get(self, path: str, **kw: Any) -> httpx.Response:
        return await self.http.get(path, **kw)

    async def post(self, path: str, data: dict[str, Any], **kw: Any) -> httpx.Response:
        return await self.http.post(path, data=data, **kw)

    async def token(self, path: str) -> str:
        page = await self.get(path)
        assert page.status_code == 200, page.text
        return token_in(page.text)

    async def sign_in(self, email: str, password: str = PASSWORD) -> httpx.Response:
        """Password, then the mailed code: the answer to the code form (303 to the queue when signed in)."""
        r = await self.post("/console/login", {"identifier": email, "password": password,
                                               "csrf_token": await self.token("/console/login")})
        assert r.status_code == 200 and 'name="otp_token"' in r.text, r.text
        otp_token = re.search(r'name="otp_token" value="([^"]+)"', r.text).group(1)
        return await self.post("/console/login/code", {"otp_token": otp_token, "code": self.api.mailbox.last_code(email),
                                                      "csrf_token": token_in(r.text)})

    async def staff(self, role: str = "auditor", name: str | None = None) -> Any:
        email = f"{role}{uuid.uuid4().hex[:8]}@example.com"
        user = await self.api.container.admin.create_user(email=email, password=PASSWORD, name=name or f"{role} one",
                                                          role=Role(role))
        r = await self.sign_in(email)
        assert r.status_code == 303 and r.headers["location"] == "/console/kyc", r.text
        return user


def token_in(html: str) -> str:
    return re.search(r'name="csrf_token" value="([^"]+)"', html).group(1)


@pytest.fixture
async def capi(api_factory):
    return await api_factory(job_workers=0)


async def case_doc(api: Any, kyc_id: str) -> dict[str, Any]:
    return await api.container.db["kyc_doc"].find_one({"_id": ObjectId(kyc_id)})


async def test_sign_in_with_the_mailed_code_sets_a_hardened_cookie_and_pages_carry_a_strict_csp(capi):
    console = Console(capi)
    email = f"aud{uuid.uuid4().hex[:8]}@example.com"
    await capi.container.admin.create_user(email=email, password=PASSWORD, name="Ravi", role=Role.AUDITOR)
    login = await console.get("/console/login")
    assert login.headers["content-security-policy"].startswith("default-src 'none'; style-src 'self'")
    assert "script-src" not in login.headers["content-security-policy"]  # no script runs on any page
    r = await console.sign_in(email)
    assert r.status_code == 303 and r.headers["location"] == "/console/kyc"
    cookie = next(v for k, v in r.headers.multi_items() if k == "set-cookie" and v.startswith("kycflow_console="))
    assert "HttpOnly" in cookie and "SameSite=strict" in cookie and "Path=/console" in cookie
    assert "Secure" not in cookie  # a test environment is plain http; production sets it (next test)
    queue = await console.get("/console/kyc")
    assert queue.status_code == 200 and "Signed in as Ravi (auditor)" in queue.text
    assert queue.headers["cache-control"] == "no-store" and "frame-ancestors 'none'" in queue.headers[
        "content-security-policy"]
    assert "<script" not in queue.text and "style=" not in queue.text  # nothing inline for the CSP to refuse
    css = await console.get("/console/static/console.css")
    assert css.status_code == 200 and css.headers["content-type"].startswith("text/css")


async def test_the_session_cookie_is_secure_in_production(api_factory):
    from app.document_keys import generate_key_spec

    api = await api_factory(environment="production", document_encryption_key=generate_key_spec(),
                            document_fingerprint_key=generate_key_spec())
    console = Console(api)
    email = f"aud{uuid.uuid4().hex[:8]}@example.com"
    await api.container.admin.create_user(email=email, password=PASSWORD, name="Ravi", role=Role.AUDITOR)
    login = await console.get("/console/login")
    assert "Secure" in login.headers["set-cookie"]
    # httpx keeps Secure cookies off plain http; hand the sign-in nonce over as a browser on https would.
    console.http.cookies.set("kycflow_console_signin", login.cookies["kycflow_console_signin"])
    r = await console.post("/console/login", {"identifier": email, "password": PASSWORD,
                                              "csrf_token": token_in(login.text)})
    otp_token = re.search(r'name="otp_token" value="([^"]+)"', r.text).group(1)
    r = await console.post("/console/login/code", {"otp_token": otp_token, "code": api.mailbox.last_code(email),
                                                  "csrf_token": token_in(r.text)})
    assert r.status_code == 303
    cookie = next(v for k, v in r.headers.multi_items() if k == "set-cookie" and v.startswith("kycflow_console="))
    assert "Secure" in cookie and "HttpOnly" in cookie


async def test_a_customer_cannot_sign_in_and_hears_what_a_wrong_password_hears(capi):
    console = Console(capi)
    customer = await capi.customer()
    sessions_before = len((await capi.container.db["user"].find_one({"email": customer["email"]}))["sessions"])
    mails_before = len(capi.mailbox.for_address(customer["email"]))
    right = await console.post("/console/login", {"identifier": customer["email"], "password": PASSWORD,
                                                  "csrf_token": await console.token("/console/login")})
    wrong = await console.post("/console/login", {"identifier": customer["email"], "password": "not-the-password-1",
                                                  "csrf_token": await console.token("/console/login")})
    assert right.status_code == wrong.status_code == 401
    assert "Invalid identifier or password." in right.text and "Invalid identifier or password." in wrong.text
    assert "kycflow_console=" not in right.headers.get("set-cookie", "")
    doc = await capi.container.db["user"].find_one({"email": customer["email"]})
    assert len(doc["sessions"]) == sessions_before  # no session was opened for them
    assert len(capi.mailbox.for_address(customer["email"])) == mails_before  # no code was sent either
    logged = await capi.container.db["user_log"].find_one({"user_id": customer["user_id"], "action": "login_failure",
                                                           "details.reason": "not_staff"})
    assert logged is not None
    # Nor with a passwordless code the API mailed them.
    start = await capi.client.post("/auth/login/otp", json={"identifier": customer["email"]})
    r = await console.post("/console/login/code", {"otp_token": start.json()["otp_token"],
                                                  "code": capi.mailbox.last_code(customer["email"]),
                                                  "csrf_token": await console.token("/console/login")})
    assert r.status_code == 400 and "The code is not valid." in r.text
    assert "kycflow_console=" not in r.headers.get("set-cookie", "")


async def test_forms_without_the_csrf_token_are_refused_and_change_nothing(capi):
    console = Console(capi)
    await console.staff("auditor")
    case = await submitted_case(capi.container)
    for data in ({}, {"csrf_token": "0" * 64}):
        r = await console.post(f"/console/kyc/{case['kyc_id']}/claim", data)
        assert r.status_code == 403 and "did not come from this console" in r.text
        r = await console.post(f"/console/kyc/{case['kyc_id']}/decision",
                               {**data, "decision": "approve", "internal_note": "x"})
        assert r.status_code == 403
    doc = await case_doc(capi, case["kyc_id"])
    assert doc.get("claim") is None and doc["status"] == "SUBMITTED"
    # Another signed-in auditor's token is worthless here.
    other = Console(capi)
    await other.staff("auditor")
    r = await console.post(f"/console/kyc/{case['kyc_id']}/claim", {"csrf_token": await other.token("/console/kyc")})
    assert r.status_code == 403
    # Sign-out is a form too, and the sign-in form needs its own nonce-bound token.
    assert (await console.post("/console/logout", {})).status_code == 403
    assert (await console.get("/console/kyc")).status_code == 200
    fresh = Console(capi)
    r = await fresh.post("/console/login", {"identifier": "x@example.com", "password": "whatever-123"})
    assert r.status_code == 403 and "expired" in r.text


async def _signed_in_cookie(console: Console) -> str:
    return console.http.cookies["kycflow_console"]


async def test_a_signed_out_cookie_no_longer_works(capi):
    console = Console(capi)
    await console.staff("auditor")
    cookie = await _signed_in_cookie(console)
    r = await console.post("/console/logout", {"csrf_token": await console.token("/console/kyc")})
    assert r.status_code == 303 and r.headers["location"] == "/console/login?reason=signed_out"
    replay = httpx.AsyncClient(transport=capi.client._transport, base_url="http://testserver",
                               cookies={"kycflow_console": cookie})
    r = await replay.get("/console/kyc")
    assert r.status_code == 303 and r.headers["location"] == "/console/login?reason=session_revoked"
    page = await replay.get(r.headers["location"])
    assert "Your session ended" in page.text


async def test_password_change_and_suspension_end_console_sessions_at_once(capi):
    console = Console(capi)
    user = await console.staff("auditor")
    # The same person signed in on the API changes the password: the console session ends.
    capi.container.clock.advance(seconds=61)  # a new code to the same address waits a minute
    r = await capi.client.post("/auth/login", json={"identifier": user.email, "password": PASSWORD})
    r = await capi.client.post("/auth/login/verify-otp", json={"otp_token": r.json()["otp_token"],
                                                              "otp": capi.mailbox.last_code(user.email)})
    tokens = r.json()
    r = await capi.client.post("/auth/change-password", headers=bearer(tokens),
                               json={"current_password": PASSWORD, "new_password": "a-new-long-passphrase-9"})
    assert r.status_code == 200, r.text
    assert (await console.get("/console/kyc")).headers["location"] == "/console/login?reason=session_revoked"
    # Suspension by an admin ends a fresh console session too.
    second = Console(capi)
    auditor = await second.staff("auditor")
    admin = await capi.staff("admin")
    r = await capi.client.put(f"/admin/users/{auditor.id}/status", headers=bearer(admin), json={"status": "suspended"})
    assert r.status_code == 200, r.text
    assert (await second.get("/console/kyc")).headers["location"].startswith("/console/login?reason=")


async def test_idle_timeout_and_maximum_lifetime(api_factory):
    api = await api_factory(job_workers=0, console_idle_timeout_seconds=600, console_session_max_seconds=1800)
    console = Console(api)
    await console.staff("auditor")
    for _ in range(4):  # active every 9 minutes: still signed in after 36 minutes... until the lifetime
        api.container.clock.advance(minutes=9)
        r = await console.get("/console/kyc")
        if r.status_code != 200:
            break
    assert r.status_code == 303 and r.headers["location"] == "/console/login?reason=session_revoked"
    idle = Console(api)
    await idle.staff("auditor")
    api.container.clock.advance(minutes=10, seconds=1)
    r = await idle.get("/console/kyc")
    assert r.status_code == 303 and r.headers["location"] == "/console/login?reason=session_idle"


async def test_an_api_token_cannot_open_the_console_nor_a_console_cookie_the_api(capi):
    console = Console(capi)
    user = await console.staff("auditor")
    cookie = await _signed_in_cookie(console)
    assert (await capi.client.get("/kyc/pending", headers={"Cookie": f"kycflow_console={cookie}"})).status_code == 401
    _, session_id, _ = cookie.split(".")
    # A session id (it is in the audit trail) is not a cookie: the secret is needed too.
    forged = httpx.AsyncClient(transport=capi.client._transport, base_url="http://testserver",
                               cookies={"kycflow_console": f"{user.id}.{session_id}.guess"})
    assert (await forged.get("/console/kyc")).status_code == 303


async def test_queue_shows_risk_failed_checks_documents_and_waiting_time_with_the_api_filters(capi):
    console = Console(capi)
    case = await submitted_case(capi.container, name="Meera Iyer")
    capi.container.clock.advance(minutes=75)
    await console.staff("auditor")
    page = await console.get("/console/kyc")
    row = re.search(rf'<tr data-kyc-id="{case["kyc_id"]}">(.*?)</tr>', page.text, re.S).group(1)
    assert "Meera Iyer" in row and "High" in row and "Aadhaar (front), PAN card" in row
    assert "✗ Selfie matches document photo" in row and "? Name agrees with profile" in row and "? Liveness" in row
    assert "1 h 15 min" in row
    assert case["kyc_id"] not in (await console.get("/console/kyc?risk_level=Low")).text
    assert case["kyc_id"] in (await console.get("/console/kyc?risk_level=High&document_type=pan&sort=risk")).text
    assert case["kyc_id"] not in (await console.get("/console/kyc?document_type=passport")).text
    bad = await console.get("/console/kyc?risk_level=Extreme")
    assert bad.status_code == 400 and "not one the queue offers" in bad.text and "error_code" not in bad.text


async def test_case_page_shows_images_checks_with_thresholds_fields_beside_profile_and_serves_files(capi):
    console = Console(capi)
    await console.staff("auditor")
    case = await submitted_case(capi.container, name="Asha Rao", read_name="ASHA R RAO")
    page = await console.get(f"/console/kyc/{case['kyc_id']}")
    assert page.status_code == 200
    images = re.findall(r'<img src="([^"]+)" alt="([^"]+)"', page.text)
    assert [alt for _, alt in images] == ["Aadhaar (front)", "PAN card", "Selfie"]
    assert "pass at ≥ 0.90, review at ≥ 0.75" in page.text and "match at ≥ 0.50" in page.text
    checks = re.search(r'<table id="checks">(.*?)</table>', page.text, re.S).group(1)
    assert "0.31" in checks and "Aadhaar (front)" in checks and "selfie" in checks
    fields = re.search(r'<div class="columns" id="fields">(.*?)</div>\s*\n\s*(?:<h2>)', page.text, re.S).group(1)
    assert re.search(r'<tr class="differs"[^>]*><td>Name <strong>≠</strong></td><td>ASHA R RAO</td>\s*'
                     r'<td>—</td><td>Asha Rao</td>', fields)
    assert "1990-04-12" in fields
    src = images[2][0]
    image = await console.get(src)
    assert image.status_code == 200 and image.content[:3] == b"\xff\xd8\xff"
    assert image.headers["content-security-policy"] == "sandbox; default-src 'none'"
    assert image.headers["x-content-type-options"] == "nosniff"
    viewed = await capi.container.db["user_log"].count_documents({"action": "kyc_file_viewed",
                                                                  "details.kyc_id": case["kyc_id"]})
    assert viewed == 1
    assert "Case opened" in page.text  # the history has the view itself
    missing = await console.get(f"/console/kyc/{case['kyc_id']}/files/{ObjectId()}")
    assert missing.status_code == 404 and "No such file" in missing.text


async def test_a_claimed_case_shows_its_holder_and_nobody_else_decides_it_console_or_api(capi):
    first, second = Console(capi), Console(capi)
    await first.staff("auditor", name="Ravi Auditor")
    await second.staff("auditor", name="Neha Auditor")
    case = await submitted_case(capi.container)
    kyc_id = case["kyc_id"]
    r = await first.post(f"/console/kyc/{kyc_id}/claim", {"csrf_token": await first.token(f"/console/kyc/{kyc_id}")})
    assert r.status_code == 303
    seen = await second.get(f"/console/kyc/{kyc_id}")
    assert "Ravi Auditor</strong> is working on this case" in seen.text and 'id="claim-button"' not in seen.text
    assert "Ravi Auditor" in (await second.get("/console/kyc")).text
    token = token_in(seen.text)
    r = await second.post(f"/console/kyc/{kyc_id}/decision", {"csrf_token": token, "decision": "reject",
                                                              "reasons": ["face_mismatch"]})
    assert r.status_code == 409 and "Ravi Auditor is working on this case" in r.text
    assert (await second.post(f"/console/kyc/{kyc_id}/claim", {"csrf_token": token})).status_code == 409
    # The API's decision routes apply the same claim.
    api_auditor = await capi.staff("auditor")
    r = await capi.client.put(f"/kyc/{kyc_id}/reject", headers=bearer(api_auditor), json={"reasons": ["other"]})
    assert r.status_code == 409 and r.json()["error_code"] == "kyc_claimed"
    assert (await case_doc(capi, kyc_id))["status"] == "SUBMITTED"
    # The claim lapses after KYC_CLAIM_MINUTES (30): then another auditor may decide.
    capi.container.clock.advance(minutes=30, seconds=1)
    r = await capi.client.put(f"/kyc/{kyc_id}/approve", headers=bearer(await capi.staff("auditor")), json={})
    assert r.status_code == 200, r.text


async def test_release_gives_the_case_back(capi):
    first, second = Console(capi), Console(capi)
    await first.staff("auditor")
    await second.staff("auditor")
    case = await submitted_case(capi.container)
    kyc_id = case["kyc_id"]
    token = await first.token(f"/console/kyc/{kyc_id}")
    assert (await first.post(f"/console/kyc/{kyc_id}/claim", {"csrf_token": token})).status_code == 303
    r = await second.post(f"/console/kyc/{kyc_id}/release", {"csrf_token": await second.token("/console/kyc")})
    assert r.status_code == 409 and "You do not hold this case." in r.text
    r = await first.post(f"/console/kyc/{kyc_id}/release", {"csrf_token": token})
    assert r.status_code == 303 and (await case_doc(capi, kyc_id))["claim"] is None
    r = await second.post(f"/console/kyc/{kyc_id}/claim", {"csrf_token": await second.token("/console/kyc")})
    assert r.status_code == 303


async def test_reject_with_two_reasons_mails_the_message_never_the_internal_note(api_factory):
    capi = await api_factory(job_workers=1, job_poll_seconds=0.05)  # the customer's notice may be a job
    console = Console(capi)
    await console.staff("auditor")
    case = await submitted_case(capi.container)
    kyc_id = case["kyc_id"]
    token = await console.token(f"/console/kyc/{kyc_id}")
    await console.post(f"/console/kyc/{kyc_id}/claim", {"csrf_token": token})
    form = {"csrf_token": token, "decision": "reject", "reasons": ["face_mismatch", "name_mismatch"],
            "internal_note": "Selfie is a printed photo; INTERNAL-7731", "customer_message": "Please retake your selfie."}
    r = await console.post(f"/console/kyc/{kyc_id}/decision", form)
    assert r.status_code == 303 and r.headers["location"] == "/console/kyc?done=rejected"
    doc = await case_doc(capi, kyc_id)
    assert doc["status"] == "REJECTED" and doc["decision"]["reasons"] == ["face_mismatch", "name_mismatch"]
    assert doc["decision"]["internal_note"] == "Selfie is a printed photo; INTERNAL-7731"
    async def mailed() -> list[Any]:
        return capi.mailbox.for_address(case["email"])

    mails = await eventually(mailed, timeout=15)
    assert mails, "the customer was never told the decision"
    mail = mails[-1].get_body(preferencelist=("plain",)).get_content()
    assert "Please retake your selfie." in mail and "INTERNAL-7731" not in mail
    again = await console.post(f"/console/kyc/{kyc_id}/decision", form)
    assert again.status_code == 409 and "REJECTED" in again.text


async def test_decision_form_refuses_in_words_and_changes_nothing(capi):
    console = Console(capi)
    await console.staff("auditor")
    kyc_id = (await submitted_case(capi.container))["kyc_id"]
    token = await console.token(f"/console/kyc/{kyc_id}")
    for form, words in (({"decision": "reject"}, "Choose at least one reason"),
                        ({}, "Choose approve or reject"),
                        ({"decision": "approve", "reasons": ["other"]}, "Reasons are for a rejection"),
                        ({"decision": "reject", "reasons": ["made_up"]}, "Choose the reasons from the list"),
                        ({"decision": "approve", "customer_message": "x" * 1001}, "at most 1000 characters")):
        r = await console.post(f"/console/kyc/{kyc_id}/decision", {"csrf_token": token, **form})
        assert r.status_code == 400 and words in r.text, (form, r.text[-2000:])
        assert "error_code" not in r.text
    assert (await case_doc(capi, kyc_id))["status"] == "SUBMITTED"


async def test_visitors_without_a_session_are_sent_to_sign_in(capi):
    console = Console(capi)
    assert (await console.get("/console/kyc")).headers["location"] == "/console/login?reason=not_signed_in"
    assert (await console.get("/console")).headers["location"] == "/console/kyc"


async def test_a_file_view_takes_one_of_the_staff_members_in_flight_slots(capi):
    """A PDF is rendered by the models: the console's file route shares the API's per-caller cap."""
    console = Console(capi)
    staff = await console.staff("auditor")
    case = await submitted_case(capi.container, name="Asha Rao", read_name="ASHA R RAO")
    page = await console.get(f"/console/kyc/{case['kyc_id']}")
    src = re.findall(r'<img src="([^"]+)"', page.text)[0]
    caller = f"user:{staff.id}"
    for _ in range(capi.settings.max_in_flight_per_caller):
        capi.container.in_flight.acquire(caller)  # every slot is taken by this auditor's API calls
    refused = await console.get(src)
    assert refused.status_code == 429 and "at once" in refused.text
    capi.container.in_flight.release(caller)
    assert (await console.get(src)).status_code == 200
    assert capi.container.in_flight._in_flight[caller] == capi.settings.max_in_flight_per_caller - 1
