"""Loan, catalogue and eligibility bodies. Money in and out is `Money` (JSON numbers, 2 decimals)."""

from __future__ import annotations

from datetime import date
from decimal import Decimal
from typing import Annotated, Any, Literal

from pydantic import AfterValidator, BaseModel, BeforeValidator, ConfigDict, Field, PlainSerializer

from app.api.schemas.common import Input, Money, PlainText, PositiveMoney, UtcDatetime, json_number, number_schema
from app.domain.catalogue import Bank
from app.domain.loan_schedule import Instalment, KeyFactStatement, Schedule
from app.domain.loans import Eligibility, Loan, LoanProduct, PreClosureQuote, Repayment


def _unsigned(value: Decimal) -> Decimal:
    if value.is_signed():  # -0 passes ge=0 but is stored as "-0"
        raise ValueError("must not be negative")
    return value


def _number_out(value: Decimal) -> float:
    return float(value)


# A percentage such as 10.4567 (at most 4 decimal places), shown as a JSON number.
Rate = Annotated[Decimal, BeforeValidator(json_number), Field(ge=0, le=100, max_digits=8, decimal_places=4),
                 AfterValidator(_unsigned), PlainSerializer(_number_out, return_type=float, when_used="json"),
                 number_schema("Percent, e.g. 10.5", 10.5, minimum=0, maximum=100)]
# A fraction of income: 0.55 means 55 %.
Fraction = Annotated[Decimal, BeforeValidator(json_number), Field(gt=0, le=1, max_digits=5, decimal_places=4),
                     PlainSerializer(_number_out, return_type=float, when_used="json"),
                     number_schema("A fraction of income: 0.55 means 55 %", 0.55, exclusiveMinimum=0, maximum=1)]
Id = Annotated[str, Field(max_length=24, pattern="^[0-9a-fA-F]{24}$", description="24 hex digits", examples=["6741f0c2a1b2c3d4e5f60718"])]
# strict: JSON `true` would otherwise be read as 1 month (and "12" as 12), silently.
Tenure = Annotated[int, Field(strict=True, ge=1, le=360, description="Months, 1 to 360", examples=[36])]
LoanTypeName = Literal["personal", "home", "auto", "education", "business", "gold", "micro"]
Frequency = Literal["monthly", "weekly", "daily"]


# --- catalogue ------------------------------------------------------------------------


class BankIn(Input):
    model_config = ConfigDict(json_schema_extra={"example": {"name": "Bharat National Bank", "code": "BNB"}})

    name: PlainText = Field(min_length=2, max_length=120)
    code: str = Field(max_length=12, pattern="^[A-Za-z0-9]{2,12}$", description="Short unique code, stored in capitals")
    active: bool = True


class BankOut(BaseModel):
    id: str
    name: str
    code: str
    active: bool
    created_at: UtcDatetime

    @classmethod
    def of(cls, bank: Bank) -> BankOut:
        return cls(id=bank.id, name=bank.name, code=bank.code, active=bank.active, created_at=bank.created_at)


class ProductIn(Input):
    """A product's full terms (PUT replaces them all; loans already opened keep theirs)."""

    model_config = ConfigDict(extra="forbid", str_strip_whitespace=True, json_schema_extra={"example": {
        "bank_id": "6741f0c2a1b2c3d4e5f60718", "name": "Salary Personal Loan", "type": "personal",
        "min_amount": 50000, "max_amount": 2500000, "min_tenure_months": 12, "max_tenure_months": 60,
        "annual_interest_rate": 11.25, "processing_fee_pct": 1.5, "prepayment_charge_pct": 4,
        "repayment_frequency": "monthly", "min_monthly_income": 25000, "min_age": 21, "max_age": 60,
        "max_foir": 0.55, "max_risk_level": "Medium", "active": True}})

    bank_id: Id
    name: PlainText = Field(min_length=2, max_length=120)
    type: LoanTypeName
    min_amount: PositiveMoney
    max_amount: PositiveMoney
    min_tenure_months: Tenure
    max_tenure_months: Tenure
    annual_interest_rate: Rate
    processing_fee_pct: Rate
    prepayment_charge_pct: Rate
    repayment_frequency: Frequency
    min_monthly_income: Money
    min_age: int = Field(ge=18, le=100)
    max_age: int = Field(ge=18, le=100)
    max_foir: Fraction = Field(description="Most of the monthly income all EMIs may take, 0.55 = 55 %")
    max_risk_level: Literal["Low", "Medium", "High"] = "Medium"
    active: bool = True

    def fields(self) -> dict[str, Any]:
        return {**self.model_dump(), "bank_id": self.bank_id.lower()}


class ProductOut(BaseModel):
    id: str
    bank_id: str
    bank_name: str | None
    name: str
    type: str
    min_amount: Money
    max_amount: Money
    min_tenure_months: int
    max_tenure_months: int
    annual_interest_rate: Rate
    processing_fee_pct: Rate
    prepayment_charge_pct: Rate
    repayment_frequency: str
    min_monthly_income: Money
    min_age: int
    max_age: int
    max_foir: Fraction
    max_risk_level: str
    active: bool

    @classmethod
    def of(cls, p: LoanProduct, bank_name: str | None = None) -> ProductOut:
        assert p.id is not None
        return cls(id=p.id, bank_id=p.bank_id, bank_name=bank_name, name=p.name, type=p.type.value,
                   min_amount=p.min_amount, max_amount=p.max_amount, min_tenure_months=p.min_tenure_months,
                   max_tenure_months=p.max_tenure_months, annual_interest_rate=p.annual_interest_rate,
                   processing_fee_pct=p.processing_fee_pct, prepayment_charge_pct=p.prepayment_charge_pct,
                   repayment_frequency=p.repayment_frequency.value, min_monthly_income=p.min_monthly_income,
                   min_age=p.min_age, max_age=p.max_age, max_foir=p.max_foir, max_risk_level=p.max_risk_level,
                   active=p.active)


# --- eligibility and EMI --------------------------------------------------------------


class EligibilityIn(Input):
    model_config = ConfigDict(extra="forbid", json_schema_extra={"example": {
        "product_id": "6741f0c2a1b2c3d4e5f60718", "amount": 300000, "tenure_months": 36}})

    product_id: Id
    amount: PositiveMoney | None = Field(None, description="Default: the largest eligible amount")
    tenure_months: Tenure | None = Field(None, description="Default: the product's longest tenure")


class ReasonOut(BaseModel):
    code: str
    message: str
    fields: list[str] = Field(default_factory=list, description=(
        "`details_missing`: the details to add, named as in `PATCH /users/me` (`dob`, `family_size`, "
        "`working_members`, `children`, `current_address`, `permanent_address`) or as the whole body of "
        "`PUT /users/me/financial-details` (`financial_details`) and `/employment-details` (`employment_details`)"))


class EligibilityOut(BaseModel):
    product_id: str
    eligible: bool
    reasons: list[ReasonOut]
    amount: Money
    tenure_months: int
    max_eligible_amount: Money
    emi: Money | None
    foir: float | None = Field(description="All monthly EMIs with this one over income, 0.4321 = 43.21 %")

    @classmethod
    def of(cls, product_id: str, r: Eligibility) -> EligibilityOut:
        return cls(product_id=product_id, eligible=r.eligible,
                   reasons=[ReasonOut(code=x.code, message=x.message, fields=list(x.fields)) for x in r.reasons],
                   amount=r.amount,
                   tenure_months=r.tenure_months, max_eligible_amount=r.max_eligible_amount, emi=r.emi,
                   foir=float(r.foir) if r.foir is not None else None)


class EmiIn(Input):
    model_config = ConfigDict(extra="forbid", json_schema_extra={"example": {
        "principal": 100000, "annual_interest_rate": 12, "tenure_months": 12, "include_schedule": False}})

    principal: PositiveMoney
    annual_interest_rate: Rate
    tenure_months: Tenure
    include_schedule: bool = False


class ScheduleRow(BaseModel):
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

    @staticmethod
    def json_of(i: Instalment) -> dict[str, Any]:
        """The row as JSON, straight from the domain's exact figures: a pydantic model per row (even
        unvalidated) cost ~25 ms for a 30-year loan, more than the rest of the request."""
        interest, principal, interest_paid, principal_paid = i.interest, i.principal, i.interest_paid, i.principal_paid
        left = interest + principal - interest_paid - principal_paid
        return {"number": i.number, "due_date": i.due_date.isoformat() if i.due_date else None,
                "payment": float(interest + principal), "interest": float(interest), "principal": float(principal),
                "opening_balance": float(i.opening_balance), "closing_balance": float(i.closing_balance),
                "interest_paid": float(interest_paid), "principal_paid": float(principal_paid),
                "amount_left": float(left), "paid": left == 0}

    @classmethod
    def of(cls, i: Instalment) -> ScheduleRow:
        return cls(number=i.number, due_date=i.due_date, payment=i.payment, interest=i.interest,
                   principal=i.principal, opening_balance=i.opening_balance, closing_balance=i.closing_balance,
                   interest_paid=i.interest_paid, principal_paid=i.principal_paid, amount_left=i.amount_left,
                   paid=i.paid)


class EmiOut(BaseModel):
    model_config = ConfigDict(json_schema_extra={"example": {"emi": 8884.88, "total_interest": 6618.55,
                                                             "total_payment": 106618.55, "schedule": None}})

    emi: Money
    total_interest: Money
    total_payment: Money
    schedule: list[ScheduleRow] | None = None

    @classmethod
    def of(cls, s: Schedule, include_schedule: bool) -> EmiOut:
        return cls(emi=s.emi, total_interest=s.total_interest, total_payment=s.total_payment,
                   schedule=[ScheduleRow.of(i) for i in s.instalments] if include_schedule else None)


# --- loans ----------------------------------------------------------------------------


class ApplyIn(Input):
    model_config = ConfigDict(extra="forbid", str_strip_whitespace=True, json_schema_extra={"example": {
        "product_id": "6741f0c2a1b2c3d4e5f60718", "amount": 300000, "tenure_months": 36,
        "purpose": "Home renovation"}})

    product_id: Id
    amount: PositiveMoney
    tenure_months: Tenure
    purpose: PlainText = Field(min_length=3, max_length=200)


class DirectLoanIn(ApplyIn):
    model_config = ConfigDict(extra="forbid", str_strip_whitespace=True, json_schema_extra={"example": {
        "user_id": "6741f0c2a1b2c3d4e5f60719", "product_id": "6741f0c2a1b2c3d4e5f60718", "amount": 300000,
        "tenure_months": 36, "purpose": "Working capital"}})

    user_id: Id


class RepaymentIn(Input):
    model_config = ConfigDict(extra="forbid", json_schema_extra={"example": {"amount": 9964.92}})

    amount: PositiveMoney


class RejectLoanIn(Input):
    model_config = ConfigDict(extra="forbid", str_strip_whitespace=True,
                              json_schema_extra={"example": {"reason": "Income could not be verified"}})

    reason: PlainText = Field(min_length=3, max_length=500)


class DisburseIn(Input):
    # An empty example: Swagger UI's untouched Execute would otherwise store an invented UTR as the
    # bank's payout reference (issue 15, item 16).
    model_config = ConfigDict(extra="forbid", str_strip_whitespace=True, json_schema_extra={"example": {}})

    payout_reference: str | None = Field(None, max_length=40, pattern=r"^[A-Za-z0-9\-/]{4,40}$",
                                         description="The bank's payout reference (UTR, e.g. `UTR20261122000123`); "
                                                     "generated when absent")


class KfsOut(BaseModel):
    """Key Fact Statement: what the customer agreed to."""

    principal: Money
    annual_interest_rate: Rate
    repayment_frequency: str
    tenure_months: int
    instalments: int
    emi: Money
    processing_fee_pct: Rate
    processing_fee: Money
    net_disbursed: Money
    total_interest: Money
    total_payable: Money
    apr: Rate = Field(description="Annual percentage rate, the fee included")
    effective_annual_rate: Rate

    @classmethod
    def of(cls, k: KeyFactStatement) -> KfsOut:
        return cls(principal=k.principal, annual_interest_rate=k.annual_interest_rate,
                   repayment_frequency=k.repayment_frequency.value, tenure_months=k.tenure_months,
                   instalments=k.instalments, emi=k.emi, processing_fee_pct=k.processing_fee_pct,
                   processing_fee=k.processing_fee, net_disbursed=k.net_disbursed, total_interest=k.total_interest,
                   total_payable=k.total_payable, apr=k.apr, effective_annual_rate=k.effective_annual_rate)


class NextDue(BaseModel):
    number: int
    due_date: date | None
    amount: Money = Field(description="Left to pay on this instalment")


class LoanSummary(BaseModel):
    loan_id: str
    user_id: str
    product_id: str
    product_name: str
    product_type: str
    bank_id: str
    amount: Money
    tenure_months: int
    purpose: str
    status: str
    origin: str
    emi: Money
    repayment_frequency: str
    annual_interest_rate: Rate
    outstanding: Money
    paid_total: Money
    next_due: NextDue | None
    disbursed_on: date | None
    closure: str | None
    created_at: UtcDatetime
    updated_at: UtcDatetime

    @staticmethod
    def fields_of(loan: Loan) -> dict[str, Any]:
        due = loan.next_due
        return dict(
            loan_id=loan.id, user_id=loan.user_id, product_id=loan.product_id, product_name=loan.product.name,
            product_type=loan.product.type.value, bank_id=loan.product.bank_id, amount=loan.amount,
            tenure_months=loan.tenure_months, purpose=loan.purpose, status=loan.status.value,
            origin=loan.origin.value, emi=loan.emi, repayment_frequency=loan.frequency.value,
            annual_interest_rate=loan.product.annual_interest_rate, outstanding=loan.outstanding,
            paid_total=loan.paid_total,
            next_due=NextDue(number=due.number, due_date=due.due_date, amount=due.amount) if due else None,
            disbursed_on=loan.disbursed_on, closure=loan.closure.value if loan.closure else None,
            created_at=loan.created_at, updated_at=loan.updated_at)

    @classmethod
    def of(cls, loan: Loan) -> LoanSummary:
        return cls(**cls.fields_of(loan))


class LoanApplied(LoanSummary):
    """201 of `POST /loans/apply` and `POST /admin/loans`: the loan and its Key Fact Statement."""

    kfs: KfsOut

    @classmethod
    def of(cls, loan: Loan) -> LoanApplied:
        return cls(**cls.fields_of(loan), kfs=KfsOut.of(loan.kfs))


class AllocationOut(BaseModel):
    instalment: int
    interest: Money
    principal: Money


class RepaymentOut(BaseModel):
    id: str
    kind: str
    amount: Money
    allocations: list[AllocationOut]
    outstanding_after: Money
    paid_at: UtcDatetime

    @classmethod
    def of(cls, r: Repayment) -> RepaymentOut:
        return cls(id=r.id, kind=r.kind.value, amount=r.amount, outstanding_after=r.outstanding_after,
                   paid_at=r.paid_at, allocations=[AllocationOut(instalment=a.instalment, interest=a.interest,
                                                                 principal=a.principal) for a in r.allocations])


class StatusChangeOut(BaseModel):
    status: str
    at: UtcDatetime
    by: str | None
    note: str | None


class LoanDetail(LoanApplied):
    """One loan in full: schedule, repayments, what is outstanding and next due."""

    outstanding_principal: Money
    net_disbursed: Money | None
    payout_reference: str | None
    rejection_reason: str | None
    schedule: list[ScheduleRow]
    repayments: list[RepaymentOut]
    history: list[StatusChangeOut]

    @classmethod
    def payload(cls, loan: Loan, repayments: list[Repayment]) -> dict[str, Any]:
        """The JSON body, this model's shape (routes document it as their `response_model`)."""
        body = cls(**cls.fields_of(loan), kfs=KfsOut.of(loan.kfs), outstanding_principal=loan.outstanding_principal,
                   net_disbursed=loan.net_disbursed, payout_reference=loan.payout_reference,
                   rejection_reason=loan.rejection_reason, schedule=[],
                   repayments=[RepaymentOut.of(r) for r in repayments],
                   history=[StatusChangeOut(status=h.status.value, at=h.at, by=h.by, note=h.note)
                            for h in loan.history]).model_dump(mode="json")
        body["schedule"] = [ScheduleRow.json_of(i) for i in loan.instalments]
        return body


class RepaymentRecorded(BaseModel):
    loan: LoanSummary
    repayment: RepaymentOut


class QuoteOut(BaseModel):
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
    quote_date: date
    accrued_from: date
    accrued_days: int
    annual_interest_rate: Rate
    prepayment_charge_pct: Rate

    @classmethod
    def of(cls, q: PreClosureQuote) -> QuoteOut:
        return cls(foreclosure_amount=q.foreclosure_amount, outstanding_principal=q.outstanding_principal,
                   accrued_interest=q.accrued_interest, prepayment_charge=q.prepayment_charge,
                   overdue_interest=q.overdue_interest, advance_interest_credit=q.advance_interest_credit,
                   refund_due=q.refund_due, quote_date=q.quote_date, accrued_from=q.accrued_from,
                   accrued_days=q.accrued_days, annual_interest_rate=q.annual_interest_rate,
                   prepayment_charge_pct=q.prepayment_charge_pct)


class PreClosureRequested(BaseModel):
    loan: LoanSummary
    quote: QuoteOut


class PreClosureConfirmed(BaseModel):
    loan: LoanSummary
    repayment: RepaymentOut


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


class AdminLoanStats(BaseModel):
    """The loans part of `GET /admin/stats`."""

    total: int
    status_counts: dict[str, int]
    disbursed_amount: Money
