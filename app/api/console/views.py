"""What the console's KYC pages show, in an auditor's words: check names, thresholds, documents
by type and side, waiting times, and the fields read beside the profile values."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import date, datetime, timedelta
from typing import Any

from app.config import Settings
from app.domain.audit import AuditEntry
from app.domain.checks.name import NAME_PASS, NAME_REVIEW
from app.domain.checks.ocr import OCR_PASS
from app.domain.kyc import REJECTION_REASONS, CaseDocument, CheckName, CheckStatus, KycCase
from app.domain.screening import STRONG, WEAK
from app.domain.users import User
from app.ml.faces import ARCFACE_COSINE_THRESHOLD, DLIB_COSINE_THRESHOLD, DUPLICATE_THRESHOLDS

DOCUMENT_NAMES = {"aadhaar": "Aadhaar", "pan": "PAN card", "passport": "Passport", "driving_licence": "Driving licence",
                  "voter_id": "Voter ID", "national_id": "National ID", "generic": "Document"}
CHECK_NAMES: dict[str, str] = {CheckName.OCR: "Document read (OCR)", CheckName.DOCUMENT_VALIDITY: "Number and dates valid",
                                 CheckName.NAME_MATCH: "Name agrees with profile",
                                 CheckName.DOB_MATCH: "Date of birth agrees with profile",
                                 CheckName.FACE_MATCH: "Selfie matches document photo",
                                 CheckName.SELFIE_QUALITY: "Selfie quality", CheckName.LIVENESS: "Liveness",
                                 CheckName.DUPLICATE_DOCUMENT: "Not on another account",
                                 CheckName.CORRECTIONS: "Customer's correction",
                                 CheckName.SCREENING: "Sanctions and PEP lists",
                                 CheckName.FACE_DUPLICATE: "Face not on another account"}


def thresholds(settings: Settings) -> dict[str, str]:
    """What each check's score is compared with, from the constants and settings the checks use
    (app/domain/checks/, and the face matcher's FACE_MATCH_THRESHOLD)."""
    cosine = settings.face_match_threshold
    if cosine is None:  # the embedder's calibrated default, as app/ml/faces.load_face_matcher takes it
        cosine = ARCFACE_COSINE_THRESHOLD if settings.face_backend == "insightface" else DLIB_COSINE_THRESHOLD
    duplicate = settings.face_duplicate_threshold
    duplicate = DUPLICATE_THRESHOLDS[settings.face_backend] if duplicate is None else duplicate
    return {
        CheckName.OCR: f"pass at ≥ {OCR_PASS:.2f} with a number read",
        CheckName.DOCUMENT_VALIDITY: "checksum / format valid and not expired",
        CheckName.NAME_MATCH: f"pass at ≥ {NAME_PASS:.2f}, review at ≥ {NAME_REVIEW:.2f}, else fail",
        CheckName.DOB_MATCH: "the same date (the year when only a year is printed)",
        CheckName.FACE_MATCH: f"match at ≥ 0.50: cosine similarity ≥ {cosine:.2f} ({settings.face_backend} model)",
        CheckName.SELFIE_QUALITY: "sharp, well lit, one face",
        CheckName.LIVENESS: "a passed liveness challenge",
        CheckName.DUPLICATE_DOCUMENT: "no other account's submitted or approved case shows this number",
        CheckName.CORRECTIONS: "the customer's value equals what was read",
        CheckName.FACE_DUPLICATE: f"review at cosine ≥ {duplicate:.2f} against an approved customer's selfie",
        CheckName.SCREENING: f"fail at name ≥ {STRONG:.2f} with no date of birth or nationality against it; "
                             f"review at ≥ {WEAK:.2f} unless the date of birth differs",
    }


FIELD_NAMES = {"full_name": "Name", "date_of_birth": "Date of birth", "gender": "Gender", "father_name": "Father's name",
               "address": "Address", "nationality": "Nationality", "issue_date": "Issued", "expiry_date": "Expires",
               "place_of_birth": "Place of birth", "document_number": "Number"}
REASON_NAMES = {"dob_mismatch": "Date of birth mismatch", "face_mismatch": "Face does not match",
                "duplicate_document": "Document on another account"}
REASONS = [(code, REASON_NAMES.get(code, code.replace("_", " ").capitalize()), sentence)
           for code, sentence in REJECTION_REASONS.items()]
ACTIONS = {"kyc_submitted": "Submitted by the customer", "kyc_checks_completed": "Automated checks finished",
           "kyc_viewed": "Case opened", "kyc_file_viewed": "File viewed", "kyc_claimed": "Claimed",
           "kyc_released": "Claim released", "kyc_approved": "Approved", "kyc_first_approval": "First approval (four eyes)", "kyc_rejected": "Rejected",
           "kyc_document_uploaded": "Document uploaded", "kyc_selfie_uploaded": "Selfie uploaded",
           "kyc_corrected": "Customer corrected a field"}


def document_label(doc: CaseDocument | None) -> str:
    if doc is None:
        return "the case"
    name = DOCUMENT_NAMES.get(doc.type, doc.type)
    return f"{name} ({doc.side})" if doc.side else name


def waiting(since: datetime | None, now: datetime) -> str:
    if since is None:
        return "not submitted"
    minutes = max(int((now - since) / timedelta(minutes=1)), 0)
    if minutes < 60:
        return f"{minutes} min"
    if minutes < 48 * 60:
        return f"{minutes // 60} h {minutes % 60:02d} min"
    return f"{minutes // (24 * 60)} days"


@dataclass
class QueueRow:
    id: str
    name: str
    email: str
    documents: list[str]
    risk: str | None
    score: int | None
    checks_state: str
    failed: list[str]
    review: list[str]
    waiting: str
    claimed_by: str | None
    first_approval: str | None = None  # four eyes: who gave the first approval ("you" or a name)
    level: str = ""  # the verification level the case is for
    steps_up_from: str | None = None  # a step-up: the level the customer is approved at


def queue_row(case: KycCase, now: datetime, me: str) -> QueueRow:
    def named(status: CheckStatus) -> list[str]:
        return list(dict.fromkeys(CHECK_NAMES.get(c.name, c.name) for c in case.checks if c.status == status))

    claim = case.claim
    holder = None
    if claim is not None and now < claim.until:
        holder = "you" if claim.by == me else claim.by_name
    return QueueRow(id=case.id, name=case.applicant.get("name") or "—", email=case.applicant.get("email") or
                    case.applicant.get("phone") or "", documents=[document_label(d) for d in case.documents],
                    risk=case.risk_level.value if case.risk_level else None, score=case.overall_score,
                    checks_state=case.checks_state.value, failed=named(CheckStatus.FAIL),
                    review=named(CheckStatus.REVIEW), waiting=waiting(case.submitted_at, now), claimed_by=holder,
                    first_approval=None if case.first_approval is None else
                    "you" if case.first_approval.by == me else case.first_approval.by_name, level=case.level,
                    steps_up_from=case.step_up.from_level if case.step_up else None)


@dataclass
class CheckRow:
    name: str
    result: str
    score: str
    threshold: str
    document: str
    detail: str
    others: list[tuple[str, str]] = field(default_factory=list)  # (case id, name): a duplicate's other cases


def check_rows(case: KycCase, settings: Settings, duplicates: dict[str, list[KycCase]]) -> list[CheckRow]:
    docs, limits = {d.id: d for d in case.documents}, thresholds(settings)
    return [CheckRow(name=CHECK_NAMES.get(c.name, c.name), result=c.status.value, score=f"{c.score:.2f}",
                     threshold=limits.get(c.name, "—"),
                     document="selfie" if c.name in (CheckName.SELFIE_QUALITY, CheckName.LIVENESS, CheckName.FACE_DUPLICATE)
                     and not c.document_id
                     else document_label(docs.get(c.document_id or "")), detail=c.detail,
                     others=[(o.id, o.applicant.get("name") or "another customer") for o in duplicates.get(
                         "face" if c.name == CheckName.FACE_DUPLICATE else c.document_id or "", [])]
                     if c.name in (CheckName.DUPLICATE_DOCUMENT, CheckName.FACE_DUPLICATE) else [])
            for c in case.checks]


@dataclass
class FieldRow:
    label: str
    read: str
    corrected: str | None
    profile: str | None
    differs: bool


@dataclass
class DocumentView:
    label: str
    number: str | None
    confidence: str
    rows: list[FieldRow] = field(default_factory=list)


def document_views(case: KycCase, user: User | None) -> list[DocumentView]:
    """Each document's fields as read, the customer's correction, and the profile value the checks
    compared them with (name, date of birth); a difference is flagged."""
    profile = {"full_name": user.name if user else case.applicant.get("name"),
               "date_of_birth": _iso((user.profile or {}).get("dob")) if user else None}
    views = []
    for doc in case.documents:
        corrections = doc.visible_corrections()
        names = [n for n in FIELD_NAMES if n in doc.fields or n in corrections or n in profile]
        rows = []
        for name in names:
            read = doc.fields.get(name)
            corrected, compared = corrections.get(name), profile.get(name)
            if name == "document_number":
                read = read if read is not None else doc.number_masked
            if read is None and corrected is None and (compared is None or name not in doc.fields):
                continue
            rows.append(FieldRow(label=FIELD_NAMES[name], read=str(read) if read is not None else "not read",
                                 corrected=str(corrected) if corrected is not None else None,
                                 profile=str(compared) if compared is not None else None,
                                 differs=_differs(read, corrected, compared)))
        views.append(DocumentView(label=document_label(doc), number=doc.number_masked,
                                  confidence=f"{doc.confidence:.2f}", rows=rows))
    return views


def _differs(read: Any, corrected: Any, profile: Any) -> bool:
    def norm(value: Any) -> str:
        return " ".join(str(value).casefold().split())

    if corrected is not None and read is not None and norm(corrected) != norm(read):
        return True
    if profile is None or read is None:
        return False
    if len(str(read)) == 4 and str(read).isdigit():  # a year of birth alone
        return not str(profile).startswith(str(read))
    return norm(read) != norm(profile)


def _iso(value: Any) -> str | None:
    if isinstance(value, date | datetime):
        return value.isoformat()[:10]
    return str(value) if value else None


@dataclass
class HistoryRow:
    at: datetime
    what: str
    who: str


def history(case: KycCase, entries: list[AuditEntry], names: dict[str, str]) -> list[HistoryRow]:
    rows = [HistoryRow(at=e.timestamp, what=ACTIONS.get(e.action, e.action.replace("_", " ")),
                       who=names.get(e.actor_id or "", e.actor_role or "system"))
            for e in entries if e.details.get("kyc_id") == case.id]
    return sorted(rows, key=lambda r: r.at)
