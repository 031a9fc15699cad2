"""KYC case shapes: uploads, the customer's case, the review queue and decisions."""

from __future__ import annotations

from typing import Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, Field, model_validator

from app.api.schemas.common import Input, PersonName, PlainText, UtcDatetime
from app.domain.kyc import (
    CORRECTABLE_FIELDS,
    IDENTITY_DOCUMENTS,
    REJECTION_REASONS,
    CaseDocument,
    KycCase,
    RejectionReason,
    customer_check,
)

DocumentTypeIn = Literal["aadhaar", "pan", "passport", "driving_licence", "voter_id", "national_id"]


class Extracted(BaseModel):
    fields: dict[str, Any] = Field(description="What OCR read; document numbers masked")
    confidence: float


class DocumentOut(BaseModel):
    document_id: str
    document_type: str
    side: str | None
    uploaded_at: UtcDatetime
    document_number: str | None = Field(description="Masked: all but the last 4 characters")
    extracted: Extracted
    validation: dict[str, Any] = Field(description="Check digits, checksum, format and expiry as the engine judged")
    corrections: dict[str, Any] = Field(description="The customer's corrections, beside the OCR value (numbers masked)")

    @classmethod
    def of(cls, d: CaseDocument) -> DocumentOut:
        corrections = d.visible_corrections()
        return cls(document_id=d.id, document_type=d.type, side=d.side, uploaded_at=d.uploaded_at,
                   document_number=d.number_masked, extracted=Extracted(fields=d.fields, confidence=d.confidence),
                   validation=d.validation, corrections=corrections)


class DocumentUploaded(DocumentOut):
    kyc_id: str

    model_config = ConfigDict(json_schema_extra={"example": {
        "kyc_id": "6740a1b2c3d4e5f6a7b8c9d0", "document_id": "9f1c2e3d4b5a69788796a5b4c3d2e1f0",
        "document_type": "pan", "side": "front", "uploaded_at": "2026-11-22T10:00:00.000Z",
        "document_number": "XXXXXX234F",
        "extracted": {"fields": {"full_name": "ASHA RAO", "date_of_birth": "1990-04-12",
                                 "document_number": "XXXXXX234F", "father_name": "RAMESH RAO"}, "confidence": 0.93},
        "validation": {"number_valid": True, "holder_type": "Individual"}, "corrections": {}}})


class SelfieOut(BaseModel):
    face_detected: bool
    quality: dict[str, Any] = Field(description="acceptable, issues, sharpness, brightness, face_ratio, face_count")
    liveness_challenge_id: str | None
    liveness_passed: bool | None
    uploaded_at: UtcDatetime


class SelfieUploaded(BaseModel):
    kyc_id: str
    face_detected: bool
    quality: dict[str, Any]

    model_config = ConfigDict(json_schema_extra={"example": {
        "kyc_id": "6740a1b2c3d4e5f6a7b8c9d0", "face_detected": True,
        "quality": {"acceptable": True, "issues": [], "sharpness": 182.4, "brightness": 131.0, "face_ratio": 0.41,
                    "face_count": 1}}})


class CheckOut(BaseModel):
    name: str = Field(description="ocr, document_validity, name_match, dob_match, face_match, selfie_quality, "
                                  "liveness, duplicate_document, corrections")
    status: Literal["pass", "fail", "review"]
    score: float = Field(description="0..1")
    detail: str
    document_id: str | None


class FileLink(BaseModel):
    file_id: str
    kind: Literal["document", "selfie"]
    document_id: str | None
    content_type: str
    url: str = Field(description="GET it with the same bearer token; every view is audit-logged")


class DecisionOut(BaseModel):
    by: str
    role: str
    at: UtcDatetime
    approved: bool
    reason: str | None = Field(description="The first of `reasons` (the single code of earlier versions)")
    reasons: list[RejectionReason]
    internal_note: str | None = Field(description="The case file's note: auditors only, never the customer")
    customer_message: str | None = Field(description="What the customer was told beside the decision")


class RejectionReasonOut(BaseModel):
    code: RejectionReason
    message: str = Field(description="The sentence the customer was mailed")


def _rejection(case: KycCase) -> dict[str, Any]:
    decision = case.decision
    rejected = decision is not None and not decision.approved
    reasons = decision.reasons if decision is not None and rejected else []
    return {
        "rejection_reason": reasons[0] if reasons else None,
        "rejection_message": REJECTION_REASONS.get(reasons[0]) if reasons else None,
        "rejection_reasons": [RejectionReasonOut(code=RejectionReason(r), message=REJECTION_REASONS[r])
                              for r in reasons if r in REJECTION_REASONS],
        "decided_at": decision.at if decision else None,
    }


class _CaseHead(BaseModel):
    """What both views of a case begin with."""

    kyc_id: str
    status: Literal["OPEN", "SUBMITTED", "APPROVED", "REJECTED"]
    checks_state: Literal["NOT_STARTED", "RUNNING", "DONE"]
    created_at: UtcDatetime
    submitted_at: UtcDatetime | None
    checks_completed_at: UtcDatetime | None = Field(description="When the automated checks finished")


class CaseDetail(_CaseHead):
    """The auditor's view: every check with its score and detail, the risk, the breakdown, the files,
    the applicant and the decision with its internal note."""

    documents: list[DocumentOut]
    selfie: SelfieOut | None
    missing: list[str] = Field(description="What the submission policy still needs (empty: ready to submit)")
    checks: list[CheckOut]
    overall_score: int | None
    risk_level: Literal["Low", "Medium", "High"] | None
    rejection_reason: str | None
    rejection_message: str | None
    rejection_reasons: list[RejectionReasonOut]
    decided_at: UtcDatetime | None
    user_id: str
    applicant: dict[str, Any] = Field(description="Name, email and phone as they were at submission")
    breakdown: dict[str, float] = Field(description="Score 0-100 of each kind of check")
    files: list[FileLink]
    decision: DecisionOut | None

    @classmethod
    def of(cls, case: KycCase, missing: list[str], files: list[FileLink]) -> CaseDetail:
        selfie, decision = case.selfie, case.decision
        return cls(
            kyc_id=case.id, status=case.status.value, checks_state=case.checks_state.value,
            created_at=case.created_at, submitted_at=case.submitted_at, checks_completed_at=case.checks_completed_at,
            documents=[DocumentOut.of(d) for d in case.documents],
            selfie=SelfieOut(face_detected=selfie.face_detected, quality=selfie.quality,
                             liveness_challenge_id=selfie.liveness_challenge_id,
                             liveness_passed=selfie.liveness_passed, uploaded_at=selfie.uploaded_at)
            if selfie else None,
            missing=missing, checks=[CheckOut(**c.as_dict()) for c in case.checks],
            overall_score=case.overall_score, risk_level=case.risk_level.value if case.risk_level else None,
            **_rejection(case), user_id=case.user_id, applicant=case.applicant, breakdown=case.breakdown,
            files=files,
            decision=DecisionOut(by=decision.by, role=decision.role, at=decision.at, approved=decision.approved,
                                 reason=decision.reason, reasons=[RejectionReason(r) for r in decision.reasons],
                                 internal_note=decision.internal_note, customer_message=decision.customer_message)
            if decision else None)


# --- the customer's view: what to do, never how the case is scored ---------------------------------


class CustomerExtracted(BaseModel):
    fields: dict[str, Any] = Field(description="What was read from the document (numbers masked): correct it "
                                               "with PUT /kyc/documents/{document_id}/corrections")


class CustomerDocument(BaseModel):
    document_id: str
    document_type: str
    side: str | None
    uploaded_at: UtcDatetime
    document_number: str | None = Field(description="Masked: all but the last 4 characters")
    extracted: CustomerExtracted
    validation: dict[str, Any] = Field(description="Format, checksum and expiry of the number as read")
    corrections: dict[str, Any] = Field(description="Your corrections, beside what was read (numbers masked)")

    @classmethod
    def of(cls, d: CaseDocument) -> CustomerDocument:
        return cls(document_id=d.id, document_type=d.type, side=d.side, uploaded_at=d.uploaded_at,
                   document_number=d.number_masked, extracted=CustomerExtracted(fields=d.fields),
                   validation=d.validation, corrections=d.visible_corrections())


class CustomerSelfie(BaseModel):
    face_detected: bool
    acceptable: bool = Field(description="Sharp and bright enough, one face")
    issues: list[str] = Field(description="What to fix in a new selfie, if anything")
    liveness_challenge_id: str | None
    liveness_passed: bool | None
    uploaded_at: UtcDatetime


class CustomerCheckOut(BaseModel):
    name: str = Field(description="ocr, document_validity, name_match, dob_match, face_match, selfie_quality, "
                                  "liveness, duplicate_document, corrections")
    state: Literal["pass", "needs_attention"] = Field(description="needs_attention: failed or waiting for a reviewer")
    hint: str | None = Field(description="What you can do about it")
    document_id: str | None


class CustomerCase(_CaseHead):
    """The customer's view of their case: the status, what is missing and what to fix. Scores, the
    face-match similarity and the risk level are for auditors only (`GET /kyc/{kyc_id}`)."""

    documents: list[CustomerDocument]
    selfie: CustomerSelfie | None
    missing: list[str] = Field(description="What the submission policy still needs (empty: ready to submit)")
    checks: list[CustomerCheckOut]
    rejection_reason: str | None = Field(description="The first of `rejection_reasons`")
    rejection_message: str | None
    rejection_reasons: list[RejectionReasonOut]
    message: str | None = Field(description="The reviewer's message to you with the decision")
    decided_at: UtcDatetime | None

    @classmethod
    def of(cls, case: KycCase, missing: list[str]) -> CustomerCase:
        selfie, decision = case.selfie, case.decision
        checks = [customer_check(c) for c in case.checks]
        return cls(
            kyc_id=case.id, status=case.status.value, checks_state=case.checks_state.value,
            created_at=case.created_at, submitted_at=case.submitted_at, checks_completed_at=case.checks_completed_at,
            documents=[CustomerDocument.of(d) for d in case.documents],
            selfie=CustomerSelfie(face_detected=selfie.face_detected,
                                  acceptable=bool(selfie.quality.get("acceptable")),
                                  issues=list(selfie.quality.get("issues") or []),
                                  liveness_challenge_id=selfie.liveness_challenge_id,
                                  liveness_passed=selfie.liveness_passed, uploaded_at=selfie.uploaded_at)
            if selfie else None,
            missing=missing,
            checks=[CustomerCheckOut(name=c.name, state=c.state.value, hint=c.hint, document_id=c.document_id)
                    for c in checks],
            **_rejection(case), message=decision.customer_message if decision else None)


class PendingCase(BaseModel):
    kyc_id: str
    user_id: str
    user_name: str | None
    user_email: str | None
    document_type: str | None = Field(description="The case's proof of identity (first document)")
    document_number: str | None = Field(description="Masked")
    submitted_at: UtcDatetime | None
    checks_state: Literal["NOT_STARTED", "RUNNING", "DONE"]
    risk_level: Literal["Low", "Medium", "High"] | None
    overall_score: int | None

    @classmethod
    def of(cls, case: KycCase) -> PendingCase:
        first = next((d for d in case.documents if d.type in IDENTITY_DOCUMENTS),
                     case.documents[0] if case.documents else None)
        return cls(kyc_id=case.id, user_id=case.user_id, user_name=case.applicant.get("name"),
                   user_email=case.applicant.get("email"), document_type=first.type if first else None,
                   document_number=first.number_masked if first else None, submitted_at=case.submitted_at,
                   checks_state=case.checks_state.value,
                   risk_level=case.risk_level.value if case.risk_level else None, overall_score=case.overall_score)


class Submitted(BaseModel):
    kyc_id: str
    status: str

    model_config = ConfigDict(json_schema_extra={"example": {"kyc_id": "6740a1b2c3d4e5f6a7b8c9d0",
                                                             "status": "SUBMITTED"}})


IsoDateText = Annotated[str, Field(max_length=10, description="YYYY-MM-DD")]


class CorrectionFields(Input):
    """Each correctable field with the length of what it is; a field left out (or null) is not corrected."""

    full_name: PersonName | None = None
    father_name: PersonName | None = None
    date_of_birth: IsoDateText | None = None
    issue_date: IsoDateText | None = None
    expiry_date: IsoDateText | None = None
    gender: PlainText | None = Field(None, max_length=16)
    address: PlainText | None = Field(None, max_length=300)
    nationality: PlainText | None = Field(None, max_length=64)
    place_of_birth: PlainText | None = Field(None, max_length=120)
    document_number: PlainText | None = Field(None, max_length=32)


assert set(CorrectionFields.model_fields) == set(CORRECTABLE_FIELDS)


class CorrectionsIn(Input):
    fields: CorrectionFields = Field(description="Field name → the correct value")

    # The field to type into, left empty: an untouched Swagger form is refused, never stored as a correction.
    model_config = ConfigDict(json_schema_extra={"example": {"fields": {"full_name": ""}}})

    def corrections(self) -> dict[str, str]:
        return self.fields.model_dump(exclude_none=True)


class OneStepUpload(Input):
    document_type: DocumentTypeIn
    document_number: str = Field(min_length=4, max_length=32, pattern=r"^[A-Za-z0-9 \-]+$",
                                 description="As printed on the document, e.g. a PAN `ABCPR1234K`")
    # Text bound only (the route's body limit is the real one); the decoded file must fit MAX_UPLOAD_BYTES.
    document_data: str = Field(min_length=16, max_length=20 * 2**20,
                               description="The image, base64 or a data URL (JPG, PNG or PDF), at most 10 MB decoded")
    side: Literal["front", "back"] | None = Field(None, description="Card side; read from the card if omitted")

    # The customer's own number and image are left empty (an untouched Swagger form is refused, never stored
    # with an invented number); `side` is left out rather than pre-filled.
    model_config = ConfigDict(json_schema_extra={"example": {
        "document_type": "pan", "document_number": "", "document_data": ""}})


class OneStepUploaded(BaseModel):
    message: str
    kyc_id: str
    status: Literal["OPEN", "SUBMITTED"]
    missing: list[str] = Field(description="What is still needed before the case can be submitted")

    model_config = ConfigDict(json_schema_extra={"example": {
        "message": "Document added and KYC submitted.", "kyc_id": "6740a1b2c3d4e5f6a7b8c9d0",
        "status": "SUBMITTED", "missing": []}})


_NOTE = "For the case file: auditors and the audit trail see it, the customer never does"
_MESSAGE = "Sent to the customer with the decision (by mail, or SMS to a phone)"
_OLD_NOTES = "Earlier name of `internal_note` (never sent to the customer); give one or the other"


class _DecisionIn(Input):
    internal_note: PlainText | None = Field(None, max_length=2000, description=_NOTE)
    customer_message: PlainText | None = Field(None, max_length=1000, description=_MESSAGE)
    notes: PlainText | None = Field(None, max_length=2000, description=_OLD_NOTES)

    @model_validator(mode="after")
    def _one_note(self) -> _DecisionIn:
        # A blank field (Swagger UI's empty example) stores nothing rather than "".
        self.internal_note, self.customer_message, self.notes = (
            v or None for v in (self.internal_note, self.customer_message, self.notes))
        if self.notes and self.internal_note:
            raise ValueError("Give internal_note; notes is its earlier name, not a second note.")
        self.internal_note, self.notes = self.internal_note or self.notes, None
        return self


class ApproveIn(_DecisionIn):
    model_config = ConfigDict(json_schema_extra={"example": {"internal_note": "", "customer_message": ""}})


class RejectIn(_DecisionIn):
    reasons: list[RejectionReason] | None = Field(
        None, min_length=1, max_length=len(REJECTION_REASONS),
        description="One or more of: " + "; ".join(f"`{k}`: {v}" for k, v in REJECTION_REASONS.items()))
    reason: RejectionReason | None = Field(None, description="Earlier form: a single reason; give it or `reasons`")

    model_config = ConfigDict(json_schema_extra={"example": {
        "reasons": ["document_unreadable"], "internal_note": "", "customer_message": ""}})

    @model_validator(mode="after")
    def _one_list(self) -> RejectIn:
        if (self.reason is None) == (self.reasons is None):
            raise ValueError("Give the reasons as `reasons` (a list), or one as `reason`; not both, not none.")
        self.reasons, self.reason = self.reasons or [self.reason], None  # type: ignore[list-item]
        return self


class DecisionMessage(BaseModel):
    message: str
    status: str


class KycCaseBrief(BaseModel):
    """One case in a user's history (staff view)."""

    kyc_id: str
    status: str
    checks_state: str
    risk_level: str | None
    overall_score: int | None
    created_at: UtcDatetime
    submitted_at: UtcDatetime | None
    decided_at: UtcDatetime | None

    @classmethod
    def of(cls, case: KycCase) -> KycCaseBrief:
        return cls(kyc_id=case.id, status=case.status.value, checks_state=case.checks_state.value,
                   risk_level=case.risk_level.value if case.risk_level else None, overall_score=case.overall_score,
                   created_at=case.created_at, submitted_at=case.submitted_at,
                   decided_at=case.decision.at if case.decision else None)
