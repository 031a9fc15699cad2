"""Periodic re-KYC rules: how long an approval holds (risk period, document expiry cap, leap days) and
what renewing it asks for."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

from app.domain.kyc import LIVENESS, CaseDocument, CaseStatus, ChecksState, Decision, KycCase, Redo, RiskLevel
from app.domain.kyc_renewal import Renewal, add_years, document_expiry

AT = datetime(2026, 12, 6, 10, 30, tzinfo=UTC)


def doc(kind: str = "passport", expiry: str | None = None, corrected: str | None = None,
        side: str | None = "front") -> CaseDocument:
    return CaseDocument(id=kind, type=kind, side=side, file_id="f", content_type="image/jpeg", uploaded_at=AT,
                        fields={"expiry_date": expiry} if expiry else {}, confidence=0.9, validation={},
                        corrections={"expiry_date": corrected} if corrected else {})


def case(risk: RiskLevel | None, *docs: CaseDocument, approved_at: datetime = AT) -> KycCase:
    return KycCase("c", "u", CaseStatus.APPROVED, ChecksState.DONE, AT, AT, documents=list(docs), risk_level=risk,
                   decision=Decision(by="a", role="auditor", at=approved_at, approved=True))


@pytest.mark.parametrize(("risk", "years"), [(RiskLevel.HIGH, 2), (RiskLevel.MEDIUM, 8), (RiskLevel.LOW, 10),
                                             (None, 2)])
def test_an_approval_holds_for_its_risk_levels_period(risk, years):
    validity = Renewal().validity(case(risk, doc("pan")), AT)
    assert validity.until == AT.replace(year=2026 + years)
    assert (validity.until - validity.notice_at).days == 30


def test_the_periods_and_notice_come_from_settings():
    validity = Renewal({RiskLevel.HIGH: 1, RiskLevel.MEDIUM: 3, RiskLevel.LOW: 5}, notice_days=10).validity(case(RiskLevel.MEDIUM), AT)
    assert validity.until == AT.replace(year=2029) and validity.notice_at == datetime(2029, 11, 26, 10, 30, tzinfo=UTC)


def test_a_document_that_expires_sooner_ends_the_approval_at_the_end_of_its_expiry_day():
    validity = Renewal().validity(case(RiskLevel.LOW, doc("pan"), doc(expiry="2030-03-31")), AT)
    assert validity.until == datetime(2030, 4, 1, tzinfo=UTC)
    # A later expiry does not lengthen the period; the earlier of the read and the corrected date counts.
    assert Renewal().validity(case(RiskLevel.HIGH, doc(expiry="2040-01-01")), AT).until == AT.replace(year=2028)
    assert document_expiry(doc(expiry="2031-05-01", corrected="2030-05-01")).isoformat() == "2030-05-01"
    assert document_expiry(doc(expiry="31/05/2030")) is None  # no real date: no cap, the period holds


def test_a_leap_day_approval_ends_on_the_28th_never_a_day_late():
    leap = datetime(2028, 2, 29, 9, 0, tzinfo=UTC)
    assert add_years(leap, 2) == datetime(2030, 2, 28, 9, 0, tzinfo=UTC)
    assert add_years(leap, 4) == datetime(2032, 2, 29, 9, 0, tzinfo=UTC)
    assert Renewal().validity(case(RiskLevel.MEDIUM, approved_at=leap), leap).until == datetime(2036, 2, 29, 9,
                                                                                                tzinfo=UTC)
    assert Renewal().validity(case(RiskLevel.HIGH, approved_at=leap), leap).until == datetime(2030, 2, 28, 9,
                                                                                              tzinfo=UTC)


def test_renewal_asks_for_the_expired_document_alone_while_the_period_runs():
    expired, current = doc(expiry="2027-06-30"), doc("aadhaar", side="back")
    items = Renewal().items(case(RiskLevel.LOW, expired, current, doc("pan", side=None)), datetime(2027, 7, 1,
                                                                                                    tzinfo=UTC))
    assert items == [Redo("document", "passport", "front")]


def test_renewal_after_the_period_asks_for_a_live_selfie_and_any_expired_document():
    after = AT.replace(year=2028)
    assert Renewal().items(case(RiskLevel.HIGH, doc("aadhaar"), doc("pan")), after) == [Redo(LIVENESS)]
    items = Renewal().items(case(RiskLevel.HIGH, doc(expiry="2027-01-01"), doc("pan")), after)
    assert items == [Redo(LIVENESS), Redo("document", "passport", "front")]
    # On its last day a document is still current.
    assert Renewal().items(case(RiskLevel.HIGH, doc(expiry="2028-12-06")), after) == [Redo(LIVENESS)]
