"""Resubmission rules of a KYC case: what an upload may replace while the case is sent back, what is
still to redo, which checks a resubmitted case keeps, and when a FINAL rejection lets a customer back."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from app.domain.kyc import (
    LIVENESS,
    SELFIE,
    CaseDocument,
    CaseNotEditable,
    CaseStatus,
    Check,
    ChecksState,
    CheckStatus,
    Decision,
    KycCase,
    Redo,
    Round,
    Selfie,
    SubmissionPolicy,
)

NOW = datetime(2026, 12, 1, 10, 0, tzinfo=UTC)


def doc(doc_id: str, kind: str, side: str | None = "front") -> CaseDocument:
    return CaseDocument(id=doc_id, type=kind, side=side, file_id=f"f-{doc_id}", content_type="image/jpeg",
                        uploaded_at=NOW, fields={}, confidence=0.9, validation={})


def selfie(file_id: str, passed: bool | None = None) -> Selfie:
    return Selfie(file_id=file_id, content_type="image/jpeg", uploaded_at=NOW, face_detected=True, quality={},
                  liveness_passed=passed)


AADHAAR, PAN = doc("a1", "aadhaar"), doc("p1", "pan")
ROUND_CHECKS = [Check("ocr", CheckStatus.PASS, 0.9, "read", "a1"), Check("ocr", CheckStatus.PASS, 0.9, "read", "p1"),
                Check("name_match", CheckStatus.PASS, 1.0, "agrees", "a1"),
                Check("dob_match", CheckStatus.PASS, 1.0, "agrees", "a1"),
                Check("document_validity", CheckStatus.PASS, 1.0, "valid", "a1"),
                Check("duplicate_document", CheckStatus.PASS, 1.0, "none", "a1"),
                Check("corrections", CheckStatus.REVIEW, 0.5, "corrected", "a1"),
                Check("face_match", CheckStatus.PASS, 0.8, "match", "a1"),
                Check("selfie_quality", CheckStatus.PASS, 1.0, "sharp"), Check("liveness", CheckStatus.REVIEW, 0.5, "none")]


def sent_back(items: list[Redo], *, status: CaseStatus = CaseStatus.RESUBMISSION_REQUESTED) -> KycCase:
    sent = Round(1, NOW, [AADHAAR, PAN], selfie("s1"), ROUND_CHECKS, 70, None, "aud", "Ravi", NOW, items, "Again")
    return KycCase(id="c", user_id="u", status=status, checks_state=ChecksState.DONE, created_at=NOW, updated_at=NOW,
                   documents=[AADHAAR, PAN], selfie=selfie("s1"), checks=ROUND_CHECKS, rounds=[sent])


def test_labels_and_what_an_item_covers():
    assert Redo("document", "pan", "front").label == "pan (front)"
    assert Redo("document", "pan").label == "pan"
    assert (Redo(SELFIE).label, Redo(LIVENESS).label) == ("selfie", "liveness")
    assert Redo("document", "pan").covers(PAN) and Redo("document", "pan", "front").covers(PAN)
    assert not Redo("document", "pan", "back").covers(PAN) and not Redo("document", "aadhaar").covers(PAN)
    assert not Redo(SELFIE).covers(PAN)


@pytest.mark.parametrize(("item", "upload", "answered"), [
    (Redo("document", "pan"), Redo("document", "pan", "back"), True),
    (Redo("document", "pan", "front"), Redo("document", "pan"), True),  # side not read yet
    (Redo("document", "pan", "front"), Redo("document", "pan", "front"), True),
    (Redo("document", "pan", "front"), Redo("document", "pan", "back"), False),
    (Redo("document", "pan"), Redo("document", "aadhaar"), False),
    (Redo("document", "pan"), Redo(SELFIE), False),
    (Redo(SELFIE), Redo(SELFIE), True),
    (Redo(SELFIE), Redo(LIVENESS), True),  # a selfie with a passed challenge is a selfie too
    (Redo(LIVENESS), Redo(LIVENESS), True),
    (Redo(LIVENESS), Redo(SELFIE), False),  # liveness asks for the challenge
    (Redo(SELFIE), Redo("document", "pan"), False),
])
def test_an_upload_answers_only_its_item(item, upload, answered):
    assert item.answered_by(upload) is answered


def test_a_case_sent_back_takes_only_what_was_asked():
    case = sent_back([Redo("document", "pan")])
    assert case.request is case.rounds[0]
    case.ensure_open(Redo("document", "pan", "front"))
    for refused in (Redo("document", "aadhaar"), Redo(SELFIE), None):
        with pytest.raises(CaseNotEditable) as caught:
            case.ensure_open(refused)
        assert caught.value.code == "resubmission_not_requested" and "pan" in caught.value.message
    with pytest.raises(CaseNotEditable):
        case.ensure_open(document=AADHAAR)  # a document of the round sent back stays as it was
    case.ensure_open(document=doc("p2", "pan"))  # one uploaded since may be corrected


def test_open_and_closed_cases_as_before():
    open_case = sent_back([], status=CaseStatus.OPEN)
    assert open_case.request is None
    open_case.ensure_open()
    for status in (CaseStatus.SUBMITTED, CaseStatus.APPROVED, CaseStatus.REJECTED):
        with pytest.raises(CaseNotEditable) as caught:
            sent_back([Redo(SELFIE)], status=status).ensure_open(Redo(SELFIE))
        assert caught.value.code == "kyc_not_editable"
        assert sent_back([Redo(SELFIE)], status=status).missing(SubmissionPolicy()) == []


def test_missing_lists_what_is_still_to_redo():
    case = sent_back([Redo("document", "pan", "front"), Redo(LIVENESS)])
    policy = SubmissionPolicy()
    assert case.missing(policy) == ["pan (front)", "liveness"]
    case.documents = [AADHAAR, doc("p2", "pan", "back")]  # the wrong side
    assert case.missing(policy) == ["pan (front)", "liveness"]
    case.documents = [AADHAAR, doc("p2", "pan")]
    case.selfie = selfie("s2")  # a new selfie without a passed challenge
    assert case.missing(policy) == ["liveness"]
    case.selfie = selfie("s2", passed=True)
    assert case.missing(policy) == []
    again = sent_back([Redo(SELFIE)])
    again.selfie = selfie("s1", passed=True)  # the same file: nothing new
    assert again.missing(policy) == ["selfie"]
    again.selfie = selfie("s3")
    assert again.missing(policy) == []


def test_a_resubmitted_case_keeps_the_results_whose_inputs_did_not_change():
    case = sent_back([Redo("document", "pan")])
    case.documents = [AADHAAR, doc("p2", "pan")]
    kept = case.carried_over()
    assert set(kept) == {("ocr", "a1"), ("name_match", "a1"), ("dob_match", "a1"), ("face_match", "a1")}
    assert kept[("face_match", "a1")] is ROUND_CHECKS[7]
    case.selfie = selfie("s2")  # a new selfie: the face match runs again
    assert set(case.carried_over()) == {("ocr", "a1"), ("name_match", "a1"), ("dob_match", "a1")}
    case.documents = [doc("a2", "aadhaar"), doc("p2", "pan")]  # both replaced: nothing kept
    assert case.carried_over() == {}
    assert sent_back([], status=CaseStatus.SUBMITTED).carried_over().keys() >= {("ocr", "p1")}
    fresh = sent_back([])
    fresh.rounds = []
    assert fresh.carried_over() == {}


def test_file_ids_keep_earlier_rounds():
    case = sent_back([Redo("document", "pan"), Redo(SELFIE)])
    case.documents, case.selfie = [AADHAAR, doc("p2", "pan")], selfie("s2")
    assert case.file_ids() == {"f-a1", "f-p1", "f-p2", "s1", "s2"}


@pytest.mark.parametrize(("final", "days", "after", "refused"), [
    (False, None, timedelta(0), False),  # RETRY: at once
    (True, None, timedelta(days=3650), True),  # FINAL for good
    (True, 30, timedelta(days=29, hours=23), True),
    (True, 30, timedelta(days=30), False),
])
def test_a_final_rejection_keeps_the_customer_out_for_its_period(final, days, after, refused):
    decision = Decision(by="aud", role="auditor", at=NOW, approved=False, reasons=["other"], final=final)
    if not refused:
        decision.ensure_may_reapply(NOW + after, days)
        return
    with pytest.raises(CaseNotEditable) as caught:
        decision.ensure_may_reapply(NOW + after, days)
    assert caught.value.code == "kyc_rejected_final"
    assert ("2026-12-31" in caught.value.message) == (days == 30)
