"""KYC cases: the customer's uploads and submission, the durable automated checks, and the
auditor's decision.

Files are checked by content (the engine's decoders run before anything is stored), then
encrypted into GridFS. Document numbers are kept encrypted, masked for display and as a keyed
fingerprint for duplicate detection; the clear number never leaves this module's locals.
"""

from __future__ import annotations

import asyncio
import uuid
from dataclasses import dataclass, field
from datetime import date, timedelta
from typing import Any

from app.domain.audit import AuditAction, ClientInfo
from app.domain.documents import DocumentType, is_expired, is_valid_aadhaar, is_valid_pan
from app.domain.errors import InvalidInput, NoFaceDetected
from app.domain.events import EventType
from app.domain.ids import parse_id
from app.domain.jobs import Job
from app.domain.kyc import (
    CORRECTABLE_FIELDS,
    OCR_PASS,
    REJECTION_REASONS,
    AlreadyApproved,
    CaseDocument,
    CaseIncomplete,
    CaseNotEditable,
    CaseNotFound,
    CaseNotReviewable,
    CaseStatus,
    Check,
    ChecksState,
    CheckStatus,
    Claim,
    Decision,
    FirstApproval,
    KycCase,
    RejectionReason,
    RiskLevel,
    Selfie,
    SubmissionPolicy,
    assess,
    correction_checks,
    dob_check,
    ensure_not_claimed,
    ensure_reviewable,
    name_check,
)
from app.domain.pages import Page
from app.domain.users import KycStatus, User
from app.ml import tasks
from app.ml.gateway import MlGateway
from app.ml.images import sniff_format
from app.repositories.files import EncryptedFileStore
from app.repositories.kyc import KycCaseRepository
from app.repositories.liveness_challenges import LivenessChallengeRepository
from app.repositories.transactions import Transactions, UnitOfWork
from app.repositories.users import UserRepository
from app.services.audit import AuditService
from app.services.clock import Clock
from app.services.encryption import DocumentCipher
from app.services.events import EventService
from app.services.jobs import JobService
from app.services.notifications import Notices, decision_notice

CHECKS_JOB = "kyc_checks"
_CONTENT_TYPES = {"jpeg": "image/jpeg", "png": "image/png", "pdf": "application/pdf"}
# Documents that carry the holder's photo, in the order the face match prefers them.
_PHOTO_DOCUMENTS = (DocumentType.PASSPORT, DocumentType.AADHAAR, DocumentType.DRIVING_LICENCE,
                    DocumentType.NATIONAL_ID, DocumentType.VOTER_ID, DocumentType.PAN)


@dataclass(frozen=True)
class KycSettings:
    policy: SubmissionPolicy = field(default_factory=SubmissionPolicy)
    weights: dict[str, float] | None = None
    auto_decision: bool = False
    claim_minutes: int = 30  # how long an auditor's claim on a case holds without a decision
    four_eyes_high_risk: bool = False  # a High-risk approval takes two auditors (KYC_FOUR_EYES_HIGH_RISK)


@dataclass(frozen=True)
class DecisionInput:
    """An auditor's decision: `internal_note` stays in the case file; the customer is told the
    decision, the reasons' sentences and `customer_message`."""

    approved: bool
    reasons: list[str] = field(default_factory=list)
    internal_note: str | None = None
    customer_message: str | None = None


@dataclass(frozen=True)
class Upload:
    case: KycCase
    document: CaseDocument


def _number_aad(user_id: str, case_id: str, document_id: str) -> str:
    return f"kyc-number|{user_id}|{case_id}|{document_id}"


class KycService:
    def __init__(
        self, *, settings: KycSettings, cases: KycCaseRepository, files: EncryptedFileStore, cipher: DocumentCipher,
        users: UserRepository, challenges: LivenessChallengeRepository, ml: MlGateway, limits: tasks.Limits,
        transactions: Transactions, jobs: JobService, audit: AuditService, notices: Notices, clock: Clock,
        events: EventService,
    ) -> None:
        self.s, self.cases, self.files, self.cipher = settings, cases, files, cipher
        self.users, self.challenges, self.ml, self.limits = users, challenges, ml, limits
        self.transactions, self.jobs, self.audit, self.notices, self.clock = transactions, jobs, audit, notices, clock
        self.events = events  # each transition publishes its event in its own transaction
        jobs.register(CHECKS_JOB, self._checks_job)

    # --- the customer's case ---------------------------------------------------------------

    def missing(self, case: KycCase) -> list[str]:
        """What an open case still needs under the submission policy (nothing once it is submitted)."""
        return case.missing(self.s.policy) if case.status == CaseStatus.OPEN else []

    async def _case_for_upload(self, user: User) -> KycCase:
        latest = await self.cases.latest_for_user(user.id)
        if latest is not None and latest.status == CaseStatus.APPROVED:
            raise AlreadyApproved("Your KYC is already approved.")
        if latest is not None and latest.status == CaseStatus.SUBMITTED:
            raise CaseNotEditable("Your KYC case is being reviewed; wait for the decision.", code="kyc_in_review")
        if latest is not None and latest.status == CaseStatus.OPEN:
            return latest
        return await self.cases.open_case(user.id, self.clock.now())  # none yet, or the last was rejected

    async def upload_document(self, user: User, *, document_type: str, side: str | None, data: bytes,
                              declared_number: str | None, client: ClientInfo) -> Upload:
        if document_type not in {d.value for d in DocumentType} - {DocumentType.GENERIC}:
            raise InvalidInput(f"Unknown document type {document_type!r}.", code="invalid_document_type")
        await self._case_for_upload(user)  # refuse early, before the models run
        # Decoding and OCR both check the content: nothing unreadable is ever stored.
        reading = await self.ml.run(tasks.read_document, data, document_type, self.limits)
        number = self._document_number(document_type, declared_number, reading.document_number_raw)
        case = await self._case_for_upload(user)
        document_id = uuid.uuid4().hex
        content_type = _CONTENT_TYPES[sniff_format(data) or "jpeg"]
        file_id = await self.files.put(data, owner_id=user.id, case_id=case.id, content_type=content_type)
        protected = (self.cipher.protect_number(document_type, number, _number_aad(user.id, case.id, document_id))
                     if number else None)
        shown = _compact(reading.document_number_raw) if reading.document_number_raw else None
        corrections: dict[str, Any] = {}
        if declared_number and number != shown:
            # Typed, but the image does not show it (another number, or none read): a person should look.
            assert protected is not None
            corrections["document_number"] = protected.masked
        document = CaseDocument(
            id=document_id, type=document_type, side=side or reading.side, file_id=file_id,
            content_type=content_type, uploaded_at=self.clock.now(), fields=dict(reading.fields),
            confidence=reading.confidence, validation=dict(reading.validation),
            number_masked=protected.masked if protected else None,
            number_fingerprint=protected.fingerprint if protected else None,
            number_encrypted=protected.encrypted if protected else None,
            corrections=corrections,
            shown_fingerprint=self.cipher.fingerprint(document_type, shown) if shown else None,
        )
        added = await self.cases.replace_document(case.id, user.id, document, self.clock.now())
        if added is None:  # submitted by a parallel request meanwhile
            await self.files.delete(file_id)
            raise CaseNotEditable("The case was submitted meanwhile; it can no longer be changed.")
        updated, replaced = added
        for old in replaced:  # a better photo of the same side: the file this update took out goes
            await self.files.delete(old.file_id)
        await self.audit.record(AuditAction.KYC_DOCUMENT_UPLOADED, user_id=user.id, actor=user, client=client,
                                kyc_id=case.id, document_id=document_id, document_type=document_type,
                                file_id=file_id)
        return Upload(updated, document)

    @staticmethod
    def _document_number(document_type: str, declared: str | None, read: str | None) -> str | None:
        """The number to keep: what the customer declared (checked), else what OCR read."""
        if declared is None:
            return _compact(read) if read else None
        number = _compact(declared)
        if not number or len(number) > 32 or not number.isalnum():
            raise InvalidInput("The document number has characters no document uses.", code="invalid_document_number")
        if document_type == DocumentType.AADHAAR and not is_valid_aadhaar(number):
            raise InvalidInput("The Aadhaar number fails its checksum.", code="invalid_document_number")
        if document_type == DocumentType.PAN and not is_valid_pan(number):
            raise InvalidInput("A PAN is five letters, four digits and a letter.", code="invalid_document_number")
        return number

    async def upload_selfie(self, user: User, data: bytes, liveness_challenge_id: str | None,
                            client: ClientInfo) -> tuple[KycCase, Selfie]:
        await self._case_for_upload(user)
        quality = await self.ml.run(tasks.check_selfie, data, self.limits)
        if not quality.face_detected:
            raise NoFaceDetected("No face was found in the selfie; take it again facing the camera.")
        passed = None
        if liveness_challenge_id:
            passed = await self.challenges.passed_by(liveness_challenge_id, f"user:{user.id}")
            if not passed:
                raise InvalidInput("That liveness challenge was not passed by you.", code="liveness_not_passed")
        case = await self._case_for_upload(user)
        content_type = _CONTENT_TYPES[sniff_format(data) or "jpeg"]
        file_id = await self.files.put(data, owner_id=user.id, case_id=case.id, content_type=content_type)
        selfie = Selfie(file_id=file_id, content_type=content_type, uploaded_at=self.clock.now(),
                        face_detected=True, quality=_quality(quality), liveness_challenge_id=liveness_challenge_id,
                        liveness_passed=passed)
        old = case.selfie
        updated = await self.cases.set_selfie(case.id, user.id, selfie, self.clock.now())
        if updated is None:
            await self.files.delete(file_id)
            raise CaseNotEditable("The case was submitted meanwhile; it can no longer be changed.")
        if old is not None:
            await self.files.delete(old.file_id)
        await self.audit.record(AuditAction.KYC_SELFIE_UPLOADED, user_id=user.id, actor=user, client=client,
                                kyc_id=case.id, file_id=file_id, liveness_challenge_id=liveness_challenge_id)
        return updated, selfie

    async def correct(self, user: User, document_id: str, corrections: dict[str, Any],
                      client: ClientInfo) -> KycCase:
        """The customer confirms or corrects what was read; the OCR value stays beside it."""
        unknown = set(corrections) - set(CORRECTABLE_FIELDS)
        if unknown:
            raise InvalidInput(f"These fields cannot be corrected: {', '.join(sorted(unknown))}.",
                               code="invalid_correction")
        for name in ("date_of_birth", "issue_date", "expiry_date"):
            if name in corrections and not _iso_date(str(corrections[name])):
                raise InvalidInput(f"{name} must be a real date as YYYY-MM-DD.", code="invalid_correction",
                                   field=name)
        case = await self.cases.latest_for_user(user.id)
        if case is None:
            raise CaseNotFound()
        document = case.document(document_id)
        case.ensure_open()
        stored = dict(document.corrections)
        for name, value in corrections.items():
            if name == "document_number":
                number = self._document_number(document.type, str(value), None) or ""
                protected = self.cipher.protect_number(document.type, number,
                                                       _number_aad(user.id, case.id, document_id) + "|corrected")
                stored[name] = protected.masked
                stored["document_number_encrypted"] = protected.encrypted
                stored["document_number_fingerprint"] = protected.fingerprint
            else:
                stored[name] = value
        updated = await self.cases.set_corrections(case.id, user.id, document_id, stored, self.clock.now())
        if updated is None:
            raise CaseNotEditable("The case can no longer be changed.")
        await self.audit.record(AuditAction.KYC_CORRECTED, user_id=user.id, actor=user, client=client,
                                kyc_id=case.id, document_id=document_id, fields=sorted(corrections))
        return updated

    async def current(self, user: User) -> KycCase:
        case = await self.cases.latest_for_user(user.id)
        if case is None:
            raise CaseNotFound("You have no KYC case yet; upload a document to start one.")
        return case

    async def submit(self, user: User, client: ClientInfo) -> KycCase:
        case = await self.cases.latest_for_user(user.id)
        if case is not None and case.status == CaseStatus.APPROVED:
            raise AlreadyApproved("Your KYC is already approved.")
        if case is not None and case.status == CaseStatus.SUBMITTED:  # a retried submit: say so, not "upload"
            raise CaseNotEditable("The case was already submitted.", code="kyc_already_submitted")
        if case is None or case.status != CaseStatus.OPEN:
            raise CaseIncomplete("Nothing to submit: upload your documents and a selfie first.",
                                 missing=self.s.policy.missing([], False))
        missing = case.missing(self.s.policy)
        if missing:
            raise CaseIncomplete("The case is incomplete: " + "; ".join(missing) + ".", missing=missing)
        applicant = {"name": user.name, "email": user.email, "phone": user.phone}

        async def step(tx: UnitOfWork) -> KycCase | None:
            submitted = await tx.kyc.submit(case.id, user.id, applicant, self.clock.now())
            if submitted is not None:
                await self.jobs.enqueue(CHECKS_JOB, f"{CHECKS_JOB}:{case.id}", {"case_id": case.id}, tx=tx)
                await tx.users.set_kyc_status(user.id, KycStatus.SUBMITTED, self.clock.now())
                await self.events.publish(EventType.KYC_SUBMITTED, tx=tx, user_id=user.id, data={
                    "kyc_id": case.id, "status": submitted.status.value,
                    "documents": [{"type": d.type, "number_masked": d.number_masked} for d in submitted.documents]})
            return submitted

        submitted = await self.transactions.run(step)
        if submitted is None:
            raise CaseNotEditable("The case was already submitted.", code="kyc_already_submitted")
        await self.audit.record(AuditAction.KYC_SUBMITTED, user_id=user.id, actor=user, client=client,
                                kyc_id=case.id, document_types=[d.type for d in case.documents])
        return submitted

    async def upload_and_submit(self, user: User, *, document_type: str, side: str | None, data: bytes,
                                declared_number: str | None, client: ClientInfo) -> tuple[KycCase, list[str]]:
        """`POST /kyc/upload`: adds the document, then submits the case once it meets the submission
        policy. Returns the case and what it still needs (nothing once submitted)."""
        upload = await self.upload_document(user, document_type=document_type, side=side, data=data,
                                            declared_number=declared_number, client=client)
        missing = upload.case.missing(self.s.policy)
        if missing:
            return upload.case, missing
        return await self.submit(user, client), []

    # --- automated checks (a durable job) --------------------------------------------------

    async def _checks_job(self, job: Job) -> None:
        case = await self.cases.get(job.payload["case_id"])
        if case is None or case.status != CaseStatus.SUBMITTED or case.checks_state.value != "RUNNING":
            return  # already done (a retried job), or the submission never happened
        user = await self.users.get(case.user_id)
        if user is None:
            return
        checks = await self.run_checks(case, user)
        assessment = assess(checks, self.s.weights)

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
            automatic = _automatic_decision(done, checks) if self.s.auto_decision else None
            if automatic is not None:
                await self._record_decision(tx, done, user, self._decision(automatic, by="system", role="system"))

        await self.transactions.run(step)

    async def run_checks(self, case: KycCase, user: User) -> list[Check]:
        checks: list[Check] = []
        profile_dob = _profile_dob(user)
        # The face match is the slow part (the models): started first, the rest runs beside it.
        face = asyncio.create_task(self._face_check(case)) if case.selfie is not None else None
        try:
            for doc in case.documents:
                checks.append(_ocr_check(doc))
                checks.append(_validity_check(doc, self.clock.now().date()))
                checks.append(name_check(doc.fields.get("full_name"), user.name, doc.id))
                if doc.type != DocumentType.PAN or doc.fields.get("date_of_birth"):
                    checks.append(dob_check(doc.fields.get("date_of_birth"), profile_dob, doc.id))
                checks.extend(correction_checks(doc.visible_corrections(), doc.fields, doc.id))
                if doc.shown_fingerprint:  # only what the document shows; a typed number is a correction
                    owners = await self.cases.duplicate_owners(doc.shown_fingerprint, user.id)
                    checks.append(Check("duplicate_document", CheckStatus.FAIL if owners else CheckStatus.PASS,
                                        0.0 if owners else 1.0,
                                        "This document is registered to another account." if owners
                                        else "No other account has this document.", doc.id))
        except BaseException:
            if face is not None:
                face.cancel()  # never left running (or failing unseen) behind an error
            raise
        if case.selfie is not None and face is not None:
            checks.append(await face)
            quality = case.selfie.quality
            checks.append(Check("selfie_quality", CheckStatus.PASS if quality.get("acceptable") else CheckStatus.REVIEW,
                                1.0 if quality.get("acceptable") else 0.5,
                                "; ".join(quality.get("issues") or []) or "The selfie is sharp and well lit."))
            if case.selfie.liveness_passed:
                checks.append(Check("liveness", CheckStatus.PASS, 1.0, "A liveness challenge was passed."))
            else:
                checks.append(Check("liveness", CheckStatus.REVIEW, 0.5, "No liveness challenge was taken."))
        return checks

    async def _face_check(self, case: KycCase) -> Check:
        assert case.selfie is not None
        photo = next((d for t in _PHOTO_DOCUMENTS for d in case.documents
                      if d.type == t and d.side in (None, "front")), None)
        if photo is None:
            return Check("face_match", CheckStatus.REVIEW, 0.5, "No document with a photo to compare.")
        (document, _), (selfie, _) = await asyncio.gather(
            self.files.get(photo.file_id, owner_id=case.user_id, case_id=case.id),
            self.files.get(case.selfie.file_id, owner_id=case.user_id, case_id=case.id))
        try:
            match = await self.ml.run(tasks.match_faces, document, selfie, self.limits)
        except NoFaceDetected as exc:
            return Check("face_match", CheckStatus.REVIEW, 0.3, exc.message, photo.id)
        status = CheckStatus.PASS if match.verified else CheckStatus.FAIL
        return Check("face_match", status, float(match.confidence), match.message, photo.id)

    # --- the auditor -------------------------------------------------------------------------

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
        if content_type == _CONTENT_TYPES["pdf"] and not original:
            data, content_type = await self.ml.run(tasks.render_page, data, self.limits), _CONTENT_TYPES["png"]
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
        claim = Claim(by=actor.id, by_name=actor.name, at=now, until=now + timedelta(minutes=self.s.claim_minutes))
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
        if case.first_of_two(actor.id, decision.approved, self.s.four_eyes_high_risk):
            return await self._approve_first(case, actor, decision, client)
        user = await self.users.get(case.user_id)
        if user is None:
            raise CaseNotFound()
        return await self._decide(case, user, decision, by=actor.id, role=actor.role.value, client=client,
                                  actor=actor)

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

    async def _decide(self, case: KycCase, user: User, given: DecisionInput, *, by: str, role: str,
                      client: ClientInfo | None = None, actor: User | None = None) -> KycCase:
        decision = self._decision(given, by=by, role=role)

        async def step(tx: UnitOfWork) -> KycCase | None:
            return await self._record_decision(tx, case, user, decision, client=client, actor=actor)

        decided = await self.transactions.run(step)
        if decided is None:  # a parallel decision won
            raise CaseNotReviewable("The case was decided meanwhile.")
        return decided

    def _decision(self, given: DecisionInput, *, by: str, role: str) -> Decision:
        reasons = [] if given.approved else list(dict.fromkeys(str(r) for r in given.reasons))  # once each, in order
        return Decision(by=by, role=role, at=self.clock.now(), approved=given.approved, reasons=reasons,
                        internal_note=given.internal_note, customer_message=given.customer_message)

    async def _record_decision(self, tx: UnitOfWork, case: KycCase, user: User, decision: Decision, *,
                               client: ClientInfo | None = None, actor: User | None = None) -> KycCase | None:
        """In the caller's transaction: the decision, the customer's status, the event, the audit entry
        and the customer's notice (a job), together or not at all. None when the case was not decidable."""
        approved, reasons, now = decision.approved, decision.reasons, decision.at
        decided = await tx.kyc.decide(case.id, decision, now)
        if decided is None:
            return None
        await tx.users.set_kyc_status(user.id, KycStatus.APPROVED if approved else KycStatus.REJECTED, now)
        await self.events.publish(EventType.KYC_APPROVED if approved else EventType.KYC_REJECTED, tx=tx,
                                  user_id=user.id, data={"kyc_id": case.id, "status": decided.status.value,
                                                         "reason": decision.reason,
                                                         **({} if approved else {"reasons": reasons})})
        action = AuditAction.KYC_APPROVED if approved else AuditAction.KYC_REJECTED
        await self.audit.record(action, user_id=user.id, actor=actor, actor_id=decision.by, actor_role=decision.role,
                                client=client, kyc_id=case.id, reasons=reasons, internal_note=decision.internal_note,
                                customer_message=decision.customer_message, tx=tx)
        # The customer hears the decision, the reasons' sentences and the message; never the internal note.
        subject, lines = decision_notice(approved=approved, reasons=[REJECTION_REASONS[r] for r in reasons],
                                         message=decision.customer_message)
        await self.notices.queue(tx, user, f"kyc:{case.id}", subject, lines)  # a case is decided once
        return decided

    async def stats(self) -> dict[str, Any]:
        return await self.cases.stats()

    async def cases_of(self, user_id: str) -> list[KycCase]:
        return await self.cases.list_for_user(user_id)

    async def duplicates(self, case: KycCase) -> dict[str, list[KycCase]]:
        """For each document whose duplicate check failed, the other accounts' submitted or approved
        cases that show the same number (what the check found), for a reviewer to open."""
        failed = {c.document_id for c in case.checks if c.name == "duplicate_document" and c.status == CheckStatus.FAIL}
        found: dict[str, list[KycCase]] = {}
        for doc in case.documents:
            if doc.id not in failed or not doc.shown_fingerprint:
                continue
            for owner in await self.cases.duplicate_owners(doc.shown_fingerprint, case.user_id):
                found.setdefault(doc.id, []).extend(
                    other for other in await self.cases.list_for_user(owner)
                    if other.status in (CaseStatus.SUBMITTED, CaseStatus.APPROVED)
                    and any(d.shown_fingerprint == doc.shown_fingerprint for d in other.documents))
        return found


def _iso_date(value: str) -> bool:
    try:
        date.fromisoformat(value)
    except ValueError:
        return False
    return len(value) == 10


def _automatic_decision(case: KycCase, checks: list[Check]) -> DecisionInput | None:
    """With KYC_AUTO_DECISION: a duplicate document rejects, a Low risk with every check passed approves;
    anything else waits for an auditor."""
    if any(c.name == "duplicate_document" and c.status == CheckStatus.FAIL for c in checks):
        return DecisionInput(approved=False, reasons=[RejectionReason.DUPLICATE_DOCUMENT],
                             internal_note="Rejected automatically: a document shows a number of another account's case.")
    if case.risk_level == RiskLevel.LOW and all(c.status == CheckStatus.PASS for c in checks):
        return DecisionInput(approved=True, internal_note="Approved automatically: every check passed.")
    return None


def _compact(number: str) -> str:
    return "".join(ch for ch in number.upper() if ch.isalnum())


def _quality(q: Any) -> dict[str, Any]:
    return {"acceptable": q.acceptable, "issues": list(q.issues), "sharpness": q.sharpness,
            "brightness": q.brightness, "face_ratio": q.face_ratio, "face_count": q.face_count}


def _profile_dob(user: User) -> date | None:
    value = (user.profile or {}).get("dob")
    if isinstance(value, date):
        return value
    try:
        return date.fromisoformat(str(value)) if value else None
    except ValueError:
        return None


def _ocr_check(doc: CaseDocument) -> Check:
    read = doc.number_masked is not None
    if doc.confidence >= OCR_PASS and read:
        return Check("ocr", CheckStatus.PASS, doc.confidence, "The document was read.", doc.id)
    return Check("ocr", CheckStatus.REVIEW, min(doc.confidence, 0.5),
                 "The document was read only in part; a person should look." if doc.confidence
                 else "Nothing could be read from the document.", doc.id)


def _validity_check(doc: CaseDocument, today: date) -> Check:
    """What the engine's `validation` says of the number and dates (checksums, format, expiry)."""
    validation = doc.validation or {}
    expiry = doc.fields.get("expiry_date")
    if is_expired(str(expiry) if expiry else None, today):
        return Check("document_validity", CheckStatus.FAIL, 0.0, "The document has expired.", doc.id)
    valid = validation.get("number_valid", validation.get("valid"))
    if valid is False:
        return Check("document_validity", CheckStatus.FAIL, 0.0,
                     validation.get("detail") or "The document number failed its checks.", doc.id)
    if valid is True:
        return Check("document_validity", CheckStatus.PASS, 1.0, "The document number passed its checks.", doc.id)
    return Check("document_validity", CheckStatus.REVIEW, 0.5, "The document number could not be checked.", doc.id)
