"""Lending rules: products and their limits, eligibility, the loan lifecycle,
repayment allocation and the pre-closure quote. Schedules, EMI and the Key Fact
Statement are in `app.domain.loan_schedule`. Pure: no I/O, `Decimal` only.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, replace
from datetime import date
from decimal import ROUND_HALF_UP, Decimal, localcontext
from enum import StrEnum

from app.domain.errors import Conflict, InvalidInput, RuleViolation
from app.domain.loan_schedule import (
    MAX_TENURE_MONTHS,
    PRECISION,
    Instalment,
    InvalidLoanTerms,
    RepaymentFrequency,
    add_months,
    emi,
    principal_for_emi,
)
from app.domain.money import HUNDRED, PAISE, ZERO, InvalidAmount, floor_to, percent_of, round_money

# --- errors (mapped to HTTP in app/api/errors.py) -----------------------------------


class InvalidLoanProduct(InvalidInput):
    """The loan product's limits are inconsistent."""

    code = "invalid_product"


class NotEligible(RuleViolation):
    """The customer is not eligible for this loan."""

    code = "not_eligible"


class InvalidTransition(Conflict):
    """The loan is not in a state that allows this."""

    code = "invalid_transition"


class Overpayment(RuleViolation):
    """The payment is more than the loan's outstanding amount."""

    code = "overpayment"


class LoanRepaid(Conflict):
    """Nothing is outstanding on this loan."""

    code = "loan_repaid"


# --- products --------------------------------------------------------------------------


class LoanType(StrEnum):
    PERSONAL = "personal"
    HOME = "home"
    AUTO = "auto"
    EDUCATION = "education"
    BUSINESS = "business"
    GOLD = "gold"
    MICRO = "micro"


RISK_LEVELS = ("Low", "Medium", "High")  # the profile-risk levels, least risky first
MAX_ANNUAL_RATE = Decimal(60)
MAX_FEE_PCT = Decimal(10)
MIN_AGE, MAX_AGE = 18, 100


@dataclass(frozen=True, slots=True)
class LoanProduct:
    """A product's terms. `validate()` refuses limits that cannot all hold at once.

    `max_risk_level` is the riskiest profile-risk level the product lends to.
    """

    bank_id: str
    name: str
    type: LoanType
    min_amount: Decimal
    max_amount: Decimal
    min_tenure_months: int
    max_tenure_months: int
    annual_interest_rate: Decimal
    processing_fee_pct: Decimal
    prepayment_charge_pct: Decimal
    repayment_frequency: RepaymentFrequency
    min_monthly_income: Decimal
    min_age: int
    max_age: int
    max_foir: Decimal
    max_risk_level: str = "Medium"
    active: bool = True
    id: str | None = None

    def validate(self) -> LoanProduct:
        """Every broken limit at once, as `errors=[{"field", "message"}]`."""
        problems: list[tuple[str, str]] = []

        def check(ok: bool, name: str, message: str) -> None:
            if not ok:
                problems.append((name, message))

        check(bool(self.name and self.name.strip()), "name", "The name must not be empty.")
        check(self.type in LoanType.__members__.values(), "type", "Unknown loan type.")
        check(self.repayment_frequency in RepaymentFrequency.__members__.values(), "repayment_frequency",
              "Repayment frequency must be monthly, weekly or daily.")
        check(self.min_amount > 0, "min_amount", "The minimum amount must be above 0.")
        check(self.min_amount <= self.max_amount, "max_amount", "The maximum amount must be at least the minimum.")
        check(1 <= self.min_tenure_months <= MAX_TENURE_MONTHS, "min_tenure_months",
              f"Tenures must be 1 to {MAX_TENURE_MONTHS} months.")
        check(1 <= self.max_tenure_months <= MAX_TENURE_MONTHS, "max_tenure_months",
              f"Tenures must be 1 to {MAX_TENURE_MONTHS} months.")
        check(self.min_tenure_months <= self.max_tenure_months, "max_tenure_months",
              "The maximum tenure must be at least the minimum.")
        check(ZERO <= self.annual_interest_rate <= MAX_ANNUAL_RATE, "annual_interest_rate",
              f"The annual interest rate must be 0 to {MAX_ANNUAL_RATE} %.")
        for name in ("processing_fee_pct", "prepayment_charge_pct"):
            check(ZERO <= getattr(self, name) <= MAX_FEE_PCT, name, f"Fees and charges must be 0 to {MAX_FEE_PCT} %.")
        check(self.min_monthly_income >= 0, "min_monthly_income", "The minimum income must not be negative.")
        for name in ("min_age", "max_age"):
            check(MIN_AGE <= getattr(self, name) <= MAX_AGE, name, f"Ages must be {MIN_AGE} to {MAX_AGE}.")
        check(self.min_age <= self.max_age, "max_age", "The maximum age must be at least the minimum.")
        check(ZERO < self.max_foir <= 1, "max_foir", "max_foir must be above 0 and at most 1.")
        check(self.max_risk_level in RISK_LEVELS, "max_risk_level", f"Risk level must be one of {', '.join(RISK_LEVELS)}.")
        if problems:
            raise InvalidLoanProduct(problems[0][1], errors=[{"field": f, "message": m} for f, m in problems])
        return self


# --- eligibility ---------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Applicant:
    """What eligibility reads from the stored profile: monthly figures in rupees."""

    kyc_status: str
    dob: date | None
    monthly_income: Decimal | None
    existing_emis: Decimal = ZERO  # monthly obligations: declared, and every open loan or application here
    risk_level: str | None = None  # derived from the details; None while some are missing
    missing: tuple[str, ...] = ()  # the details a loan needs that are not given


@dataclass(frozen=True, slots=True)
class Reason:
    code: str
    message: str
    fields: tuple[str, ...] = ()  # the details to add, where that is the reason


@dataclass(frozen=True, slots=True)
class Eligibility:
    eligible: bool
    reasons: tuple[Reason, ...]
    amount: Decimal
    tenure_months: int
    emi: Decimal | None  # per instalment of the product's frequency
    foir: Decimal | None  # a fraction, 4 places: 0.4321
    max_eligible_amount: Decimal


ELIGIBLE_AMOUNT_STEP = Decimal(100)  # offers are whole hundreds of rupees, rounded down


def age_on(dob: date, day: date) -> int:
    return day.year - dob.year - ((day.month, day.day) < (dob.month, dob.day))


def monthly_equivalent(instalment: Decimal, frequency: RepaymentFrequency) -> Decimal:
    """What an instalment costs a month, for FOIR: weekly × 52/12, daily × 365/12. Exact."""
    with localcontext(prec=PRECISION):
        return instalment * frequency.periods_per_year / 12


def max_eligible_amount(product: LoanProduct, applicant: Applicant, tenure_months: int) -> Decimal:
    """The largest principal whose EMI fits the FOIR headroom, capped by the product.

    Headroom = max_foir × income − existing EMIs (a month), turned into one
    instalment of the product's frequency; rounded down to a whole 100 rupees; 0
    when that is below the product's minimum, or income is unknown.
    """
    income = applicant.monthly_income
    if not income or income <= 0 or not 1 <= tenure_months <= MAX_TENURE_MONTHS:
        return ZERO
    with localcontext(prec=PRECISION):
        headroom = product.max_foir * income - applicant.existing_emis
        per_instalment = headroom * 12 / product.repayment_frequency.periods_per_year
    if per_instalment <= 0:
        return ZERO
    rate, frequency = product.annual_interest_rate, product.repayment_frequency
    amount = floor_to(min(principal_for_emi(per_instalment, rate, tenure_months, frequency), product.max_amount),
                      ELIGIBLE_AMOUNT_STEP)
    # The EMI is rounded half-up: step down while that half paisa tips it over the headroom.
    while amount > 0 and emi(amount, rate, tenure_months, frequency) > per_instalment:
        amount -= ELIGIBLE_AMOUNT_STEP
    return amount if amount >= product.min_amount else ZERO


def check_eligibility(product: LoanProduct, applicant: Applicant, today: date,
                      amount: Decimal | None = None, tenure_months: int | None = None) -> Eligibility:
    """Every rule is checked and every failure returned as a `Reason`, never only the first.

    Without a tenure the product's longest is used; without an amount, the largest
    eligible one (or the product's minimum when none fits). Age: at least
    `min_age` today and at most `max_age` on the day the last instalment falls due.
    """
    tenure = product.max_tenure_months if tenure_months is None else tenure_months
    best = max_eligible_amount(product, applicant, tenure)
    if amount is None:
        amount = best if best > 0 else product.min_amount
    reasons: list[Reason] = []

    def fail(code: str, message: str, fields: tuple[str, ...] = ()) -> None:
        reasons.append(Reason(code, message, fields))

    if not product.active:
        fail("product_inactive", "This product is not offered at the moment.")
    if applicant.kyc_status != "APPROVED":
        fail("kyc_not_approved", "Your KYC must be approved before you can borrow.")
    if not product.min_amount <= amount <= product.max_amount:
        fail("amount_out_of_range", f"The amount must be between {product.min_amount} and {product.max_amount}.")
    if not product.min_tenure_months <= tenure <= product.max_tenure_months:
        fail("tenure_out_of_range", f"The tenure must be {product.min_tenure_months} to {product.max_tenure_months} months.")
    if applicant.dob is None:
        fail("age_unknown", "Add your date of birth to your profile.")
    else:
        if age_on(applicant.dob, today) < product.min_age:
            fail("age_below_minimum", f"You must be at least {product.min_age} years old.")
        if 1 <= tenure <= MAX_TENURE_MONTHS and age_on(applicant.dob, add_months(today, tenure)) > product.max_age:
            fail("age_above_maximum", f"You would be older than {product.max_age} before the loan ends.")
    income = applicant.monthly_income
    if income is None or income <= 0:
        fail("income_unknown", "Add your monthly income to your financial details.")
    elif income < product.min_monthly_income:
        fail("income_below_minimum", f"The monthly income must be at least {product.min_monthly_income}.")
    if applicant.risk_level is None:  # derived from the details, so unknown only while some are missing
        fail("details_missing", "Loans need these details, not given yet: " + ", ".join(applicant.missing) + ".",
             applicant.missing)
    elif applicant.risk_level not in RISK_LEVELS or (
            RISK_LEVELS.index(applicant.risk_level) > RISK_LEVELS.index(product.max_risk_level)):
        fail("risk_too_high", f"This product lends to profile risk up to {product.max_risk_level}.")

    instalment = foir = None
    if amount > 0 and 1 <= tenure <= MAX_TENURE_MONTHS:
        instalment = emi(amount, product.annual_interest_rate, tenure, product.repayment_frequency)
        if income is not None and income > 0:
            with localcontext(prec=PRECISION):
                exact = (applicant.existing_emis + monthly_equivalent(instalment, product.repayment_frequency)) / income
            foir = exact.quantize(Decimal("0.0001"), rounding=ROUND_HALF_UP)
            if exact > product.max_foir:
                fail("foir_exceeded", f"Your EMIs would take {foir * 100:.2f} % of your income; "
                     f"the limit is {product.max_foir * 100:.2f} %.")
    return Eligibility(not reasons, tuple(reasons), amount, tenure, instalment, foir, best)


def ensure_eligible(result: Eligibility) -> Eligibility:
    if not result.eligible:
        raise NotEligible(result.reasons[0].message,
                          reasons=[{"code": r.code, "message": r.message, "fields": list(r.fields)}
                                   for r in result.reasons])
    return result


# --- lifecycle -----------------------------------------------------------------------


class LoanStatus(StrEnum):
    APPLIED = "APPLIED"
    APPROVED = "APPROVED"
    REJECTED = "REJECTED"
    DISBURSED = "DISBURSED"
    PRE_CLOSURE_REQUESTED = "PRE_CLOSURE_REQUESTED"
    CLOSED = "CLOSED"

    def can(self, target: LoanStatus) -> bool:
        return target in _TRANSITIONS[self]

    @property
    def is_final(self) -> bool:
        return not _TRANSITIONS[self]


_TRANSITIONS: dict[LoanStatus, frozenset[LoanStatus]] = {
    LoanStatus.APPLIED: frozenset({LoanStatus.APPROVED, LoanStatus.REJECTED}),
    LoanStatus.APPROVED: frozenset({LoanStatus.DISBURSED}),
    # DISBURSED → CLOSED when the last instalment is paid.
    LoanStatus.DISBURSED: frozenset({LoanStatus.PRE_CLOSURE_REQUESTED, LoanStatus.CLOSED}),
    LoanStatus.PRE_CLOSURE_REQUESTED: frozenset({LoanStatus.CLOSED}),
    LoanStatus.REJECTED: frozenset(),
    LoanStatus.CLOSED: frozenset(),
}


def ensure_transition(current: LoanStatus | str, target: LoanStatus) -> LoanStatus:
    """The target state, or `InvalidTransition` (a 409) naming both states."""
    state = LoanStatus(current)
    if not state.can(target):
        raise InvalidTransition(f"The loan is {state.value} and cannot become {target.value}.",
                                current=state.value, target=target.value)
    return target


# --- repayments ----------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Allocation:
    instalment: int
    interest: Decimal
    principal: Decimal

    @property
    def amount(self) -> Decimal:
        return self.interest + self.principal


@dataclass(frozen=True, slots=True)
class RepaymentResult:
    allocations: tuple[Allocation, ...]
    instalments: tuple[Instalment, ...]  # the schedule with this payment applied
    outstanding: Decimal  # left to pay after it

    @property
    def fully_paid(self) -> bool:
        """The last instalment is paid: the loan can close (DISBURSED → CLOSED)."""
        return self.outstanding == 0


def outstanding(instalments: Sequence[Instalment]) -> Decimal:
    """Everything still to pay on the schedule: unpaid interest and principal."""
    return sum((i.amount_left for i in instalments), ZERO)


def outstanding_principal(instalments: Sequence[Instalment]) -> Decimal:
    return sum((i.principal - i.principal_paid for i in instalments), ZERO)


def next_due(instalments: Sequence[Instalment]) -> Instalment | None:
    return next((i for i in instalments if not i.paid), None)


def allocate_repayment(instalments: Sequence[Instalment], amount: Decimal) -> RepaymentResult:
    """Apply a payment to the oldest unpaid instalments: each one's interest, then its principal.

    What is left after the instalments already due pays the next ones in advance.
    Refuses a payment above the outstanding (`Overpayment`) or one that is not a
    positive amount in paise.
    """
    if not isinstance(amount, Decimal) or not amount.is_finite() or amount <= 0 or amount != amount.quantize(PAISE):
        raise InvalidAmount("The payment must be a positive amount with at most 2 decimal places.")
    owed = outstanding(instalments)
    if owed == 0:
        raise LoanRepaid()
    if amount > owed:
        raise Overpayment(f"The payment is more than the {owed} outstanding.", outstanding=str(owed))
    left = amount
    allocations: list[Allocation] = []
    updated: list[Instalment] = []
    for row in instalments:
        if left == 0 or row.paid:
            updated.append(row)
            continue
        interest = min(left, row.interest - row.interest_paid)
        principal = min(left - interest, row.principal - row.principal_paid)
        left -= interest + principal
        allocations.append(Allocation(row.number, interest, principal))
        updated.append(replace(row, interest_paid=row.interest_paid + interest,
                               principal_paid=row.principal_paid + principal))
    return RepaymentResult(tuple(allocations), tuple(updated), owed - amount)


# --- pre-closure ---------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class PreClosureQuote:
    """Every figure of a pre-closure quote; `foreclosure_amount` is their sum.

    foreclosure = outstanding_principal + accrued_interest + overdue_interest
                  + prepayment_charge − advance_interest_credit
    and `refund_due` is what is left over when advance payments exceed that.
    """

    quote_date: date
    outstanding_principal: Decimal
    accrued_from: date
    accrued_days: int
    annual_interest_rate: Decimal
    accrued_interest: Decimal
    overdue_interest: Decimal
    advance_interest_credit: Decimal
    prepayment_charge_pct: Decimal
    prepayment_charge: Decimal
    foreclosure_amount: Decimal
    refund_due: Decimal = ZERO


def preclosure_quote(instalments: Sequence[Instalment], annual_rate_pct: Decimal, prepayment_charge_pct: Decimal,
                     disbursed_on: date, quote_date: date) -> PreClosureQuote:
    """What closes the loan on `quote_date`.

    - accrued interest: on the outstanding principal, actual days since the last
      due date on or before the quote date (the disbursal date before the first)
      / 365, half-up to paise;
    - overdue interest: interest of instalments already due and not yet paid
      (the formula would otherwise forgive it);
    - advance interest credit: interest paid ahead on instalments not yet due,
      for periods that will now never run;
    - prepayment charge: the product's % on the outstanding principal.
    """
    dated = [(i, i.due_date) for i in instalments if i.due_date is not None]
    if len(dated) != len(instalments):
        raise InvalidLoanTerms("The loan has no due dates: it has not been disbursed.")
    if quote_date < disbursed_on:
        raise InvalidInput("A quote cannot be dated before the disbursal.")
    principal = outstanding_principal(instalments)
    if principal == 0:
        raise LoanRepaid()
    due = [i for i, on in dated if on <= quote_date]
    ahead = [i for i, on in dated if on > quote_date]
    since = max((on for _, on in dated if on <= quote_date), default=disbursed_on)
    days = (quote_date - since).days
    with localcontext(prec=PRECISION):
        accrued = round_money(principal * annual_rate_pct / HUNDRED * days / 365)
    overdue = sum((i.interest - i.interest_paid for i in due), ZERO)
    credit = sum((i.interest_paid for i in ahead), ZERO)
    charge = percent_of(principal, prepayment_charge_pct)
    total = principal + accrued + overdue + charge - credit
    return PreClosureQuote(
        quote_date=quote_date, outstanding_principal=principal, accrued_from=since, accrued_days=days,
        annual_interest_rate=annual_rate_pct, accrued_interest=accrued, overdue_interest=overdue,
        advance_interest_credit=credit, prepayment_charge_pct=prepayment_charge_pct, prepayment_charge=charge,
        foreclosure_amount=max(total, ZERO), refund_due=max(-total, ZERO),
    )
