"""Account safety over HTTP: anonymous callers learn nothing from the answers, an identifier signs in
only once its own code was verified, and failed guesses lock the account whichever route or
identifier they come through."""

from __future__ import annotations

import json
import uuid
from datetime import UTC, datetime
from typing import Any

import httpx
import pytest

from app.domain.users import Role
from app.repositories.users import UserRepository
from tests.conftest import PASSWORD, Api, bearer, free_port

WRONG = "wrong-password-1"


def sms(api: Api, phone: str) -> list[str]:
    """Texts written to the SMS outbox for `phone`, oldest first."""
    files = sorted((api.settings.data_dir / "outbox").glob("*.sms.json"), key=lambda p: p.stat().st_mtime_ns)
    texts = [json.loads(p.read_text()) for p in files]
    return [t["text"] for t in texts if t["to"] == phone]


def sms_code(api: Api, phone: str) -> str:
    texts = sms(api, phone)
    assert texts, f"no SMS for {phone}"
    return texts[-1].split("code is ")[1][:6]


def phone_number() -> str:
    return "+9198" + str(uuid.uuid4().int)[:8]


def wrong_code(right: str) -> str:
    return "000000" if right != "000000" else "111111"


def same(a: Any, b: Any) -> tuple[int, str, str]:
    """What an anonymous caller sees of an error, checked equal for two answers."""
    seen = [(r.status_code, r.json()["error_code"], r.json()["detail"]) for r in (a, b)]
    assert seen[0] == seen[1], seen
    return seen[0]


async def customer_with_phone(api: Api, email: str, phone: str) -> dict[str, Any]:
    """A customer whose email and phone were both verified (the phone through its own code)."""
    await api.register(email, phone=phone)
    r = await api.client.post("/auth/verify-otp", json={"identifier": email, "otp": api.mailbox.last_code(email)})
    assert r.status_code == 200, r.text
    tokens = (await api.client.post("/auth/login", json={"identifier": email, "password": PASSWORD})).json()
    r = await api.client.post("/auth/resend-otp", headers=bearer(tokens), json={"identifier": phone})
    assert r.status_code == 200, r.text
    r = await api.client.post("/auth/verify-otp", headers=bearer(tokens),
                              json={"identifier": phone, "otp": sms_code(api, phone)})
    assert r.status_code == 200, r.text
    return {**tokens, "email": email}


# --- enumeration ---------------------------------------------------------------------------


async def test_reset_with_a_wrong_code_answers_alike_for_known_and_unknown(api, email):
    await api.customer(email)
    api.container.clock.advance(seconds=61)
    for ident in (email, "ghost@example.com"):
        r = await api.client.post("/auth/password/forgot", json={"identifier": ident})
        assert r.status_code == 200
    code = api.mailbox.last_code(email)
    for new_password in ("short", "a-perfectly-fine-passphrase"):  # the policy never runs before the code
        known = await api.client.post("/auth/password/reset", json={
            "identifier": email, "otp": wrong_code(code), "new_password": new_password})
        unknown = await api.client.post("/auth/password/reset", json={
            "identifier": "ghost@example.com", "otp": wrong_code(code), "new_password": new_password})
        assert same(known, unknown)[:2] == (400, "invalid_otp")
    r = await api.client.post("/auth/login", json={"identifier": email, "password": PASSWORD})
    assert r.status_code == 200  # nothing changed
    # With the right code the policy speaks, and the code stays usable for a better password.
    r = await api.client.post("/auth/password/reset", json={"identifier": email, "otp": code, "new_password": "short"})
    assert r.status_code == 400 and r.json()["error_code"] == "weak_password"
    r = await api.client.post("/auth/password/reset",
                              json={"identifier": email, "otp": code, "new_password": "reset-to-this-phrase"})
    assert r.status_code == 200
    r = await api.client.post("/auth/login", json={"identifier": email, "password": "reset-to-this-phrase"})
    assert r.status_code == 200


async def test_wrong_verification_codes_answer_alike_for_pending_active_and_unknown(api, email):
    await api.register(email)  # pending: its registration code is live
    active = f"a{email}"
    await api.customer(active)
    wrong = wrong_code(api.mailbox.last_code(email))
    for _ in range(7):  # tries left, then exhausted, then a fresh start: the same sequence for all
        answers = [await api.client.post("/auth/verify-otp", json={"identifier": ident, "otp": wrong})
                   for ident in (email, active, "ghost@example.com")]
        same(answers[0], answers[1])
        same(answers[0], answers[2])
    api.container.clock.advance(minutes=10, seconds=1)
    answers = [await api.client.post("/auth/verify-otp", json={"identifier": ident, "otp": wrong})
               for ident in (email, active, "ghost@example.com")]
    assert same(answers[0], answers[2])[1] == same(answers[0], answers[1])[1]
    assert (await api.container.db["user"].find_one({"email": email}))["status"] == "pending_verification"


async def test_code_requests_for_an_email_then_a_phone_of_one_account_look_like_two_strangers(api, email):
    phone = phone_number()
    await customer_with_phone(api, email, phone)
    api.container.clock.advance(seconds=61)
    for route in ("/auth/password/forgot", "/auth/login/otp"):
        answers = []
        for ident in (email, phone, "ghost@example.com", phone_number()):
            r = await api.client.post(route, json={"identifier": ident})
            answers.append((r.status_code, r.headers.get("x-ratelimit-limit"), r.headers.get("x-ratelimit-remaining")))
        assert len(set(answers)) == 1 and answers[0][0] == 200, (route, answers)
    assert len(sms(api, phone)) == 3  # confirm, reset, sign-in: each went to the phone itself


async def test_sending_routes_answer_alike_for_every_kind_of_identifier(api):
    pending, active = f"p{uuid.uuid4().hex[:8]}@example.com", f"c{uuid.uuid4().hex[:8]}@example.com"
    await api.register(pending)
    await api.customer(active)
    staff = f"s{uuid.uuid4().hex[:8]}@example.com"
    await api.container.admin.create_user(email=staff, password=PASSWORD, name="Staff", role=Role.AUDITOR)
    # Each route limits its own purpose, so one history serves all three.
    for route in ("/auth/resend-otp", "/auth/login/otp", "/auth/password/forgot"):
        await _answers_alike(api, route, pending, active, staff)


async def _answers_alike(api: Api, route: str, pending: str, active: str, staff: str) -> None:
    if route == "/auth/resend-otp":  # the same history for all: registration sent the others a code
        for ident in (staff, "ghost@example.com"):
            assert (await api.client.post(route, json={"identifier": ident})).status_code == 200
    api.container.clock.advance(seconds=61)
    seen: dict[str, list[Any]] = {}
    for ident in (pending, active, staff, "ghost@example.com"):
        r = await api.client.post(route, json={"identifier": ident})
        body = {k: v for k, v in r.json().items() if k != "otp_token"}
        rate = {k: v for k, v in r.headers.items() if k.startswith("x-ratelimit") and k != "x-ratelimit-reset"}
        seen[ident] = [r.status_code, body, rate]
        # A token comes back either way, and a wrong code against it answers the same.
        if "otp_token" in r.json():
            v = await api.client.post("/auth/login/verify-otp", json={"otp_token": r.json()["otp_token"], "otp": "000000"})
            seen[ident].append([v.status_code, v.json()["error_code"], v.json()["detail"]])
    assert len({json.dumps(v, sort_keys=True) for v in seen.values()}) == 1, seen
    assert seen[pending][0] == 200 and seen[pending][2]["x-ratelimit-limit"] == "5"
    # Another request within the minute is refused alike, with the same headers.
    again = [await api.client.post(route, json={"identifier": ident}) for ident in (active, "ghost@example.com")]
    assert [a.status_code for a in again] == [429, 429]
    assert again[0].headers["x-ratelimit-remaining"] == again[1].headers["x-ratelimit-remaining"]
    assert again[0].headers["retry-after"] == again[1].headers["retry-after"]


async def test_a_failed_delivery_answers_like_an_unknown_account(api_factory, email):
    api = await api_factory(smtp_port=free_port())  # nothing listens there
    await api.container.admin.create_user(email=email, password=PASSWORD, name="Asha", role=Role.CUSTOMER)
    for route in ("/auth/password/forgot", "/auth/login/otp"):
        known = await api.client.post(route, json={"identifier": email})
        unknown = await api.client.post(route, json={"identifier": "ghost@example.com"})
        assert known.status_code == unknown.status_code == 200, known.text
        assert known.json().get("message") == unknown.json().get("message")


# --- identifiers ---------------------------------------------------------------------------


async def test_an_unverified_phone_is_no_identifier(api, email):
    phone = phone_number()
    await api.register(email, phone=phone)
    await api.client.post("/auth/verify-otp", json={"identifier": email, "otp": api.mailbox.last_code(email)})
    assert sms(api, phone) == []  # the registration code went to the email only
    r = await api.client.post("/auth/login", json={"identifier": phone, "password": PASSWORD})
    ghost = await api.client.post("/auth/login", json={"identifier": phone_number(), "password": PASSWORD})
    assert same(r, ghost)[:2] == (401, "invalid_credentials")
    api.container.clock.advance(seconds=61)
    for route in ("/auth/login/otp", "/auth/password/forgot", "/auth/resend-otp"):
        assert (await api.client.post(route, json={"identifier": phone})).status_code == 200
    assert sms(api, phone) == []  # nothing was sent to a number nobody proved they own
    me = (await api.client.get("/users/me", headers=bearer((await api.client.post(
        "/auth/login", json={"identifier": email, "password": PASSWORD})).json()))).json()
    assert me["phone"] == phone  # still shown to its claimant, to confirm


async def test_the_second_identifier_is_confirmed_with_its_own_code(api, email):
    phone = phone_number()
    tokens = await customer_with_phone(api, email, phone)
    doc = await api.container.db["user"].find_one({"email": email})
    assert doc["phone"] == phone and sorted(doc["verified"]) == ["email", "phone"] and "unverified_phone" not in doc
    r = await api.client.post("/auth/login", json={"identifier": phone, "password": PASSWORD})
    assert r.status_code == 200 and r.json()["user_id"] == tokens["user_id"]


async def test_a_confirmation_code_works_only_for_its_claimant(api, email):
    phone = phone_number()
    await api.register(email, phone=phone)
    await api.client.post("/auth/verify-otp", json={"identifier": email, "otp": api.mailbox.last_code(email)})
    tokens = (await api.client.post("/auth/login", json={"identifier": email, "password": PASSWORD})).json()
    await api.client.post("/auth/resend-otp", headers=bearer(tokens), json={"identifier": phone})
    code = sms_code(api, phone)
    r = await api.client.post("/auth/verify-otp", json={"identifier": phone, "otp": code})  # anonymous
    assert r.status_code == 400 and r.json()["error_code"] == "invalid_otp"
    other = await api.customer(f"o{email}")
    r = await api.client.post("/auth/verify-otp", headers=bearer(other), json={"identifier": phone, "otp": code})
    assert r.status_code == 400 and r.json()["error_code"] == "invalid_otp"
    assert "phone" not in await api.container.db["user"].find_one({"email": email})


async def test_an_unverified_phone_never_blocks_its_owner_and_the_first_to_verify_wins(api, email):
    phone = phone_number()
    await api.register(email, phone=phone)  # claims someone else's number
    await api.client.post("/auth/verify-otp", json={"identifier": email, "otp": api.mailbox.last_code(email)})
    owner = await api.register(phone=phone, name="Real Owner")
    assert owner["phone"] == phone
    r = await api.client.post("/auth/verify-otp", json={"identifier": phone, "otp": sms_code(api, phone)})
    assert r.status_code == 200 and r.json()["user_id"] == owner["id"]
    claimant = await api.container.db["user"].find_one({"email": email})
    assert "phone" not in claimant and "unverified_phone" not in claimant  # the claim was dropped
    tokens = (await api.client.post("/auth/login", json={"identifier": email, "password": PASSWORD})).json()
    assert (await api.client.get("/users/me", headers=bearer(tokens))).json()["phone"] is None
    before = len(sms(api, phone))
    api.container.clock.advance(seconds=61)
    r = await api.client.post("/auth/resend-otp", headers=bearer(tokens), json={"identifier": phone})
    assert r.status_code == 200 and len(sms(api, phone)) == before
    r = await api.client.post("/auth/login", json={"identifier": phone, "password": PASSWORD})
    assert r.status_code == 200 and r.json()["user_id"] == owner["id"]


async def test_confirming_a_phone_drops_a_pending_registration_that_never_proved_it(api, email):
    phone = phone_number()
    await api.register(email, phone=phone)
    await api.client.post("/auth/verify-otp", json={"identifier": email, "otp": api.mailbox.last_code(email)})
    squatter = await api.register(phone=phone, name="Squatter")  # pending, never verified
    tokens = (await api.client.post("/auth/login", json={"identifier": email, "password": PASSWORD})).json()
    api.container.clock.advance(seconds=61)
    await api.client.post("/auth/resend-otp", headers=bearer(tokens), json={"identifier": phone})
    r = await api.client.post("/auth/verify-otp", headers=bearer(tokens),
                              json={"identifier": phone, "otp": sms_code(api, phone)})
    assert r.status_code == 200 and r.json()["user_id"] == tokens["user_id"]
    assert await api.container.db["user"].count_documents({"phone": phone}) == 1
    assert await UserRepository(api.container.db).get(squatter["id"]) is None


async def test_stored_accounts_keep_working_and_their_unverified_phone_is_freed(api, email):
    phone = phone_number()
    now = datetime.now(UTC)
    # As written before identifiers were verified one by one: no `verified`, the phone in the unique field.
    await api.container.db["user"].insert_one({
        "name": "Old", "email": email, "phone": phone, "role": "customer", "status": "active",
        "password_hash": await api.container.passwords.hash(PASSWORD), "kyc_status": "PENDING",
        "created_at": now, "updated_at": now,
    })
    r = await api.client.post("/auth/login", json={"identifier": phone, "password": PASSWORD})
    assert r.status_code == 401 and r.json()["error_code"] == "invalid_credentials"
    r = await api.client.post("/auth/login", json={"identifier": email, "password": PASSWORD})
    assert r.status_code == 200
    await UserRepository(api.container.db).ensure_indexes()  # the start-up migration
    doc = await api.container.db["user"].find_one({"email": email})
    assert doc["verified"] == ["email"] and doc["unverified_phone"] == phone and "phone" not in doc
    assert (await api.register(phone=phone, name="Real Owner"))["phone"] == phone


async def test_a_ten_digit_indian_mobile_is_read_as_plus_91(api):
    r = await api.client.post("/auth/register", json={"phone": "98765 43210", "password": PASSWORD, "name": "R"})
    assert r.status_code == 201 and r.json()["phone"] == "+919876543210"
    r = await api.client.post("/auth/verify-otp", json={"identifier": "9876543210", "otp": sms_code(api, "+919876543210")})
    assert r.status_code == 200
    r = await api.client.post("/auth/login", json={"identifier": "9876543210", "password": PASSWORD})
    assert r.status_code == 200


async def test_the_schema_says_which_identifiers_are_accepted(api):
    client = httpx.AsyncClient(transport=api.client._transport, base_url="http://testserver")
    schemas = (await client.get("/openapi.json")).json()["components"]["schemas"]
    for model in ("LoginRequest", "IdentifierRequest", "VerifyOtpRequest", "ResetPasswordRequest"):
        text = schemas[model]["properties"]["identifier"]["description"]
        assert "+919876543210" in text and "10-digit Indian mobile" in text, model
    assert "/auth/verify-otp" in schemas["RegisterRequest"]["properties"]["phone"]["description"]


@pytest.mark.parametrize("identifier", ["98765", "12345678901234567", "asha.example.com"])
async def test_an_unreadable_identifier_says_what_is_accepted(api, identifier):
    r = await api.client.post("/auth/login/otp", json={"identifier": identifier})
    assert r.status_code == 400 and r.json()["error_code"] == "invalid_identifier"
    assert "+919876543210" in r.json()["detail"]
    assert await api.container.db["otp"].count_documents({}) == 0


# --- lockouts ------------------------------------------------------------------------------


async def test_guessing_the_current_password_locks_the_account_and_ends_its_sessions(api, email):
    tokens = await api.customer(email)
    for _ in range(4):
        r = await api.client.post("/auth/change-password", headers=bearer(tokens),
                                  json={"current_password": WRONG, "new_password": "a-brand-new-passphrase"})
        assert r.status_code == 400 and r.json()["error_code"] == "invalid_credentials"
    r = await api.client.post("/auth/change-password", headers=bearer(tokens),
                              json={"current_password": WRONG, "new_password": "a-brand-new-passphrase"})
    assert r.status_code == 403 and r.json()["error_code"] == "account_locked"
    assert 800 < int(r.headers["retry-after"]) <= 901
    r = await api.client.get("/users/me", headers=bearer(tokens))
    assert r.status_code == 401 and r.json()["error_code"] == "session_revoked"
    r = await api.client.post("/auth/login", json={"identifier": email, "password": PASSWORD})
    assert r.status_code == 403 and r.json()["error_code"] == "account_locked"
    assert await api.container.db["user_log"].count_documents({"action": "lockout"}) == 1
    api.container.clock.advance(minutes=15, seconds=1)
    r = await api.client.post("/auth/login", json={"identifier": email, "password": PASSWORD})
    assert r.status_code == 200


async def test_a_locked_account_cannot_change_its_password(api, email):
    tokens = await api.customer(email)
    for _ in range(5):
        await api.client.post("/auth/login", json={"identifier": email, "password": WRONG})
    r = await api.client.post("/auth/change-password", headers=bearer(tokens),
                              json={"current_password": PASSWORD, "new_password": "a-brand-new-passphrase"})
    assert r.status_code == 403 and r.json()["error_code"] == "account_locked" and int(r.headers["retry-after"]) > 0
    r = await api.client.get("/users/me", headers=bearer(tokens))
    assert r.status_code == 200  # a lock from failed logins leaves the owner's sessions alone


async def test_failures_through_one_identifier_lock_the_whole_account(api, email):
    phone = phone_number()
    await customer_with_phone(api, email, phone)
    for ident in (email, phone, email, phone, email):  # five failures in all, through both
        r = await api.client.post("/auth/login", json={"identifier": ident, "password": WRONG})
        assert r.status_code == 401
    for ident in (phone, email):
        r = await api.client.post("/auth/login", json={"identifier": ident, "password": PASSWORD})
        assert r.status_code == 403 and r.json()["error_code"] == "account_locked"
    # Identifiers with no account still lock one by one, as any single-identifier account would.
    for _ in range(5):
        r = await api.client.post("/auth/login", json={"identifier": "ghost1@example.com", "password": WRONG})
        assert r.status_code == 401
    r = await api.client.post("/auth/login", json={"identifier": "ghost1@example.com", "password": WRONG})
    assert r.status_code == 403 and r.json()["error_code"] == "account_locked"
    r = await api.client.post("/auth/login", json={"identifier": "ghost2@example.com", "password": WRONG})
    assert r.status_code == 401 and r.json()["error_code"] == "invalid_credentials"


async def test_a_reset_lifts_the_account_lock(api, email):
    phone = phone_number()
    await customer_with_phone(api, email, phone)
    for _ in range(5):
        await api.client.post("/auth/login", json={"identifier": email, "password": WRONG})
    api.container.clock.advance(seconds=61)
    await api.client.post("/auth/password/forgot", json={"identifier": phone})
    r = await api.client.post("/auth/password/reset", json={
        "identifier": phone, "otp": sms_code(api, phone), "new_password": "reset-to-this-phrase"})
    assert r.status_code == 200
    r = await api.client.post("/auth/login", json={"identifier": email, "password": "reset-to-this-phrase"})
    assert r.status_code == 200


async def test_anonymous_code_routes_answer_before_the_mail_is_sent(api, email):
    """The SMTP round trip of a real code happens after the answer, so its timing cannot tell an
    anonymous caller that an account exists (a decoy sends nothing)."""
    await api.customer(email)
    api.container.clock.advance(seconds=61)
    before = len(api.mailbox.for_address(email))
    for call in (lambda later: api.container.auth.forgot_password(email, later=later),
                 lambda later: api.container.auth.start_passwordless(email, later=later)):
        deferred: list = []
        await call(deferred.append)
        assert len(deferred) == 1 and len(api.mailbox.for_address(email)) == before  # answered, nothing sent yet
        await deferred[0]()
        before += 1
        assert len(api.mailbox.for_address(email)) == before
        api.container.clock.advance(seconds=61)
    deferred = []
    await api.container.auth.forgot_password("nobody.here@example.com", later=deferred.append)
    assert deferred == []  # a decoy: nothing to send, and nothing was waited for either way
