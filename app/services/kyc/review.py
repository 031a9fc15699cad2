"""The auditor's review of KYC cases: the queue, a case and its files, claims, decisions (four
eyes for a High risk when configured) and the duplicates a check found."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import timedelta
from typing import Any

from app.domain.audit import AuditAction, ClientInfo
from app.domain.errors import InvalidInput, RuleViolation
from app.domain.events import EventType
from app.domain.ids import parse_id
from app.domain.kyc import (
    REJECTION_REASONS,
    CaseNotFound,
    CaseNotReviewable,
    CaseStatus,
    CheckName,
    ChecksState,
    CheckStatus,
    Claim,
    Decision,
    FirstApproval,
    KycCase,
    Redo,
    Round,
    ensure_not_claimed,
    ensure_reviewable,
)
from app.domain.kyc_levels import DEFAULT_LEVELS, Levels
from app.domain.pages import Page
from app.domain.users import KycStatus, User
from app.ml import tasks
from app.ml.gateway import MlGateway
from app.repositories.files import EncryptedFileStore
from app.repositories.kyc import KycCaseRepository
from app.repositories.transactions import Transactions, UnitOfWork
from app.repositories.users import UserRepository
from app.services.audit import AuditService
from app.services.clock import Clock
from app.services.events import EventService
from app.services.kyc.renewals import KycRenewals
from app.services.notifications import Notices, decision_notice


@dataclass(frozen=True)
class DecisionInput:
    """An auditor's decision: `internal_note` stays in the case file; the customer is told the
    decision, the reasons' sentences and `customer_message`."""

    approved: bool
    reasons: list[str] = field(default_factory=list)
    internal_note: str | None = None
    customer_message: str | None = None
    final: bool = False  # a rejection the customer cannot start over from (RETRY, the default, they can)


def base_lost(case: KycCase, user: User) -> bool:
    """A step-up whose approval below it went back to review (a watchlist hit) or was rejected since."""
    return case.step_up is not None and user.kyc_status in (KycStatus.SUBMITTED, KycStatus.REJECTED)


class KycReviewService:
    def __init__(
        self, *, cases: KycCaseRepository, users: UserRepository, files: EncryptedFileStore, ml: MlGateway,
        limits: tasks.Limits, transactions: Transactions, audit: AuditService, notices: Notices, clock: Clock,
        events: EventService, claim_minutes: int = 30, four_eyes_high_risk: bool = False, max_resubmissions: int = 3,
        final_rejection_days: int | None = None, levels: Levels = DEFAULT_LEVELS, renewals: KycRenewals | None = None,
    ) -> None:
        self.cases, self.users, self.files, self.ml, self.limits = cases, users, files, ml, limits
        self.transactions, self.audit, self.notices, self.clock, self.events = transactions, audit, notices, clock, events
        self.claim_minutes = claim_minutes  # how long an auditor's claim on a case holds without a decision
        self.four_eyes_high_risk = four_eyes_high_risk  # a High-risk approval takes two auditors
        self.max_resubmissions, self.final_rejection_days = max_resubmissions, final_rejection_days
        self.levels = levels  # an approval needs the checks its case's level names passed
        self.renewals = renewals  # an approval holds for a period (periodic re-KYC)

    async def pending(self, **filters: Any) -> Page[KycCase]:
        return await self.cases.pending(**filters)

    async def get_case(self, case_id: str, actor: User, client: ClientInfo) -> KycCase:
        case = await self.cases.get(case_id)
        if case is None:
            raise CaseNotFound()
        await self.audit.record(AuditAction.KYC_VIEWED, user_id=case.user_id, actor=actor, client=client,
                                kyc_id=case.id)
        return case

    async def file(self, case_id: str, file_id: str, actor: User, client: ClientInfo, *,
                   original: bool = False) -> tuple[bytes, str]:
        """The file as stored with `original`; otherwise a PDF's first page rendered as PNG (a PDF
        can run scripts in a viewer, /OpenAction JavaScript; the page's pixels cannot). The PDF
        itself is kept as uploaded: it is the record, and a signed e-Aadhaar proves itself only whole."""
        case = await self.cases.get(case_id)
        file_id = parse_id(file_id) or ""  # any letter case names the same file, as for the case id
        if case is None or file_id not in case.file_ids():
            raise CaseNotFound("No such file in this case.", code="file_not_found")
        data, content_type = await self.files.get(file_id, owner_id=case.user_id, case_id=case.id)
        if content_type == "application/pdf" and not original:
            data, content_type = await self.ml.run(tasks.render_page, data, self.limits), "image/png"
        await self.audit.record(AuditAction.KYC_FILE_VIEWED, user_id=case.user_id, actor=actor, client=client,
                                kyc_id=case.id, file_id=file_id, original=original)
        return data, content_type

    async def claim(self, case_id: str, actor: User, client: ClientInfo) -> KycCase:
        """Take a submitted case to work on it: until the claim lapses (`claim_minutes`, renewed by
        claiming again) or is released, no other auditor can decide or claim it."""
        case = await self.cases.get(case_id)
        if case is None:
            raise CaseNotFound()
        now = self.clock.now()
        ensure_reviewable(case.status, ChecksState.DONE, case.user_id, actor.id)  # status and own case only
        ensure_not_claimed(case.claim, actor.id, now)
        claim = Claim(by=actor.id, by_name=actor.name, at=now, until=now + timedelta(minutes=self.claim_minutes))
        claimed = await self.cases.claim(case.id, claim)
        if claimed is None:  # decided, or claimed by someone else, a moment ago
            latest = await self.cases.get(case.id)
            if latest is not None:
                ensure_reviewable(latest.status, ChecksState.DONE, latest.user_id, actor.id)
                ensure_not_claimed(latest.claim, actor.id, now)
            raise CaseNotReviewable("The case changed meanwhile; reload it.")
        await self.audit.record(AuditAction.KYC_CLAIMED, user_id=case.user_id, actor=actor, client=client,
                                kyc_id=case.id, until=claim.until.isoformat())
        return claimed

    async def release(self, case_id: str, actor: User, client: ClientInfo) -> KycCase:
        """Give back one's own claim (someone else's is left alone: it lapses on its own)."""
        released = await self.cases.release(case_id, actor.id)
        if released is None:
            raise CaseNotReviewable("You do not hold this case.", code="kyc_not_claimed")
        await self.audit.record(AuditAction.KYC_RELEASED, user_id=released.user_id, actor=actor, client=client,
                                kyc_id=released.id)
        return released

    async def decide(self, case_id: str, actor: User, decision: DecisionInput, client: ClientInfo) -> KycCase:
        """Approve or reject: only a SUBMITTED case whose checks finished, never one's own."""
        if not decision.approved and not decision.reasons:
            raise InvalidInput("A rejection needs at least one reason.", code="invalid_reason", field="reasons")
        unknown = [r for r in decision.reasons if r not in REJECTION_REASONS]
        if unknown:
            raise InvalidInput(f"Unknown reason {unknown[0]!r}; use one of: {', '.join(REJECTION_REASONS)}.",
                               code="invalid_reason", field="reasons")
        case = await self.cases.get(case_id)
        if case is None:
            raise CaseNotFound()
        ensure_reviewable(case.status, case.checks_state, case.user_id, actor.id)
        ensure_not_claimed(case.claim, actor.id, self.clock.now())
        if decision.approved and (unmet := self.levels.of(case.level).unmet_checks(case.checks)):
            raise CaseNotReviewable(f"Level {case.level!r} needs these checks passed: {', '.join(unmet)}; ask for a "
                                    "resubmission or reject the case.", code="kyc_level_checks_unmet")
        if case.first_of_two(actor.id, decision.approved, self.four_eyes_high_risk):
            return await self._approve_first(case, actor, decision, client)
        user = await self.users.get(case.user_id)
        if user is None:
            raise CaseNotFound()
        if decision.approved and base_lost(case, user):
            raise CaseNotReviewable("The approval this step-up builds on is under review or was rejected; decide "
                                    "that case first.", code="kyc_base_under_review")

        async def step(tx: UnitOfWork) -> KycCase | None:
            return await self.record(tx, case, user, decision, actor=actor, client=client)

        decided = await self.transactions.run(step)
        if decided is None:  # a parallel decision won
            raise CaseNotReviewable("The case was decided meanwhile.")
        return decided

    async def _approve_first(self, case: KycCase, actor: User, given: DecisionInput, client: ClientInfo) -> KycCase:
        """Four eyes: the first approval is recorded and the case waits, unclaimed, for a second auditor;
        the customer hears nothing yet (the second approver's message is what they are told)."""
        approval = FirstApproval(by=actor.id, by_name=actor.name, at=self.clock.now(), internal_note=given.internal_note)
        recorded = await self.cases.approve_first(case.id, approval, approval.at)
        if recorded is None:
            raise CaseNotReviewable("The case changed meanwhile (approved or claimed by someone else); reload it.")
        await self.audit.record(AuditAction.KYC_FIRST_APPROVAL, user_id=case.user_id, actor=actor, client=client,
                                kyc_id=case.id, internal_note=given.internal_note)
        return recorded

    async def record(self, tx: UnitOfWork, case: KycCase, user: User, given: DecisionInput, *,
                     actor: User | None = None, client: ClientInfo | None = None) -> KycCase | None:
        """In the caller's transaction: the decision, the customer's status, the event, the audit entry
        and the customer's notice (a job), together or not at all. None when the case was not decidable.
        Without an `actor` the decision is the system's (the checks job's automatic decision)."""
        approved, now = given.approved, self.clock.now()
        by, role = (actor.id, actor.role.value) if actor else ("system", "system")
        reasons = [] if approved else list(dict.fromkeys(str(r) for r in given.reasons))  # once each, in order
        final = given.final and not approved
        validity = self.renewals.renewal.validity(case, now) if approved and self.renewals else None
        decision = Decision(by=by, role=role, at=now, approved=approved, reasons=reasons,
                            internal_note=given.internal_note, customer_message=given.customer_message, final=final,
                            valid_until=validity.until if validity else None)
        decided = await tx.kyc.decide(case.id, decision, now)
        if decided is None:
            return None
        if approved or not case.steps_up_from(user.kyc_level):
            await tx.users.set_kyc_status(user.id, KycStatus.APPROVED if approved else KycStatus.REJECTED, now,
                                          level=case.level if approved else None, validity=validity)
        if validity and self.renewals:
            await self.renewals.arm(tx)
        await self.events.publish(EventType.KYC_APPROVED if approved else EventType.KYC_REJECTED, tx=tx,
                                  user_id=user.id, data={"kyc_id": case.id, "status": decided.status.value,
                                                         "level": case.level,
                                                         **({"valid_until": validity.until} if validity else {}),
                                                         "reason": decision.reason,
                                                         **({} if approved else {"reasons": reasons, "reject_type":
                                                                                 "FINAL" if final else "RETRY"})})
        action = AuditAction.KYC_APPROVED if approved else AuditAction.KYC_REJECTED
        await self.audit.record(action, user_id=user.id, actor=actor, actor_id=decision.by, actor_role=decision.role,
                                client=client, kyc_id=case.id, reasons=reasons, internal_note=decision.internal_note,
                                customer_message=decision.customer_message, final=final, tx=tx)
        days = self.final_rejection_days
        again = {} if not final else {"again": "You cannot apply again." if days is None else
                                      f"You can apply again from {now + timedelta(days=days):%Y-%m-%d}."}
        # The customer hears the decision, the reasons' sentences and the message; never the internal note.
        subject, lines = decision_notice(approved=approved, reasons=[REJECTION_REASONS[r] for r in reasons],
                                         message=decision.customer_message, **again)
        await self.notices.queue(tx, user, f"kyc:{case.id}", subject, lines)  # a case is decided once
        return decided

    async def request_resubmission(self, case_id: str, actor: User, items: list[Redo], customer_message: str,
                                   internal_note: str | None, client: ClientInfo) -> KycCase:
        """Sends a SUBMITTED case whose checks finished back to its customer to redo `items` (at most
        `max_resubmissions` times); the round is kept whole, and the customer is told the message only."""
        case = await self.cases.get(case_id)
        if case is None:
            raise CaseNotFound()
        now = self.clock.now()
        ensure_reviewable(case.status, case.checks_state, case.user_id, actor.id)
        ensure_not_claimed(case.claim, actor.id, now)
        if case.rounds_asked >= self.max_resubmissions:
            raise CaseNotReviewable(f"This case was sent back {case.rounds_asked} times, the most allowed; approve or "
                                    "reject it.", code="resubmission_limit_reached")
        for n, item in enumerate(items):
            if item.kind == "document" and not any(item.covers(d) for d in case.documents):
                raise RuleViolation(f"The case has no {item.label} document to redo.", code="resubmission_item_unknown",
                                    errors=[{"field": f"items.{n}", "message": "not a document of this case"}])
        user = await self.users.get(case.user_id)
        if user is None:
            raise CaseNotFound()
        items = list(dict.fromkeys(items))  # once each, in order
        sent = Round(len(case.rounds) + 1, case.submitted_at, case.documents, case.selfie, case.checks,
                     case.overall_score, case.risk_level, actor.id, actor.name, now, items, customer_message,
                     internal_note)
        labels = [i.label for i in items]

        async def step(tx: UnitOfWork) -> KycCase | None:
            back = await tx.kyc.send_back(case.id, sent, len(case.rounds) - case.rounds_asked + self.max_resubmissions)
            if back is None:
                return None
            if not case.steps_up_from(user.kyc_level):
                await tx.users.set_kyc_status(user.id, KycStatus.RESUBMISSION_REQUESTED, now)
            await self.events.publish(EventType.KYC_RESUBMISSION_REQUESTED, tx=tx, user_id=user.id, data={
                "kyc_id": case.id, "status": back.status.value, "round": sent.number, "items": labels, "level": case.level})
            await self.audit.record(AuditAction.KYC_RESUBMISSION_REQUESTED, user_id=user.id, actor=actor, client=client,
                                    kyc_id=case.id, round=sent.number, items=labels, internal_note=internal_note,
                                    customer_message=customer_message, tx=tx)
            # The customer is told what to redo and the message, never the internal note.
            await self.notices.queue(tx, user, f"kyc:{case.id}:round:{sent.number}", "Your KYC verification needs "
                                     "something again", ["A reviewer asks you to upload again:",
                                                         *(f"- {_REDO.get(i.kind, 'your ' + i.label)}" for i in items),
                                                         f"Message from the reviewer: {customer_message}",
                                                         "Upload it in the app, then submit your KYC again."])
            return back

        back = await self.transactions.run(step)
        if back is None:  # decided, claimed or sent back a moment ago
            raise CaseNotReviewable("The case changed meanwhile; reload it.")
        return back

    async def stats(self) -> dict[str, Any]:
        return await self.cases.stats()

    async def cases_of(self, user_id: str) -> list[KycCase]:
        return await self.cases.list_for_user(user_id)

    async def duplicates(self, case: KycCase) -> dict[str, list[KycCase]]:
        """For each document whose duplicate check failed, the other accounts' submitted or approved
        cases that show the same number (what the check found), and under "face" the cases the
        face_duplicate check found, for a reviewer to open."""
        failed = {c.document_id for c in case.checks
                  if c.name == CheckName.DUPLICATE_DOCUMENT and c.status == CheckStatus.FAIL}
        found: dict[str, list[KycCase]] = {}
        for doc in case.documents:
            if doc.id not in failed or not doc.shown_fingerprint:
                continue
            for owner in await self.cases.duplicate_owners(doc.shown_fingerprint, case.user_id):
                found.setdefault(doc.id, []).extend(
                    other for other in await self.cases.list_for_user(owner)
                    if other.status in (CaseStatus.SUBMITTED, CaseStatus.APPROVED)
                    and any(d.shown_fingerprint == doc.shown_fingerprint for d in other.documents))
        faces = [i for c in case.checks if c.name == CheckName.FACE_DUPLICATE for i in c.other_cases]
        if faces:  # under "face": the other approved cases whose selfie showed this face
            found["face"] = [other for i in faces if (other := await self.cases.get(i)) is not None]
        return found


_REDO = {"selfie": "a new selfie", "liveness": "a new selfie with a passed liveness challenge"}
