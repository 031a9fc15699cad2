"""The daily loan review (app/services/delinquency.py) over 100,000 disbursed loans, beside reading them.

The book: 36-month loans disbursed 0-399 days ago, reviewed up to yesterday (their arrears as yesterday's
run left them: classes, penal charges, the last reminder); one in twenty is 1 to 4 instalments behind. Built
once per (disbursal day, instalments behind) through the domain and the repository, then copied (each copy
its own id, customer and product). Timed, in this process against the server's database: the engine floor,
every disbursed loan read (`find`, all documents); then today's run (`LoanReviews.sweep`: the loans with an
instalment due by today + 3 days, each rebuilt and reviewed, those whose arrears moved written with their
events, reminders and charges, up to 100 loans a transaction); then the same run again (a retry: nothing
left to write, the gated figure). The copies' customers do not exist, so a reminder's mail job is not queued (its lookup is timed)."""

from __future__ import annotations

import random
import time
from dataclasses import replace
from datetime import UTC, date, datetime, timedelta
from datetime import time as day_time
from decimal import Decimal
from typing import Any

from bson import ObjectId

from app.bootstrap import build_container
from app.config import Settings
from app.domain.delinquency import PenalKind, PenalRule, Reminders
from app.domain.loan_schedule import RepaymentFrequency
from app.domain.loans import Loan, LoanOrigin, LoanProduct, LoanStatus, LoanType
from bench.load import SELECTION, Result
from bench.server import BenchServer

LOANS = 100_000
NAMES = ("loans_read_100k", "loan_reviews_100k", "loan_reviews_100k_again")
D = Decimal
PRODUCT = LoanProduct(
    bank_id="bench", name="Bench Personal Loan", type=LoanType.PERSONAL, min_amount=D(10000), max_amount=D(5000000),
    min_tenure_months=6, max_tenure_months=60, annual_interest_rate=D(12), processing_fee_pct=D(1),
    prepayment_charge_pct=D(0), repayment_frequency=RepaymentFrequency.MONTHLY, min_monthly_income=D(0), min_age=18,
    max_age=70, max_foir=D("0.6"), id="bench-product", penal_charge=PenalRule(PenalKind.PERCENT, D(2), D(1000)))


def _profile(today: date, age_days: int, behind: int) -> Loan:
    """A loan disbursed `age_days` before `today`, paid up to `behind` instalments short of what fell due
    before today, as yesterday's review left it."""
    on = today - timedelta(days=age_days)
    opened = datetime.combine(on, day_time(9), UTC)
    loan = Loan.open(PRODUCT, user_id="bench", amount=D(300000), tenure_months=36, purpose="Bench",
                     status=LoanStatus.APPROVED, origin=LoanOrigin.DIRECT, by="bench", now=opened)
    loan = loan.disburse(by="bench", now=opened, on=on, reference="BENCH")
    yesterday = today - timedelta(days=1)
    due = [r for r in loan.instalments if r.due_date and r.due_date <= yesterday]
    paid = sum((r.payment for r in due[:max(0, len(due) - behind)]), D(0))
    if paid:
        loan = replace(loan, schedule_paid=paid).with_schedule()
    loan = loan.assessed(yesterday)
    row = loan.next_due
    milestone = Reminders().due(row.due_date, yesterday) if row and row.due_date else None
    if row and milestone is not None:
        loan = replace(loan, arrears=replace(loan.arrears, reminded=f"{row.number}:{milestone}"))
    return loan


async def run_all(server: BenchServer) -> list[Result]:
    count = SELECTION.count(LOANS)
    settings = Settings(_env_file=None, mongodb_uri=server.db_uri, data_dir=server.data_dir / "bench-reviews",
                        job_workers=0, ml_preload=False)
    container = await build_container(settings)
    try:
        loans, db = container.loans.loans, container.db
        today = container.clock.now().date()
        rnd = random.Random(20)
        print(f"seeding {count} disbursed loans (reviewed up to yesterday) ...", flush=True)
        templates: dict[tuple[int, int], dict[str, Any]] = {}
        seeding = time.perf_counter()
        batch: list[dict[str, Any]] = []
        for n in range(1, count + 1):
            key = (rnd.randrange(400), 0 if rnd.random() < 0.95 else rnd.randint(1, 4))
            if key not in templates:
                stored = await loans.add(_profile(today, *key))
                # find + delete, both on `_id`: the embedded engine's findAndModify scans the collection.
                doc = await db["loans"].find_one({"_id": ObjectId(stored.id)})
                assert doc is not None
                await db["loans"].delete_one({"_id": doc["_id"]})
                templates[key] = doc
            batch.append({**templates[key], "_id": ObjectId(), "user_id": str(ObjectId()),
                          "product_id": str(ObjectId())})
            if len(batch) == 1000:
                await db["loans"].insert_many(batch)
                batch = []
                if n % 10_000 == 0:
                    print(f"  {n} loans, {time.perf_counter() - seeding:.0f} s", flush=True)
        if batch:
            await db["loans"].insert_many(batch)
        print(f"  seeded in {time.perf_counter() - seeding:.0f} s", flush=True)
        results = []
        start = time.perf_counter()
        read = await db["loans"].find({"status": LoanStatus.DISBURSED.value}).to_list(None)
        results.append(_result("loans_read_100k", time.perf_counter() - start, len(read) != count))
        print(f"running loan_reviews_100k (today's run over {len(read)} loans) ...", flush=True)
        for name in NAMES[1:]:
            start = time.perf_counter()
            changed = await container.loans.reviews.sweep()  # type: ignore[union-attr]
            results.append(_result(name, time.perf_counter() - start, False))
            print(f"  {name}: {changed} loans changed", flush=True)
        return results
    finally:
        await container.close()


def _result(name: str, seconds: float, failed: bool) -> Result:
    result = Result(name, 1, None, requests=1, errors=int(failed), seconds=seconds)
    result.latencies_ms.append(seconds * 1000)
    return result


def ratio(results: dict[str, Result], name: str) -> float:
    return results[name].seconds / results["loans_read_100k"].seconds
