"""Attacker's review, round 2 (issue 19): a FINAL rejection and a sanctions review cannot be stepped around
through a verification level."""

from __future__ import annotations

from app.domain.kyc import assess
from app.domain.users import KycStatus
from tests.conftest import bearer
from tests.integration.test_kyc_api import AADHAAR_FRONT, PAN, checks_done, customer, selfie, upload
from tests.integration.test_kyc_levels import approve, me


async def _basic(api, who, auditor) -> str:
    assert (await api.client.post("/kyc/level", headers=who["headers"], json={"level": "basic"})).status_code == 201
    await upload(api, who, "pan", PAN)
    await selfie(api, who)
    return await approve(api, who, auditor)


async def _step_up_submitted(api, who) -> str:
    r = await api.client.post("/kyc/level", headers=who["headers"], json={"level": "standard"})
    assert r.status_code == 201, r.text
    await upload(api, who, "aadhaar", AADHAAR_FRONT)
    assert (await api.client.post("/kyc/submit", headers=who["headers"])).status_code == 202
    await checks_done(api, who)
    return r.json()["kyc_id"]  # type: ignore[no-any-return]


async def test_a_final_rejected_step_up_cannot_be_asked_again(api):
    who, auditor = await customer(api), await api.staff("auditor")
    await _basic(api, who, auditor)
    step_id = await _step_up_submitted(api, who)
    r = await api.client.put(f"/kyc/{step_id}/reject", headers=bearer(auditor),
                             json={"reasons": ["suspected_fraud"], "reject_type": "FINAL"})
    assert r.status_code == 200, r.text
    cases = await api.container.db["kyc_doc"].count_documents({"user_id": who["user_id"]})
    r = await api.client.post("/kyc/level", headers=who["headers"], json={"level": "standard"})
    assert r.status_code == 409 and r.json()["error_code"] == "kyc_rejected_final", r.text
    assert await api.container.db["kyc_doc"].count_documents({"user_id": who["user_id"]}) == cases
    assert (await me(api, who))["kyc_level"] == "basic"  # still approved at basic


async def test_a_step_up_is_not_approved_over_its_base_approval_under_review_or_rejected(api):
    who, auditor = await customer(api), await api.staff("auditor")
    basic_id = await _basic(api, who, auditor)
    step_id = await _step_up_submitted(api, who)
    # A watchlist reload sends the basic approval back to review (as ScreeningService._reopen does).
    c = api.container
    base = await c.kyc_review.cases.get(basic_id)
    await c.kyc_review.cases.reopen(base.id, base.checks, assess(base.checks), c.clock.now())
    await c.kyc_review.users.set_kyc_status(who["user_id"], KycStatus.SUBMITTED, c.clock.now())
    r = await api.client.put(f"/kyc/{step_id}/approve", headers=bearer(auditor), json={})
    assert r.status_code == 409 and r.json()["error_code"] == "kyc_base_under_review", r.text
    r = await api.client.put(f"/kyc/{basic_id}/reject", headers=bearer(auditor),
                             json={"reasons": ["suspected_fraud"], "reject_type": "FINAL"})
    assert r.status_code == 200, r.text
    r = await api.client.put(f"/kyc/{step_id}/approve", headers=bearer(auditor), json={})
    assert r.status_code == 409 and r.json()["error_code"] == "kyc_base_under_review", r.text
    mine = await me(api, who)
    assert mine["kyc_status"] == "REJECTED" and mine["kyc_level"] is None
    r = await api.client.put(f"/kyc/{step_id}/reject", headers=bearer(auditor), json={"reasons": ["other"]})
    assert r.status_code == 200  # rejecting it stays possible


async def test_a_product_needing_a_level_no_longer_configured_fails_closed(api):
    from tests.integration.lending_helpers import borrower, make_product
    from tests.integration.test_kyc_levels import loan

    who = await borrower(api)  # approved at the default level
    product = await make_product(api, required_kyc_level="enhanced")  # KYC_LEVELS renamed since
    r = await api.client.post("/loans/apply", headers=bearer(who), json=loan(product.id))
    assert r.status_code == 403 and r.json()["error_code"] == "kyc_level_required", r.text
    assert r.json()["reasons"][0]["required_level"] == "full"  # the highest configured, which it can step up to
    assert await api.container.db["loans"].count_documents({}) == 0


async def test_the_automatic_decision_does_not_approve_a_step_up_over_a_rejected_base(api_factory):
    from app.domain.kyc import Check, CheckStatus
    from tests.integration.events_helpers import run_jobs

    api = await api_factory(job_workers=0, kyc_auto_decision=True)
    c, auditor = api.container, await api.staff("auditor")

    async def every_check_passes(case, user) -> list[Check]:
        return [Check("ocr", CheckStatus.PASS, 1.0, "ok", d.id) for d in case.documents]

    c.kyc_checks.run_checks = every_check_passes  # type: ignore[method-assign]
    who = await customer(api)
    assert (await api.client.post("/kyc/level", headers=who["headers"], json={"level": "basic"})).status_code == 201
    await upload(api, who, "pan", PAN)
    await selfie(api, who)
    basic_id = (await api.client.post("/kyc/submit", headers=who["headers"])).json()["kyc_id"]
    await run_jobs(c)
    assert (await me(api, who))["kyc_level"] == "basic"  # approved automatically
    assert (await api.client.post("/kyc/level", headers=who["headers"], json={"level": "standard"})).status_code == 201
    await upload(api, who, "aadhaar", AADHAAR_FRONT)
    # Meanwhile the basic approval goes back to review (a watchlist hit) and is rejected for good.
    base = await c.kyc_review.cases.get(basic_id)
    await c.kyc_review.cases.reopen(base.id, base.checks, assess(base.checks), c.clock.now())
    await c.kyc_review.users.set_kyc_status(who["user_id"], KycStatus.SUBMITTED, c.clock.now())
    r = await api.client.put(f"/kyc/{basic_id}/reject", headers=bearer(auditor),
                             json={"reasons": ["suspected_fraud"], "reject_type": "FINAL"})
    assert r.status_code == 200, r.text
    assert (await api.client.post("/kyc/submit", headers=who["headers"])).status_code == 202
    await run_jobs(c)
    mine = await me(api, who)
    assert mine["kyc_status"] == "REJECTED" and mine["kyc_level"] is None, mine
    step = (await api.client.get("/kyc/me", headers=who["headers"])).json()
    assert step["status"] == "SUBMITTED" and step["checks_state"] == "DONE"  # for an auditor to decide


async def test_a_liveness_redo_needs_a_new_challenge_not_the_one_the_first_selfie_used(api):
    from tests.integration.test_kyc_api import ready_case
    from tests.integration.test_kyc_levels import passed_challenge

    who, auditor = await customer(api), await api.staff("auditor")
    kyc_id = await ready_case(api, who)
    challenge = await passed_challenge(api, who, "round-one")
    assert (await selfie(api, who, liveness_challenge_id=challenge)).status_code == 201
    assert (await api.client.post("/kyc/submit", headers=who["headers"])).status_code == 202
    await checks_done(api, who)
    r = await api.client.put(f"/kyc/{kyc_id}/request-resubmission", headers=bearer(auditor),
                             json={"items": ["liveness"], "customer_message": "Take the liveness step again."})
    assert r.status_code == 200, r.text
    r = await selfie(api, who, liveness_challenge_id=challenge)  # the first round's proof, replayed
    assert r.status_code == 400 and r.json()["error_code"] == "liveness_not_passed", r.text
    assert (await api.client.get("/kyc/me", headers=who["headers"])).json()["missing"] == ["liveness"]
    r = await selfie(api, who, liveness_challenge_id=await passed_challenge(api, who, "round-two"))
    assert r.status_code == 201, r.text


async def test_no_level_change_while_a_case_is_sent_back_or_in_review(api_factory):
    from bson import ObjectId

    from tests.console_cases import submitted_case
    from tests.integration.test_kyc_resubmission import signed_in

    api = await api_factory(job_workers=0)
    case = await submitted_case(api.container)
    who = await signed_in(api, case["email"])
    r = await api.client.post("/kyc/level", headers=who["headers"], json={"level": "full"})
    assert r.status_code == 409 and r.json()["error_code"] == "kyc_in_review", r.text
    r = await api.client.put(f"/kyc/{case['kyc_id']}/request-resubmission", headers=bearer(await api.staff("auditor")),
                             json={"items": ["selfie"], "customer_message": "Again, in daylight."})
    assert r.status_code == 200, r.text
    before = await api.container.db["kyc_doc"].find_one({"_id": ObjectId(case["kyc_id"])})
    r = await api.client.post("/kyc/level", headers=who["headers"], json={"level": "basic"})  # to dodge the redo
    assert r.status_code == 409 and r.json()["error_code"] == "kyc_in_review", r.text
    assert await api.container.db["kyc_doc"].find_one({"_id": ObjectId(case["kyc_id"])}) == before
    assert await api.container.db["kyc_doc"].count_documents({"user_id": case["user_id"]}) == 1
