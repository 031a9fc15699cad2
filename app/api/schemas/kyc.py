"""KYC case shapes: uploads, the customer's case, the review queue and decisions."""

from __future__ import annotations

from typing import Annotated, Any, Literal

from pydantic import AliasChoices, AliasPath, BaseModel, ConfigDict, Field, model_validator

from app.api.schemas.common import Input, Out, Overlay, PersonName, PlainText, UtcDatetime
from app.domain.kyc import (
    CORRECTABLE_FIELDS,
    HIDDEN_FROM_CUSTOMER,
    IDENTITY_DOCUMENTS,
    REJECTION_REASONS,
    CaseDocument,
    CaseStatus,
    ChecksState,
    CheckStatus,
    CustomerCheckState,
    KycCase,
    Redo,
    RejectionReason,
    RiskLevel,
    customer_check,
)

# The types a customer uploads (`DocumentType` less `generic`, which the engine alone uses).
DocumentTypeIn = Literal["aadhaar", "pan", "passport", "driving_licence", "voter_id", "national_id"]


class _Document(Out):
    """What both views of a case's document begin with."""

    document_id: str = Field(validation_alias=AliasChoices("document_id", "id"))
    document_type: str = Field(validation_alias=AliasChoices("document_type", "type"))
    side: str | None
    uploaded_at: UtcDatetime
    document_number: str | None = Field(validation_alias=AliasChoices("document_number", "number_masked"),
                                        description="Masked: all but the last 4 characters")

    @model_validator(mode="before")
    @classmethod
    def _nest(cls, d: Any) -> Any:
        # `extracted` is read from the document itself; its corrections as shown (numbers masked, no cipher text).
        if isinstance(d, CaseDocument | Overlay):
            return Overlay(d, {"extracted": d, "corrections": d.visible_corrections()})
        return d


class Extracted(Out):
    fields: dict[str, Any] = Field(description="What OCR read; document numbers masked")
    confidence: float


class DocumentOut(_Document):
    extracted: Extracted
    validation: dict[str, Any] = Field(description="Check digits, checksum, format and expiry as the engine judged")
    corrections: dict[str, Any] = Field(description="The customer's corrections, beside the OCR value (numbers masked)")


class DocumentUploaded(DocumentOut):
    kyc_id: str

    model_config = ConfigDict(json_schema_extra={"example": {
        "kyc_id": "6740a1b2c3d4e5f6a7b8c9d0", "document_id": "9f1c2e3d4b5a69788796a5b4c3d2e1f0",
        "document_type": "pan", "side": "front", "uploaded_at": "2026-11-22T10:00:00.000Z",
        "document_number": "XXXXXX234F",
        "extracted": {"fields": {"full_name": "ASHA RAO", "date_of_birth": "1990-04-12",
                                 "document_number": "XXXXXX234F", "father_name": "RAMESH RAO"}, "confidence": 0.93},
        "validation": {"number_valid": True, "holder_type": "Individual"}, "corrections": {}}})


class SelfieOut(Out):
    face_detected: bool
    quality: dict[str, Any] = Field(description="acceptable, issues, sharpness, brightness, face_ratio, face_count")
    liveness_challenge_id: str | None
    liveness_passed: bool | None
    uploaded_at: UtcDatetime


class SelfieUploaded(Out):
    kyc_id: str
    face_detected: bool
    quality: dict[str, Any]

    model_config = ConfigDict(json_schema_extra={"example": {
        "kyc_id": "6740a1b2c3d4e5f6a7b8c9d0", "face_detected": True,
        "quality": {"acceptable": True, "issues": [], "sharpness": 182.4, "brightness": 131.0, "face_ratio": 0.41,
                    "face_count": 1}}})


class CheckOut(Out):
    name: str = Field(description="ocr, document_validity, name_match, dob_match, face_match, selfie_quality, "
                                  "liveness, duplicate_document, corrections, screening, face_duplicate")
    status: CheckStatus
    score: float = Field(description="0..1")
    detail: str
    document_id: str | None
    other_cases: list[str] = Field([], description="face_duplicate: the other accounts' cases with this face")


class FileLink(BaseModel):
    file_id: str
    kind: Literal["document", "selfie"]
    document_id: str | None
    content_type: str
    url: str = Field(description="GET it with the same bearer token; every view is audit-logged")


class DecisionOut(Out):
    by: str
    role: str
    at: UtcDatetime
    approved: bool
    reason: str | None = Field(description="The first of `reasons` (the single code of earlier versions)")
    reasons: list[RejectionReason]
    internal_note: str | None = Field(description="The case file's note: auditors only, never the customer")
    customer_message: str | None = Field(description="What the customer was told beside the decision")
    final: bool = Field(description="A FINAL rejection: the customer cannot open a new case (see KYC_FINAL_REJECTION_DAYS)")


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
        "reject_type": ("FINAL" if decision.final else "RETRY") if decision is not None and rejected else None,
    }


RejectType = Literal["RETRY", "FINAL"]
_REJECT_TYPE = "RETRY: the customer may start a new case; FINAL: not again (or only after KYC_FINAL_REJECTION_DAYS)"


class RedoOut(Out):
    kind: Literal["document", "selfie", "liveness"] = Field(description="liveness: a new selfie with a passed "
                                                                        "liveness challenge")
    document_type: str | None
    side: str | None = Field(description="null: whichever side the case has")


class ResubmissionAsked(Out):
    """What the reviewer asked to redo: upload each again (`missing` lists those not yet done), then submit."""

    round: int = Field(validation_alias=AliasChoices("round", "number"), description="1 for the first submission")
    items: list[RedoOut]
    message: str = Field(validation_alias=AliasChoices("message", "customer_message"))
    requested_at: UtcDatetime


class RoundOut(ResubmissionAsked):
    """A submission an auditor sent back, as it was: its documents, selfie and checks, what was asked, by
    whom, and what the customer replaced before submitting again."""

    internal_note: str | None
    requested_by: str
    requested_by_name: str
    submitted_at: UtcDatetime | None
    documents: list[DocumentOut]
    selfie: SelfieOut | None
    checks: list[CheckOut]
    overall_score: int | None
    risk_level: RiskLevel | None
    replaced: list[str]
    resubmitted_at: UtcDatetime | None


class StepUpOut(Out):
    from_case: str = Field(examples=["6740a1b2c3d4e5f6a7b8c9d0"])
    from_level: str = Field(examples=["basic"])
    document_ids: list[str] = Field(description="Documents (and their kept checks) carried over, same ids")


class LevelIn(Input):
    model_config = ConfigDict(json_schema_extra={"example": {"level": "full"}})

    level: str = Field(min_length=1, max_length=40, description="A level of KYC_LEVELS: basic, standard, full by default")


class _CaseHead(Out):
    """What both views of a case begin with."""

    kyc_id: str = Field(validation_alias=AliasChoices("kyc_id", "id"))
    status: CaseStatus
    level: str = Field(description="The verification level (KYC_LEVELS) the case is for; approved, the customer's "
                                   "`kyc_level`", examples=["standard"])
    checks_state: ChecksState
    created_at: UtcDatetime
    submitted_at: UtcDatetime | None
    checks_completed_at: UtcDatetime | None = Field(description="When the automated checks finished")
    valid_until: UtcDatetime | None = Field(description="Approved: when the approval runs out (by risk level: "
                                            "KYC_VALIDITY_YEARS, never past a document's expiry); then RE_KYC_DUE")


class CaseDetail(_CaseHead):
    """The auditor's view: every check with its score and detail, the risk, the breakdown, the files,
    the applicant and the decision with its internal note."""

    documents: list[DocumentOut]
    selfie: SelfieOut | None
    missing: list[str] = Field(description="What the submission policy still needs (empty: ready to submit)")
    checks: list[CheckOut]
    overall_score: int | None
    risk_level: RiskLevel | None
    rejection_reason: str | None
    rejection_message: str | None
    rejection_reasons: list[RejectionReasonOut]
    decided_at: UtcDatetime | None
    user_id: str
    applicant: dict[str, Any] = Field(description="Name, email and phone as they were at submission")
    breakdown: dict[str, float] = Field(description="Score 0-100 of each kind of check")
    files: list[FileLink]
    decision: DecisionOut | None
    reject_type: RejectType | None = Field(description=_REJECT_TYPE)
    rounds: list[RoundOut] = Field(description="Each earlier submission sent back for something to redo, oldest first")
    step_up: StepUpOut | None = Field(description="A step-up: the approved case and level it carried documents over from")

    @classmethod
    def view(cls, case: KycCase, missing: list[str], files: list[FileLink]) -> CaseDetail:
        return cls.of(case, missing=missing, files=files, checks=[c.as_dict() for c in case.checks], **_rejection(case))


# --- the customer's view: what to do, never how the case is scored ---------------------------------


class CustomerExtracted(Out):
    fields: dict[str, Any] = Field(description="What was read from the document (numbers masked): correct it "
                                               "with PUT /kyc/documents/{document_id}/corrections")


class CustomerDocument(_Document):
    extracted: CustomerExtracted
    validation: dict[str, Any] = Field(description="Format, checksum and expiry of the number as read")
    corrections: dict[str, Any] = Field(description="Your corrections, beside what was read (numbers masked)")


class CustomerSelfie(Out):
    face_detected: bool
    acceptable: bool = Field(validation_alias=AliasPath("quality", "acceptable"),
                             description="Sharp and bright enough, one face")
    issues: list[str] = Field(validation_alias=AliasPath("quality", "issues"),
                              description="What to fix in a new selfie, if anything")
    liveness_challenge_id: str | None
    liveness_passed: bool | None
    uploaded_at: UtcDatetime


class CustomerCheckOut(Out):
    name: str = Field(description="ocr, document_validity, name_match, dob_match, face_match, selfie_quality, "
                                  "liveness, duplicate_document, corrections")
    state: CustomerCheckState = Field(description="needs_attention: failed or waiting for a reviewer")
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
    reject_type: RejectType | None = Field(description=_REJECT_TYPE)
    resubmission: ResubmissionAsked | None = Field(description="While RESUBMISSION_REQUESTED: what to redo")

    @classmethod
    def view(cls, case: KycCase, missing: list[str]) -> CustomerCase:
        return cls.of(case, missing=missing, checks=[customer_check(c) for c in case.checks
                                                     if c.name not in HIDDEN_FROM_CUSTOMER],
                      message=case.decision.customer_message if case.decision else None, resubmission=case.request,
                      **_rejection(case))


class PendingCase(Out):
    kyc_id: str = Field(validation_alias=AliasChoices("kyc_id", "id"))
    user_id: str
    user_name: str | None
    user_email: str | None
    document_type: str | None = Field(description="The case's proof of identity (first document)")
    document_number: str | None = Field(description="Masked")
    submitted_at: UtcDatetime | None
    checks_state: ChecksState
    risk_level: RiskLevel | None
    overall_score: int | None

    @classmethod
    def view(cls, case: KycCase) -> PendingCase:
        first = next((d for d in case.documents if d.type in IDENTITY_DOCUMENTS),
                     case.documents[0] if case.documents else None)
        return cls.of(case, user_name=case.applicant.get("name"), user_email=case.applicant.get("email"),
                      document_type=first.type if first else None,
                      document_number=first.number_masked if first else None)


class Submitted(Out):
    kyc_id: str = Field(validation_alias=AliasChoices("kyc_id", "id"))
    status: CaseStatus

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
    reject_type: RejectType = Field("RETRY", description=_REJECT_TYPE)

    model_config = ConfigDict(json_schema_extra={"example": {
        "reasons": ["document_unreadable"], "internal_note": "", "customer_message": ""}})

    @model_validator(mode="after")
    def _one_list(self) -> RejectIn:
        if (self.reason is None) == (self.reasons is None):
            raise ValueError("Give the reasons as `reasons` (a list), or one as `reason`; not both, not none.")
        self.reasons, self.reason = self.reasons or [self.reason], None  # type: ignore[list-item]
        return self


class DocumentRedoIn(Input):
    document_type: DocumentTypeIn
    side: Literal["front", "back"] | None = Field(None, description="Left out: whichever side the case has")


class ResubmissionIn(Input):
    items: list[DocumentRedoIn | Literal["selfie", "liveness"]] = Field(
        min_length=1, max_length=12, description="What to redo: a document of the case (`{document_type, side?}`), "
                                                 "`selfie`, or `liveness` (a new selfie with a passed challenge)")
    customer_message: PlainText = Field(min_length=1, max_length=1000, description="Sent to the customer: what to do")
    internal_note: PlainText | None = Field(None, max_length=2000, description=_NOTE)

    model_config = ConfigDict(json_schema_extra={"example": {
        "items": [{"document_type": "pan", "side": "front"}], "customer_message": "", "internal_note": ""}})

    def redo(self) -> list[Redo]:
        return [Redo(i) if isinstance(i, str) else Redo("document", i.document_type, i.side) for i in self.items]


class DecisionMessage(BaseModel):
    message: str
    status: str


class ClaimOut(BaseModel):
    """Who holds the case: until `held_until` no other auditor may claim or decide it; all null when
    nobody does (after a release)."""

    model_config = ConfigDict(json_schema_extra={"example": {
        "kyc_id": "6741f0c2a1b2c3d4e5f60701", "held_by": "6741f0c2a1b2c3d4e5f60719", "held_by_name": "Ravi Auditor",
        "held_until": "2026-11-22T10:30:00.000Z"}})

    kyc_id: str
    held_by: str | None
    held_by_name: str | None
    held_until: UtcDatetime | None

    @classmethod
    def of(cls, case: KycCase) -> ClaimOut:
        held = case.claim
        return cls(kyc_id=case.id, held_by=held.by if held else None, held_by_name=held.by_name if held else None,
                   held_until=held.until if held else None)


class KycCaseBrief(Out):
    """One case in a user's history (staff view)."""

    kyc_id: str = Field(validation_alias=AliasChoices("kyc_id", "id"))
    status: CaseStatus
    checks_state: ChecksState
    risk_level: RiskLevel | None
    overall_score: int | None
    created_at: UtcDatetime
    submitted_at: UtcDatetime | None
    decided_at: UtcDatetime | None
