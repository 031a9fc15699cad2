"""The level policy: what each default level asks, the checks an approval needs, the order of levels, the
level a loan needs, carried-over results of a step-up, and KYC_LEVELS as configured."""

from __future__ import annotations

from datetime import UTC, datetime
from decimal import Decimal

import pytest
from pydantic import ValidationError

from app.config import Settings
from app.domain.kyc import (
    CaseDocument,
    CaseStatus,
    Check,
    CheckName,
    ChecksState,
    CheckStatus,
    KycCase,
    Selfie,
    StepUp,
    SubmissionPolicy,
)
from app.domain.kyc_levels import DEFAULT_LEVELS, LevelRequired, UnknownLevel

NOW = datetime(2026, 12, 1, tzinfo=UTC)
ID = "identity_document (one of: aadhaar, passport, driving_licence, voter_id, national_id)"


def test_each_default_level_asks_for_its_documents_and_steps():
    basic, standard, full = (DEFAULT_LEVELS[n] for n in ("basic", "standard", "full"))
    assert basic.missing([], False) == ["pan", "selfie"]
    assert basic.missing(["pan"], True) == []
    assert standard.missing(["pan"], True) == [ID]
    assert standard.missing(["aadhaar", "pan"], True) == []
    assert full.missing(["aadhaar", "pan"], True) == ["liveness"]  # a selfie without a passed challenge
    assert full.missing(["passport", "pan"], True, liveness_passed=True) == []
    assert full.missing([], False) == [ID, "pan", "liveness"]  # the selfie with a challenge covers both


def test_an_approval_at_a_level_needs_its_checks_passed():
    full = DEFAULT_LEVELS["full"]
    passed = Check(CheckName.LIVENESS, CheckStatus.PASS, 1.0, "")
    assert full.unmet_checks([passed]) == []
    assert full.unmet_checks([Check(CheckName.LIVENESS, CheckStatus.REVIEW, 0.5, "")]) == ["liveness"]
    assert full.unmet_checks([]) == ["liveness"]  # never ran
    assert SubmissionPolicy(checks=("ocr",)).unmet_checks(  # one per document: every one must pass
        [Check(CheckName.OCR, CheckStatus.PASS, 1, "", "a"), Check(CheckName.OCR, CheckStatus.FAIL, 0, "", "b")]) == ["ocr"]
    assert DEFAULT_LEVELS["standard"].unmet_checks([]) == []


def test_levels_are_ordered_and_unknown_ones_refused():
    assert DEFAULT_LEVELS.names == ["basic", "standard", "full"]
    assert DEFAULT_LEVELS.reaches("full", "basic") and DEFAULT_LEVELS.reaches("standard", "standard")
    assert not DEFAULT_LEVELS.reaches("basic", "full")
    assert not DEFAULT_LEVELS.reaches(None, "basic") and not DEFAULT_LEVELS.reaches("retired", "basic")
    with pytest.raises(UnknownLevel) as refused:
        DEFAULT_LEVELS["gold"]
    assert refused.value.code == "kyc_level_unknown" and refused.value.details["errors"][0]["field"] == "level"
    assert DEFAULT_LEVELS.of("retired").name == "standard"  # a stored case's level no longer configured


def test_the_level_a_loan_needs():
    needed = DEFAULT_LEVELS.needed
    assert needed(None, None, Decimal(10**7)) is None
    assert needed("standard", None, Decimal(10**7)) == "standard"
    assert needed("basic", Decimal(200000), Decimal(200000)) == "basic"  # at the threshold: not above it
    assert needed("basic", Decimal(200000), Decimal("200000.01")) == "full"
    DEFAULT_LEVELS.ensure("full", "full")
    DEFAULT_LEVELS.ensure("basic", None)
    with pytest.raises(LevelRequired) as refused:
        DEFAULT_LEVELS.ensure("basic", "standard")
    assert refused.value.details["reasons"][0]["required_level"] == "standard"
    assert refused.value.details["reasons"][0]["kyc_level"] == "basic"


def _doc(doc_id: str, kind: str) -> CaseDocument:
    return CaseDocument(doc_id, kind, None, f"file-{doc_id}", "image/jpeg", NOW, {}, 0.9, {})


def test_a_step_up_keeps_the_results_of_what_it_carried_unchanged():
    kept = [Check(CheckName.OCR, CheckStatus.PASS, 1, "pan read", "pan1"),
            Check(CheckName.DOCUMENT_VALIDITY, CheckStatus.PASS, 1, "valid", "pan1"),
            Check(CheckName.FACE_MATCH, CheckStatus.PASS, 0.9, "same face", "pan1")]
    selfie = Selfie("selfie1", "image/jpeg", NOW, True, {})
    case = KycCase("c2", "u", CaseStatus.SUBMITTED, ChecksState.RUNNING, NOW, NOW,
                   documents=[_doc("pan1", "pan"), _doc("aad1", "aadhaar")], selfie=selfie, level="full",
                   step_up=StepUp("c1", "basic", {"pan1"}, "selfie1", kept))
    assert set(case.carried_over()) == {("ocr", "pan1"), ("face_match", "pan1")}  # validity runs again
    case.selfie = Selfie("selfie2", "image/jpeg", NOW, True, {}, "ch", True)
    assert set(case.carried_over()) == {("ocr", "pan1")}  # a new selfie: the face is matched again
    case.step_up = None
    assert case.carried_over() == {}


def test_kyc_levels_from_settings(monkeypatch):
    monkeypatch.setenv("KYC_REQUIRE_SELFIE", "false")
    monkeypatch.setenv("KYC_LEVELS", '{"standard": {}, "premium": {"required_documents": ["pan", "passport"], '
                                     '"selfie": true, "liveness": true, "checks": ["face_match"]}}')
    table = Settings(_env_file=None).kyc_level_table()  # type: ignore[call-arg]
    assert table.names == ["standard", "premium"]
    assert table["standard"].missing(["voter_id", "pan"], False) == []  # KYC_REQUIRE_SELFIE for what it leaves out
    premium = table["premium"]
    assert premium.required_documents == ("pan", "passport") and premium.liveness and premium.checks == ("face_match",)
    for bad in ('{"basic": {}}', '{"standard": {"selfy": true}}', '{"standard": {"required_documents": ["visa"]}}',
                '{"standard": {"checks": ["horoscope"]}}'):
        monkeypatch.setenv("KYC_LEVELS", bad)
        with pytest.raises(ValidationError):
            Settings(_env_file=None)  # type: ignore[call-arg]
