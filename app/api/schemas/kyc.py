"""KYC case shapes: uploads, the customer's case, the review queue and decisions."""

from __future__ import annotations

from typing import Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, Field

from app.api.schemas.common import Input, PersonName, PlainText, UtcDatetime
from app.domain.kyc import CORRECTABLE_FIELDS, IDENTITY_DOCUMENTS, REJECTION_REASONS, CaseDocument, KycCase

DocumentTypeIn = Literal["aadhaar", "pan", "passport", "driving_licence", "voter_id", "national_id"]
RejectionReason = Literal[
    "document_unreadable", "document_invalid", "document_expired", "name_mismatch", "dob_mismatch",
    "face_mismatch", "liveness_failed", "duplicate_document", "suspected_fraud", "other",
]
assert set(RejectionReason.__args__) == set(REJECTION_REASONS)  # type: ignore[attr-defined]


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


class CaseOut(BaseModel):
    """The customer's view of a case."""

    kyc_id: str
    status: Literal["OPEN", "SUBMITTED", "APPROVED", "REJECTED"]
    checks_state: Literal["NOT_STARTED", "RUNNING", "DONE"]
    created_at: UtcDatetime
    submitted_at: UtcDatetime | None
    checks_completed_at: UtcDatetime | None = Field(description="When the automated checks finished")
    documents: list[DocumentOut]
    selfie: SelfieOut | None
    missing: list[str] = Field(description="What the submission policy still needs (empty: ready to submit)")
    checks: list[CheckOut]
    overall_score: int | None
    risk_level: Literal["Low", "Medium", "High"] | None
    rejection_reason: str | None
    rejection_message: str | None
    decided_at: UtcDatetime | None

    @classmethod
    def fields_of(cls, case: KycCase, missing: list[str]) -> dict[str, Any]:
        selfie = case.selfie
        decision = case.decision
        rejected = decision is not None and not decision.approved
        return {
            "kyc_id": case.id, "status": case.status.value, "checks_state": case.checks_state.value,
            "created_at": case.created_at, "submitted_at": case.submitted_at,
            "checks_completed_at": case.checks_completed_at,
            "documents": [DocumentOut.of(d) for d in case.documents],
            "selfie": SelfieOut(face_detected=selfie.face_detected, quality=selfie.quality,
                                liveness_challenge_id=selfie.liveness_challenge_id,
                                liveness_passed=selfie.liveness_passed, uploaded_at=selfie.uploaded_at)
            if selfie else None,
            "missing": missing, "checks": [CheckOut(**c.as_dict()) for c in case.checks],
            "overall_score": case.overall_score, "risk_level": case.risk_level.value if case.risk_level else None,
            "rejection_reason": decision.reason if rejected and decision else None,
            "rejection_message": REJECTION_REASONS.get(decision.reason or "") if rejected and decision else None,
            "decided_at": decision.at if decision else None,
        }

    @classmethod
    def of(cls, case: KycCase, missing: list[str]) -> CaseOut:
        return cls(**cls.fields_of(case, missing))


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
    reason: str | None
    notes: str | None


class CaseDetail(CaseOut):
    """The auditor's view: everything the customer sees, plus the applicant, the risk breakdown,
    the files and the decision."""

    user_id: str
    applicant: dict[str, Any] = Field(description="Name, email and phone as they were at submission")
    breakdown: dict[str, float] = Field(description="Score 0-100 of each kind of check")
    files: list[FileLink]
    decision: DecisionOut | None


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
    fields: CorrectionFields = Field(description="Field name → the correct value",
                                     examples=[{"full_name": "Asha Rao"}])

    def corrections(self) -> dict[str, str]:
        return self.fields.model_dump(exclude_none=True)


class OneStepUpload(Input):
    document_type: DocumentTypeIn
    document_number: str = Field(min_length=4, max_length=32, pattern=r"^[A-Za-z0-9 \-]+$",
                                 examples=["ABCDE1234F"])
    # Text bound only (the route's body limit is the real one); the decoded file must fit MAX_UPLOAD_BYTES.
    document_data: str = Field(min_length=16, max_length=20 * 2**20,
                               description="The image, base64 or a data URL (JPG, PNG or PDF), at most 10 MB decoded")
    side: Literal["front", "back"] | None = None


class OneStepUploaded(BaseModel):
    message: str
    kyc_id: str
    status: Literal["OPEN", "SUBMITTED"]
    missing: list[str] = Field(description="What is still needed before the case can be submitted")

    model_config = ConfigDict(json_schema_extra={"example": {
        "message": "Document added and KYC submitted.", "kyc_id": "6740a1b2c3d4e5f6a7b8c9d0",
        "status": "SUBMITTED", "missing": []}})


class ApproveIn(Input):
    notes: PlainText | None = Field(None, max_length=2000)


class RejectIn(Input):
    reason: RejectionReason = Field(description="; ".join(f"`{k}`: {v}" for k, v in REJECTION_REASONS.items()))
    notes: PlainText | None = Field(None, max_length=2000)


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
