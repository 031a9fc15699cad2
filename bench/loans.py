"""Lending scenarios: a 360-month schedule's build time in this process, and `POST /loans/apply`
and `GET /loans/my-loans/{id}` beside their engine floor (bench/replay.py: the commands of
recorded requests, replayed through a bare client the same way) and beside `GET /users/me`, all
driven the same way in the same run (the same few keep-alive connections, each request sent once).
Then the detail's cost with 10,000 and 100,000 other customers' loans in the collection.

Every apply is a real one (201, a new loan): a borrower with approved KYC applies once to each of
`APPLY_COUNT` copies of the seeded 30-year home loan (one open loan per product is the rule), so
each request builds a 360-instalment schedule and its KFS, checks eligibility and stores the loan.
The borrower's KYC, profile and details are written straight into the embedded database, like the
review queue of bench/kyc.py: the KYC flow itself is measured there.
"""

from __future__ import annotations

import asyncio
import json
import subprocess
import time
from collections.abc import Awaitable, Callable
from datetime import UTC, datetime
from decimal import Decimal
from typing import Any

import httptools
import httpx
from bson import ObjectId
from pymongo import AsyncMongoClient, MongoClient

from app.domain.loan_schedule import build_schedule, key_fact_statement
from app.repositories.embedded import with_options
from bench import replay
from bench.load import SELECTION, Result, Scenario, _Reply, _wire
from bench.server import BenchServer, _kycflow

API = "/api/v1"
PASSWORD = "Bench-Customer-Pass-42"
EMAIL = "bench.borrower@example.com"
ADDRESS = {"line1": "12 MG Road", "city": "Bengaluru", "state": "Karnataka", "pincode": "560001"}
# Three scenarios of APPLY_COUNT requests from one borrower stay under the default per-caller limit
# (RATE_LIMITS default 600/minute): a 429 would be counted as an error.
APPLY_COUNT, WARMUP = 180, 15
CONCURRENCY = 4
# One customer's applications change one book, which the service judges whole: two at once conflict
# and one waits for the other (by design, see LoanService._book). So one borrower applies one at a
# time, as a customer does; the replay too (its bare commands would conflict and not retry).
APPLY_CONCURRENCY = 1
GROWTH = (10_000, 100_000)  # other customers' loans in the collection, for the detail's growth


def schedule_build(runs: int = 30) -> Result:
    """A 30-year monthly schedule (360 instalments) and its KFS, as `POST /loans/apply` builds them."""
    result = Result("schedule_360_build", 1, None)
    build_schedule(Decimal("3000000.00"), Decimal("8.5"), 360)  # warm-up: imports, caches
    for _ in range(runs):
        start = time.perf_counter()
        schedule = build_schedule(Decimal("3000000.00"), Decimal("8.5"), 360)
        key_fact_statement(schedule, Decimal("0.5"))
        took = time.perf_counter() - start
        result.latencies_ms.append(took * 1000)
        result.requests += 1
        result.seconds += took
    return result


def _db(server: BenchServer) -> MongoClient[dict[str, Any]]:
    return MongoClient(with_options(json.loads((server.data_dir / "mongo.json").read_text())["uri"]))


def prepare(server: BenchServer, products: int) -> tuple[str, list[str]]:
    """A borrower (approved KYC, complete profile, income) and `products` copies of the home loan;
    returns the borrower's access token and the product ids."""
    out = subprocess.run([*_kycflow(), "seed-catalogue"], env=server.env, capture_output=True, text=True)
    if out.returncode != 0:
        raise RuntimeError(f"seed-catalogue failed: {out.stderr or out.stdout}")
    server.create_user("--role", "customer", "--email", EMAIL, "--password", PASSWORD, "--name", "Bench Borrower")
    client = _db(server)
    try:
        db = client["kycflow"]
        now = datetime.now(UTC)
        db["user"].update_one({"email": EMAIL}, {"$set": {
            "kyc_status": "APPROVED", "kyc_updated_at": now,
            "verified_identity": {"name": "Bench Borrower", "dob": "1995-01-01", "verified_at": now},
            # Every detail a loan needs (the profile risk is derived from them when applying).
            "profile": {"dob": "1995-01-01", "family_size": 1, "working_members": 1, "children": 0,
                        "current_address": ADDRESS, "permanent_address": ADDRESS},
            # Every open application counts in the next one's FOIR: an income that carries all of them.
            "financial_details": {"monthly_income": 10000000.0, "monthly_expenses": 60000.0, "existing_emi": 0.0,
                                  "credit_score": 780},
            "employment_details": {"employment_type": "salaried", "employer_name": "Bench Ltd",
                                   "designation": "Engineer", "years_in_current_job": 5,
                                   "total_experience_years": 8}}})
        home = db["loan_products"].find_one({"type": "home"})
        assert home is not None, "the seeded catalogue has no home loan"
        copies = [{**home, "_id": ObjectId(), "name": f"Home Loan {n:03d}"} for n in range(products)]
        db["loan_products"].insert_many(copies)
    finally:
        client.close()
    token = httpx.post(f"{server.base_url}{API}/auth/login",
                       json={"identifier": EMAIL, "password": PASSWORD}).json()["access_token"]
    return token, [str(c["_id"]) for c in copies]


class JobsDrained:
    """Until the job workers have nothing due. Awaited before each application, untimed: its replay
    never runs the jobs it queues (replayed jobs are due in 2100), so the route is timed as its floor
    is, with no job work of its own beside it; sent back to back, each application waited on the
    database behind the last one's notice and webhook jobs (a few writes, each an fsync with `j:
    true`). What the jobs cost is counted in the round-trip table (tests/integration/test_round_trips.py).
    Awaited between scenarios too, so each is measured on a quiet service."""

    def __init__(self, server: BenchServer) -> None:
        self.client: AsyncMongoClient[dict[str, Any]] = AsyncMongoClient(server.db_uri)

    async def __call__(self, timeout: float = 120.0) -> None:
        deadline = time.monotonic() + timeout
        while await self.client["kycflow"]["jobs"].count_documents(
                {"status": {"$in": ["queued", "running"]}, "run_at": {"$lte": datetime.now(UTC)}}, limit=1):
            if time.monotonic() > deadline:
                raise RuntimeError(f"jobs still due after {timeout:.0f}s")
            await asyncio.sleep(0.005)

    async def close(self) -> None:
        await self.client.close()


async def _drive_list(name: str, requests: list[httpx.Request], expect: int, warmup: int,
                      concurrency: int = CONCURRENCY, settle: Callable[[], Awaitable[None]] | None = None) -> Result:
    """Each request sent once, by `concurrency` keep-alive workers (the raw-socket client of bench/load.py);
    `settle` is awaited before each, untimed."""
    result = Result(name, concurrency, None)
    queue = list(enumerate(requests))
    url = requests[0].url
    t0 = time.perf_counter()

    async def worker() -> None:
        reader, writer = await asyncio.open_connection(url.host, url.port)
        try:
            while queue:
                index, request = queue.pop(0)
                if settle is not None:
                    await settle()
                start = time.perf_counter()
                reply = _Reply()
                parser = httptools.HttpResponseParser(reply)
                writer.write(_wire(request))
                while not reply.done:
                    chunk = await reader.read(65536)
                    if not chunk:
                        raise ConnectionError("server closed the connection")
                    parser.feed_data(chunk)
                end = time.perf_counter()
                if index >= warmup:
                    result.latencies_ms.append((end - start) * 1000)
                    result.requests += 1
                    result.errors += parser.get_status_code() != expect
                    result.seconds = end - t0
        finally:
            writer.close()

    await asyncio.gather(*(worker() for _ in range(concurrency)))
    return result


def seed_loans(server: BenchServer, like: str, count: int) -> None:
    """`count` loans of other customers, copies of loan `like` (each its own customer and product),
    written straight into the database in batches."""
    client = _db(server)
    try:
        loans = client["kycflow"]["loans"]
        model = loans.find_one({"_id": ObjectId(like)})
        assert model is not None
        for start in range(0, count, 1000):
            loans.insert_many([{**model, "_id": ObjectId(), "user_id": str(ObjectId()), "product_id": str(ObjectId())}
                               for _ in range(min(1000, count - start))])
    finally:
        client.close()


async def run_all(server: BenchServer) -> list[Result]:
    results = []
    if SELECTION.wanted("schedule_360_build"):
        print("running schedule_360_build (in process, 30 builds) ...", flush=True)
        results.append(schedule_build())
    if not SELECTION.wanted("loans_users_me", "loan_apply", "loan_detail", "loan_detail_growth"):
        return results
    count, warmup = SELECTION.count(APPLY_COUNT, 4), SELECTION.count(WARMUP)
    print(f"preparing a borrower and {count + replay.RECORDED} home-loan products ...", flush=True)
    token, products = prepare(server, count + replay.RECORDED)
    auth = {"Authorization": f"Bearer {token}"}
    base = f"{server.base_url}{API}"
    me = httpx.Request("GET", f"{base}/users/me", headers=auth)
    applies = [httpx.Request("POST", f"{base}/loans/apply", headers=auth, json={
        "product_id": pid, "amount": 3000000, "tenure_months": 360, "purpose": "Buying a flat"}) for pid in products]
    # The floor first (then what it inserted is deleted): each route meets the borrower's book as it
    # would without it. Jobs the recorded applications queued are run before anything is timed.
    plans = replay.record(server, "loan_apply", applies[count:])
    applies = applies[:count]
    drained = JobsDrained(server)
    try:
        await drained()
        if SELECTION.wanted("loan_apply"):
            results.append(await _floor("loan_apply_replay", server, plans, count, warmup, APPLY_CONCURRENCY))
        if SELECTION.wanted("loans_users_me"):
            print(f"running loans_users_me ({CONCURRENCY} workers, {count} requests) ...", flush=True)
            results.append(await _drive_list("loans_users_me", [me] * count, 200, warmup))
        if SELECTION.wanted("loan_apply"):
            print(f"running loan_apply ({APPLY_CONCURRENCY} worker, {count} applications) ...", flush=True)
            results.append(await _drive_list("loan_apply", applies, 201, warmup, APPLY_CONCURRENCY, drained))
            await drained()
    finally:
        await drained.close()
    loans = httpx.get(f"{base}/loans/my-loans", headers=auth, params={"page_size": 1}).json()["items"]
    detail = httpx.Request("GET", f"{base}/loans/my-loans/{loans[0]['loan_id']}", headers=auth)
    if SELECTION.wanted("loan_detail"):
        plans = replay.record(server, "loan_detail", [detail] * replay.RECORDED)
        results.append(await _floor("loan_detail_replay", server, plans, count, warmup))
        print("running loan_detail (one loan with 360 instalments) ...", flush=True)
        results.append(await _drive_list("loan_detail", [detail] * count, 200, warmup))
    if SELECTION.wanted("loan_detail_growth"):
        results += await detail_growth(server, detail, loans[0]["loan_id"])
    return results


async def _floor(name: str, server: BenchServer, plans: list[replay.Plan], count: int, warmup: int,
                 concurrency: int = CONCURRENCY) -> Result:
    print(f"running {name} ({concurrency} workers, {count} replays of {len(plans)} recorded requests) ...",
          flush=True)
    replayer = replay.Replayer(server.db_uri, plans)
    try:
        return await replay.each_once(name, replayer, concurrency=concurrency, total=count, warmup=warmup)
    finally:
        await replayer.close()


async def detail_growth(server: BenchServer, detail: httpx.Request, loan_id: str) -> list[Result]:
    """The detail one request at a time with GROWTH[0], then GROWTH[1] other loans in the collection
    (information: the index test is what says the query stays O(1) on MongoDB)."""
    results: list[Result] = []
    seeded = 0
    for size in map(SELECTION.count, GROWTH):
        print(f"seeding {size - seeded} more loans of other customers ...", flush=True)
        seed_loans(server, loan_id, size - seeded)
        seeded = size
        results += await replay.beside(server, Scenario(f"loan_detail@{size}", detail, concurrency=1, count=200,
                                                        max_s=10.0, warmup_s=1.0), recorded=1)
    return results


def ratio(results: dict[str, Result], name: str, pct: int) -> float:
    return results[name].pct(pct) / results["loans_users_me"].pct(pct)
