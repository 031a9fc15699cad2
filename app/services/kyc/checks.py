"""The automated checks of a submitted KYC case, a durable job: the rules registered in
app/domain/checks/ and the model-backed face match, then the risk, the audit entry and, with
KYC_AUTO_DECISION, the decision, all in one transaction with the results."""

from __future__ import annotations

import asyncio
from collections.abc import Mapping

from app.domain.audit import AuditAction
from app.domain.checks import Facts, document_checks, selfie_checks
from app.domain.documents import DocumentType
from app.domain.events import EventType
from app.domain.jobs import Job
from app.domain.kyc import (
    CaseStatus,
    Check,
    CheckName,
    ChecksState,
    CheckStatus,
    KycCase,
    RejectionReason,
    RiskLevel,
    assess,
)
from app.domain.users import User
from app.ml import tasks
from app.ml.gateway import MlGateway
from app.repositories.files import EncryptedFileStore
from app.repositories.kyc import KycCaseRepository
from app.repositories.transactions import Transactions, UnitOfWork
from app.repositories.users import UserRepository
from app.services.audit import AuditService
from app.services.clock import Clock
from app.services.events import EventService
from app.services.face_duplicates import FaceDuplicates
from app.services.jobs import JobService
from app.services.kyc.review import DecisionInput, KycReviewService, base_lost
from app.services.screening import ScreeningService

CHECKS_JOB = "kyc_checks"
# Documents that carry the holder's photo, in the order the face match prefers them.
_PHOTO_DOCUMENTS = (DocumentType.PASSPORT, DocumentType.AADHAAR, DocumentType.DRIVING_LICENCE,
                    DocumentType.NATIONAL_ID, DocumentType.VOTER_ID, DocumentType.PAN)


class KycChecksService:
    def __init__(
        self, *, cases: KycCaseRepository, users: UserRepository, files: EncryptedFileStore, ml: MlGateway,
        limits: tasks.Limits, transactions: Transactions, jobs: JobService, audit: AuditService, clock: Clock,
        events: EventService, review: KycReviewService, weights: Mapping[str, float] | None = None,
        auto_decision: bool = False, screening: ScreeningService | None = None, faces: FaceDuplicates | None = None,
    ) -> None:
        self.cases, self.users, self.files, self.ml, self.limits = cases, users, files, ml, limits
        self.transactions, self.audit, self.clock, self.events = transactions, audit, clock, events
        self.review = review  # records the automatic decision as an auditor's is recorded
        self.weights, self.auto_decision, self.screening, self.faces = weights, auto_decision, screening, faces
        jobs.register(CHECKS_JOB, self.handle)

    async def handle(self, job: Job) -> None:
        case = await self.cases.get(job.payload["case_id"])
        if case is None or case.status != CaseStatus.SUBMITTED or case.checks_state != ChecksState.RUNNING:
            return  # already done (a retried job), or the submission never happened
        user = await self.users.get(case.user_id)
        if user is None:
            return
        checks = await self.run_checks(case, user)
        assessment = assess(checks, self.weights)

        async def step(tx: UnitOfWork) -> None:
            # Everything the results imply commits with them: a retried job finds the checks DONE and
            # stops, so nothing may be left to write after the commit.
            done = await tx.kyc.record_checks(case.id, checks, assessment, self.clock.now())
            if done is None:
                return  # another run finished first: apply once
            # No score or risk level: the customer's own live stream carries this event too.
            await self.events.publish(EventType.KYC_CHECKS_COMPLETED, tx=tx, user_id=case.user_id, data={
                "kyc_id": case.id, "status": done.status.value, "checks_state": done.checks_state.value})
            await tx.users.set_kyc_risk(user.id, assessment.risk_level.value, assessment.overall_score)
            await self.audit.record(AuditAction.KYC_CHECKS_COMPLETED, user_id=user.id, actor_id="system",
                                    actor_role="system", kyc_id=case.id, overall_score=assessment.overall_score,
                                    risk_level=assessment.risk_level.value, tx=tx)
            automatic = _automatic_decision(done, checks) if self.auto_decision and not base_lost(done, user) else None
            if automatic is not None:
                await self.review.record(tx, done, user, automatic)

        await self.transactions.run(step)

    async def run_checks(self, case: KycCase, user: User) -> list[Check]:
        """Each document's checks, then the selfie's: the face match and the registered selfie rules."""
        checks: list[Check] = []
        today, kept = self.clock.now().date(), case.carried_over()  # resubmitted: what did not change stays
        # The face match is the slow part (the models): started first, the rest runs beside it.
        face = asyncio.create_task(self._face_checks(case)) if case.selfie is not None else None
        try:
            for doc in case.documents:
                owners = (await self.cases.duplicate_owners(doc.shown_fingerprint, user.id)
                          if doc.shown_fingerprint else [])
                checks += [kept.get((c.name, c.document_id), c)
                           for c in document_checks(Facts(doc, user, today, tuple(owners)))]
            # Not carried over from an earlier round: the lists may have changed since.
            screened = [await self.screening.check(case, user)] if self.screening else []
        except BaseException:
            if face is not None:
                face.cancel()  # never left running (or failing unseen) behind an error
            raise
        if case.selfie is not None and face is not None:
            checks += [*await face, *selfie_checks(case.selfie)]
        return checks + screened

    async def _face_checks(self, case: KycCase) -> list[Check]:
        """The face match and the face duplicate search: one pass of the models over the selfie serves both."""
        assert case.selfie is not None
        photo = next((d for t in _PHOTO_DOCUMENTS for d in case.documents
                      if d.type == t and d.side in (None, "front")), None)
        # Kept: neither this document nor the selfie changed since the round sent back.
        kept = case.carried_over().get((CheckName.FACE_MATCH, photo.id)) if photo else None
        files = [case.selfie.file_id, *([photo.file_id] if photo and not kept else [])]
        data = await asyncio.gather(*(self.files.get(f, owner_id=case.user_id, case_id=case.id) for f in files))
        vector, match = await self.ml.run(tasks.selfie_faces, data[0][0], data[1][0] if len(data) > 1 else None,
                                          self.limits)
        if photo is None:
            check = Check(CheckName.FACE_MATCH, CheckStatus.REVIEW, 0.5, "No document with a photo to compare.")
        elif kept:
            check = kept
        elif isinstance(match, str):  # no face found on one of the two
            check = Check(CheckName.FACE_MATCH, CheckStatus.REVIEW, 0.3, match, photo.id)
        else:
            status = CheckStatus.PASS if match.verified else CheckStatus.FAIL
            check = Check(CheckName.FACE_MATCH, status, float(match.confidence), match.message, photo.id)
        return [check, *([await self.faces.check(case, vector)] if self.faces and vector is not None else [])]


def _automatic_decision(case: KycCase, checks: list[Check]) -> DecisionInput | None:
    """With KYC_AUTO_DECISION: a duplicate document rejects, a Low risk with every check passed approves;
    anything else waits for an auditor."""
    if any(c.name == CheckName.DUPLICATE_DOCUMENT and c.status == CheckStatus.FAIL for c in checks):
        return DecisionInput(approved=False, reasons=[RejectionReason.DUPLICATE_DOCUMENT],
                             internal_note="Rejected automatically: a document shows a number of another account's case.")
    if case.risk_level == RiskLevel.LOW and all(c.status == CheckStatus.PASS for c in checks):
        return DecisionInput(approved=True, internal_note="Approved automatically: every check passed.")
    return None
