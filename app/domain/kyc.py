"""KYC cases: what a submission needs, how its checks add up to a risk level, who may decide it.

A case gathers one submission: documents (front/back), a selfie, the automated checks and
the auditor's decision. No I/O here: the checks are rules in app/domain/checks/, and
app/services/kyc/ runs them and stores the case.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from enum import StrEnum
from typing import Any

from app.domain.documents import DocumentType
from app.domain.errors import Conflict, NotFound, RuleViolation


class CaseStatus(StrEnum):
    OPEN = "OPEN"            # collecting documents and the selfie
    SUBMITTED = "SUBMITTED"  # checks run, then an auditor (or the auto-decision) decides
    APPROVED = "APPROVED"
    REJECTED = "REJECTED"
    RESUBMISSION_REQUESTED = "RESUBMISSION_REQUESTED"  # sent back: the customer redoes what the auditor named


class ChecksState(StrEnum):
    NOT_STARTED = "NOT_STARTED"
    RUNNING = "RUNNING"
    DONE = "DONE"


class CheckStatus(StrEnum):
    PASS = "pass"
    FAIL = "fail"
    REVIEW = "review"


class CheckName(StrEnum):
    """The automated checks, in the order a case lists them (each document's, then the selfie's);
    each but the face match and screening is a rule in app/domain/checks/."""

    OCR = "ocr"
    DOCUMENT_VALIDITY = "document_validity"
    NAME_MATCH = "name_match"
    DOB_MATCH = "dob_match"
    CORRECTIONS = "corrections"
    DUPLICATE_DOCUMENT = "duplicate_document"
    FACE_MATCH = "face_match"
    SELFIE_QUALITY = "selfie_quality"
    LIVENESS = "liveness"
    SCREENING = "screening"  # sanctions and PEP lists (app/domain/checks/screening.py)
    FACE_DUPLICATE = "face_duplicate"  # the selfie's face on another approved account (app/services/face_duplicates.py)


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
    CheckName.OCR: 10, CheckName.DOCUMENT_VALIDITY: 20, CheckName.NAME_MATCH: 15, CheckName.DOB_MATCH: 10,
    CheckName.FACE_MATCH: 25, CheckName.SELFIE_QUALITY: 5, CheckName.LIVENESS: 10,
    CheckName.DUPLICATE_DOCUMENT: 5, CheckName.CORRECTIONS: 0, CheckName.SCREENING: 0,
    CheckName.FACE_DUPLICATE: 0,
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


DEFAULT_LEVEL = "standard"  # the level a case is opened for unless the customer asks (and every earlier case's)


@dataclass(frozen=True)
class SubmissionPolicy:
    """A verification level: what a case needs before it can be submitted (default: one proof of identity,
    PAN, a selfie) and the checks that must have passed for an approval at this level."""

    identity_documents: tuple[str, ...] = tuple(IDENTITY_DOCUMENTS)
    required_documents: tuple[str, ...] = (DocumentType.PAN,)
    selfie: bool = True
    liveness: bool = False  # the selfie taken with a passed liveness challenge
    checks: tuple[str, ...] = ()
    name: str = DEFAULT_LEVEL

    def missing(self, document_types: Iterable[str], has_selfie: bool, liveness_passed: bool = False) -> list[str]:
        present = set(document_types)
        missing = []
        if self.identity_documents and not present & set(self.identity_documents):
            missing.append("identity_document (one of: " + ", ".join(self.identity_documents) + ")")
        missing += [str(d) for d in self.required_documents if d not in present]
        if self.liveness and not liveness_passed:
            missing.append(LIVENESS)  # a selfie with a passed challenge: the selfie too
        elif self.selfie and not has_selfie:
            missing.append(SELFIE)
        return missing

    def unmet_checks(self, checks: Iterable[Check]) -> list[str]:
        """The checks this level needs passed that did not pass (or never ran)."""
        passed = {c.name for c in checks if c.status == CheckStatus.PASS}
        failed = {c.name for c in checks if c.status != CheckStatus.PASS}
        return [n for n in self.checks if n in failed or n not in passed]


@dataclass
class Check:
    name: str
    status: CheckStatus
    score: float  # 0..1
    detail: str
    document_id: str | None = None
    other_cases: tuple[str, ...] = ()  # face_duplicate: the other accounts' cases, for the auditor

    def as_dict(self) -> dict[str, Any]:
        return {"name": self.name, "status": self.status.value, "score": round(self.score, 4),
                "detail": self.detail, "document_id": self.document_id,
                **({"other_cases": list(self.other_cases)} if self.other_cases else {})}


# What a customer is told of a check that did not pass: what to do, never how it was scored (a
# score, a similarity or which check failed outright would teach a fraudster how to tune an attempt).
CUSTOMER_HINTS: dict[str, str] = {
    CheckName.OCR: "Upload a sharp, well-lit photo of the whole document, with no glare and no edge cut off.",
    CheckName.DOCUMENT_VALIDITY: "Use a current document and check that its number is entered as printed.",
    CheckName.NAME_MATCH: "Make sure the name in your profile is the name printed on your documents.",
    CheckName.DOB_MATCH: "Make sure the date of birth in your profile is the one printed on your documents.",
    CheckName.FACE_MATCH: "Take your selfie facing the camera in good light, without glasses, mask or cap.",
    CheckName.SELFIE_QUALITY: "Take your selfie facing the camera in good light, holding the phone steady.",
    CheckName.LIVENESS: "Complete a liveness challenge, then upload your selfie with its id.",
    CheckName.DUPLICATE_DOCUMENT: "A reviewer will look at this document.",
    CheckName.CORRECTIONS: "A reviewer will compare what you entered with the document.",
    CheckName.SCREENING: "A reviewer will look at this.",
    CheckName.FACE_DUPLICATE: "A reviewer will look at this.",
}
_DEFAULT_HINT = "A reviewer will look at this."
# Never in the customer's view, passed or not: telling a listed person they matched a list is tipping off,
# and a face found on another account would tell a fraudster which of their identities was linked.
HIDDEN_FROM_CUSTOMER = frozenset({CheckName.SCREENING, CheckName.FACE_DUPLICATE})
assert set(DEFAULT_WEIGHTS) == set(CUSTOMER_HINTS) == set(CheckName)


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
    final: bool = False  # a FINAL rejection: no new case (ever, or for KYC_FINAL_REJECTION_DAYS); else RETRY
    valid_until: datetime | None = None  # an approval: when it runs out (app/domain/kyc_renewal.py)

    def ensure_may_reapply(self, now: datetime, days: int | None) -> None:
        if self.final and (days is None or now < self.at + timedelta(days=days)):
            after = "" if days is None else f" before {self.at + timedelta(days=days):%Y-%m-%d}"
            raise CaseNotEditable(f"Your KYC was rejected finally; you cannot apply again{after}.",
                                  code="kyc_rejected_final")

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


SELFIE, LIVENESS = "selfie", "liveness"
RENEWAL_BY = "system"  # who asks a renewal round: periodic re-KYC (app/services/kyc/renewals.py)


@dataclass(frozen=True)
class Redo:
    """One thing a resubmission asks for again: a document (its type, and side when given), the selfie,
    or the liveness step (a new selfie with a passed liveness challenge)."""

    kind: str  # "document", SELFIE or LIVENESS
    document_type: str | None = None
    side: str | None = None

    @property
    def label(self) -> str:
        if self.kind != "document":
            return self.kind
        return f"{self.document_type} ({self.side})" if self.side else str(self.document_type)

    def covers(self, doc: CaseDocument) -> bool:
        return self.kind == "document" and doc.type == self.document_type and self.side in (None, doc.side)

    def answered_by(self, upload: Redo) -> bool:
        """Whether an upload (a document, a selfie, a selfie with a passed challenge) is what this asks;
        an upload's side None is not read yet, and may still be the one asked."""
        if self.kind == "document":
            return upload.kind == "document" and upload.document_type == self.document_type and (
                None in (self.side, upload.side) or self.side == upload.side)
        return upload.kind == LIVENESS or upload.kind == self.kind


# Per-document checks (one result per document) whose inputs are the document as read and the profile's name
# and date of birth, held from submission to decision: an untouched document keeps them in the next round.
# The rest run again: validity (an expiry moves with the date), duplicate_document (other accounts' cases
# change), corrections (pure; may give several per document), the selfie's and every case-wide check; the face
# match is kept when neither the selfie nor the document it compared changed.
KEPT_PER_DOCUMENT = frozenset({CheckName.OCR, CheckName.NAME_MATCH, CheckName.DOB_MATCH})


@dataclass
class Round:
    """A submission an auditor sent back, kept whole: its documents, selfie and checks as they were, what
    was asked (by whom, when, the messages) and, once the customer submitted again, what they replaced."""

    number: int
    submitted_at: datetime | None
    documents: list[CaseDocument]
    selfie: Selfie | None
    checks: list[Check]
    overall_score: int | None
    risk_level: RiskLevel | None
    requested_by: str
    requested_by_name: str
    requested_at: datetime
    items: list[Redo]
    customer_message: str
    internal_note: str | None = None
    replaced: list[str] = field(default_factory=list)  # the items' labels, as redone
    resubmitted_at: datetime | None = None

    @property
    def document_ids(self) -> set[str]:
        return {d.id for d in self.documents}

    @property
    def selfie_file_id(self) -> str | None:
        return self.selfie.file_id if self.selfie else None


@dataclass
class StepUp:
    """A case opened to raise an approved customer's level: what it carried over from the approved case
    (its documents and selfie, copied under the same document ids, and their checks, kept where unchanged)."""

    from_case: str
    from_level: str
    document_ids: set[str]
    selfie_file_id: str | None
    checks: list[Check]


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
    rounds: list[Round] = field(default_factory=list)  # each submission an auditor sent back, oldest first
    level: str = DEFAULT_LEVEL  # the verification level the case is for
    step_up: StepUp | None = None  # opened to raise an approved customer's level

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

    def steps_up_from(self, kyc_level: str | None) -> bool:
        """A step-up not approved yet: its customer stays approved at `kyc_level`, below the case's, until it is."""
        return self.step_up is not None and kyc_level != self.level

    def document(self, document_id: str) -> CaseDocument:
        for doc in self.documents:
            if doc.id == document_id:
                return doc
        raise CaseNotFound("No such document in this case.", code="document_not_found")

    def file_ids(self) -> set[str]:
        """Every file of the case, those of earlier rounds too (kept: the record of what was sent back)."""
        return {d.file_id for d in self.documents + [d for r in self.rounds for d in r.documents]} | {
            s.file_id for s in [self.selfie, *(r.selfie for r in self.rounds)] if s}

    @property
    def rounds_asked(self) -> int:
        """Rounds auditors asked since the last renewal round (periodic re-KYC's, `RENEWAL_BY`): what the cap counts."""
        renewed = [n + 1 for n, r in enumerate(self.rounds) if r.requested_by == RENEWAL_BY]
        return len(self.rounds) - (renewed[-1] if renewed else 0)

    @property
    def request(self) -> Round | None:
        """The resubmission the customer is asked for now, if any."""
        return self.rounds[-1] if self.rounds and self.status == CaseStatus.RESUBMISSION_REQUESTED else None

    def ensure_open(self, upload: Redo | None = None, document: CaseDocument | None = None) -> None:
        """Open, or sent back and `upload` is what was asked (or `document` is one uploaded since)."""
        request = self.request
        if request is None:
            if self.status != CaseStatus.OPEN:
                raise CaseNotEditable(f"The case is {self.status.value}; it can no longer be changed.")
            return
        if (upload is not None and any(item.answered_by(upload) for item in request.items)) or (
                document is not None and document.id not in request.document_ids):
            return
        raise CaseNotEditable("Only what the reviewer asked for can change: "
                              + ", ".join(i.label for i in request.items) + ".", code="resubmission_not_requested")

    def redone(self, item: Redo) -> bool:
        before = self.rounds[-1]
        if item.kind == "document":
            return any(item.covers(d) and d.id not in before.document_ids for d in self.documents)
        selfie = self.selfie
        fresh = selfie is not None and (before.selfie is None or selfie.file_id != before.selfie.file_id)
        return fresh and (item.kind == SELFIE or bool(selfie and selfie.liveness_passed))

    def missing(self, policy: SubmissionPolicy) -> list[str]:
        """What an open case still needs under the policy, or a case sent back what it asks (nothing once submitted)."""
        if (request := self.request) is not None:
            return [i.label for i in request.items if not self.redone(i)]
        if self.status != CaseStatus.OPEN:
            return []
        return policy.missing([d.type for d in self.documents], self.selfie is not None,
                              bool(self.selfie and self.selfie.liveness_passed))

    def carried_over(self) -> dict[tuple[str, str | None], Check]:
        """Resubmitted (or a step-up): the last round's (the approved case's) results whose inputs did not
        change, by (check, document id)."""
        before = self.rounds[-1] if self.rounds else self.step_up
        if before is None:
            return {}
        untouched = {d.id for d in self.documents} & before.document_ids
        same_selfie = self.selfie is not None and self.selfie.file_id == before.selfie_file_id
        return {(c.name, c.document_id): c for c in before.checks if c.document_id in untouched and (
            c.name in KEPT_PER_DOCUMENT or (c.name == CheckName.FACE_MATCH and same_selfie))}

    @property
    def decided_at(self) -> datetime | None:
        return self.decision.at if self.decision else None

    @property
    def valid_until(self) -> datetime | None:
        return self.decision.valid_until if self.decision else None
