"""Builds what the KYC check rules (app/domain/checks/) are given: a document, its facts, a selfie."""

from __future__ import annotations

from datetime import UTC, date, datetime
from typing import Any

from app.domain.checks import Facts
from app.domain.checks.corrections import corrections
from app.domain.checks.dob import dob_match
from app.domain.checks.name import name_match
from app.domain.kyc import CaseDocument, Check, Selfie
from app.domain.users import Role, User, UserStatus

NOW = datetime(2026, 3, 1, 9, 0, tzinfo=UTC)
TODAY = NOW.date()


def document(id: str = "d1", type: str = "aadhaar", **kw: Any) -> CaseDocument:
    base: dict[str, Any] = {"side": "front", "file_id": "f1", "content_type": "image/jpeg", "uploaded_at": NOW,
                            "fields": {}, "confidence": 0.9, "validation": {}}
    return CaseDocument(id=id, type=type, **(base | kw))


def user(name: str = "Asha Rao", dob: object = None) -> User:
    return User(id="u1", name=name, role=Role.CUSTOMER, status=UserStatus.ACTIVE, password_hash="x",
                created_at=NOW, profile={"dob": dob} if dob is not None else {})


def facts(doc: CaseDocument | None = None, *, name: str = "Asha Rao", dob: object = None,
          other_owners: tuple[str, ...] = ()) -> Facts:
    return Facts(doc or document(), user(name, dob), TODAY, other_owners)


def selfie(**kw: Any) -> Selfie:
    base: dict[str, Any] = {"file_id": "s1", "content_type": "image/jpeg", "uploaded_at": NOW, "face_detected": True,
                            "quality": {"acceptable": True, "issues": []}}
    return Selfie(**(base | kw))


def name_check(read: str | None, profile_name: str) -> Check:
    return name_match(facts(document(fields={"full_name": read} if read else {}), name=profile_name))


def dob_check(read: str | None, profile_dob: date | None) -> Check:
    found = dob_match(facts(document(fields={"date_of_birth": read} if read else {}), dob=profile_dob))
    assert found is not None
    return found


def corrections_of(given: dict[str, Any], read: dict[str, Any], document_id: str) -> list[Check]:
    return corrections(facts(document(document_id, fields=read, corrections=given)))
