"""Lending records: banks, loans and repayments as the service keeps them, and the refusals
that need a stored record to decide. The pure rules they follow (limits, eligibility,
lifecycle, allocation, pre-closure) are in `app.domain.loans` and `app.domain.loan_schedule`.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import date, datetime
from decimal import Decimal
from enum import StrEnum
from typing import Any

from app.domain.errors import Conflict, Forbidden, NotFound
from app.domain.loan_schedule import Instalment, KeyFactStatement, RepaymentFrequency
from app.domain.loans import LoanProduct, LoanStatus, next_due, outstanding, outstanding_principal
from app.domain.money import ZERO

# --- errors (mapped to HTTP in app/api/errors.py) -----------------------------------


class KycNotApproved(Forbidden):
    """Your KYC must be approved before you can borrow."""

    code = "kyc_not_approved"


class LoanNotFound(NotFound):
    """No such loan."""

    code = "loan_not_found"


class ProductNotFound(NotFound):
    """No such loan product."""

    code = "product_not_found"


class BankNotFound(NotFound):
    """No such bank."""

    code = "bank_not_found"


class DuplicateApplication(Conflict):
    """You already have an open application or loan for this product."""

    code = "duplicate_application"


class BankExists(Conflict):
    """A bank with this code already exists."""

    code = "bank_exists"


class ProductExists(Conflict):
    """This bank already has a product with this name."""

    code = "product_exists"


class LoanChanged(Conflict):
    """The loan changed while this request was processed; read it again and retry."""

    code = "loan_changed"


# --- records -------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Bank:
    id: str
    name: str
    code: str
    active: bool
    created_at: datetime


class LoanOrigin(StrEnum):
    APPLICATION = "application"  # the customer applied (POST /loans/apply)
    DIRECT = "direct"  # an admin opened it (POST /admin/loans)


class Closure(StrEnum):
    REPAID = "repaid"  # the last instalment was paid
    PRE_CLOSED = "pre_closed"  # settled early by a pre-closure


class RepaymentKind(StrEnum):
    INSTALMENT = "instalment"
    PRE_CLOSURE = "pre_closure"


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
    """A loan's figures as kept beside its schedule, for lists that do not read the schedule."""

    outstanding: Decimal
    outstanding_principal: Decimal
    next_due: NextDue | None


@dataclass(frozen=True, slots=True)
class Loan:
    """One loan, from application to closure. `product` is the product's terms as they were
    when the loan was opened (a later catalogue change never moves an agreed loan), and `kfs` the
    Key Fact Statement the customer agreed to. `rev` grows with every change: a repayment or a
    pre-closure request is written only if nothing changed since it was computed."""

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
    instalments: tuple[Instalment, ...]  # empty when read for a list: see `summary`
    created_at: datetime
    updated_at: datetime
    history: tuple[StatusChange, ...] = ()
    rev: int = 0
    paid_total: Decimal = ZERO  # every payment, a pre-closure's included
    schedule_paid: Decimal = ZERO  # the instalment repayments, allocated over the schedule
    summary: LoanFigures | None = None
    decided_by: str | None = None
    rejection_reason: str | None = None
    disbursed_on: date | None = None
    net_disbursed: Decimal | None = None
    payout_reference: str | None = None
    preclosure_quote: dict[str, Any] | None = None
    closure: Closure | None = None
    closed_at: datetime | None = None

    @property
    def frequency(self) -> RepaymentFrequency:
        return self.product.repayment_frequency

    @property
    def is_disbursed(self) -> bool:
        return self.disbursed_on is not None

    @property
    def outstanding(self) -> Decimal:
        """Left to pay on the schedule: nothing before the disbursal (the KFS states what will be) nor
        once closed (a pre-closure settles the rest)."""
        if not self.is_disbursed or self.status == LoanStatus.CLOSED:
            return ZERO
        return self.summary.outstanding if self.summary else outstanding(self.instalments)

    @property
    def outstanding_principal(self) -> Decimal:
        if not self.is_disbursed or self.status == LoanStatus.CLOSED:
            return ZERO
        return self.summary.outstanding_principal if self.summary else outstanding_principal(self.instalments)

    @property
    def next_due(self) -> NextDue | None:
        if not self.is_disbursed or self.status == LoanStatus.CLOSED:
            return None
        if self.summary:
            return self.summary.next_due
        row = next_due(self.instalments)
        return NextDue(row.number, row.due_date, row.amount_left) if row else None


@dataclass(frozen=True, slots=True)
class OpenInstalment:
    """An open application or loan as eligibility counts it: what one instalment costs, how often."""

    id: str
    emi: Decimal
    frequency: RepaymentFrequency


@dataclass(frozen=True, slots=True)
class Allocated:
    instalment: int
    interest: Decimal
    principal: Decimal


@dataclass(frozen=True, slots=True)
class Repayment:
    id: str
    loan_id: str
    user_id: str
    kind: RepaymentKind
    amount: Decimal
    allocations: tuple[Allocated, ...]
    outstanding_after: Decimal
    paid_at: datetime
    recorded_by: str
    breakdown: dict[str, Any] = field(default_factory=dict)  # a pre-closure's quote figures
