"""The Key Fact Statement's rules (app/domain/kfs.py): its number and validity in working days, the RBI's
minimum, the rolling issues, the acceptance and its refusals; third-party charges inside the APR."""

from __future__ import annotations

from dataclasses import replace
from datetime import UTC, date, datetime
from decimal import Decimal

import pytest

from app.domain.kfs import (
    KfsExpired,
    KfsNotAccepted,
    KfsStale,
    accept,
    current_issue,
    ensure_accepted,
    working_days_after,
)
from app.domain.loan_schedule import ThirdPartyCharge, build_schedule, key_fact_statement, periodic_irr
from app.domain.loans import InvalidLoanProduct, InvalidTransition, Loan, LoanStatus
from tests.unit.test_loans_aggregate import LATER, PAID_OUT, PRODUCT, applied

D = Decimal
FRIDAY = datetime(2026, 12, 4, 18, 30, tzinfo=UTC)  # 2026-12-06 is a Sunday
NONE: frozenset[date] = frozenset()


def opened_friday() -> Loan:
    return replace(applied(), id="L1", created_at=FRIDAY)


def test_working_days_skip_sundays_and_the_listed_holidays():
    assert working_days_after(date(2026, 12, 4), 3, NONE) == date(2026, 12, 8)  # Sat 5, Mon 7, Tue 8
    assert working_days_after(date(2026, 12, 4), 3, {date(2026, 12, 7)}) == date(2026, 12, 9)
    assert working_days_after(date(2026, 12, 5), 1, NONE) == date(2026, 12, 7)  # from Saturday: Monday


def test_an_issue_holds_three_working_days_after_opening_then_the_next_one_follows():
    loan = opened_friday()
    first = current_issue(loan, date(2026, 12, 4), 3, NONE)
    assert (first.number, first.issued_on, first.valid_until, first.working_days) == (
        "KFS-L1-1", date(2026, 12, 4), date(2026, 12, 8), 3)
    assert current_issue(loan, date(2026, 12, 8), 3, NONE) == first  # its last day
    second = current_issue(loan, date(2026, 12, 9), 3, NONE)
    assert (second.number, second.issued_on, second.valid_until) == ("KFS-L1-2", date(2026, 12, 9), date(2026, 12, 12))
    assert current_issue(loan, date(2026, 12, 13), 3, NONE).number == "KFS-L1-3"  # issued on the Sunday


def test_the_rbi_minimum_holds_whatever_the_setting_and_a_longer_setting_is_kept():
    loan = opened_friday()  # 12 months: a tenor of 7 days or more, at least 3 working days
    assert current_issue(loan, date(2026, 12, 4), 1, NONE).valid_until == date(2026, 12, 8)
    assert current_issue(loan, date(2026, 12, 4), 5, {date(2026, 12, 9)}).valid_until == date(2026, 12, 11)


def test_accepting_the_current_issue_records_it_with_the_time_and_address():
    loan, issue = opened_friday(), current_issue(opened_friday(), date(2026, 12, 8), 3, NONE)
    now = datetime(2026, 12, 8, 10, 0, tzinfo=UTC)
    done = accept(loan, "KFS-L1-1", issue, now=now, ip_address="203.0.113.9", user_agent="app/1")
    taken = done.kfs_acceptance
    assert taken is not None and (taken.number, taken.at, taken.ip_address, taken.user_agent) == (
        "KFS-L1-1", now, "203.0.113.9", "app/1")
    assert (taken.issued_on, taken.valid_until) == (date(2026, 12, 4), date(2026, 12, 8)) and done.updated_at == now
    # Accepted, the issue shown stays the accepted one; the same number again is the same answer.
    assert current_issue(done, date(2027, 3, 1), 3, NONE).number == "KFS-L1-1"
    assert accept(done, "KFS-L1-1", issue, now=LATER, ip_address=None, user_agent=None) is done
    with pytest.raises(KfsStale):
        accept(done, "KFS-L1-2", issue, now=LATER, ip_address=None, user_agent=None)
    ensure_accepted(done)


def test_a_lapsed_issue_is_expired_any_other_number_is_stale_and_nothing_is_accepted():
    loan = opened_friday()
    issue = current_issue(loan, date(2026, 12, 9), 3, NONE)  # the second issue
    for number, error in (("KFS-L1-1", KfsExpired), ("KFS-L1-3", KfsStale), ("KFS-L2-1", KfsStale),
                          ("KFS-L1-x", KfsStale), ("KFS-L1-\u00b2", KfsStale), ("KFS-L1-01", KfsStale), ("", KfsStale)):
        with pytest.raises(error):
            accept(loan, number, issue, now=LATER, ip_address=None, user_agent=None)
    with pytest.raises(KfsNotAccepted) as refused:
        ensure_accepted(loan)
    assert refused.value.code == "kfs_not_accepted"


def test_an_approved_loan_accepts_and_a_disbursed_or_rejected_one_does_not():
    loan = opened_friday()
    issue = current_issue(loan, date(2026, 12, 4), 3, NONE)
    approved = loan.approve(by="a1", now=FRIDAY)
    assert accept(approved, issue.number, issue, now=FRIDAY, ip_address=None, user_agent=None).kfs_acceptance
    for later in (approved.disburse(by="a1", now=LATER, on=PAID_OUT, reference="U1"),
                  loan.reject(by="a1", reason="no", now=FRIDAY)):
        with pytest.raises(InvalidTransition):
            accept(later, issue.number, issue, now=FRIDAY, ip_address=None, user_agent=None)
    assert LoanStatus.APPLIED == loan.status


def test_third_party_charges_are_kept_back_from_the_disbursal_and_carried_by_the_apr():
    schedule = build_schedule(D("100000"), D("12"), 12)
    plain = key_fact_statement(schedule, D(0))
    assert plain.apr == D("12.00") and plain.third_party_charges == ()
    insured = key_fact_statement(schedule, D(1), (ThirdPartyCharge("Insurance", D("1500.00")),
                                                  ThirdPartyCharge("Stamp duty", D("500.00"))))
    fee_only = key_fact_statement(schedule, D(3))  # the same 3,000 kept back, all as a fee
    assert insured.net_disbursed == D("97000.00") == fee_only.net_disbursed and insured.processing_fee == D("1000.00")
    assert insured.apr == fee_only.apr > plain.apr
    # The APR is the rate at which the instalments are worth the net amount (Newton's method, as before).
    irr = periodic_irr(insured.net_disbursed, [i.payment for i in schedule.instalments])
    assert insured.apr == (irr * 12 * 100).quantize(D("0.01"))


def test_a_product_refuses_a_third_party_charge_without_a_name_or_below_zero():
    for bad in (ThirdPartyCharge(" ", D(10)), ThirdPartyCharge("Insurance", D(-1))):
        with pytest.raises(InvalidLoanProduct) as refused:
            replace(PRODUCT, third_party_charges=(bad,)).validate()
        assert refused.value.details["errors"] == [{"field": "third_party_charges",
                                                    "message": "A third-party charge has a name and a non-negative amount."}]
    assert Loan.open(replace(PRODUCT, third_party_charges=(ThirdPartyCharge("Insurance", D(600)),)), user_id="u1",
                     amount=D("120000.00"), tenure_months=12, purpose="Car", status=LoanStatus.APPLIED,
                     origin=applied().origin, by="u1", now=FRIDAY).kfs.net_disbursed == D("117000.00")  # less the 2 % fee and the premium


def test_the_holidays_and_validity_are_settings_and_a_bad_one_is_refused_at_start():
    from pydantic import ValidationError

    from app.config import Settings

    settings = Settings(_env_file=None, bank_holidays="2026-12-25, 2027-01-26", kfs_validity_working_days=5)
    assert settings.bank_holidays == [date(2026, 12, 25), date(2027, 1, 26)] and settings.kfs_validity_working_days == 5
    for bad in ({"bank_holidays": "2026-13-01"}, {"kfs_validity_working_days": 0}):
        with pytest.raises(ValidationError):
            Settings(_env_file=None, **bad)
