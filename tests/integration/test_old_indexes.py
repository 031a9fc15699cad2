"""An index an earlier version created and no query uses now is dropped at start: every write would
still maintain it. A new database (nothing to drop) starts all the same."""

from __future__ import annotations

from pymongo import ASCENDING, DESCENDING

from app.repositories.kyc import KycCaseRepository
from app.repositories.loans import LoanRepository


async def test_old_indexes_are_dropped_at_start_and_a_second_start_is_quiet(api):
    db = api.container.db
    old_loans = await db["loans"].create_index([("arrears.loan_class", ASCENDING), ("created_at", DESCENDING),
                                                ("_id", DESCENDING)])
    old_cases = await db["kyc_doc"].create_index([("status", ASCENDING), ("queue_seq", ASCENDING)])
    for repository in (LoanRepository(db), KycCaseRepository(db)):
        await repository.ensure_indexes()
        await repository.ensure_indexes()  # dropped already: nothing to do, no error
    loans, cases = await db["loans"].index_information(), await db["kyc_doc"].index_information()
    assert old_loans not in loans and old_cases not in cases
    assert loans["arrears.loan_class_1_status_1_created_at_-1__id_-1"]["key"][:2] == [
        ("arrears.loan_class", 1), ("status", 1)]
