"""Loan, catalogue and eligibility bodies. Money in and out is `Money` (JSON numbers, 2 decimals)."""

from __future__ import annotations

from datetime import date
from decimal import Decimal
from typing import Annotated, Any

from pydantic import AliasChoices, AliasPath, BaseModel, ConfigDict, Field

from app.api.schemas.common import Fraction, Input, Money, Out, PlainText, PositiveMoney, Rate, UtcDatetime
from app.domain.delinquency import LoanClass, PenalKind
from app.domain.kfs import KfsIssue, KfsTerms
from app.domain.kyc import RiskLevel
from app.domain.loan_schedule import Instalment, KeepTerm, RepaymentFrequency
from app.domain.loans import Closure, Loan, LoanOrigin, LoanStatus, LoanType, RateType, Repayment, RepaymentKind

Id = Annotated[str, Field(max_length=24, pattern="^[0-9a-fA-F]{24}$", description="24 hex digits", examples=["6741f0c2a1b2c3d4e5f60718"])]
# strict: JSON `true` would otherwise be read as 1 month (and "12" as 12), silently.
Tenure = Annotated[int, Field(strict=True, ge=1, le=360, description="Months, 1 to 360", examples=[36])]


# --- catalogue ------------------------------------------------------------------------


class PenalChargeIn(Input):
    """RBI (2023): a penal charge per late instalment, never interest: no interest on it, never in the principal."""

    model_config = ConfigDict(json_schema_extra={"example": {"kind": "percent", "value": 2, "cap": 1000}})

    kind: PenalKind = Field(description="`fixed`: `value` rupees; `percent`: `value` % of the late instalment's "
                                        "unpaid amount (at most 10)")
    value: Money
    cap: Money | None = Field(None, description="At most this much per late instalment")


class PenalChargeOut(Out):
    kind: PenalKind
    value: Money
    cap: Money | None


class ThirdPartyChargeIn(Input):
    name: PlainText = Field(min_length=2, max_length=80, examples=["Credit life insurance premium"])
    amount: Money = Field(examples=[1200])


class ThirdPartyChargeOut(Out):
    name: str
    amount: Money


class BankIn(Input):
    model_config = ConfigDict(json_schema_extra={"example": {"name": "Bharat National Bank", "code": "BNB"}})

    name: PlainText = Field(min_length=2, max_length=120)
    code: str = Field(max_length=12, pattern="^[A-Za-z0-9]{2,12}$", description="Short unique code, stored in capitals")
    active: bool = True


class BankOut(Out):
    id: str
    name: str
    code: str
    active: bool
    created_at: UtcDatetime


class ProductIn(Input):
    """A product's full terms (PUT replaces them all; loans already opened keep theirs)."""

    model_config = ConfigDict(json_schema_extra={"example": {
        "bank_id": "6741f0c2a1b2c3d4e5f60718", "name": "Salary Personal Loan", "type": "personal",
        "min_amount": 50000, "max_amount": 2500000, "min_tenure_months": 12, "max_tenure_months": 60,
        "annual_interest_rate": 11.25, "processing_fee_pct": 1.5, "prepayment_charge_pct": 4,
        "repayment_frequency": "monthly", "min_monthly_income": 25000, "min_age": 21, "max_age": 60,
        "max_foir": 0.55, "max_risk_level": "Medium", "active": True}})

    bank_id: Id
    name: PlainText = Field(min_length=2, max_length=120)
    type: LoanType
    min_amount: PositiveMoney
    max_amount: PositiveMoney
    min_tenure_months: Tenure
    max_tenure_months: Tenure
    annual_interest_rate: Rate
    processing_fee_pct: Rate
    prepayment_charge_pct: Rate
    repayment_frequency: RepaymentFrequency
    min_monthly_income: Money
    min_age: int = Field(ge=18, le=100)
    max_age: int = Field(ge=18, le=100)
    max_foir: Fraction = Field(description="Most of the monthly income all EMIs may take, 0.55 = 55 %")
    max_risk_level: RiskLevel = RiskLevel.MEDIUM
    active: bool = True
    required_kyc_level: str | None = Field(None, max_length=40, examples=["standard"], description=(
        "The KYC level (KYC_LEVELS) a loan needs; null: any approved KYC. A customer below it is refused with 403 "
        "`kyc_level_required` and steps up with POST /kyc/level"))
    full_kyc_above: PositiveMoney | None = Field(None, examples=[500000],
                                                 description="Above this amount a loan needs the highest KYC level")
    penal_charge: PenalChargeIn | None = Field(None, description="Per late instalment; null: none")
    rate_type: RateType = Field(RateType.FIXED, description="`floating`: no prepayment or foreclosure charge unless "
                                                            "the product is a business loan (RBI)")
    cooling_off_days: int = Field(3, strict=True, ge=1, le=30, description=(
        "Days after disbursal in which the borrower may exit paying principal and the APR for the days used; at "
        "least 3 for tenors of 7 days or more, 1 below (RBI Digital Lending Directions 2025)"))
    min_prepayment: PositiveMoney = Field(Decimal(1000), description="The smallest part-prepayment taken")
    third_party_charges: list[ThirdPartyChargeIn] = Field([], max_length=10, description=(
        "Paid to third parties through the lender (insurance...): kept back from the disbursal, inside the APR"))

    def fields(self) -> dict[str, Any]:
        return {**self.model_dump(), "bank_id": self.bank_id.lower()}


class ProductOut(Out):
    id: str
    bank_id: str
    bank_name: str | None
    name: str
    type: LoanType
    min_amount: Money
    max_amount: Money
    min_tenure_months: int
    max_tenure_months: int
    annual_interest_rate: Rate
    processing_fee_pct: Rate
    prepayment_charge_pct: Rate
    repayment_frequency: RepaymentFrequency
    min_monthly_income: Money
    min_age: int
    max_age: int
    max_foir: Fraction
    max_risk_level: RiskLevel
    active: bool
    required_kyc_level: str | None = Field(examples=["standard"], description="The KYC level a loan needs; null: any")
    full_kyc_above: Money | None = Field(examples=[500000], description="Above this amount: the highest KYC level")
    penal_charge: PenalChargeOut | None = None
    rate_type: RateType
    cooling_off_days: int
    min_prepayment: Money
    third_party_charges: list[ThirdPartyChargeOut]


# --- eligibility and EMI --------------------------------------------------------------


class EligibilityIn(Input):
    model_config = ConfigDict(json_schema_extra={"example": {
        "product_id": "6741f0c2a1b2c3d4e5f60718", "amount": 300000, "tenure_months": 36}})

    product_id: Id
    amount: PositiveMoney | None = Field(None, description="Default: the largest eligible amount")
    tenure_months: Tenure | None = Field(None, description="Default: the product's longest tenure")


class ReasonOut(Out):
    code: str
    message: str
    fields: list[str] = Field(default_factory=list, description=(
        "`details_missing`: the details to add, named as in `PATCH /users/me` (`dob`, `family_size`, "
        "`working_members`, `children`, `current_address`, `permanent_address`) or as the whole body of "
        "`PUT /users/me/financial-details` (`financial_details`) and `/employment-details` (`employment_details`)"))


class EligibilityOut(Out):
    product_id: str
    eligible: bool
    reasons: list[ReasonOut]
    amount: Money
    tenure_months: int
    max_eligible_amount: Money
    emi: Money | None
    foir: float | None = Field(description="All monthly EMIs with this one over income, 0.4321 = 43.21 %")


class EmiIn(Input):
    model_config = ConfigDict(json_schema_extra={"example": {
        "principal": 100000, "annual_interest_rate": 12, "tenure_months": 12, "include_schedule": False}})

    principal: PositiveMoney
    annual_interest_rate: Rate
    tenure_months: Tenure
    include_schedule: bool = False


class ScheduleRow(Out):
    number: int
    due_date: date | None
    payment: Money
    interest: Money
    principal: Money
    opening_balance: Money
    closing_balance: Money
    interest_paid: Money
    principal_paid: Money
    amount_left: Money
    paid: bool


# A row as JSON text, each figure the domain's exact Decimal written as its own digits (a Decimal's
# text is always a valid JSON number): a pydantic model per row cost ~25 ms for a 30-year loan, and
# a float per figure (which parses the Decimal's text) still ~1 ms, a quarter of the whole request.
_ROW = ('{"number":%d,"due_date":%s,"payment":%s,"interest":%s,"principal":%s,"opening_balance":%s,'
        '"closing_balance":%s,"interest_paid":%s,"principal_paid":%s,"amount_left":%s,"paid":%s}')


def _schedule_json(rows: tuple[Instalment, ...]) -> str:
    out = []
    for i in rows:
        payment = i.interest + i.principal
        left = payment - i.interest_paid - i.principal_paid
        out.append(_ROW % (i.number, f'"{i.due_date.isoformat()}"' if i.due_date else "null", payment, i.interest,
                           i.principal, i.opening_balance, i.closing_balance, i.interest_paid, i.principal_paid, left,
                           "false" if left else "true"))
    return "[" + ",".join(out) + "]"


# An unpaid loan's rows are its cached schedule's own tuple (`Loan.with_schedule`), the same object at
# every read: their JSON is kept by the tuple's identity (the tuple held, so its id is never reused).
_SHARED_ROWS: dict[int, tuple[tuple[Instalment, ...], str]] = {}


def _rows_json(loan: Loan) -> str:
    rows = loan.instalments
    if loan.schedule_paid:  # rows of its own, allocated for this read
        return _schedule_json(rows)
    hit = _SHARED_ROWS.get(id(rows))
    if hit is None or hit[0] is not rows:
        if len(_SHARED_ROWS) >= 128:
            del _SHARED_ROWS[next(iter(_SHARED_ROWS))]  # the oldest
        hit = _SHARED_ROWS[id(rows)] = (rows, _schedule_json(rows))
    return hit[1]


class EmiOut(Out):
    model_config = ConfigDict(json_schema_extra={"example": {"emi": 8884.88, "total_interest": 6618.55,
                                                             "total_payment": 106618.55, "schedule": None}})

    emi: Money
    total_interest: Money
    total_payment: Money
    schedule: list[ScheduleRow] | None = None


# --- loans ----------------------------------------------------------------------------


class ApplyIn(Input):
    model_config = ConfigDict(json_schema_extra={"example": {
        "product_id": "6741f0c2a1b2c3d4e5f60718", "amount": 300000, "tenure_months": 36, "purpose": "Home renovation"}})

    product_id: Id
    amount: PositiveMoney
    tenure_months: Tenure
    purpose: PlainText = Field(min_length=3, max_length=200)


class DirectLoanIn(ApplyIn):
    model_config = ConfigDict(json_schema_extra={"example": {
        "user_id": "6741f0c2a1b2c3d4e5f60719", "product_id": "6741f0c2a1b2c3d4e5f60718", "amount": 300000,
        "tenure_months": 36, "purpose": "Working capital"}})

    user_id: Id


class RepaymentIn(Input):
    model_config = ConfigDict(json_schema_extra={"example": {"amount": 9964.92}})

    amount: PositiveMoney


class RejectLoanIn(Input):
    model_config = ConfigDict(json_schema_extra={"example": {"reason": "Income could not be verified"}})

    reason: PlainText = Field(min_length=3, max_length=500)


class DisburseIn(Input):
    # An empty example: Swagger UI's untouched Execute would otherwise store an invented UTR as the
    # bank's payout reference (issue 15, item 16).
    model_config = ConfigDict(json_schema_extra={"example": {}})

    payout_reference: str | None = Field(None, max_length=40, pattern=r"^[A-Za-z0-9\-/]{4,40}$",
                                         description="The bank's payout reference (UTR, e.g. `UTR20261122000123`); "
                                                     "generated when absent")


class ContactOut(Out):
    name: str
    email: str
    phone: str


class RecoveryOut(Out):
    agents_used: bool = Field(validation_alias=AliasChoices("agents_used", "recovery_agents_used"),
                              description="Whether recovery agents are engaged; the borrower is told an agent's "
                                          "name and contact before they call")
    policy: str = Field(validation_alias=AliasChoices("policy", "recovery_policy"))


class KfsAcceptanceOut(Out):
    number: str
    at: UtcDatetime
    ip_address: str | None


class KfsOut(Out):
    """Key Fact Statement (RBI Master Direction, April 2024, Annex A): what the customer is offered and agrees to."""

    principal: Money
    annual_interest_rate: Rate
    repayment_frequency: RepaymentFrequency
    tenure_months: int
    instalments: int
    emi: Money
    processing_fee_pct: Rate
    processing_fee: Money
    net_disbursed: Money
    total_interest: Money
    total_payable: Money
    apr: Rate = Field(description="Annual percentage rate, the processing fee and third-party charges included")
    effective_annual_rate: Rate
    number: str = Field(examples=["KFS-6741f0c2a1b2c3d4e5f60718-1"], description=(
        "This issue's number: accept it with `POST /loans/my-loans/{id}/kfs/accept` by `valid_until`; a lapsed "
        "issue is followed the next day by the next on the same terms"))
    issued_on: date
    valid_until: date = Field(description="The last working day (Sundays and BANK_HOLIDAYS are not) its terms hold")
    validity_working_days: int
    third_party_charges: list[ThirdPartyChargeOut] = Field(description="Paid to third parties through the lender, "
                                                                       "kept back from the disbursal, in the APR")
    prepayment_charge_pct: Rate = Field(description="Foreclosure and part-prepayment charge, % of the principal "
                                                    "prepaid")
    penal_charge: PenalChargeOut | None = Field(description="Per late instalment, never interest; null: none")
    cooling_off_days: int = Field(description="Days after the disbursal to exit paying only the principal and the "
                                              "APR for the days used, no penalty")
    grievance_officer: ContactOut
    recovery: RecoveryOut
    accepted: KfsAcceptanceOut | None = Field(description="The borrower's acceptance; a disbursal needs it")

    @classmethod
    def shown(cls, loan: Loan, issue: KfsIssue, terms: KfsTerms) -> KfsOut:
        p = loan.product
        return cls.of(loan.kfs, number=issue.number, issued_on=issue.issued_on, valid_until=issue.valid_until,
                      validity_working_days=issue.working_days, prepayment_charge_pct=p.charge_pct,
                      penal_charge=p.penal_charge, cooling_off_days=p.cooling_off_days,
                      grievance_officer=terms.grievance_officer, recovery=terms, accepted=loan.kfs_acceptance)


class KfsAcceptIn(Input):
    model_config = ConfigDict(json_schema_extra={"example": {"kfs_number": "KFS-6741f0c2a1b2c3d4e5f60718-1"}})

    kfs_number: str = Field(min_length=1, max_length=64, description="The `kfs.number` shown, within `valid_until`")


class NextDue(Out):
    number: int
    due_date: date | None
    amount: Money = Field(description="Left to pay on this instalment")


class LoanSummary(Out):
    loan_id: str = Field(validation_alias=AliasChoices("loan_id", "id"))
    user_id: str
    product_id: str
    product_name: str = Field(validation_alias=AliasPath("product", "name"))
    product_type: LoanType = Field(validation_alias=AliasPath("product", "type"))
    bank_id: str = Field(validation_alias=AliasPath("product", "bank_id"))
    amount: Money
    tenure_months: int
    purpose: str
    status: LoanStatus
    origin: LoanOrigin
    emi: Money
    repayment_frequency: RepaymentFrequency = Field(validation_alias=AliasChoices("repayment_frequency", "frequency"))
    annual_interest_rate: Rate = Field(validation_alias=AliasPath("product", "annual_interest_rate"))
    outstanding: Money
    paid_total: Money
    next_due: NextDue | None
    disbursed_on: date | None
    closure: Closure | None
    created_at: UtcDatetime
    updated_at: UtcDatetime
    loan_class: LoanClass = Field(validation_alias=AliasPath("arrears", "loan_class"), description=(
        "RBI: CURRENT, SMA_0 (1-30 days past due), SMA_1 (31-60), SMA_2 (61-90), NPA (over 90), as of the daily "
        "review or the last payment"))
    overdue_amount: Money = Field(validation_alias=AliasPath("arrears", "overdue"),
                                  description="Instalments past due and unpaid (penal charges not included)")
    charges_due: Money = Field(validation_alias=AliasPath("arrears", "charges_due"),
                               description="Penal charges levied and unpaid")


class LoanApplied(LoanSummary):
    """201 of `POST /loans/apply` and `POST /admin/loans`: the loan and its Key Fact Statement."""

    kfs: KfsOut


class AllocationOut(Out):
    instalment: int
    interest: Money
    principal: Money


class RepaymentOut(Out):
    id: str
    kind: RepaymentKind
    amount: Money
    allocations: list[AllocationOut]
    outstanding_after: Money
    paid_at: UtcDatetime
    charges_paid: Money = Field(description="Of `amount`, what settled penal charges")


class PenalChargeLevied(Out):
    instalment: int
    charged_on: date
    amount: Money
    paid: Money
    waived: Money = Field(Decimal(0), description="Not owed after all: a cooling-off exit leaves without penalty (RBI)")


class ClassChangeOut(Out):
    loan_class: LoanClass
    on: date
    days_past_due: int


class StatusChangeOut(Out):
    status: LoanStatus
    at: UtcDatetime
    by: str | None
    note: str | None


class ScheduleVersionOut(Out):
    on: date
    reason: str = Field(examples=["part_prepayment"])
    keep: KeepTerm
    first_instalment: int = Field(validation_alias=AliasChoices("first_instalment", "first"),
                                  description="The first row rebuilt; earlier rows kept")
    principal: Money = Field(description="What the rebuilt rows repay")
    emi: Money
    instalments: int = Field(validation_alias=AliasChoices("instalments", "count"),
                             description="Rows rebuilt, the last absorbing the rounding")
    previous_principal: Money
    previous_emi: Money
    previous_instalments: int = Field(validation_alias=AliasChoices("previous_instalments", "previous_count"))


class LoanDetail(LoanApplied):
    """One loan in full: schedule, repayments, what is outstanding and next due."""

    outstanding_principal: Money
    net_disbursed: Money | None
    payout_reference: str | None
    rejection_reason: str | None
    schedule: list[ScheduleRow]
    repayments: list[RepaymentOut]
    history: list[StatusChangeOut]
    schedule_versions: list[ScheduleVersionOut] = Field(description="Every rebuild of the schedule (a part-prepayment), "
                                                                    "oldest first, with the terms it replaced")
    days_past_due: int = Field(0, description="Today, of the oldest unpaid instalment")
    charges: list[PenalChargeLevied] = Field(validation_alias=AliasPath("arrears", "charges"), description=(
        "Penal charges, one per late instalment: no interest on them; a payment settles the instalments due, "
        "then these, then instalments ahead"))
    class_history: list[ClassChangeOut] = Field(validation_alias=AliasPath("arrears", "history"))

    @classmethod
    def body(cls, loan: Loan, repayments: list[Repayment], today: date | None = None, *, kfs: KfsOut) -> bytes:
        """The JSON body, this model's shape (routes document it as their `response_model`); the
        schedule is written by `_rows_json` into the place pydantic left for it (the first
        `"schedule":[]` is this key: no field before it holds an object with that key)."""
        head = cls.of(loan, schedule=[], repayments=repayments, kfs=kfs,
                      days_past_due=loan.dpd_on(today) if today else 0).model_dump_json().encode()
        return head.replace(b'"schedule":[]', b'"schedule":' + _rows_json(loan).encode(), 1)


class KfsAccepted(BaseModel):
    loan: LoanSummary
    kfs: KfsOut


class RepaymentRecorded(BaseModel):
    loan: LoanSummary
    repayment: RepaymentOut


class QuoteOut(Out):
    model_config = ConfigDict(json_schema_extra={"example": {
        "foreclosure_amount": 187512.4, "outstanding_principal": 180000.0, "accrued_interest": 355.07,
        "prepayment_charge": 7200.0, "overdue_interest": 0, "advance_interest_credit": 0, "refund_due": 0,
        "quote_date": "2026-12-10", "accrued_from": "2026-11-22", "accrued_days": 18,
        "annual_interest_rate": 12, "prepayment_charge_pct": 4}})

    foreclosure_amount: Money
    outstanding_principal: Money
    accrued_interest: Money
    prepayment_charge: Money
    overdue_interest: Money
    advance_interest_credit: Money
    refund_due: Money
    penal_charges: Money = Field(description="Unpaid penal charges, included in `foreclosure_amount`")
    quote_date: date
    accrued_from: date
    accrued_days: int
    annual_interest_rate: Rate
    prepayment_charge_pct: Rate


class PreClosureRequested(BaseModel):
    loan: LoanSummary
    quote: QuoteOut


class PreClosureConfirmed(BaseModel):
    loan: LoanSummary
    repayment: RepaymentOut


class PrepaymentIn(Input):
    model_config = ConfigDict(json_schema_extra={"example": {"amount": 20000, "keep": "tenure"}})

    amount: PositiveMoney = Field(description="Principal to prepay: at least the product's `min_prepayment`, below "
                                              "the principal left (all of it is a pre-closure)")
    keep: KeepTerm = Field(description="`tenure`: as many instalments, each lower; `instalment`: fewer of them")


class PrepaymentQuoteOut(Out):
    """`total` = amount + accrued_interest (on the prepaid principal since `accrued_from`) + prepayment_charge."""

    quote_date: date
    keep: KeepTerm
    amount: Money
    accrued_from: date
    accrued_days: int
    annual_interest_rate: Rate
    accrued_interest: Money
    prepayment_charge_pct: Rate = Field(description="0 on a floating-rate loan for a purpose other than business")
    prepayment_charge: Money
    total: Money
    first_instalment: int
    principal_before: Money
    principal_after: Money
    emi_before: Money
    emi_after: Money
    instalments_before: int = Field(description="From `first_instalment` on")
    instalments_after: int
    last_due_date: date


class PrepaymentRecorded(BaseModel):
    loan: LoanSummary
    repayment: RepaymentOut
    quote: PrepaymentQuoteOut


class CoolingOffQuoteOut(Out):
    """amount_due = principal + interest − already_paid, interest = principal × APR × days_used / 365."""

    quote_date: date
    disbursed_on: date
    ends_on: date = Field(description="The last day of the cooling-off period")
    days_used: int
    principal: Money
    apr: Rate
    interest: Money
    already_paid: Money
    amount_due: Money
    refund_due: Money


class CoolingOffExited(BaseModel):
    loan: LoanSummary
    repayment: RepaymentOut
    quote: CoolingOffQuoteOut


# --- the loan book --------------------------------------------------------------------


class CountAmount(BaseModel):
    count: int
    amount: Money


class DisbursedTotals(CountAmount):
    net_amount: Money


class ProductFigures(CountAmount):
    product_id: str
    name: str
    type: str


class TrendDay(BaseModel):
    date: date
    applications: int
    applied_amount: Money
    disbursals: int
    disbursed_amount: Money


class LoanStatistics(BaseModel):
    by_status: dict[str, CountAmount]
    disbursed: DisbursedTotals
    outstanding: CountAmount
    by_product: list[ProductFigures]
    daily_trend: list[TrendDay] = Field(description="The last 30 days (UTC), oldest first, every day present")
