"""The customer's KYC case: documents, the selfie, corrections and the submission.

Files are checked by content (the engine's decoders run before anything is stored), then
encrypted into GridFS. Document numbers are kept encrypted, masked for display and as a keyed
fingerprint for duplicate detection; the clear number never leaves this module's locals.
"""

from __future__ import annotations

import uuid
from dataclasses import replace
from datetime import date, datetime
from typing import Any

from app.domain.audit import AuditAction, ClientInfo
from app.domain.documents import DocumentType, is_valid_aadhaar, is_valid_pan
from app.domain.errors import InvalidInput, NoFaceDetected
from app.domain.events import EventType
from app.domain.kyc import (
    CORRECTABLE_FIELDS,
    DEFAULT_LEVEL,
    LIVENESS,
    SELFIE,
    AlreadyApproved,
    CaseDocument,
    CaseIncomplete,
    CaseNotEditable,
    CaseNotFound,
    CaseStatus,
    KycCase,
    Redo,
    Selfie,
    StepUp,
)
from app.domain.kyc_levels import LevelReached, Levels
from app.domain.users import KycStatus, User
from app.ml import tasks
from app.ml.gateway import MlGateway
from app.ml.images import sniff_format
from app.repositories.files import EncryptedFileStore
from app.repositories.kyc import KycCaseRepository
from app.repositories.liveness_challenges import LivenessChallengeRepository
from app.repositories.transactions import Transactions, UnitOfWork
from app.services.audit import AuditService
from app.services.clock import Clock
from app.services.encryption import DocumentCipher
from app.services.events import EventService
from app.services.jobs import JobService
from app.services.kyc.checks import CHECKS_JOB

CONTENT_TYPES = {"jpeg": "image/jpeg", "png": "image/png", "pdf": "application/pdf"}


def _number_aad(user_id: str, case_id: str, document_id: str) -> str:
    return f"kyc-number|{user_id}|{case_id}|{document_id}"


class KycCaseService:
    def __init__(
        self, *, levels: Levels, cases: KycCaseRepository, files: EncryptedFileStore, cipher: DocumentCipher,
        challenges: LivenessChallengeRepository, ml: MlGateway, limits: tasks.Limits, transactions: Transactions,
        jobs: JobService, audit: AuditService, clock: Clock, events: EventService, final_rejection_days: int | None = None,
    ) -> None:
        self.levels, self.cases, self.files, self.cipher = levels, cases, files, cipher
        self.challenges, self.ml, self.limits, self.transactions = challenges, ml, limits, transactions
        self.jobs, self.audit, self.clock, self.events = jobs, audit, clock, events
        self.final_rejection_days = final_rejection_days  # None: a FINAL rejection is for good

    async def _case_for_upload(self, user: User, upload: Redo) -> KycCase:
        latest = await self.cases.latest_for_user(user.id)
        if latest is not None and latest.status == CaseStatus.APPROVED:
            raise AlreadyApproved("Your KYC is already approved.")
        if latest is not None and latest.status == CaseStatus.SUBMITTED:
            raise CaseNotEditable("Your KYC case is being reviewed; wait for the decision.", code="kyc_in_review")
        if latest is not None and latest.status in (CaseStatus.OPEN, CaseStatus.RESUBMISSION_REQUESTED):
            latest.ensure_open(upload)  # sent back: only what the auditor asked for
            return latest
        if latest is not None and latest.step_up is not None:  # a step-up was rejected: still approved below it
            raise AlreadyApproved("Your KYC is already approved; to step up again, POST /kyc/level first.")
        if latest is not None and latest.decision is not None:
            latest.decision.ensure_may_reapply(self.clock.now(), self.final_rejection_days)
        return await self.cases.open_case(user.id, self.clock.now())  # none yet, or the last was rejected (RETRY)

    async def upload_document(self, user: User, *, document_type: str, side: str | None, data: bytes,
                              declared_number: str | None, client: ClientInfo) -> tuple[KycCase, CaseDocument]:
        if document_type not in {d.value for d in DocumentType} - {DocumentType.GENERIC}:
            raise InvalidInput(f"Unknown document type {document_type!r}.", code="invalid_document_type")
        await self._case_for_upload(user, Redo("document", document_type))  # refuse early, before the models run
        # Decoding and OCR both check the content: nothing unreadable is ever stored.
        reading = await self.ml.run(tasks.read_document, data, document_type, self.limits)
        number = self._document_number(document_type, declared_number, reading.document_number_raw)
        side = side or reading.side
        case = await self._case_for_upload(user, Redo("document", document_type, side))
        document_id = uuid.uuid4().hex
        content_type = CONTENT_TYPES[sniff_format(data) or "jpeg"]
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
            id=document_id, type=document_type, side=side, file_id=file_id,
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
        for old in replaced:  # a better photo of the same side: the file this update took out goes,
            if all(old.id not in r.document_ids for r in case.rounds):  # unless an earlier round keeps it
                await self.files.delete(old.file_id)
        await self.audit.record(AuditAction.KYC_DOCUMENT_UPLOADED, user_id=user.id, actor=user, client=client,
                                kyc_id=case.id, document_id=document_id, document_type=document_type,
                                file_id=file_id)
        return updated, document

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
        upload = Redo(LIVENESS if liveness_challenge_id else SELFIE)
        await self._case_for_upload(user, upload)
        quality = await self.ml.run(tasks.check_selfie, data, self.limits)
        if not quality.face_detected:
            raise NoFaceDetected("No face was found in the selfie; take it again facing the camera.")
        passed = None
        if liveness_challenge_id:
            passed = await self.challenges.passed_by(liveness_challenge_id, f"user:{user.id}", self.clock.now())
            if not passed:
                raise InvalidInput("That liveness challenge was not passed by you, or a selfie used it already.",
                                   code="liveness_not_passed")
        case = await self._case_for_upload(user, upload)
        content_type = CONTENT_TYPES[sniff_format(data) or "jpeg"]
        file_id = await self.files.put(data, owner_id=user.id, case_id=case.id, content_type=content_type)
        selfie = Selfie(file_id=file_id, content_type=content_type, uploaded_at=self.clock.now(),
                        face_detected=True, quality=_quality(quality), liveness_challenge_id=liveness_challenge_id,
                        liveness_passed=passed)
        old = case.selfie
        updated = await self.cases.set_selfie(case.id, user.id, selfie, self.clock.now())
        if updated is None:
            await self.files.delete(file_id)
            raise CaseNotEditable("The case was submitted meanwhile; it can no longer be changed.")
        if old is not None and all(not r.selfie or r.selfie.file_id != old.file_id for r in case.rounds):
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
        case.ensure_open(document=document)  # sent back: only a document uploaded since
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
        if case is None or case.status not in (CaseStatus.OPEN, CaseStatus.RESUBMISSION_REQUESTED):
            raise CaseIncomplete("Nothing to submit: upload your documents and a selfie first.",
                                 missing=self.levels.of(DEFAULT_LEVEL).missing([], False))
        missing = self.missing(case)
        if missing:
            raise CaseIncomplete("The case is incomplete: " + "; ".join(missing) + ".", missing=missing)
        applicant = {"name": user.name, "email": user.email, "phone": user.phone}
        # Sent back: the same case again, its round told what was redone; the checks job keeps what did not change.
        redone = [i.label for i in case.request.items] if case.request else None
        nth = f":{len(case.rounds) + 1}" if redone else ""

        async def step(tx: UnitOfWork) -> KycCase | None:
            submitted = await tx.kyc.submit(case.id, user.id, applicant, self.clock.now(), redone)
            if submitted is not None:
                await self.jobs.enqueue(CHECKS_JOB, f"{CHECKS_JOB}:{case.id}{nth}", {"case_id": case.id}, tx=tx)
                if not case.steps_up_from(user.kyc_level):
                    await tx.users.set_kyc_status(user.id, KycStatus.SUBMITTED, self.clock.now())
                await self.events.publish(EventType.KYC_RESUBMITTED if redone else EventType.KYC_SUBMITTED, tx=tx,
                                          user_id=user.id, data={
                    "kyc_id": case.id, "status": submitted.status.value, "level": case.level,
                    "documents": [{"type": d.type, "number_masked": d.number_masked} for d in submitted.documents],
                    **({"round": len(case.rounds) + 1, "replaced": redone} if redone else {})})
            return submitted

        submitted = await self.transactions.run(step)
        if submitted is None:
            raise CaseNotEditable("The case was already submitted.", code="kyc_already_submitted")
        await self.audit.record(AuditAction.KYC_RESUBMITTED if redone else AuditAction.KYC_SUBMITTED, user_id=user.id,
                                actor=user, client=client, kyc_id=case.id, document_types=[d.type for d in case.documents],
                                replaced=redone)
        return submitted

    def missing(self, case: KycCase) -> list[str]:
        return case.missing(self.levels.of(case.level))

    async def choose_level(self, user: User, level: str, client: ClientInfo) -> KycCase:
        """`POST /kyc/level`: the open case is for `level` from now on, or a case for it is opened: for an
        approved customer below it, a step-up that keeps the approved case's documents and selfie and the
        results of checks whose inputs stay the same, so only what the level adds is asked."""
        self.levels[level]  # 422 when unknown
        if user.kyc_level is not None and self.levels.reaches(user.kyc_level, level):
            raise LevelReached(f"You are verified at {user.kyc_level!r}, which covers {level!r}.")
        latest, now = await self.cases.latest_for_user(user.id), self.clock.now()
        if latest is not None and latest.status in (CaseStatus.SUBMITTED, CaseStatus.RESUBMISSION_REQUESTED):
            raise CaseNotEditable("Your KYC case is being reviewed; wait for the decision.", code="kyc_in_review")
        if latest is not None and latest.decision is not None:  # a FINAL rejection binds a step-up too
            latest.decision.ensure_may_reapply(now, self.final_rejection_days)
        if latest is not None and latest.status == CaseStatus.OPEN:
            case = await self.cases.set_level(latest.id, user.id, level, now)
        elif user.kyc_level is None or latest is None:
            case = await self.cases.open_case(user.id, now, level)
        else:  # approved below `level`: from the approved case (the latest, or the one a rejected step-up left)
            approved = latest if latest.step_up is None else await self.cases.get(latest.step_up.from_case)
            case = await self._step_up(user, approved or latest, level, now)
        if case is None:
            raise CaseNotEditable("The case changed meanwhile; read it again.")
        await self.audit.record(AuditAction.KYC_LEVEL_REQUESTED, user_id=user.id, actor=user, client=client,
                                kyc_id=case.id, level=level, step_up_from=case.step_up.from_case if case.step_up else None)
        return case

    async def _step_up(self, user: User, approved: KycCase, level: str, now: datetime) -> KycCase | None:
        """A new case for `level` holding copies of the approved case's files and numbers, re-encrypted
        under the new case (each is bound to its case) with the same document ids, so kept results still apply."""
        case = await self.cases.open_case(user.id, now, level)

        async def copy(file_id: str) -> str:
            data, content_type = await self.files.get(file_id, owner_id=user.id, case_id=approved.id)
            return await self.files.put(data, owner_id=user.id, case_id=case.id, content_type=content_type)

        def rebind(token: str | None, document_id: str, suffix: str = "") -> str | None:
            return token and self.cipher.encrypt_text(self.cipher.decrypt_text(
                token, _number_aad(user.id, approved.id, document_id) + suffix),
                _number_aad(user.id, case.id, document_id) + suffix)

        documents = [replace(d, file_id=await copy(d.file_id), number_encrypted=rebind(d.number_encrypted, d.id),
                             corrections={**d.corrections, **({"document_number_encrypted": rebind(
                                 d.corrections["document_number_encrypted"], d.id, "|corrected")}
                                 if "document_number_encrypted" in d.corrections else {})})
                     for d in approved.documents]
        selfie = approved.selfie and replace(approved.selfie, file_id=await copy(approved.selfie.file_id))
        kept = StepUp(approved.id, approved.level, {d.id for d in documents}, selfie.file_id if selfie else None,
                      approved.checks)
        return await self.cases.carry_over(case.id, user.id, documents, selfie, kept, now)

    async def upload_and_submit(self, user: User, *, document_type: str, side: str | None, data: bytes,
                                declared_number: str | None, client: ClientInfo) -> tuple[KycCase, list[str]]:
        """`POST /kyc/upload`: adds the document, then submits the case once it meets the submission
        policy. Returns the case and what it still needs (nothing once submitted)."""
        case, _ = await self.upload_document(user, document_type=document_type, side=side, data=data,
                                             declared_number=declared_number, client=client)
        missing = self.missing(case)
        if missing:
            return case, missing
        return await self.submit(user, client), []


def _iso_date(value: str) -> bool:
    try:
        date.fromisoformat(value)
    except ValueError:
        return False
    return len(value) == 10


def _compact(number: str) -> str:
    return "".join(ch for ch in number.upper() if ch.isalnum())


def _quality(q: Any) -> dict[str, Any]:
    return {"acceptable": q.acceptable, "issues": list(q.issues), "sharpness": q.sharpness,
            "brightness": q.brightness, "face_ratio": q.face_ratio, "face_count": q.face_count}

