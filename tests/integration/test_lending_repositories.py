"""Lending repositories on the real wire protocol, through both drivers: money is Decimal128 in
storage and Decimal in the service, whatever older records hold."""

from __future__ import annotations

import decimal
import uuid
from dataclasses import replace
from datetime import UTC, date, datetime
from decimal import Decimal

import pytest
from bson import ObjectId
from bson.decimal128 import Decimal128

from app.domain.loan_schedule import RepaymentFrequency, build_schedule, key_fact_statement
from app.domain.loans import DuplicateApplication, Loan, LoanOrigin, LoanProduct, LoanStatus, LoanType, StatusChange
from app.repositories.catalogue import LoanProductRepository
from app.repositories.codecs import from_db
from app.repositories.database import close_client, make_client
from app.repositories.loans import LoanRepository

D = Decimal
NOW = datetime(2026, 11, 22, 10, 0, tzinfo=UTC)
PRODUCT = LoanProduct(
    bank_id="6741f0c2a1b2c3d4e5f60718", name="Personal", type=LoanType.PERSONAL, min_amount=D("50000.00"),
    max_amount=D("500000.00"), min_tenure_months=6, max_tenure_months=60, annual_interest_rate=D("11.25"),
    processing_fee_pct=D("1.5"), prepayment_charge_pct=D(4), repayment_frequency=RepaymentFrequency.MONTHLY,
    min_monthly_income=D("25000.00"), min_age=21, max_age=60, max_foir=D("0.55"), id="6741f0c2a1b2c3d4e5f60719",
)


@pytest.fixture
async def db(mongo_uri):
    client = make_client(mongo_uri)
    database = client[f"lend_{uuid.uuid4().hex[:10]}"]
    yield database
    await client.drop_database(database.name)
    await close_client(client)


async def test_repositories_store_decimals_as_decimal128_and_read_them_back_exactly(db):
    """One codec on every repository's database: a Decimal at any depth is written as BSON Decimal128
    and read back as the same Decimal (exponent kept), in documents, updates and query filters."""
    repo = LoanRepository(db)
    await repo.collection.insert_one({"_id": "x", "a": D("0.10"), "b": [D("1.005"), {"c": D("-0")}], "d": 3,
                                      "e": "x", "f": (D(1),)})
    await repo.collection.update_one({"_id": "x", "a": D("0.1")}, {"$set": {"g": D("12.30")}})
    raw = await db["loans"].find_one({"_id": "x"})  # the plain handle: the BSON as stored
    assert raw == {"_id": "x", "a": Decimal128("0.10"), "b": [Decimal128("1.005"), {"c": Decimal128("-0")}], "d": 3,
                   "e": "x", "f": [Decimal128("1")], "g": Decimal128("12.30")}
    assert await db["loans"].count_documents({"_id": "x", "a": {"$type": "decimal"}, "g": {"$type": "decimal"}}) == 1
    back = await repo.collection.find_one({"_id": "x"})
    assert back["a"] == D("0.10") and [str(back["b"][0]), str(back["b"][1]["c"]), str(back["g"])] == \
        ["1.005", "-0", "12.30"] and back["f"] == [D(1)] and isinstance(back["f"][0], Decimal)
    with pytest.raises(decimal.Inexact):  # more digits than Decimal128 holds: refused, never rounded here
        await repo.collection.insert_one({"a": D("1." + "1" * 34)})


def test_stored_json_numbers_are_read_exactly():
    assert from_db(D("12.30")) == D("12.30") and str(from_db(D("12.30"))) == "12.30"
    assert from_db(0.1) == D("0.1") and from_db(85000.5) == D("85000.5")  # not 0.1000000000000000055511151231
    assert from_db(7) == D(7) and from_db(None) is None
    with pytest.raises(TypeError):
        from_db(True)


def _loan(amount: str = "100000.00") -> Loan:
    schedule = build_schedule(D(amount), PRODUCT.annual_interest_rate, 12)
    return Loan(id="", user_id="u1", product_id=PRODUCT.id or "", product=PRODUCT, amount=D(amount),
                tenure_months=12, purpose="Car", status=LoanStatus.APPLIED, origin=LoanOrigin.APPLICATION,
                emi=schedule.emi, kfs=key_fact_statement(schedule, PRODUCT.processing_fee_pct),
                instalments=schedule.instalments, created_at=NOW, updated_at=NOW,
                history=(StatusChange(LoanStatus.APPLIED, NOW, "u1"),))


async def test_a_loan_is_stored_as_decimal128_and_read_back_as_decimal(db):
    repo = LoanRepository(db)
    await repo.ensure_indexes()
    loan = await repo.add(_loan())
    raw = await db["loans"].find_one({"_id": ObjectId(loan.id)})
    assert raw["amount"] == Decimal128("100000.00") and raw["kfs"]["apr"] == Decimal128(str(loan.kfs.apr))
    assert raw["product"]["max_foir"] == Decimal128("0.55") and raw["product"]["type"] == "personal"
    assert raw["outstanding"] == Decimal128("0.00") and raw["next_due"] is None  # nothing owed before the disbursal
    assert "schedule" not in raw  # rebuilt from the terms on every read, checked against the KFS
    again = await repo.get(loan.id)
    assert again == loan and isinstance(again.emi, Decimal) and again.kfs == loan.kfs
    assert again.instalments == loan.instalments and again.product == PRODUCT


async def test_a_loan_whose_schedule_no_longer_matches_its_kfs_is_refused_loudly(db):
    repo = LoanRepository(db)
    loan = await repo.add(_loan())
    await db["loans"].update_one({"_id": ObjectId(loan.id)}, {"$set": {"kfs.emi": Decimal128("1.00")}})
    with pytest.raises(RuntimeError, match="agreed KFS"):
        await repo.get(loan.id)


async def test_transitions_apply_only_from_the_expected_state(db):
    repo = LoanRepository(db)
    await repo.ensure_indexes()
    loan = await repo.add(_loan())
    early = replace(loan, status=LoanStatus.APPROVED)  # as if approved: the stored loan is not
    assert await repo.save(early, early.disburse(by="a", now=NOW, on=date(2026, 11, 22), reference="R")) is None
    approved = await repo.save(loan, loan.approve(by="a", now=NOW))
    assert approved is not None and approved.status == LoanStatus.APPROVED and approved.rev == 1
    assert await repo.save(loan, loan.approve(by="a", now=NOW)) is None
    gone = replace(loan, id="not-an-id")
    assert await repo.save(gone, gone.approve(by="a", now=NOW)) is None
    dated = build_schedule(loan.amount, D("11.25"), 12, disbursed_on=date(2026, 1, 31)).instalments
    disbursed = await repo.save(approved, approved.disburse(by="a", now=NOW, on=date(2026, 1, 31), reference="UTR1"))
    assert disbursed is not None and disbursed.disbursed_on == date(2026, 1, 31)
    assert [r.due_date for r in disbursed.instalments[:2]] == [date(2026, 2, 28), date(2026, 3, 31)]
    raw = await db["loans"].find_one({"_id": ObjectId(loan.id)})
    assert raw["outstanding"] == Decimal128(str(sum(r.payment for r in dated))) and raw["net_disbursed"] == \
        Decimal128("98500.00")
    # A repayment computed from an older read is not written.
    stale = replace(disbursed, rev=approved.rev)
    assert await repo.save(stale, stale.apply_payment(D(1), by="u1", now=NOW)[0]) is None


async def test_one_open_loan_per_customer_and_product(db):
    repo = LoanRepository(db)
    await repo.ensure_indexes()
    first = await repo.add(_loan())
    with pytest.raises(DuplicateApplication):
        await repo.add(_loan("60000.00"))
    await repo.save(first, first.reject(by="a", reason="No", now=NOW))
    assert (await repo.add(_loan("60000.00"))).amount == D("60000.00")


async def test_a_product_stored_with_floats_reads_back_exactly(db):
    products = LoanProductRepository(db)
    # A record written by hand or by an older version, with JSON numbers for money and rates.
    oid = ObjectId()
    await db["loan_products"].insert_one({
        "_id": oid, "bank_id": PRODUCT.bank_id, "name": "Legacy", "type": "gold", "min_amount": 10000,
        "max_amount": 200000.5, "min_tenure_months": 3, "max_tenure_months": 24, "annual_interest_rate": 9.9,
        "processing_fee_pct": 0.1, "prepayment_charge_pct": 0, "repayment_frequency": "monthly",
        "min_monthly_income": 0, "min_age": 18, "max_age": 75, "max_foir": 0.7, "active": True})
    product = await products.get(str(oid))
    assert product is not None
    assert product.annual_interest_rate == D("9.9") and product.processing_fee_pct == D("0.1")
    assert product.max_amount == D("200000.5") and product.max_foir == D("0.7") and product.min_amount == D(10000)
    found = await products.search(active_only=True, amount=D("150000.25"))
    assert found.total == 1 and found.items[0].id == str(oid)
