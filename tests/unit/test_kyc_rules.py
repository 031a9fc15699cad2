"""KYC case rules: the submission policy, name and date agreement, risk from the checks."""

from __future__ import annotations

from datetime import date

import pytest

from app.domain.checks.name import name_similarity
from app.domain.kyc import (
    CaseNotReviewable,
    CaseStatus,
    Check,
    ChecksState,
    CheckStatus,
    RiskLevel,
    SubmissionPolicy,
    assess,
    ensure_reviewable,
)
from tests.unit.kyc_checks_helpers import corrections_of, dob_check, name_check


def test_default_policy_needs_identity_pan_and_selfie():
    policy = SubmissionPolicy()
    assert policy.missing([], has_selfie=False) == [
        "identity_document (one of: aadhaar, passport, driving_licence, voter_id, national_id)", "pan", "selfie"]
    assert policy.missing(["passport"], has_selfie=True) == ["pan"]
    assert policy.missing(["aadhaar", "pan"], has_selfie=True) == []
    assert SubmissionPolicy(required_documents=(), selfie=False).missing(["voter_id"], has_selfie=False) == []


@pytest.mark.parametrize(("a", "b"), [
    ("Shri Ramesh Kumar Verma", "Ramesh Verma"),
    ("VERMA RAMESH", "Ramesh Verma"),
    ("R. K. Verma", "Ramesh Kishore Verma"),
    ("Smt. Asha Rao", "Asha Rao"),
    ("Mr Anil Sharma", "Anil Sharmaa"),  # an OCR slip
])
def test_names_that_agree(a, b):
    assert name_check(a, b).status == CheckStatus.PASS, name_similarity(a, b)


@pytest.mark.parametrize(("a", "b"), [("Priya Nair", "Ramesh Verma"), ("R. K. Verma", "Ramesh Kishore Sharma"),
                                      ("S Verma", "Ramesh Verma")])
def test_names_that_do_not_agree(a, b):
    assert name_check(a, b).status != CheckStatus.PASS


def test_missing_name_goes_to_a_person():
    assert name_check(None, "Asha Rao").status == CheckStatus.REVIEW


def test_dob_full_date_and_year_only():
    dob = date(1990, 4, 12)
    assert dob_check("1990-04-12", dob).status == CheckStatus.PASS
    assert dob_check("1990", dob).status == CheckStatus.PASS
    assert dob_check("1991", dob).status == CheckStatus.FAIL
    assert dob_check("1990-12-04", dob).status == CheckStatus.FAIL
    assert dob_check(None, dob).status == CheckStatus.REVIEW


def test_corrections_become_review_checks_never_silent():
    checks = corrections_of({"full_name": "Asha Rao", "date_of_birth": "1990-04-12"},
                            {"full_name": "ASHA RAO", "date_of_birth": "1990-04-21"}, "d1")
    assert [(c.name, c.status, c.document_id) for c in checks] == [("corrections", CheckStatus.REVIEW, "d1")]
    assert "date_of_birth" in checks[0].detail


def _check(name: str, status: CheckStatus, score: float) -> Check:
    return Check(name, status, score, "")


def test_assessment_levels():
    good = [_check(n, CheckStatus.PASS, 1.0) for n in ("ocr", "document_validity", "name_match", "face_match")]
    a = assess(good)
    assert a.overall_score == 100 and a.risk_level == RiskLevel.LOW
    a = assess([*good, _check("corrections", CheckStatus.REVIEW, 0.5)])  # weight 0, but a person must look
    assert a.overall_score == 100 and a.risk_level == RiskLevel.MEDIUM
    a = assess([*good, _check("duplicate_document", CheckStatus.FAIL, 0.0)])
    assert a.risk_level == RiskLevel.HIGH and a.overall_score < 100
    a = assess([_check("face_match", CheckStatus.PASS, 0.6), _check("ocr", CheckStatus.PASS, 0.6)])
    assert a.overall_score == 60 and a.risk_level == RiskLevel.MEDIUM
    # Two documents' name checks average under one weight.
    a = assess([_check("name_match", CheckStatus.PASS, 1.0), _check("name_match", CheckStatus.PASS, 0.9)])
    assert a.breakdown == {"name_match": 95.0}


def test_only_a_submitted_case_with_finished_checks_can_be_decided_and_never_by_its_owner():
    ensure_reviewable(CaseStatus.SUBMITTED, ChecksState.DONE, "owner", "auditor")
    for status, checks, reviewer in [(CaseStatus.SUBMITTED, ChecksState.DONE, "owner"),
                                     (CaseStatus.APPROVED, ChecksState.DONE, "auditor"),
                                     (CaseStatus.REJECTED, ChecksState.DONE, "auditor"),
                                     (CaseStatus.OPEN, ChecksState.NOT_STARTED, "auditor"),
                                     (CaseStatus.SUBMITTED, ChecksState.RUNNING, "auditor")]:
        with pytest.raises(CaseNotReviewable):
            ensure_reviewable(status, checks, "owner", reviewer)
