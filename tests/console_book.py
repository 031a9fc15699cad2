"""A loan book for the console's admin browser test, built in-process against a server's database
(DATA_DIR from the environment, as `tests.console_cases` does): an admin, a product, a borrower with
approved KYC and one application (APPLIED), and a failed job. Run as
`python -m tests.console_book ADMIN_EMAIL`; prints the ids as JSON."""

from __future__ import annotations

import asyncio
import json
import sys
import uuid
from decimal import Decimal
from types import SimpleNamespace
from typing import Any

from bson import ObjectId

from app.domain.audit import ClientInfo
from app.domain.users import KycStatus, Role
from tests.conftest import PASSWORD
from tests.integration.lending_helpers import EMPLOYMENT, HOUSEHOLDS, make_product
from tests.integration.test_jobs_api import failed_job


async def _seed(admin_email: str) -> dict[str, Any]:
    from app.bootstrap import build_container
    from app.config import Settings

    c = await build_container(Settings(ml_preload=False, ml_processes=False, job_workers=0))  # type: ignore[call-arg]
    try:
        here = SimpleNamespace(container=c)
        await c.admin.create_user(email=admin_email, password=PASSWORD, name="Anil Admin", role=Role.ADMIN)
        product = await make_product(here)  # type: ignore[arg-type]
        email = f"borrower{uuid.uuid4().hex[:6]}@example.com"
        user = await c.admin.create_user(email=email, password=PASSWORD, name="Kavya Menon", role=Role.CUSTOMER)
        await c.db["user"].update_one({"_id": ObjectId(user.id)}, {"$set": {
            "profile": {"dob": "1990-04-12", **HOUSEHOLDS["Low"]}, "employment_details": EMPLOYMENT,
            "financial_details": {"monthly_income": 85000.0, "monthly_expenses": 20000.0, "existing_emi": 5000.0,
                                  "credit_score": 760}}})  # as the users API stored them before Decimal128
        await c.users_repo.set_kyc_status(user.id, KycStatus.APPROVED, c.clock.now())
        borrower = await c.users_repo.get(user.id)
        assert borrower is not None and product.id is not None
        loan = await c.loans.apply(borrower, product_id=product.id, amount=Decimal("250000"), tenure_months=24,
                                   purpose="Home renovation", client=ClientInfo())
        await c.loans.accept_kfs(borrower, loan.id, c.loans.kfs_issue(loan).number, ClientInfo())  # disbursal needs it
        job = await failed_job(here, key=f"stuck:{uuid.uuid4().hex[:6]}")
        return {"loan_id": loan.id, "job_id": job.id, "borrower": email}
    finally:
        await c.close()


if __name__ == "__main__":
    print(json.dumps(asyncio.run(_seed(sys.argv[1]))))
