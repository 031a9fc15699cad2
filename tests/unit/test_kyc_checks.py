"""The KYC check rules registered in app/domain/checks/: one module each, run in the order the
names are declared; the face match is the only check the service computes itself (the models)."""

from __future__ import annotations

from datetime import date

import pytest

from app.domain import checks
from app.domain.checks import document_checks, document_rule, selfie_checks
from app.domain.checks.dob import profile_dob
from app.domain.kyc import CUSTOMER_HINTS, DEFAULT_WEIGHTS, CheckName, CheckStatus
from tests.unit.kyc_checks_helpers import document, facts, selfie


def _results(found):
    return [(c.name, c.status, c.document_id) for c in found]


def test_check_names_keep_the_values_the_api_answers_with():
    assert [n.value for n in CheckName] == ["ocr", "document_validity", "name_match", "dob_match", "corrections",
                                            "duplicate_document", "face_match", "selfie_quality", "liveness",
                                            "screening", "face_duplicate"]
    assert set(DEFAULT_WEIGHTS) == set(CUSTOMER_HINTS) == set(CheckName)


def test_every_check_but_the_face_match_and_screening_is_a_registered_rule():
    registered = set(checks._DOCUMENT_RULES) | set(checks._SELFIE_RULES)
    # The service's own: the models (face match, face duplicate), the lists (screening).
    assert registered == set(CheckName) - {CheckName.FACE_MATCH, CheckName.SCREENING, CheckName.FACE_DUPLICATE}


def test_a_document_gets_its_checks_in_the_declared_order():
    doc = document(fields={"full_name": "Asha Rao", "date_of_birth": "1990-04-12", "gender": "F"},
                   number_masked="XXXX XXXX 1234", shown_fingerprint="fp", validation={"number_valid": True},
                   corrections={"gender": "M"})
    found = document_checks(facts(doc, dob=date(1990, 4, 12)))
    assert _results(found) == [(CheckName.OCR, CheckStatus.PASS, "d1"),
                               (CheckName.DOCUMENT_VALIDITY, CheckStatus.PASS, "d1"),
                               (CheckName.NAME_MATCH, CheckStatus.PASS, "d1"),
                               (CheckName.DOB_MATCH, CheckStatus.PASS, "d1"),
                               (CheckName.CORRECTIONS, CheckStatus.REVIEW, "d1"),
                               (CheckName.DUPLICATE_DOCUMENT, CheckStatus.PASS, "d1")]
    assert [c.as_dict()["name"] for c in found] == ["ocr", "document_validity", "name_match", "dob_match",
                                                     "corrections", "duplicate_document"]


def test_a_pan_without_a_date_of_birth_and_a_document_showing_no_number_skip_those_checks():
    names = [c.name for c in document_checks(facts(document(type="pan")))]
    assert CheckName.DOB_MATCH not in names and CheckName.DUPLICATE_DOCUMENT not in names
    names = [c.name for c in document_checks(facts(document(type="aadhaar")))]
    assert CheckName.DOB_MATCH in names  # an identity document without one goes to a person


def test_a_number_shown_on_another_accounts_case_fails_the_duplicate_check():
    [dup] = [c for c in document_checks(facts(document(shown_fingerprint="fp"), other_owners=("u2",)))
             if c.name == CheckName.DUPLICATE_DOCUMENT]
    assert (dup.status, dup.score) == (CheckStatus.FAIL, 0.0)


@pytest.mark.parametrize(("kw", "status"), [
    ({"confidence": 0.9, "number_masked": "XXXX1234"}, CheckStatus.PASS),
    ({"confidence": 0.9}, CheckStatus.REVIEW),  # read, but no number
    ({"confidence": 0.4, "number_masked": "XXXX1234"}, CheckStatus.REVIEW),
    ({"confidence": 0.0}, CheckStatus.REVIEW),
])
def test_ocr(kw, status):
    [ocr] = [c for c in document_checks(facts(document(**kw))) if c.name == CheckName.OCR]
    assert ocr.status == status and ocr.score <= (0.9 if status == CheckStatus.PASS else 0.5)


@pytest.mark.parametrize(("kw", "status"), [
    ({"validation": {"number_valid": True}}, CheckStatus.PASS),
    ({"validation": {"valid": False, "detail": "Checksum fails."}}, CheckStatus.FAIL),
    ({"validation": {}}, CheckStatus.REVIEW),
    ({"validation": {"number_valid": True}, "fields": {"expiry_date": "2020-01-01"}}, CheckStatus.FAIL),
])
def test_document_validity(kw, status):
    [valid] = [c for c in document_checks(facts(document(**kw))) if c.name == CheckName.DOCUMENT_VALIDITY]
    assert valid.status == status


def test_the_selfie_checks_follow_the_face_match():
    assert _results(selfie_checks(selfie(liveness_passed=True))) == [
        (CheckName.SELFIE_QUALITY, CheckStatus.PASS, None), (CheckName.LIVENESS, CheckStatus.PASS, None)]
    poor = selfie_checks(selfie(quality={"acceptable": False, "issues": ["too dark"]}))
    assert [(c.status, c.detail) for c in poor] == [(CheckStatus.REVIEW, "too dark"),
                                                     (CheckStatus.REVIEW, "No liveness challenge was taken.")]


def test_the_profiles_date_of_birth_as_stored_or_none():
    assert profile_dob({"dob": "1990-04-12"}) == profile_dob({"dob": date(1990, 4, 12)}) == date(1990, 4, 12)
    assert profile_dob({"dob": "12/04/1990"}) is None and profile_dob({}) is None and profile_dob(None) is None


def test_a_second_rule_for_one_name_is_refused():
    with pytest.raises(ValueError, match="two rules"):
        document_rule(CheckName.OCR)(lambda _facts: None)
