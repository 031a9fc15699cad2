"""KYC writes that must land together or not at all: the checks job's results with the customer's
risk, its audit entry and an automatic decision; a replaced document; and the customer's decision
notice, a durable job that survives a mail server that is down."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from typing import Any

from aiosmtpd.controller import Controller

from app.domain.kyc import REJECTION_REASONS, Check, CheckStatus
from tests.conftest import Mailbox, bearer, free_port
from tests.integration.events_helpers import run_jobs, submitted_case
from tests.integration.test_kyc_api import PAN, customer, ready_case, upload


async def _count(api, collection: str, query: dict[str, Any]) -> int:
    return int(await api.container.db[collection].count_documents(query))


# --- the checks job: one transaction ---------------------------------------------------------------


async def test_a_checks_job_cut_off_after_its_results_still_writes_risk_audit_and_decision_once(api_factory):
    api = await api_factory(job_workers=0, job_backoff_base_seconds=0, kyc_auto_decision=True)
    who = await api.customer()
    case = await submitted_case(api.container, who["user_id"])
    kyc = api.container.kyc_checks

    async def every_check_passes(case: Any, user: Any) -> list[Check]:
        return [Check(name, CheckStatus.PASS, 1.0, "ok", case.documents[0].id)
                for name in ("ocr", "document_validity", "name_match", "dob_match", "duplicate_document")]

    kyc.run_checks = every_check_passes  # type: ignore[method-assign]
    real_risk = kyc.users.set_kyc_risk
    cut: list[int] = []

    async def dies_once(*args: Any, **kwargs: Any) -> None:
        if not cut:  # the worker is lost here, once, after the results were written
            cut.append(1)
            raise RuntimeError("worker lost")
        await real_risk(*args, **kwargs)

    kyc.users.set_kyc_risk = dies_once  # type: ignore[method-assign]
    await run_jobs(api.container)
    assert cut, "the checks job never reached the customer's risk"

    status = (await api.client.get("/users/me/kyc-status", headers=bearer(who))).json()
    assert status["kyc_status"] == "APPROVED", status
    user = await kyc.users.get(who["user_id"])  # the risk is for staff only
    assert user.risk_level == "Low" and user.kyc_score == 100, user
    stored = await kyc.cases.get(case.id)
    assert stored.status.value == "APPROVED" and stored.decision.role == "system"
    for action in ("kyc_checks_completed", "kyc_approved"):
        assert await _count(api, "user_log", {"action": action, "user_id": who["user_id"]}) == 1, action
    for event in ("kyc.checks_completed", "kyc.approved"):
        assert await _count(api, "events", {"type": event, "user_id": who["user_id"]}) == 1, event
    approved = [m for m in api.mailbox.for_address(who["email"]) if "approved" in m["subject"]]
    assert len(approved) == 1


# --- replacing a document: one update ----------------------------------------------------------------


def _pause_after_first_update(api, then: Callable[[], Awaitable[None]]) -> None:
    """Run `then` right after the case's next update command returns (between the two commands of
    a replacement done in two steps)."""
    cases = api.container.kyc.cases
    inner = cases.collection
    fired: list[int] = []

    class Paused:
        def __getattr__(self, name: str) -> Any:
            attr = getattr(inner, name)
            if name not in ("update_one", "find_one_and_update") or fired:
                return attr

            async def call(*args: Any, **kwargs: Any) -> Any:
                result = await attr(*args, **kwargs)
                if not fired:
                    fired.append(1)
                    await then()
                return result

            return call

    cases.collection = Paused()


async def _stored_file_ids(api, kyc_id: str) -> set[str]:
    files = api.container.db["kyc_files.files"].find({"metadata.case_id": kyc_id})
    return {str(f["_id"]) async for f in files}


async def test_a_submit_while_a_document_is_replaced_never_sees_the_case_without_it(api):
    who = await customer(api)
    kyc_id = await ready_case(api, who)
    submitted: list[Any] = []

    async def submit() -> None:
        submitted.append(await api.client.post("/kyc/submit", headers=who["headers"]))

    _pause_after_first_update(api, submit)
    r = await upload(api, who, "pan", PAN)  # a better photo of the PAN
    assert r.status_code == 201, r.text
    assert submitted and submitted[0].status_code == 202, submitted[0].text
    case = await api.container.kyc.cases.get(kyc_id)
    assert case.status.value == "SUBMITTED"
    assert [d.id for d in case.documents if d.type == "pan"] == [r.json()["document_id"]]
    # The earlier PAN's file went with it; nothing stored is left without its case.
    assert await _stored_file_ids(api, kyc_id) == set(case.file_ids())


async def test_two_replacements_of_one_side_at_once_leave_one_document_and_no_stray_file(api):
    who = await customer(api)
    kyc_id = await ready_case(api, who)
    second: list[Any] = []

    async def replace_again() -> None:
        second.append(await upload(api, who, "pan", PAN))

    _pause_after_first_update(api, replace_again)
    first = await upload(api, who, "pan", PAN)
    assert first.status_code == 201 and second[0].status_code == 201, (first.text, second[0].text)
    case = await api.container.kyc.cases.get(kyc_id)
    pans = [d.id for d in case.documents if d.type == "pan"]
    assert len(pans) == 1 and pans[0] in {first.json()["document_id"], second[0].json()["document_id"]}, pans
    assert await _stored_file_ids(api, kyc_id) == set(case.file_ids())


# --- the decision notice: a durable job ---------------------------------------------------------------


class FlakyMailbox(Mailbox):
    """A mail server that refuses every message (451, try later) while `down`."""

    down = False

    async def handle_DATA(self, server: Any, session: Any, envelope: Any) -> str:  # noqa: N802 - aiosmtpd API
        if self.down:
            return "451 4.3.0 Mail server temporarily unavailable"
        return await super().handle_DATA(server, session, envelope)


async def test_a_decision_made_while_mail_is_down_is_mailed_once_when_it_is_back(api_factory):
    from app.domain.kyc import assess

    mailbox = FlakyMailbox()
    port = free_port()
    controller = Controller(mailbox, hostname="127.0.0.1", port=port)
    controller.start()
    try:
        api = await api_factory(smtp_port=port, job_workers=0, job_backoff_base_seconds=0)
        api.mailbox = mailbox
        who = await api.customer()
        auditor = await api.staff("auditor")
        case = await submitted_case(api.container, who["user_id"], queue_checks=False)
        assert await api.container.kyc.cases.record_checks(case.id, [], assess([]), api.container.clock.now())
        mailbox.down = True
        note = "INTERNAL: same face as another applicant"
        message = "Please upload a sharper photo of your PAN."
        reasons = ["document_unreadable", "face_mismatch"]
        r = await api.client.put(f"/kyc/{case.id}/reject", headers=bearer(auditor),
                                 json={"reasons": reasons, "internal_note": note, "customer_message": message})
        assert r.status_code == 200 and r.json()["status"] == "REJECTED", r.text  # the decision stands
        await run_jobs(api.container, limit=3)  # the notice is tried, refused, and queued again
        before = len(mailbox.for_address(who["email"]))
        assert not [m for m in mailbox.for_address(who["email"]) if "not approved" in m["subject"]]

        mailbox.down = False
        await run_jobs(api.container)
        notices = [m for m in mailbox.for_address(who["email"]) if "not approved" in m["subject"]]
        assert len(notices) == 1 and len(mailbox.for_address(who["email"])) == before + 1
        text = notices[0].get_body(preferencelist=("plain",)).get_content()
        html = notices[0].get_body(preferencelist=("html",)).get_content()
        assert message in text and all(REJECTION_REASONS[code] in text for code in reasons), text
        assert all("INTERNAL" not in body and "same face" not in body for body in (text, html))

        # The job runs again (a worker lost before it marked the job done): no second mail.
        jobs = api.container.db["jobs"]
        assert (await jobs.update_one({"kind": "customer_notice"}, {"$set": {"status": "queued"}})).matched_count == 1
        await run_jobs(api.container)
        await asyncio.sleep(0)
        assert len([m for m in mailbox.for_address(who["email"]) if "not approved" in m["subject"]]) == 1
    finally:
        controller.stop()
