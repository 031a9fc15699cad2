"""Approvals made before periodic re-KYC (no `kyc_valid_until`) come under the rule: a start arms the daily
job while any is left, and the job gives each the validity its approval would have had then."""

from __future__ import annotations

from datetime import datetime, timedelta

from bson import ObjectId

from app.services.kyc.renewals import RENEWAL_JOB
from tests.integration.events_helpers import run_jobs
from tests.integration.test_kyc_renewal import _approved_borrower


async def test_an_approval_older_than_re_kyc_gets_its_validity_and_falls_due(api_factory):
    api = await api_factory(job_workers=0)
    container, db = api.container, api.container.db
    case = await _approved_borrower(api)  # its Aadhaar runs out a year after the approval
    # As the version before periodic re-KYC stored it: no validity anywhere and no daily job armed.
    await db["user"].update_one({"_id": ObjectId(case["user_id"])},
                                {"$unset": {"kyc_valid_until": "", "kyc_renewal_at": ""}})
    await db["kyc_doc"].update_one({"_id": ObjectId(case["kyc_id"])}, {"$unset": {"decision.valid_until": ""}})
    await db["jobs"].delete_many({"kind": RENEWAL_JOB})
    container.clock.advance(days=400)
    await run_jobs(container)
    assert (await db["user"].find_one({"_id": ObjectId(case["user_id"])}))["kyc_status"] == "APPROVED"

    await container.kyc_review.renewals.start()  # what a start does
    await run_jobs(container)
    until = datetime.combine(case["expiry"] + timedelta(days=1), datetime.min.time(), container.clock.now().tzinfo)
    user = await db["user"].find_one({"_id": ObjectId(case["user_id"])})
    assert user["kyc_status"] == "RE_KYC_DUE" and user["kyc_valid_until"].replace(tzinfo=until.tzinfo) == until
    stored = await db["kyc_doc"].find_one({"_id": ObjectId(case["kyc_id"])})
    assert stored["decision"]["valid_until"].replace(tzinfo=until.tzinfo) == until
    assert stored["status"] == "RESUBMISSION_REQUESTED"
    assert stored["rounds"][-1]["items"] == [{"kind": "document", "document_type": "aadhaar", "side": "front"}]
    assert await db["events"].count_documents({"type": "kyc.expired", "user_id": case["user_id"]}) == 1
    assert await db["jobs"].count_documents({"kind": RENEWAL_JOB, "status": {"$ne": "done"}}) == 1  # the next day's
