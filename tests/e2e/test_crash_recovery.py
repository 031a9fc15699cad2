"""Nothing lost on a crash: a real `kycflow serve` and `kycflow worker` on one database under a small
load (sign-ups, KYC submissions and decisions, loans applied, approved, disbursed and repaid, webhook
deliveries to two receivers on 127.0.0.1) are both killed with SIGKILL mid-stream and started again
on the same data. Every write the API acknowledged is there, every job finishes exactly once (one
mail per notice, one repayment per request), each endpoint receives every event under one
`webhook-id` (a retry reuses it), and no lease is left held."""

from __future__ import annotations

import asyncio
import email
import os
import signal
import uuid
from collections import Counter
from contextlib import ExitStack
from dataclasses import dataclass, field
from email import policy
from pathlib import Path
from typing import Any

import httpx
import pytest
from bson import ObjectId

from app.repositories.database import close_client, make_client
from app.repositories.embedded import EmbeddedMongo
from tests.conftest import PASSWORD
from tests.e2e._cluster_helpers import (
    cluster_env,
    headers,
    login,
    run_cli,
    sign_up,
    start_api,
    start_worker,
    submit_kyc,
    until,
)
from tests.integration.events_helpers import Receiver

PROFILE = {"name": "Asha Rao", "dob": "1990-08-15", "gender": "female", "marital_status": "married",
           "family_size": 4, "working_members": 2, "children": 1,
           "current_address": {"line1": "12 MG Road", "city": "Bengaluru", "state": "Karnataka", "pincode": "560001"},
           "permanent_address": {"line1": "12 MG Road", "city": "Bengaluru", "state": "Karnataka", "pincode": "560001"}}
FINANCES = {"monthly_income": 85000, "monthly_expenses": 20000, "existing_emi": 5000, "credit_score": 760}
EMPLOYMENT = {"employment_type": "salaried", "employer_name": "Infosys", "designation": "Engineer",
              "years_in_current_job": 5, "total_experience_years": 10}


@pytest.fixture
def private_mongo(tmp_path):
    """A database server of this test's own (unless MONGODB_URI names a real one): a service killed inside a
    transaction leaves it open on the server until its lifetime (60 s) runs out, and meanwhile the embedded
    server can stall a drop of the database; no other test may wait on that."""
    if os.environ.get("MONGODB_URI"):
        yield os.environ["MONGODB_URI"], True
        return
    server = EmbeddedMongo(tmp_path / "mongo")
    yield server.start(), False
    server.stop()


class Killed(Exception):
    """The API went away under this request: nothing is known of its outcome."""


@dataclass
class Load:
    """The customers' flows against whichever API is up; what the API acknowledged, by kind."""

    outbox: Path
    admin: dict[str, Any] = field(default_factory=dict)
    product_id: str = ""
    acked: dict[str, list[Any]] = field(default_factory=lambda: {k: [] for k in (
        "users", "submitted", "approved", "loans", "loan_approved", "disbursed", "repayments")})
    repaid: asyncio.Event = field(default_factory=asyncio.Event)
    killed: bool = False  # from then on a failed request is the kill's doing, not a defect

    def cut(self, exc: Exception) -> Killed:
        if not self.killed:
            raise exc
        return Killed()

    async def call(self, api: httpx.AsyncClient, method: str, path: str, ok: int = 200, **kwargs: Any) -> Any:
        try:
            r = await api.request(method, path, **kwargs)
        except httpx.TransportError as exc:
            raise self.cut(exc) from exc
        assert r.status_code == ok, (method, path, r.status_code, r.text)
        return r.json()

    async def customer(self, api: httpx.AsyncClient, n: int, repayments: int) -> None:
        try:
            email_ = f"crash{n}-{uuid.uuid4().hex[:6]}@example.com"
            try:
                who = await sign_up(api, api, self.outbox, email_)
            except (httpx.TransportError, AssertionError) as exc:
                raise self.cut(exc) from exc
            self.acked["users"].append(who["user_id"])
            h = headers(who)
            await self.call(api, "PATCH", "/users/me", headers=h, json=PROFILE)
            await self.call(api, "PUT", "/users/me/financial-details", headers=h, json=FINANCES)
            await self.call(api, "PUT", "/users/me/employment-details", headers=h, json=EMPLOYMENT)
            try:
                kyc_id = await submit_kyc(api, who)
            except (httpx.TransportError, AssertionError) as exc:
                raise self.cut(exc) from exc
            self.acked["submitted"].append(kyc_id)

            async def checked() -> bool:
                return (await self.call(api, "GET", "/kyc/me", headers=h))["checks_state"] == "DONE"

            await until(checked, 30, "the checks")
            admin = headers(self.admin)
            await self.call(api, "PUT", f"/kyc/{kyc_id}/approve", headers=admin, json={})
            self.acked["approved"].append(kyc_id)
            loan = await self.call(api, "POST", "/loans/apply", ok=201, headers={**h, "Idempotency-Key": email_},
                                   json={"product_id": self.product_id, "amount": 100000, "tenure_months": 12,
                                         "purpose": "Home renovation"})
            self.acked["loans"].append(loan["loan_id"])
            await self.call(api, "POST", f"/admin/loans/{loan['loan_id']}/approve", headers=admin)
            self.acked["loan_approved"].append(loan["loan_id"])
            await self.call(api, "POST", f"/loans/my-loans/{loan['loan_id']}/kfs/accept", headers=h,
                            json={"kfs_number": loan["kfs"]["number"]})  # a disbursal needs it
            detail = await self.call(api, "POST", f"/admin/loans/{loan['loan_id']}/disburse", headers=admin)
            self.acked["disbursed"].append(loan["loan_id"])
            for _ in range(repayments):
                paid = await self.call(api, "POST", f"/loans/my-loans/{loan['loan_id']}/repayments", ok=201,
                                       headers=h, json={"amount": detail["emi"]})
                self.acked["repayments"].append((loan["loan_id"], paid["repayment"]["amount"]))
            self.repaid.set()
        except Killed:
            return


@pytest.mark.slow
async def test_a_crash_of_api_and_worker_loses_no_acknowledged_write_and_runs_each_job_once(private_mongo,
                                                                                          tmp_path):
    mongo_uri, shared = private_mongo
    db_name = f"crash_{ObjectId()}"
    data_dir = tmp_path / "var"
    # Leases lapse within a second of the kill; failed tries come back within a second.
    env = cluster_env(mongo_uri, db_name, data_dir, JOB_LEASE_SECONDS="1", JOB_BACKOFF_BASE_SECONDS="0.2",
                      WEBHOOK_BACKOFF_BASE_SECONDS="0.2", WEBHOOK_BACKOFF_CAP_SECONDS="1", JOB_BACKOFF_CAP_SECONDS="1")
    run_cli(env, "create-user", "--email", "admin@example.com", "--password", PASSWORD, "--name", "Admin",
            "--role", "admin")
    run_cli(env, "seed-catalogue")
    steady, flaky = await Receiver().start(), await Receiver(statuses=[500, 503, 500]).start()
    load = Load(outbox=data_dir / "outbox")
    db_client = make_client(mongo_uri, socketTimeoutMS=30_000)  # a stalled server fails the test, never hangs it
    db = db_client[db_name]
    try:
        with ExitStack() as stack:
            base, api_proc = stack.enter_context(start_api(tmp_path / "api1", env))
            worker = stack.enter_context(start_worker(tmp_path / "worker1", env))
            async with httpx.AsyncClient(base_url=f"{base}/api/v1", timeout=30) as api:
                load.admin = await login(api, "admin@example.com")
                for receiver in (steady, flaky):
                    await load.call(api, "POST", "/admin/webhooks", ok=201, headers=headers(load.admin),
                                    json={"url": receiver.url, "events": list(SUBSCRIBED)})
                products = await load.call(api, "GET", "/loans/products")
                load.product_id = next(p["id"] for p in products["items"] if p["name"] == "Salary Personal Loan")
                flows = [asyncio.create_task(load.customer(api, n, repayments=3)) for n in range(4)]
                await until(lambda: load.repaid.is_set() or any(t.done() for t in flows), 60, "a first repaid loan")
                if not load.repaid.is_set():
                    await asyncio.gather(*flows)  # a flow failed: say why
                # Mid-stream: the other flows are between their steps, jobs queued and running.
                load.killed = True
                api_proc.send_signal(signal.SIGKILL)
                worker.send_signal(signal.SIGKILL)
                await asyncio.gather(*flows)
                await asyncio.to_thread(api_proc.wait, 10)
                await asyncio.to_thread(worker.wait, 10)
            killed_while = await db["jobs"].count_documents({"status": {"$ne": "done"}, **NOT_TOMORROWS})
            # Notices whose mail the kill may have cut: claimed for sending (a mail goes at most once), not done.
            cut = Counter((j["payload"]["to"], j["payload"]["subject"]) for j in await db["jobs"].find(
                {"kind": "customer_notice", "status": {"$ne": "done"}, "effect_claimed": True}).to_list())

            base, _ = stack.enter_context(start_api(tmp_path / "api2", env))
            stack.enter_context(start_worker(tmp_path / "worker2", env))

            async def settled() -> bool:
                return await db["jobs"].count_documents({"status": {"$ne": "done"}, **NOT_TOMORROWS}) == 0

            await until(settled, 45, "every job to finish after the restart")
            await asyncio.sleep(0.5)  # nothing more arrives
        await _everything_acknowledged_is_there(db, load)
        await _each_job_once(db, load, data_dir / "outbox", cut)
        await _each_event_once_per_endpoint(db, steady, flaky)
        assert await db["jobs"].count_documents({"lease_owner": {"$ne": None}}) == 0
        assert killed_while > 0  # the kill did catch work in progress
    finally:
        await steady.stop()
        await flaky.stop()
        if shared:
            await db_client.drop_database(db_name)
        await close_client(db_client)


async def _everything_acknowledged_is_there(db: Any, load: Load) -> None:
    acked = load.acked
    assert len(acked["repayments"]) >= 3  # at least one whole flow
    users = {str(u["_id"]) for u in await db["user"].find({}, {"_id": 1}).to_list()}
    assert set(acked["users"]) <= users
    cases = {str(c["_id"]): c for c in await db["kyc_doc"].find({}).to_list()}
    assert {cases[k]["status"] for k in acked["submitted"]} <= {"SUBMITTED", "APPROVED"}
    assert {cases[k]["status"] for k in acked["approved"]} == {"APPROVED"} or not acked["approved"]
    loans = {str(ln["_id"]): ln for ln in await db["loans"].find({}).to_list()}
    assert set(acked["loans"]) <= set(loans)
    for loan_id in acked["disbursed"]:
        assert loans[loan_id]["status"] == "DISBURSED", loans[loan_id]
    for loan_id in set(acked["loan_approved"]) - set(acked["disbursed"]):
        assert loans[loan_id]["status"] in ("APPROVED", "DISBURSED")


# Every job but the next day's runs of the daily jobs (periodic re-KYC, loan reviews), queued for 00:00 UTC.
NOT_TOMORROWS = {"$nor": [{"kind": {"$in": ["kyc_renewals", "loan_reviews"]}, "status": "queued"}]}


async def _each_job_once(db: Any, load: Load, outbox: Path, cut: Counter[tuple[str, str]]) -> None:
    jobs = await db["jobs"].find(NOT_TOMORROWS).to_list()
    assert {j["status"] for j in jobs} == {"done"}, [j for j in jobs if j["status"] != "done"]
    # One repayment stored per acknowledged request (a request cut by the kill may or may not have landed).
    stored = Counter(str(r["loan_id"]) for r in await db["repayments"].find({}).to_list())
    acked = Counter(loan_id for loan_id, _ in load.acked["repayments"])
    for loan_id, count in stored.items():
        assert acked[loan_id] <= count <= acked[loan_id] + 1, (loan_id, count, acked)
    # One mail per notice, never two; only a notice whose send the kill interrupted (claimed, not done) may
    # have none: a mail is sent at most once (JobService.once), as nothing can take back a sent mail.
    notices = Counter((j["payload"]["to"], j["payload"]["subject"]) for j in jobs if j["kind"] == "customer_notice")
    messages = [email.message_from_bytes(p.read_bytes(), policy=policy.default) for p in outbox.glob("*.eml")]
    mails = Counter((m["To"], m["Subject"]) for m in messages
                    if "Your KYC Flow code is" not in m.get_body(preferencelist=("plain",)).get_content())
    assert notices and set(mails) <= set(notices), (mails, notices)
    assert all(notices[key] - cut[key] <= mails[key] <= notices[key] for key in notices), (mails, notices, cut)


# What both endpoints subscribe to: not every event the flows make (e.g. loan.kfs_accepted).
SUBSCRIBED = ("kyc.submitted", "kyc.checks_completed", "kyc.approved", "loan.applied", "loan.approved",
              "loan.disbursed", "loan.repayment_received")


async def _each_event_once_per_endpoint(db: Any, *receivers: Receiver) -> None:
    types = {str(e["_id"]): e["type"] for e in await db["events"].find({}, {"type": 1}).to_list()}
    events = {event_id for event_id, type_ in types.items() if type_ in SUBSCRIBED}
    assert set(SUBSCRIBED) == {types[e] for e in events}  # every kind the flows make was there to send
    for receiver in receivers:
        bodies: dict[str, set[bytes]] = {}
        for request in receiver.requests:
            bodies.setdefault(request.headers["webhook-id"], set()).add(request.body)
        assert set(bodies) == events, {types[e] for e in events ^ set(bodies)}  # every event, each under its own id
        assert {len(b) for b in bodies.values()} == {1}  # a retry sends the same message under the same id
        assert {r.headers["webhook-id"] for r in receiver.requests if r.answered < 300} == events
    assert any(r.answered >= 500 for r in receivers[1].requests)  # the flaky one saw retries


async def test_acknowledged_writes_wait_for_a_journaled_majority(mongo_uri):
    """What the driver sends with a write and with a transaction's commit: `w: majority, j: true`, so an
    acknowledged write survives a crash of the database server or a failover, not only of the service."""
    from pymongo import monitoring

    sent: list[dict[str, Any]] = []

    class Listener(monitoring.CommandListener):
        def started(self, event: monitoring.CommandStartedEvent) -> None:
            if event.command_name in ("insert", "commitTransaction"):
                sent.append({"command": event.command_name, **event.command.get("writeConcern", {})})

        def succeeded(self, event: Any) -> None: ...

        def failed(self, event: Any) -> None: ...

    client = make_client(mongo_uri, event_listeners=[Listener()])
    db = client[f"wc_{ObjectId()}"]
    try:
        await db["t"].insert_one({"n": 1})
        async with client.start_session() as session:
            async with await session.start_transaction():
                await db["t"].insert_one({"n": 2}, session=session)
        assert sent == [{"command": "insert", "w": "majority", "j": True},
                        {"command": "insert"},  # inside the transaction: the commit carries it
                        {"command": "commitTransaction", "w": "majority", "j": True}]
    finally:
        await client.drop_database(db.name)
        await close_client(client)
