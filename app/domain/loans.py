"""Loans: products and their limits, eligibility, and the `Loan` aggregate with its rules (the
lifecycle, `apply_payment`, what is outstanding and next due, the pre-closure quote). Schedules,
EMI and the Key Fact Statement are in `app.domain.loan_schedule`. Pure: no I/O, `Decimal` only.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import asdict, dataclass, field, replace
from datetime import date, datetime
from decimal import ROUND_HALF_UP, Decimal, localcontext
from enum import StrEnum
from functools import lru_cache
from typing import Any

from app.domain.delinquency import (
    Arrears,
    PenalKind,
    PenalRule,
    assess,
    closed_early,
    days_past_due,
    due_by,
    split_payment,
)
from app.domain.errors import Conflict, Forbidden, InvalidInput, NotFound, RuleViolation
from app.domain.loan_schedule import (
    MAX_TENURE_MONTHS,
    PRECISION,
    Instalment,
    InvalidLoanTerms,
    KeyFactStatement,
    RepaymentFrequency,
    Schedule,
    ScheduleVersion,
    ThirdPartyCharge,
    add_months,
    build_schedule,
    emi,
    key_fact_statement,
    principal_for_emi,
    version_rows,
)
from app.domain.money import HUNDRED, PAISE, ZERO, InvalidAmount, floor_to, money, percent_of, round_money

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


class PaidAhead(Conflict):
    """A pre-closure is requested: a payment may bring the loan up to date, not pay instalments ahead."""

    code = "preclosure_requested"


class LoanRepaid(Conflict):
    """Nothing is outstanding on this loan."""

    code = "loan_repaid"


class KycNotApproved(Forbidden):
    """Your KYC must be approved before you can borrow."""

    code = "kyc_not_approved"


def kyc_refusal(kyc_status: str) -> Reason | None:
    """Why KYC stops a new loan (None: it does not), for applying and the eligibility check alike; one that ran
    out (periodic re-KYC) says so, as it is renewed, not redone."""
    if kyc_status == "RE_KYC_DUE":
        return Reason("re_kyc_due", "Your KYC verification has expired; renew it (GET /kyc/me lists what to upload) "
                                    "before you apply.")
    return None if kyc_status == "APPROVED" else Reason(KycNotApproved.code, str(KycNotApproved.__doc__))


def ensure_kyc_approved(kyc_status: str) -> None:
    if refusal := kyc_refusal(kyc_status):
        raise KycNotApproved(refusal.message, code=refusal.code)


class LoanNotFound(NotFound):
    """No such loan."""

    code = "loan_not_found"


class DuplicateApplication(Conflict):
    """You already have an open application or loan for this product."""

    code = "duplicate_application"


class LoanChanged(Conflict):
    """The loan changed while this request was processed; read it again and retry."""

    code = "loan_changed"


# --- products --------------------------------------------------------------------------


class LoanType(StrEnum):
    PERSONAL = "personal"
    HOME = "home"
    AUTO = "auto"
    EDUCATION = "education"
    BUSINESS = "business"
    GOLD = "gold"
    MICRO = "micro"


class RateType(StrEnum):
    FIXED = "fixed"
    FLOATING = "floating"


def cooling_off_minimum(tenor_days: int) -> int:
    """RBI Digital Lending Directions 2025: at least 3 days for a tenor of 7 days or more, 1 day below it."""
    return 3 if tenor_days >= 7 else 1


RISK_LEVELS = ("Low", "Medium", "High")  # the profile-risk levels, least risky first
MAX_ANNUAL_RATE = Decimal(60)
MAX_FEE_PCT = Decimal(10)
MIN_AGE, MAX_AGE = 18, 100
MIN_PREPAYMENT = Decimal(1000)  # a product's default smallest part-prepayment


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
    required_kyc_level: str | None = None  # the KYC level (KYC_LEVELS) a loan needs; None: any approved KYC
    full_kyc_above: Decimal | None = None  # a loan above this amount needs the highest KYC level
    rate_type: RateType = RateType.FIXED
    cooling_off_days: int = 3  # after disbursal, the borrower may exit paying principal and proportionate APR
    min_prepayment: Decimal = MIN_PREPAYMENT  # the smallest part-prepayment taken
    penal_charge: PenalRule | None = None  # per late instalment (app/domain/delinquency.py); None: none
    third_party_charges: tuple[ThirdPartyCharge, ...] = ()  # kept back from the disbursal, inside the APR

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
        for name in ("min_tenure_months", "max_tenure_months"):
            check(1 <= getattr(self, name) <= MAX_TENURE_MONTHS, name, f"Tenures must be 1 to {MAX_TENURE_MONTHS} months.")
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
        check(self.full_kyc_above is None or self.full_kyc_above >= 0, "full_kyc_above", "The amount must not be negative.")
        least = cooling_off_minimum(self.min_tenure_months * 28)  # the shortest tenure's fewest days
        check(least <= self.cooling_off_days <= 30, "cooling_off_days", f"The cooling-off period must be {least} to 30 days.")
        check(self.min_prepayment > 0, "min_prepayment", "The smallest prepayment must be above 0.")
        penal = self.penal_charge
        check(penal is None or (penal.value >= 0 and (penal.cap is None or penal.cap >= 0) and (
            penal.kind is PenalKind.FIXED or penal.value <= MAX_FEE_PCT)), "penal_charge",
              f"A penal charge is a non-negative amount, or 0 to {MAX_FEE_PCT} % of the overdue, with a non-negative cap.")
        check(all(c.name.strip() and c.amount >= 0 for c in self.third_party_charges), "third_party_charges",
              "A third-party charge has a name and a non-negative amount.")
        if problems:
            raise InvalidLoanProduct(problems[0][1], errors=[{"field": f, "message": m} for f, m in problems])
        return self

    @property
    def charge_pct(self) -> Decimal:
        """The prepayment and foreclosure charge a loan pays. RBI: none on a floating-rate loan to an individual
        (every borrower here is one) for a purpose other than business (a business product's purpose)."""
        floating = self.rate_type == RateType.FLOATING and self.type != LoanType.BUSINESS
        return ZERO if floating else self.prepayment_charge_pct


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
    if refusal := kyc_refusal(applicant.kyc_status):
        reasons.append(refusal)
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

    @property
    def is_running(self) -> bool:
        """Disbursed and not settled: instalments keep falling due and take payments. A pre-closure request
        settles nothing until it is confirmed, so its loan runs on (reviewed, reminded, payable) meanwhile."""
        return self in (LoanStatus.DISBURSED, LoanStatus.PRE_CLOSURE_REQUESTED)


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
    penal_charges: Decimal = ZERO  # unpaid penal charges, in `foreclosure_amount` (never interest, never principal)

    def record(self) -> dict[str, Any]:
        """The quote as kept beside the loan and its final repayment: days as ISO dates."""
        return {k: v.isoformat() if isinstance(v, date) else v for k, v in asdict(self).items()}


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


# --- the loan ------------------------------------------------------------------------


class LoanOrigin(StrEnum):
    APPLICATION = "application"  # the customer applied (POST /loans/apply)
    DIRECT = "direct"  # an admin opened it (POST /admin/loans)


class Closure(StrEnum):
    REPAID = "repaid"  # the last instalment was paid
    PRE_CLOSED = "pre_closed"  # settled early by a pre-closure
    COOLING_OFF_EXIT = "cooling_off_exit"  # the borrower left within the cooling-off period


class RepaymentKind(StrEnum):
    INSTALMENT = "instalment"
    PRE_CLOSURE = "pre_closure"
    PREPAYMENT = "prepayment"  # part of the principal, ahead: the schedule is rebuilt
    COOLING_OFF_EXIT = "cooling_off_exit"


@dataclass(frozen=True, slots=True)
class KfsAcceptance:
    """The borrower's acceptance of a Key Fact Statement issue (app/domain/kfs.py): which, when, from where."""

    number: str
    issued_on: date
    valid_until: date
    working_days: int
    at: datetime
    ip_address: str | None
    user_agent: str | None


@dataclass(frozen=True, slots=True)
class StatusChange:
    status: LoanStatus
    at: datetime
    by: str | None  # the user id who made it
    note: str | None = None


@dataclass(frozen=True, slots=True)
class NextDue:
    number: int
    due_date: date | None
    amount: Decimal  # left to pay on this instalment


@dataclass(frozen=True, slots=True)
class LoanFigures:
    """Left to pay and next due. Kept beside the loan with every change, so lists need no schedule."""

    outstanding: Decimal
    outstanding_principal: Decimal
    next_due: NextDue | None


NOTHING_OWED = LoanFigures(ZERO, ZERO, None)


@dataclass(frozen=True, slots=True)
class Repayment:
    id: str
    loan_id: str
    user_id: str
    kind: RepaymentKind
    amount: Decimal
    allocations: tuple[Allocation, ...]
    outstanding_after: Decimal
    paid_at: datetime
    recorded_by: str
    breakdown: dict[str, Any] = field(default_factory=dict)  # a pre-closure's quote figures
    charges_paid: Decimal = ZERO  # of `amount`, what settled penal charges (the rest went to the schedule)


@dataclass(frozen=True, slots=True)
class OpenInstalment:
    """An open application or loan as eligibility counts it: what one instalment costs, how often."""

    id: str
    emi: Decimal
    frequency: RepaymentFrequency


@lru_cache(maxsize=1024)
def _schedule(amount: Decimal, rate: Decimal, tenure_months: int, frequency: RepaymentFrequency,
              disbursed_on: date | None = None) -> Schedule:
    # Immutable, so shared: the loan opened with these terms and every later read of it (or of any
    # loan with the same terms and disbursal day) use one build.
    return build_schedule(amount, rate, tenure_months, frequency, disbursed_on)


@dataclass(frozen=True, slots=True)
class Loan:
    """One loan, from application to closure. `product` is the product's terms as they were
    when the loan was opened (a later catalogue change never moves an agreed loan), and `kfs` the
    Key Fact Statement the customer agreed to. Every change returns a new `Loan`; `rev` is the
    stored revision it was read at, so a change is written only if nothing changed since."""

    id: str
    user_id: str
    product_id: str
    product: LoanProduct
    amount: Decimal
    tenure_months: int
    purpose: str
    status: LoanStatus
    origin: LoanOrigin
    emi: Decimal
    kfs: KeyFactStatement
    instalments: tuple[Instalment, ...]  # empty when read for a list: see `listed`
    created_at: datetime
    updated_at: datetime
    history: tuple[StatusChange, ...] = ()
    rev: int = 0
    paid_total: Decimal = ZERO  # every payment, a pre-closure's included
    schedule_paid: Decimal = ZERO  # the instalment repayments, allocated over the schedule
    # The figures as stored (read for a list, without the schedule) or as computed once from the schedule.
    listed: LoanFigures | None = field(default=None, compare=False)
    decided_by: str | None = None
    rejection_reason: str | None = None
    disbursed_on: date | None = None
    net_disbursed: Decimal | None = None
    payout_reference: str | None = None
    preclosure_quote: dict[str, Any] | None = None
    closure: Closure | None = None
    closed_at: datetime | None = None
    schedule_versions: tuple[ScheduleVersion, ...] = ()  # every rebuild of the schedule, oldest first
    arrears: Arrears = Arrears()  # days past due, class, penal charges (app/domain/delinquency.py)
    kfs_acceptance: KfsAcceptance | None = None  # needed before the disbursal (app/domain/kfs.py)

    @classmethod
    def open(cls, product: LoanProduct, *, user_id: str, amount: Decimal, tenure_months: int, purpose: str,
             status: LoanStatus, origin: LoanOrigin, by: str, now: datetime) -> Loan:
        """A new application (APPLIED) or an admin's direct loan (APPROVED), with its schedule and KFS."""
        schedule = _schedule(amount, product.annual_interest_rate, tenure_months, product.repayment_frequency)
        assert product.id is not None
        return cls(id="", user_id=user_id, product_id=product.id, product=product, amount=amount,
                   tenure_months=tenure_months, purpose=purpose, status=status, origin=origin, emi=schedule.emi,
                   kfs=key_fact_statement(schedule, product.processing_fee_pct, product.third_party_charges),
                   instalments=schedule.instalments,
                   created_at=now, updated_at=now, history=(StatusChange(status, now, by),),
                   decided_by=by if status == LoanStatus.APPROVED else None)

    def with_schedule(self) -> Loan:
        """The loan with its schedule rebuilt from the agreed terms, dated from the disbursal, and the
        instalment repayments (`schedule_paid`) allocated over it: one allocation of the sum leaves
        every row as the payments did (in order, interest then principal). The rebuilt schedule must
        give the agreed KFS: a change in the rounding rules fails loudly, never moves a signed loan."""
        schedule = _schedule(self.amount, self.product.annual_interest_rate, self.tenure_months, self.frequency,
                             self.disbursed_on)
        if (schedule.emi, schedule.total_interest, len(schedule.instalments)) != (
                self.kfs.emi, self.kfs.total_interest, self.kfs.instalments):
            raise RuntimeError("the schedule rules no longer give the loan's agreed KFS")  # a defect, never a guess
        rows = schedule.instalments
        for version in self.schedule_versions:  # a part-prepayment's rebuild keeps the rows before it
            rows = rows[:version.first - 1] + version_rows(version, self.product.annual_interest_rate, self.frequency,
                                                           self.disbursed_on or version.on)
        if self.schedule_paid > 0:
            rows = allocate_repayment(rows, self.schedule_paid).instalments
        return self._with_rows(rows)

    def _with_rows(self, rows: tuple[Instalment, ...], **changes: Any) -> Loan:
        """The loan on these rows, its figures computed once (a detail reads them several times)."""
        loan = replace(self, instalments=rows, listed=None, **changes)
        return replace(loan, listed=loan.figures)

    @property
    def frequency(self) -> RepaymentFrequency:
        return self.product.repayment_frequency

    @property
    def is_disbursed(self) -> bool:
        return self.disbursed_on is not None

    @property
    def figures(self) -> LoanFigures:
        """Nothing is owed before the disbursal (the KFS states what will be) nor once closed (a
        pre-closure settles the rest); otherwise what the schedule leaves to pay."""
        if not self.is_disbursed or self.status == LoanStatus.CLOSED:
            return NOTHING_OWED
        if self.listed:
            return self.listed
        row = next_due(self.instalments)
        return LoanFigures(outstanding(self.instalments), outstanding_principal(self.instalments),
                           NextDue(row.number, row.due_date, row.amount_left) if row else None)

    @property
    def outstanding(self) -> Decimal:
        return self.figures.outstanding

    @property
    def outstanding_principal(self) -> Decimal:
        return self.figures.outstanding_principal

    @property
    def next_due(self) -> NextDue | None:
        return self.figures.next_due

    # --- changes: each returns the new state ------------------------------------------------

    def _become(self, target: LoanStatus, *, by: str, now: datetime, note: str | None = None, **changes: Any) -> Loan:
        ensure_transition(self.status, target)
        return replace(self, status=target, updated_at=now, history=(*self.history, StatusChange(target, now, by, note)),
                       **changes)

    def approve(self, *, by: str, now: datetime) -> Loan:
        return self._become(LoanStatus.APPROVED, by=by, now=now, decided_by=by)

    def reject(self, *, by: str, reason: str, now: datetime) -> Loan:
        return self._become(LoanStatus.REJECTED, by=by, now=now, note=reason, decided_by=by, rejection_reason=reason)

    def disburse(self, *, by: str, now: datetime, on: date, reference: str) -> Loan:
        """Pays out the net amount (principal less the fee) and dates the schedule from `on`."""
        return self._become(LoanStatus.DISBURSED, by=by, now=now, note=reference, disbursed_on=on,
                            net_disbursed=self.kfs.net_disbursed, payout_reference=reference).with_schedule()

    def apply_payment(self, amount: Decimal, *, by: str, now: datetime) -> tuple[Loan, Repayment]:
        """Allocated to the oldest instalments, interest first; paying the last closes the loan. The new
        state, and the payment's record."""
        if not self.status.is_running:
            raise InvalidTransition(f"The loan is {self.status.value}; only a disbursed, open loan takes repayments.",
                                    current=self.status.value)
        amount, today = money(amount, strict=True), now.date()
        levied = self.assessed(today).arrears  # an instalment late since the last review owes its charge first
        if self.status == LoanStatus.PRE_CLOSURE_REQUESTED:  # the quote settles the rest; paying ahead would
            due_now = due_by(self.instalments, today) + levied.charges_due  # make the foreclosure a refund
            if amount > due_now:
                raise PaidAhead(f"A pre-closure is requested: pay at most what is due today ({due_now}); the rest "
                                "is settled by the pre-closure quote.", due_now=str(due_now))
        to_schedule, charges = split_payment(self.instalments, levied.charges, amount, today)
        result = (allocate_repayment(self.instalments, to_schedule) if to_schedule or not levied.charges_due
                  else RepaymentResult((), self.instalments, self.outstanding))
        paid = self._with_rows(result.instalments, schedule_paid=self.schedule_paid + to_schedule,
                               paid_total=self.paid_total + amount, updated_at=now,
                               arrears=replace(levied, charges=charges)).assessed(today)
        if result.fully_paid and not paid.arrears.charges_due:
            paid = paid._become(LoanStatus.CLOSED, by=by, now=now, note=Closure.REPAID.value,
                                closure=Closure.REPAID, closed_at=now)
        return paid, Repayment(id="", loan_id=self.id, user_id=self.user_id, kind=RepaymentKind.INSTALMENT,
                               amount=amount, allocations=result.allocations, outstanding_after=result.outstanding,
                               paid_at=now, recorded_by=by, charges_paid=amount - to_schedule)

    def reviewed_only_since(self, earlier: Loan) -> bool:
        """Whether what changed since `earlier` is only what the daily review writes (arrears, reminders): the
        same status, money paid, schedule and pre-closure quote."""
        def money(loan: Loan) -> tuple[object, ...]:
            return (loan.status, loan.paid_total, loan.schedule_paid, loan.schedule_versions, loan.preclosure_quote)
        return money(self) == money(earlier)

    def dpd_on(self, today: date) -> int:
        """Of the oldest unpaid instalment (0 before the disbursal and once closed)."""
        due = self.next_due
        return days_past_due(due.due_date, today) if due and self.status.is_running else 0

    def assessed(self, today: date) -> Loan:
        """The arrears on `today` (the daily review, and before and after a payment): new penal charges, the class."""
        if not self.status.is_running:
            return self
        return replace(self, arrears=assess(self.arrears, self.instalments, today, self.product.penal_charge))

    def quote(self, on: date) -> PreClosureQuote:
        """What closes the loan on `on` (see `preclosure_quote`)."""
        if not self.status.is_running or self.disbursed_on is None:
            raise InvalidTransition(f"The loan is {self.status.value}; a pre-closure quote exists only for a "
                                    "DISBURSED loan.", current=self.status.value)
        quote = preclosure_quote(self.instalments, self.product.annual_interest_rate,
                                 self.product.charge_pct, self.disbursed_on, on)
        charges = self.assessed(on).arrears.charges_due
        total = quote.foreclosure_amount - quote.refund_due + charges
        return replace(quote, penal_charges=charges, foreclosure_amount=max(total, ZERO), refund_due=max(-total, ZERO))

    def request_preclosure(self, *, on: date, by: str, now: datetime) -> tuple[Loan, PreClosureQuote]:
        """The customer asks to settle early: the quote of `on` is kept with the request."""
        ensure_transition(self.status, LoanStatus.PRE_CLOSURE_REQUESTED)
        quote = self.quote(on)
        return self.assessed(on)._become(LoanStatus.PRE_CLOSURE_REQUESTED, by=by, now=now,  # its charges kept
                                         preclosure_quote=quote.record()), quote

    def close_preclosed(self, *, on: date, by: str, now: datetime) -> tuple[Loan, Repayment]:
        """Closes a loan whose customer asked to pre-close: the final payment is the quote of `on`."""
        ensure_transition(self.status, LoanStatus.CLOSED)
        if self.status != LoanStatus.PRE_CLOSURE_REQUESTED:
            raise InvalidTransition("Only a loan whose pre-closure was requested can be closed here.",
                                    current=self.status.value, target=LoanStatus.CLOSED.value)
        quote = self.quote(on)
        figures = quote.record()
        closed = self._become(LoanStatus.CLOSED, by=by, now=now, note=Closure.PRE_CLOSED.value,
                              closure=Closure.PRE_CLOSED, closed_at=now, preclosure_quote=figures,
                              paid_total=self.paid_total + quote.foreclosure_amount,
                              arrears=closed_early(self.assessed(on).arrears, on, waive=False))
        return closed, Repayment(id="", loan_id=self.id, user_id=self.user_id, kind=RepaymentKind.PRE_CLOSURE,
                                 amount=quote.foreclosure_amount, allocations=(), outstanding_after=ZERO,
                                 paid_at=now, recorded_by=by, breakdown=figures, charges_paid=quote.penal_charges)
