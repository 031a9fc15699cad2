"""KYC cases: what a submission needs, how its checks add up to a risk level, who may decide it.

A case gathers one submission: documents (front/back), a selfie, the automated checks and
the auditor's decision. No I/O here; `app/services/kyc.py` runs the checks and stores the case.
"""

from __future__ import annotations

import re
import unicodedata
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from datetime import date, datetime
from enum import StrEnum
from typing import Any

from rapidfuzz import fuzz

from app.domain.documents import DocumentType
from app.domain.errors import Conflict, NotFound, RuleViolation


class CaseStatus(StrEnum):
    OPEN = "OPEN"            # collecting documents and the selfie
    SUBMITTED = "SUBMITTED"  # checks run, then an auditor (or the auto-decision) decides
    APPROVED = "APPROVED"
    REJECTED = "REJECTED"


class ChecksState(StrEnum):
    NOT_STARTED = "NOT_STARTED"
    RUNNING = "RUNNING"
    DONE = "DONE"


class CheckStatus(StrEnum):
    PASS = "pass"
    FAIL = "fail"
    REVIEW = "review"


class RiskLevel(StrEnum):
    LOW = "Low"
    MEDIUM = "Medium"
    HIGH = "High"


IDENTITY_DOCUMENTS = (DocumentType.AADHAAR, DocumentType.PASSPORT, DocumentType.DRIVING_LICENCE,
                      DocumentType.VOTER_ID, DocumentType.NATIONAL_ID)

# Documented reason codes for a rejection; the customer's mail carries the sentence.
REJECTION_REASONS: dict[str, str] = {
    "document_unreadable": "A document could not be read; upload a sharper photo of the whole card.",
    "document_invalid": "A document number is not valid.",
    "document_expired": "A document has expired.",
    "name_mismatch": "The names on your documents and profile do not agree.",
    "dob_mismatch": "The dates of birth on your documents and profile do not agree.",
    "face_mismatch": "Your selfie does not match the photo on your document.",
    "liveness_failed": "The liveness check did not pass.",
    "duplicate_document": "This document is already registered to another account.",
    "suspected_fraud": "The submission could not be accepted.",
    "other": "The submission could not be accepted.",
}


class RejectionReason(StrEnum):
    """A reason code of a rejection; several may be given at once, each mailed as its sentence."""

    DOCUMENT_UNREADABLE = "document_unreadable"
    DOCUMENT_INVALID = "document_invalid"
    DOCUMENT_EXPIRED = "document_expired"
    NAME_MISMATCH = "name_mismatch"
    DOB_MISMATCH = "dob_mismatch"
    FACE_MISMATCH = "face_mismatch"
    LIVENESS_FAILED = "liveness_failed"
    DUPLICATE_DOCUMENT = "duplicate_document"
    SUSPECTED_FRAUD = "suspected_fraud"
    OTHER = "other"


assert set(RejectionReason) == set(REJECTION_REASONS)

# Weights of each check in `overall_score` (0-100); settings may override them.
DEFAULT_WEIGHTS: dict[str, float] = {
    "ocr": 10, "document_validity": 20, "name_match": 15, "dob_match": 10, "face_match": 25,
    "selfie_quality": 5, "liveness": 10, "duplicate_document": 5, "corrections": 0,
}


class CaseNotFound(NotFound):
    """The KYC case does not exist."""

    code = "kyc_not_found"


class CaseIncomplete(RuleViolation):
    """The case is missing documents the submission policy asks for."""

    code = "kyc_incomplete"


class CaseNotEditable(Conflict):
    """The case is no longer open for changes."""

    code = "kyc_not_editable"


class CaseNotReviewable(Conflict):
    """The case cannot be decided now."""

    code = "kyc_not_reviewable"


class SecondApproverRequired(Conflict):
    """Four eyes: the auditor who gave a case its first approval cannot give the second."""

    code = "second_approver_required"


class AlreadyApproved(Conflict):
    """The customer's KYC is already approved."""

    code = "kyc_already_approved"


@dataclass(frozen=True)
class SubmissionPolicy:
    """What a case needs before it can be submitted (default: one proof of identity, PAN, a selfie)."""

    identity_documents: tuple[str, ...] = tuple(IDENTITY_DOCUMENTS)
    required_documents: tuple[str, ...] = (DocumentType.PAN,)
    selfie: bool = True

    def missing(self, document_types: Iterable[str], has_selfie: bool) -> list[str]:
        present = set(document_types)
        missing = []
        if self.identity_documents and not present & set(self.identity_documents):
            missing.append("identity_document (one of: " + ", ".join(self.identity_documents) + ")")
        missing += [str(d) for d in self.required_documents if d not in present]
        if self.selfie and not has_selfie:
            missing.append("selfie")
        return missing


@dataclass
class Check:
    name: str
    status: CheckStatus
    score: float  # 0..1
    detail: str
    document_id: str | None = None

    def as_dict(self) -> dict[str, Any]:
        return {"name": self.name, "status": self.status.value, "score": round(self.score, 4),
                "detail": self.detail, "document_id": self.document_id}


# What a customer is told of a check that did not pass: what to do, never how it was scored (a
# score, a similarity or which check failed outright would teach a fraudster how to tune an attempt).
CUSTOMER_HINTS: dict[str, str] = {
    "ocr": "Upload a sharp, well-lit photo of the whole document, with no glare and no edge cut off.",
    "document_validity": "Use a current document and check that its number is entered as printed.",
    "name_match": "Make sure the name in your profile is the name printed on your documents.",
    "dob_match": "Make sure the date of birth in your profile is the one printed on your documents.",
    "face_match": "Take your selfie facing the camera in good light, without glasses, mask or cap.",
    "selfie_quality": "Take your selfie facing the camera in good light, holding the phone steady.",
    "liveness": "Complete a liveness challenge, then upload your selfie with its id.",
    "duplicate_document": "A reviewer will look at this document.",
    "corrections": "A reviewer will compare what you entered with the document.",
}
_DEFAULT_HINT = "A reviewer will look at this."


class CustomerCheckState(StrEnum):
    PASS = "pass"
    NEEDS_ATTENTION = "needs_attention"  # failed or waiting for a person: the customer is not told which


@dataclass(frozen=True)
class CustomerCheck:
    name: str
    state: CustomerCheckState
    hint: str | None
    document_id: str | None


def customer_check(check: Check) -> CustomerCheck:
    if check.status == CheckStatus.PASS:
        return CustomerCheck(check.name, CustomerCheckState.PASS, None, check.document_id)
    return CustomerCheck(check.name, CustomerCheckState.NEEDS_ATTENTION, CUSTOMER_HINTS.get(check.name, _DEFAULT_HINT),
                         check.document_id)


@dataclass(frozen=True)
class Assessment:
    overall_score: int
    risk_level: RiskLevel
    breakdown: dict[str, float] = field(default_factory=dict)


def assess(checks: list[Check], weights: Mapping[str, float] | None = None) -> Assessment:
    """Weighted score of the checks, 0-100; any failed check makes the risk High, any check
    waiting for a person at least Medium. Checks of the same name (one per document) average."""
    weights = weights or DEFAULT_WEIGHTS
    by_name: dict[str, list[float]] = {}
    for check in checks:
        by_name.setdefault(check.name, []).append(check.score)
    total_weight = sum(weights.get(name, 0) for name in by_name)
    breakdown = {name: round(sum(s) / len(s) * 100, 1) for name, s in by_name.items()}
    score = (sum(weights.get(name, 0) * breakdown[name] for name in by_name) / total_weight) if total_weight else 0
    overall = int(round(score))
    statuses = {c.status for c in checks}
    if CheckStatus.FAIL in statuses or overall < 50:
        level = RiskLevel.HIGH
    elif CheckStatus.REVIEW in statuses or overall < 80:
        level = RiskLevel.MEDIUM
    else:
        level = RiskLevel.LOW
    return Assessment(overall_score=overall, risk_level=level, breakdown=breakdown)


# --- name and date-of-birth agreement --------------------------------------------------

# Honorifics and words Indian documents add or drop around a name.
_IGNORED = {"mr", "mrs", "ms", "miss", "dr", "shri", "sri", "shree", "smt", "shrimati", "kumari", "kum", "km",
            "kumar", "md", "mohd", "late", "s/o", "d/o", "w/o"}


def name_tokens(name: str) -> list[str]:
    text = unicodedata.normalize("NFKD", name).encode("ascii", "ignore").decode().lower()
    words = re.findall(r"[a-z]+", text)
    return [w for w in words if w not in _IGNORED]


def _initials_agree(a: list[str], b: list[str]) -> bool:
    """'A K Sharma' and 'Anil Kumar Sharma': same surname, each initial starts a word of the other."""
    if not a or not b or a[-1] != b[-1]:
        return False
    short, full = (a, b) if len(" ".join(a)) <= len(" ".join(b)) else (b, a)
    rest = list(full[:-1])
    for word in short[:-1]:
        match = next((w for w in rest if w == word or (len(word) == 1 and w.startswith(word))), None)
        if match is None:
            return False
        rest.remove(match)
    return True


def name_similarity(a: str, b: str) -> float:
    """0..1; tolerant of order, honorifics, initials and small OCR slips."""
    ta, tb = name_tokens(a), name_tokens(b)
    if not ta or not tb:
        return 0.0
    if _initials_agree(ta, tb):
        return 0.95
    return fuzz.token_sort_ratio(" ".join(ta), " ".join(tb)) / 100


NAME_PASS, NAME_REVIEW = 0.90, 0.75
OCR_PASS = 0.60  # the document's read confidence (with a number read) that passes the OCR check


def name_check(document_name: str | None, profile_name: str, document_id: str | None = None) -> Check:
    if not document_name:
        return Check("name_match", CheckStatus.REVIEW, 0.5, "No name was read from the document.", document_id)
    score = name_similarity(document_name, profile_name)
    if score >= NAME_PASS:
        return Check("name_match", CheckStatus.PASS, score, "The name agrees with the profile.", document_id)
    status = CheckStatus.REVIEW if score >= NAME_REVIEW else CheckStatus.FAIL
    return Check("name_match", status, score, f"The name on the document agrees {score:.0%} with the profile.",
                 document_id)


def dob_check(document_dob: str | None, profile_dob: date | None, document_id: str | None = None) -> Check:
    """ISO dates, or a year alone (Aadhaar cards often print only the year of birth)."""
    if not document_dob or profile_dob is None:
        return Check("dob_match", CheckStatus.REVIEW, 0.5,
                     "No date of birth to compare (document or profile).", document_id)
    if re.fullmatch(r"\d{4}", document_dob):
        ok = int(document_dob) == profile_dob.year
        return Check("dob_match", CheckStatus.PASS if ok else CheckStatus.FAIL, 0.9 if ok else 0.0,
                     "The year of birth agrees." if ok else "The year of birth differs from the profile.",
                     document_id)
    ok = document_dob == profile_dob.isoformat()
    return Check("dob_match", CheckStatus.PASS if ok else CheckStatus.FAIL, 1.0 if ok else 0.0,
                 "The date of birth agrees." if ok else "The date of birth differs from the profile.", document_id)


def correction_checks(corrections: Mapping[str, Any], ocr_fields: Mapping[str, Any],
                      document_id: str | None = None) -> list[Check]:
    """A customer's correction never silently replaces what was read: each difference is a review."""
    checks = []
    for name, value in corrections.items():
        read = ocr_fields.get(name)
        if read is not None and str(read).strip().casefold() == str(value).strip().casefold():
            continue
        detail = (f"The customer corrected {name!r} from what was read." if read is not None
                  else f"The customer gave {name!r}; the document does not show it.")
        checks.append(Check("corrections", CheckStatus.REVIEW, 0.5, detail, document_id))
    return checks


def ensure_reviewable(status: CaseStatus, checks_state: ChecksState, owner_id: str, reviewer_id: str) -> None:
    if owner_id == reviewer_id:
        raise CaseNotReviewable("Staff cannot decide their own KYC case.")
    if status != CaseStatus.SUBMITTED:
        raise CaseNotReviewable(f"The case is {status.value}; only a SUBMITTED case can be decided.")
    if checks_state != ChecksState.DONE:
        raise CaseNotReviewable("The automated checks are still running; decide once they finish.")


# --- the case ------------------------------------------------------------------------------

# Fields a customer may confirm or correct; the OCR value stays beside the correction.
CORRECTABLE_FIELDS = ("full_name", "date_of_birth", "gender", "father_name", "address", "nationality",
                      "issue_date", "expiry_date", "place_of_birth", "document_number")


@dataclass
class CaseDocument:
    id: str
    type: str
    side: str | None
    file_id: str
    content_type: str
    uploaded_at: datetime
    fields: dict[str, Any]           # as read, numbers masked
    confidence: float
    validation: dict[str, Any]
    number_masked: str | None = None
    number_fingerprint: str | None = None
    number_encrypted: str | None = None  # AES-GCM, bound to user, case and document
    corrections: dict[str, Any] = field(default_factory=dict)  # numbers masked here too
    # Fingerprint of the number OCR read off the image (None when none was read): the only number the
    # duplicate check compares, so a number typed for a document that does not show it condemns nobody.
    shown_fingerprint: str | None = None

    def visible_corrections(self) -> dict[str, Any]:
        """What the customer changed, as shown (a corrected number masked, its cipher text and hash left out)."""
        return {k: v for k, v in self.corrections.items()
                if not k.endswith(("_fingerprint", "_encrypted"))}


@dataclass
class Selfie:
    file_id: str
    content_type: str
    uploaded_at: datetime
    face_detected: bool
    quality: dict[str, Any]
    liveness_challenge_id: str | None = None
    liveness_passed: bool | None = None


@dataclass
class Decision:
    """`internal_note` is for the case file (auditors, the audit trail) and never reaches the customer;
    `customer_message` and the reasons' sentences are what the customer is told."""

    by: str
    role: str
    at: datetime
    approved: bool
    reasons: list[str] = field(default_factory=list)
    internal_note: str | None = None
    customer_message: str | None = None

    @property
    def reason(self) -> str | None:
        """The first reason: the single code earlier versions stored and `rejection_reason` still shows."""
        return self.reasons[0] if self.reasons else None


@dataclass
class Claim:
    """An auditor working on a case: until `until`, no other auditor may decide it."""

    by: str
    by_name: str
    at: datetime
    until: datetime

    def holds_off(self, actor_id: str, now: datetime) -> bool:
        """Whether this claim keeps `actor_id` from deciding or claiming the case now."""
        return self.by != actor_id and now < self.until


@dataclass(frozen=True)
class FirstApproval:
    """Four eyes (KYC_FOUR_EYES_HIGH_RISK): the first of the two approvals a High-risk case needs."""

    by: str
    by_name: str
    at: datetime
    internal_note: str | None = None


def ensure_not_claimed(claim: Claim | None, actor_id: str, now: datetime) -> None:
    if claim is not None and claim.holds_off(actor_id, now):
        raise CaseNotReviewable(f"{claim.by_name} is working on this case (claimed until "
                                f"{claim.until:%H:%M} UTC); only they can decide it until then.",
                                code="kyc_claimed", claimed_by=claim.by_name,
                                claimed_until=claim.until.isoformat())


@dataclass
class KycCase:
    id: str
    user_id: str
    status: CaseStatus
    checks_state: ChecksState
    created_at: datetime
    updated_at: datetime
    documents: list[CaseDocument] = field(default_factory=list)
    selfie: Selfie | None = None
    checks: list[Check] = field(default_factory=list)
    overall_score: int | None = None
    risk_level: RiskLevel | None = None
    breakdown: dict[str, float] = field(default_factory=dict)
    submitted_at: datetime | None = None
    checks_completed_at: datetime | None = None
    decision: Decision | None = None
    applicant: dict[str, Any] = field(default_factory=dict)  # name, email, phone as at submission
    claim: Claim | None = None  # the auditor working on it (a SUBMITTED case)
    first_approval: FirstApproval | None = None  # four eyes: waiting for a second auditor's approval

    def first_of_two(self, actor_id: str, approved: bool, four_eyes: bool) -> bool:
        """Whether this approval is the first of two (recorded; nothing decided yet): four eyes on and
        a High risk. Once given, the case needs the second from anyone else; a rejection always decides."""
        if not approved:
            return False
        if self.first_approval is not None:
            if self.first_approval.by == actor_id:
                raise SecondApproverRequired(f"You gave this case its first approval at {self.first_approval.at:%H:%M} "
                                             "UTC; another auditor must give the second.")
            return False
        return four_eyes and self.risk_level == RiskLevel.HIGH

    def document(self, document_id: str) -> CaseDocument:
        for doc in self.documents:
            if doc.id == document_id:
                return doc
        raise CaseNotFound("No such document in this case.", code="document_not_found")

    def file_ids(self) -> set[str]:
        ids = {d.file_id for d in self.documents}
        return ids | ({self.selfie.file_id} if self.selfie else set())

    def ensure_open(self) -> None:
        if self.status != CaseStatus.OPEN:
            raise CaseNotEditable(f"The case is {self.status.value}; it can no longer be changed.")

    def missing(self, policy: SubmissionPolicy) -> list[str]:
        return policy.missing([d.type for d in self.documents], self.selfie is not None)

    @property
    def decided_at(self) -> datetime | None:
        return self.decision.at if self.decision else None
