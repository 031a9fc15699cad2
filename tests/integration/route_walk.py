"""One walk over every API route's main (successful) path and every job kind, with a command
listener on the app's client: what each request and each job handler sent to the database. The
round-trip budgets (`test_round_trips.py`) and the index coverage (`test_index_coverage.py`) read
the same walk; it runs once per test worker and its result is kept (plain data, no app)."""

from __future__ import annotations

import asyncio
import base64
import uuid
from collections import defaultdict
from dataclasses import dataclass, field
from typing import Any

import cv2
import httpx
from bson import ObjectId
from skimage import data

from app.domain.jobs import JobStatus
from tests.conftest import PASSWORD, Api, bearer
from tests.integration._arrears_walk import walk_arrears
from tests.integration._prepayment_walk import walk_prepayments
from tests.integration._servicing_walk import walk_servicing
from tests.integration.db_commands import Command, CommandLog
from tests.integration.events_helpers import Receiver
from tests.integration.gateway_upstream import Upstream
from tests.integration.lending_helpers import apply_body, borrower, make_product
from tests.integration.test_verification_api import encode
from tests.ml import cards

API_PREFIX = "/api/v1"
# Budgets leave out the shared rate-limit counter: one `$inc` upsert claims up to 16 requests of a
# caller (one per request only near its limit), so no single route owns it.
AMORTISED = frozenset({"rate_counters"})
ADDRESS = {"line1": "12 MG Road", "city": "Bengaluru", "state": "Karnataka", "pincode": "560001"}
PROFILE = {"dob": "1990-08-15", "gender": "female", "marital_status": "married", "family_size": 4,
           "working_members": 2, "children": 1, "current_address": ADDRESS, "permanent_address": ADDRESS}
GATEWAY_METHODS = ("GET", "POST", "PUT", "PATCH", "DELETE", "HEAD", "OPTIONS")


@dataclass
class WalkResult:
    routes: dict[tuple[str, str], list[list[Command]]] = field(default_factory=lambda: defaultdict(list))
    jobs: dict[str, list[list[Command]]] = field(default_factory=lambda: defaultdict(list))
    job_machinery: list[list[Command]] = field(default_factory=list)  # claim, complete, lapsed leases per run
    commands: list[Command] = field(default_factory=list)  # everything the app sent, start-up excluded
    indexes: dict[str, list[dict[str, Any]]] = field(default_factory=dict)  # collection -> list_indexes()
    kinds: list[str] = field(default_factory=list)  # the job kinds the app registers
    # A live stream's reads after it opened (its session, once per heartbeat), and its heartbeats.
    stream_reads: list[Command] = field(default_factory=list)
    heartbeats: int = 0

    def route_count(self, key: tuple[str, str]) -> int:
        """The most commands one call of the route sent (rate counters left out)."""
        return max(len([c for c in run if c.collection not in AMORTISED]) for run in self.routes[key])

    def job_count(self, kind: str) -> int:
        return max(len(run) for run in self.jobs[kind])


@dataclass
class Walker:
    api: Api
    log: CommandLog
    result: WalkResult

    async def call(self, method: str, template: str, path: str | None = None, **kwargs: Any) -> httpx.Response:
        """Call a route on its main path; its commands are recorded under (method, template)."""
        r = await self.api.client.request(method, path or template, **kwargs)
        assert r.is_success, (method, template, r.status_code, r.text)
        self.result.routes[(method, API_PREFIX + template)].append(self.log.of_request(r.headers["x-request-id"]))
        return r

    async def run_jobs(self, limit: int = 100) -> None:
        """Run due jobs one at a time; each handler run's commands go under its kind."""
        jobs = self.api.container.jobs
        for _ in range(limit):
            start = len(self.log.commands)
            ran = await jobs.run_once()
            if not ran:
                return
            sent = self.log.commands[start:]
            kinds = {c.job_kind for c in sent if c.job_kind}
            assert len(kinds) <= 1, kinds
            handler = [c for c in sent if c.job_kind]
            if kinds:
                self.result.jobs[kinds.pop()].append(handler)
            self.result.job_machinery.append([c for c in sent if not c.job_kind and c.collection == "jobs"])
        raise AssertionError("jobs kept coming")


_WALK: WalkResult | None = None


async def walked(api_factory: Any) -> WalkResult:
    """The walk's result, made at the first call of the test worker."""
    global _WALK
    if _WALK is None:
        _WALK = await _walk(api_factory)
    return _WALK


def _astronaut() -> bytes:
    return encode(cv2.cvtColor(data.astronaut(), cv2.COLOR_RGB2BGR))


def _data_url(jpeg: bytes) -> str:
    return "data:image/jpeg;base64," + base64.b64encode(jpeg).decode()


async def _walk(api_factory: Any) -> WalkResult:
    log = CommandLog()
    receiver = await Receiver().start()
    try:
        with Upstream() as upstream:
            api = await api_factory(db_listeners=[log], job_workers=0, events_heartbeat_seconds=0.2,
                                    gateway_services={"echo": f"{upstream.base}/svc"})
            log.database = api.settings.mongodb_db
            log.commands.clear()  # start-up (indexes) is not a route's work
            result = WalkResult()
            w = Walker(api, log, result)
            await _auth(w)
            people = await _kyc(w)
            await _admin(w, people)
            await _verification(w)
            await _lending(w, people)
            await walk_servicing(w, people)
            await walk_prepayments(w, people)
            await _webhooks(w, people, receiver)
            await _filtered_lists(w, people)
            await _gateway(w, people)
            await _events(w, people)  # last: it moves the clock past every token
            await _watchlist(w, [cards.Person().name])  # a reload sends the approved customer back to review
            await walk_arrears(w)  # then the clock is 63 days ahead
            await _renewals(w)  # last: it moves the clock years ahead
            await w.run_jobs()
            result.commands = list(log.commands)
            result.kinds = api.container.jobs.kinds
            db = api.container.db
            for name in await db.list_collection_names():
                result.indexes[name] = [dict(ix) async for ix in await db[name].list_indexes()]
            return result
    finally:
        await receiver.stop()


async def _auth(w: Walker) -> None:
    api, mail = w.api, w.api.mailbox
    clock = api.container.clock  # moved a little before each code sent: codes have a resend cooldown
    email = f"walk{uuid.uuid4().hex[:8]}@example.com"
    await w.call("GET", "/health")
    await w.call("GET", "/health/live")
    await w.call("GET", "/health/ready")
    await w.call("POST", "/auth/register", json={"email": email, "password": PASSWORD, "name": "Asha Rao"})
    clock.advance(minutes=2)
    await w.call("POST", "/auth/resend-otp", json={"identifier": email})
    await w.call("POST", "/auth/verify-otp", json={"identifier": email, "otp": mail.last_code(email)})
    tokens = (await w.call("POST", "/auth/login", json={"identifier": email, "password": PASSWORD})).json()
    clock.advance(minutes=2)
    challenge = (await w.call("POST", "/auth/login/otp", json={"identifier": email})).json()
    await w.call("POST", "/auth/login/verify-otp", json={"otp_token": challenge["otp_token"],
                                                         "otp": mail.last_code(email)})
    tokens = (await w.call("POST", "/auth/refresh", json={"refresh_token": tokens["refresh_token"]})).json()
    await w.call("GET", "/auth/verify-token", headers=bearer(tokens))
    new_password = PASSWORD + "-changed"
    await w.call("POST", "/auth/change-password", headers=bearer(tokens),
                 json={"current_password": PASSWORD, "new_password": new_password})
    clock.advance(minutes=2)
    await w.call("POST", "/auth/password/forgot", json={"identifier": email})
    await w.call("POST", "/auth/password/reset", json={"identifier": email, "otp": mail.last_code(email),
                                                       "new_password": PASSWORD})
    tokens = (await api.client.post("/auth/login", json={"identifier": email, "password": PASSWORD})).json()
    await w.call("POST", "/auth/logout", headers=bearer(tokens), json={"refresh_token": tokens["refresh_token"]})


async def _customer(w: Walker, name: str = cards.Person().name) -> dict[str, Any]:
    tokens = await w.api.customer()
    return {**tokens, "headers": bearer(tokens), "name": name}


async def _kyc(w: Walker) -> dict[str, Any]:
    """A customer from profile to an approved case, another rejected, a third by one-step upload."""
    person = cards.Person()
    aadhaar, pan, selfie = encode(cards.aadhaar_front(person)), encode(cards.pan_card(person)), _astronaut()
    who = await _customer(w)
    h = who["headers"]
    await w.call("GET", "/users/me", headers=h)
    await w.call("PATCH", "/users/me", headers=h, json={**PROFILE, "name": person.name})  # complete: risk job
    await w.call("GET", "/users/me/kyc-status", headers=h)
    await w.call("PUT", "/users/me/financial-details", headers=h, json={
        "monthly_income": 85000, "monthly_expenses": 20000, "existing_emi": 5000, "credit_score": 760})
    await w.call("GET", "/users/me/financial-details", headers=h)
    await w.call("PUT", "/users/me/employment-details", headers=h, json={
        "employment_type": "salaried", "employer_name": "Acme", "designation": "Engineer",
        "years_in_current_job": 3, "total_experience_years": 8})
    await w.call("GET", "/users/me/employment-details", headers=h)

    async def upload(who: dict[str, Any], kind: str, content: bytes) -> dict[str, Any]:
        r = await w.call("POST", "/kyc/documents", headers=who["headers"], data={"document_type": kind},
                         files={"file": ("card.jpg", content, "image/jpeg")})
        return r.json()  # type: ignore[no-any-return]

    document = await upload(who, "aadhaar", aadhaar)
    kyc_id = document["kyc_id"]
    await upload(who, "pan", pan)
    await w.call("POST", "/kyc/selfie", headers=h, files={"file": ("me.jpg", selfie, "image/jpeg")})
    await w.call("PUT", "/kyc/documents/{document_id}/corrections",
                 f"/kyc/documents/{document['document_id']}/corrections", headers=h,
                 json={"fields": {"full_name": person.name}})
    await w.call("GET", "/kyc/me", headers=h)
    await _watchlist(w, [])  # the cases' screening check reads a loaded list
    await w.call("POST", "/kyc/submit", headers=h)

    other = await _customer(w)
    await w.api.client.patch("/users/me", headers=other["headers"], json={"dob": "1990-08-15"})
    other_id = (await upload(other, "aadhaar", aadhaar))["kyc_id"]
    await upload(other, "pan", pan)
    await w.api.client.post("/kyc/selfie", headers=other["headers"], files={"file": ("me.jpg", selfie, "image/jpeg")})
    assert (await w.api.client.post("/kyc/submit", headers=other["headers"])).status_code == 202

    third = await _customer(w)
    await w.api.client.patch("/users/me", headers=third["headers"], json={"dob": "1990-08-15"})
    await upload(third, "aadhaar", aadhaar)
    await w.api.client.post("/kyc/selfie", headers=third["headers"], files={"file": ("me.jpg", selfie, "image/jpeg")})
    await w.call("POST", "/kyc/upload", headers={**third["headers"], "Idempotency-Key": "walk-pan"}, json={
        "document_type": "pan", "document_number": person.pan, "document_data": base64.b64encode(pan).decode()})
    await w.run_jobs()

    auditor = await w.api.staff("auditor")
    ah = bearer(auditor)
    await w.call("GET", "/kyc/pending", headers=ah)
    detail = (await w.call("GET", "/kyc/{kyc_id}", f"/kyc/{kyc_id}", headers=ah)).json()
    await w.call("GET", "/kyc/{kyc_id}/files/{file_id}", detail["files"][0]["url"].removeprefix(API_PREFIX),
                 headers=ah)
    await w.call("POST", "/kyc/{kyc_id}/claim", f"/kyc/{kyc_id}/claim", headers=ah)
    await w.call("DELETE", "/kyc/{kyc_id}/claim", f"/kyc/{kyc_id}/claim", headers=ah)
    await w.call("PUT", "/kyc/{kyc_id}/approve", f"/kyc/{kyc_id}/approve", headers=ah, json={"notes": "Fine."})
    await w.call("POST", "/kyc/level", headers=h, json={"level": "full"})  # a step-up: the approved case's 3 files copied
    await w.call("PUT", "/kyc/{kyc_id}/reject", f"/kyc/{other_id}/reject", headers=ah,
                 json={"reason": "document_expired", "notes": "Upload a current card."})
    # The third case sent back for its PAN, which the customer uploads again and submits (a second round).
    third_id = (await w.api.client.get("/kyc/me", headers=third["headers"])).json()["kyc_id"]
    await w.call("PUT", "/kyc/{kyc_id}/request-resubmission", f"/kyc/{third_id}/request-resubmission", headers=ah,
                 json={"items": [{"document_type": "pan"}], "customer_message": "A sharper PAN, please."})
    await upload(third, "pan", pan)
    await w.call("POST", "/kyc/submit", headers=third["headers"])
    await w.run_jobs()
    return {"customer": who, "auditor": auditor}


async def _admin(w: Walker, people: dict[str, Any]) -> None:
    api = w.api
    admin = await api.staff("admin")
    people["admin"] = admin
    h = bearer(admin)
    staff = (await w.call("POST", "/admin/users", headers=h, json={
        "email": f"s{uuid.uuid4().hex[:8]}@example.com", "password": PASSWORD, "name": "S", "role": "auditor"})).json()
    staff_id = staff.get("user_id") or staff["id"]
    await w.call("PUT", "/admin/users/{user_id}/status", f"/admin/users/{staff_id}/status", headers=h,
                 json={"status": "suspended"})
    await w.call("GET", "/admin/users", headers=h)
    await w.call("GET", "/admin/users/{user_id}", f"/admin/users/{people['customer']['user_id']}", headers=h)
    await w.call("GET", "/admin/stats", headers=h)
    await w.call("GET", "/roles", headers=h)
    await w.call("GET", "/audit-logs", headers=h)
    key = (await w.call("POST", "/admin/api-keys", headers=h, json={"name": "Partner", "scopes": ["liveness"]})).json()
    await w.call("GET", "/admin/api-keys", headers=h)
    await w.call("DELETE", "/admin/api-keys/{key_id}", f"/admin/api-keys/{key['id']}", headers=h)

    repo, now = api.container.jobs.repo, api.container.clock.now()
    await repo.enqueue(key="walk:stuck", kind="nobody_runs_this", payload={}, max_attempts=1, run_at=now, now=now)
    job = await repo.claim(owner="w", kinds=["nobody_runs_this"], now=now, lease_seconds=30)
    job = await repo.fail(job, owner="w", error="RuntimeError: upstream down", now=now, retry_at=now)
    assert job is not None and job.status is JobStatus.FAILED
    await w.call("GET", "/admin/jobs", headers=h, params={"status": "failed"})
    await w.call("POST", "/admin/jobs/{job_id}/retry", f"/admin/jobs/{job.id}/retry", headers=h)


async def _verification(w: Walker) -> None:
    h = (await _customer(w))["headers"]
    card, selfie = encode(cards.aadhaar_front()), _astronaut()
    await w.call("POST", "/kyc/verify", headers=h, files={"id_document": ("card.jpg", card, "image/jpeg"),
                                                          "selfie_image": ("me.jpg", selfie, "image/jpeg")})
    await w.call("POST", "/ocr/extract", headers=h, files={"document": ("pan.jpg", encode(cards.pan_card()),
                                                                        "image/jpeg")})
    challenge = (await w.call("GET", "/liveness/challenge", headers=h)).json()
    frames = [_data_url(selfie)] * 10
    await w.call("POST", "/liveness/verify", headers=h, json={"challenge_id": challenge["challenge_id"],
                                                             "frames": frames})
    await w.call("POST", "/liveness/detect", headers=h, json={"frames": frames[:3]})


async def _lending(w: Walker, people: dict[str, Any]) -> None:
    api = w.api
    h = bearer(people["admin"])
    bank = (await w.call("POST", "/admin/banks", headers=h, json={"name": "Walk Bank", "code": "WLK"})).json()
    await w.call("GET", "/admin/banks", headers=h)
    body = {"name": "Walk Personal Loan", "type": "personal", "min_amount": 50000, "max_amount": 2500000,
            "min_tenure_months": 12, "max_tenure_months": 60, "annual_interest_rate": 11.25, "processing_fee_pct": 1.5,
            "prepayment_charge_pct": 4, "repayment_frequency": "monthly", "min_monthly_income": 25000, "min_age": 21,
            "max_age": 60, "max_foir": 0.55, "bank_id": bank["id"]}
    made = (await w.call("POST", "/admin/products", headers=h, json=body)).json()
    await w.call("PUT", "/admin/products/{product_id}", f"/admin/products/{made['id']}", headers=h,
                 json={**body, "annual_interest_rate": 11.5})
    await w.call("GET", "/admin/products", headers=h)

    product = await make_product(api)
    who = await borrower(api)
    bh = who["headers"]
    await w.call("GET", "/loans/products", headers=bh)
    await w.call("GET", "/loans/products/{product_id}", f"/loans/products/{product.id}", headers=bh)
    await w.call("POST", "/eligibility/check", headers=bh, json={"product_id": product.id, "amount": 100000,
                                                                 "tenure_months": 12})
    await w.call("POST", "/eligibility/calculate-emi", json={"principal": 100000, "annual_interest_rate": 12,
                                                             "tenure_months": 12})
    applied = (await w.call("POST", "/loans/apply", headers=bh, json=apply_body(product))).json()
    loan_id = applied["loan_id"]
    await w.call("GET", "/loans/my-loans", headers=bh)
    await w.call("POST", "/admin/loans/{loan_id}/approve", f"/admin/loans/{loan_id}/approve", headers=h)
    await w.call("POST", "/loans/my-loans/{loan_id}/kfs/accept", f"/loans/my-loans/{loan_id}/kfs/accept", headers=bh,
                 json={"kfs_number": applied["kfs"]["number"]})
    await w.call("POST", "/admin/loans/{loan_id}/disburse", f"/admin/loans/{loan_id}/disburse", headers=h,
                 json={"payout_reference": "UTR-WALK-1"})
    await w.call("POST", "/loans/my-loans/{loan_id}/repayments", f"/loans/my-loans/{loan_id}/repayments", headers=bh,
                 json={"amount": 8884.88})
    await w.call("GET", "/loans/my-loans/{loan_id}", f"/loans/my-loans/{loan_id}", headers=bh)
    await w.call("GET", "/loans/my-loans/{loan_id}/pre-close", f"/loans/my-loans/{loan_id}/pre-close", headers=bh)
    await w.call("POST", "/loans/my-loans/{loan_id}/pre-close", f"/loans/my-loans/{loan_id}/pre-close", headers=bh)
    await w.call("POST", "/admin/loans/{loan_id}/pre-close/confirm", f"/admin/loans/{loan_id}/pre-close/confirm",
                 headers=h)
    await w.call("GET", "/admin/loans", headers=h)
    await w.call("GET", "/admin/loans/{loan_id}", f"/admin/loans/{loan_id}", headers=h)
    await w.call("GET", "/admin/statistics", headers=h)

    other = await borrower(api)
    await w.call("POST", "/admin/loans", headers=h, json={**apply_body(product), "user_id": other["user_id"]})
    third = await borrower(api)
    applied = await api.client.post("/loans/apply", headers=third["headers"], json=apply_body(product))
    assert applied.status_code == 201, applied.text
    await w.call("POST", "/admin/loans/{loan_id}/reject", f"/admin/loans/{applied.json()['loan_id']}/reject",
                 headers=h, json={"reason": "Income could not be confirmed"})
    await w.run_jobs()


async def _filtered_lists(w: Walker, people: dict[str, Any]) -> None:
    """The list routes again with each filter they take: every filter needs its index."""
    h, ah = bearer(people["admin"]), bearer(people["auditor"])
    customer = people["customer"]["user_id"]
    since = w.api.container.clock.now().replace(year=2020).isoformat()
    for params in ({"risk_level": "Medium"}, {"document_type": "pan"}, {"risk_level": "Medium", "document_type": "pan"},
                   {"sort": "risk"}, {"sort": "risk", "document_type": "pan"}):
        await w.call("GET", "/kyc/pending", headers=ah, params=params)
    for params in ({"role": "customer"}, {"kyc_status": "APPROVED"}, {"role": "customer", "kyc_status": "APPROVED"},
                   {"q": "walk"}):
        await w.call("GET", "/admin/users", headers=h, params=params)
    for params in ({"user_id": customer}, {"actor_id": customer}, {"action": "login"}, {"from": since},
                   {"user_id": customer, "from": since}):
        await w.call("GET", "/audit-logs", headers=h, params=params)
    await w.call("GET", "/admin/jobs", headers=h)
    loans = (await w.call("GET", "/admin/loans", headers=h)).json()["items"]
    for params in ({"status": "APPROVED"}, {"product_id": loans[0]["product_id"]}, {"user_id": loans[0]["user_id"]}):
        await w.call("GET", "/admin/loans", headers=h, params=params)


async def _webhooks(w: Walker, people: dict[str, Any], receiver: Receiver) -> None:
    h = bearer(people["admin"])
    hook = (await w.call("POST", "/admin/webhooks", headers=h, json={
        "url": receiver.url, "events": ["loan.applied", "kyc.approved"], "description": "Lender"})).json()
    await w.call("GET", "/admin/webhooks", headers=h)
    await w.call("GET", "/admin/webhooks/{webhook_id}", f"/admin/webhooks/{hook['id']}", headers=h)
    await w.call("POST", "/admin/webhooks/{webhook_id}/rotate-secret", f"/admin/webhooks/{hook['id']}/rotate-secret",
                 headers=h)
    # An event for it: a loan application (its fan-out and delivery jobs run now).
    product = await make_product(w.api, name="Walk Webhook Loan")
    who = await borrower(w.api)
    assert (await w.api.client.post("/loans/apply", headers=who["headers"], json=apply_body(product))).is_success
    await w.run_jobs()
    attempts = (await w.call("GET", "/admin/webhooks/{webhook_id}/attempts",
                             f"/admin/webhooks/{hook['id']}/attempts", headers=h)).json()["items"]
    assert attempts, "no delivery attempt"
    await w.call("POST", "/admin/webhooks/{webhook_id}/attempts/{attempt_id}/redeliver",
                 f"/admin/webhooks/{hook['id']}/attempts/{attempts[0]['id']}/redeliver", headers=h)
    await w.run_jobs()
    await w.call("DELETE", "/admin/webhooks/{webhook_id}", f"/admin/webhooks/{hook['id']}", headers=h)
    await w.call("POST", "/admin/webhooks/{webhook_id}/enable", f"/admin/webhooks/{hook['id']}/enable", headers=h)
    await w.call("POST", "/admin/webhooks/{webhook_id}/replay", f"/admin/webhooks/{hook['id']}/replay", headers=h,
                 json={"since": "2026-01-01T00:00:00Z"})
    await w.call("DELETE", "/admin/webhooks/{webhook_id}", f"/admin/webhooks/{hook['id']}", headers=h)


async def _events(w: Walker, people: dict[str, Any]) -> None:
    """The stream ends when its token expires: the clock moves past it while the stream waits."""
    who = await _customer(w)
    api = w.api
    # A missed event to replay: the stream resumes after an id older than the customer's own.
    after = str(ObjectId.from_datetime(api.container.clock.now().replace(year=2020)))
    stream = asyncio.ensure_future(w.call("GET", "/events", headers={**who["headers"], "Last-Event-ID": after}))
    await asyncio.sleep(0.5)
    api.container.clock.advance(hours=2)
    body = (await asyncio.wait_for(stream, 10)).text
    # The opening (up to the replay) is the route's cost; what follows comes once per heartbeat.
    sent = w.result.routes[("GET", API_PREFIX + "/events")][-1]
    opened = next(i for i, c in enumerate(sent) if c.collection == "events") + 1
    w.result.stream_reads, sent[opened:] = sent[opened:], []
    w.result.heartbeats = body.count(": heartbeat")


async def _gateway(w: Walker, people: dict[str, Any]) -> None:
    h = bearer(people["admin"])
    for method in GATEWAY_METHODS:
        await w.call(method, "/gateway/{service}/{path:path}", "/gateway/echo/echo", headers=h,
                     **({"content": b"hi"} if method in ("POST", "PUT", "PATCH") else {}))


async def _watchlist(w: Walker, names: list[str]) -> None:
    """A generated list loaded (no route: `kycflow screening load`); the re-screen job runs after it."""
    import tempfile
    from pathlib import Path

    from tests.screening_lists import Listed, filler, write_csv

    with tempfile.TemporaryDirectory() as folder:
        people = filler(60) + [Listed(f"walk-{i}", name, birth_date="1990-08-15") for i, name in enumerate(names)]
        await w.api.container.screening.load("walk", write_csv(Path(folder) / "list.csv", people))


async def _renewals(w: Walker) -> None:
    """Periodic re-KYC: an approval (armed the daily job) whose validity runs out; one run notices and expires it."""
    from tests.console_cases import submitted_case

    case = await submitted_case(w.api.container)
    auditor = bearer(await w.api.staff("auditor"))
    assert (await w.api.client.put(f"/kyc/{case['kyc_id']}/approve", headers=auditor, json={})).status_code == 200
    await w.run_jobs()
    w.api.container.clock.advance(days=11 * 366)
    await w.run_jobs()
