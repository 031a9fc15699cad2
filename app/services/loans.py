"""Loans: eligibility, applications, the lifecycle an admin drives, repayments, pre-closure,
and the views and figures of the loan book.

The rules are the domain's (`app.domain.loans`, `app.domain.loan_schedule`); this service reads
the records they need (the stored user, the product, the customer's other loans), writes each
change as one guarded repository call (None there means someone else changed the loan first:
409), and leaves a trail: an audit entry and a notice to the customer for every transition.
"""

from __future__ import annotations

import asyncio
import logging
import uuid
from collections.abc import Awaitable, Callable, Mapping, Sequence
from dataclasses import replace
from datetime import date, timedelta
from decimal import Decimal
from typing import Any, TypeVar

from app.domain.audit import AuditAction, ClientInfo
from app.domain.errors import UserNotFound
from app.domain.events import EventType
from app.domain.ids import parse_id
from app.domain.kfs import KfsIssue, KfsTerms, accept, current_issue, ensure_accepted
from app.domain.kyc_levels import DEFAULT_LEVELS, LevelRequired, Levels
from app.domain.loan_schedule import KeepTerm, Schedule, build_schedule
from app.domain.loans import (
    Applicant,
    Closure,
    Eligibility,
    InvalidTransition,
    KycNotApproved,
    Loan,
    LoanChanged,
    LoanNotFound,
    LoanOrigin,
    LoanProduct,
    LoanStatus,
    OpenInstalment,
    PreClosureQuote,
    Reason,
    Repayment,
    check_eligibility,
    ensure_eligible,
    ensure_kyc_approved,
    monthly_equivalent,
)
from app.domain.money import ZERO, money
from app.domain.pages import Page, PageRequest
from app.domain.prepayment import (
    CoolingOffQuote,
    PrepaymentQuote,
    cooling_off_quote,
    exit_cooling_off,
    prepay,
    prepayment_quote,
)
from app.domain.profile import loan_risk_level, missing_for_loans
from app.domain.users import KycStatus, User
from app.repositories.codecs import from_db
from app.repositories.loans import LoanRepository
from app.repositories.repayments import RepaymentRepository
from app.repositories.transactions import Transactions, UnitOfWork
from app.repositories.users import UserRepository
from app.services.audit import AuditService
from app.services.catalogue import CatalogueService
from app.services.clock import Clock
from app.services.delinquency import LoanReviews, publish_arrears
from app.services.events import EventService
from app.services.notifications import Notices

log = logging.getLogger("kycflow.loans")
TREND_DAYS = 30
Notice = Callable[[Loan], tuple[str, list[str]]]  # a change's notice to the customer: subject and lines

T = TypeVar("T")


def applicant_of(user: User, book: Sequence[OpenInstalment | Loan], today: date) -> Applicant:
    """What eligibility reads from the stored user: the date of birth KYC verified (the profile's
    before approval), monthly income, the EMIs the customer declared plus those of every open
    application and loan they have with us (`book`), and the profile risk derived on the spot from
    the details present (None, with the missing ones named, while a loan needs more). Stored
    figures may be JSON numbers: read exactly (`from_db`)."""
    finance: Mapping[str, Any] = user.financial_details or {}
    declared = from_db(finance.get("existing_emi")) or ZERO
    ours = sum((monthly_equivalent(loan.emi, loan.frequency) for loan in book), ZERO)
    dob = user.identity.get("dob")
    profile = {**user.profile, "dob": dob}
    return Applicant(
        kyc_status=user.kyc_status.value,
        dob=date.fromisoformat(dob) if isinstance(dob, str) else dob,
        monthly_income=from_db(finance.get("monthly_income")),
        existing_emis=declared + ours,
        risk_level=loan_risk_level(profile, today, user.financial_details, user.employment_details),
        missing=missing_for_loans(profile, user.financial_details, user.employment_details),
    )


def _money(amount: Decimal) -> str:
    return f"₹{amount:,.2f}"


class LoanService:
    def __init__(self, *, loans: LoanRepository, repayments: RepaymentRepository, catalogue: CatalogueService,
                 users: UserRepository, audit: AuditService, notices: Notices, transactions: Transactions,
                 clock: Clock, events: EventService, kfs: KfsTerms, levels: Levels = DEFAULT_LEVELS,
                 reviews: LoanReviews | None = None) -> None:
        self.loans, self.repayments, self.catalogue, self.users = loans, repayments, catalogue, users
        self.audit, self.notices, self.transactions, self.clock = audit, notices, transactions, clock
        self.events = events  # each change publishes its event (loan.*) and its notice in its own transaction
        self.levels = levels  # the KYC level a product needs (403 kyc_level_required below it)
        self.reviews = reviews  # the daily review of running loans, armed by a disbursal
        self.kfs = kfs  # what the settings add to every Key Fact Statement

    def today(self) -> date:
        return self.clock.now().date()

    # --- figures before borrowing ------------------------------------------------------------

    @staticmethod
    def emi_schedule(principal: Decimal, annual_rate: Decimal, tenure_months: int) -> Schedule:
        """`POST /eligibility/calculate-emi`: a monthly reducing-balance schedule."""
        return build_schedule(money(principal, strict=True), annual_rate, tenure_months)

    async def eligibility(self, user: User, product_id: str, amount: Decimal | None = None,
                          tenure_months: int | None = None) -> tuple[LoanProduct, Eligibility]:
        amount = None if amount is None else money(amount, strict=True)  # 100000 is stored as 100000.00
        # Two independent reads: side by side, one round trip of waiting instead of two.
        product, book = await asyncio.gather(self.catalogue.product(product_id), self.loans.open_loans(user.id))
        result = check_eligibility(product, applicant_of(user, book, self.today()), self.today(), amount, tenure_months)
        need = self.levels.needed(product.required_kyc_level, product.full_kyc_above, result.amount)
        if short := self.levels.shortfall(user.kyc_level, need):  # as applying refuses it (403)
            result = replace(result, eligible=False, reasons=(*result.reasons, Reason(LevelRequired.code, short)))
        return product, result

    @staticmethod
    async def _book(tx: UnitOfWork, user_id: str) -> list[OpenInstalment]:
        """The customer's open applications and loans, read inside the transaction of a change to them
        after writing the book's version: two changes to one book at once conflict, and the retried one
        judges a book holding the other's loan (checked before the transaction alone, two direct loans
        opened at once each passed FOIR without the other)."""
        await tx.users.claim_loan_book(user_id)
        return await tx.loans.open_loans(user_id)

    async def _still_eligible(self, tx: UnitOfWork, loan: Loan, customer: User | None) -> None:
        """Approving re-checks the application on the terms it keeps, against the customer's record and
        every other open application and loan as they are now (422 `not_eligible` with the reasons),
        inside the approval's transaction (see `_book`)."""
        if customer is None:
            raise UserNotFound("The customer does not exist.")
        book = await self._book(tx, loan.user_id)
        others = [other for other in book if other.id != loan.id]
        ensure_eligible(check_eligibility(loan.product, applicant_of(customer, others, self.today()), self.today(),
                                          loan.amount, loan.tenure_months))

    # --- opening a loan ----------------------------------------------------------------------

    async def apply(self, user: User, *, product_id: str, amount: Decimal, tenure_months: int, purpose: str,
                    client: ClientInfo) -> Loan:
        """APPLIED, with the product's terms and the KFS as agreed now. 403 without approved KYC,
        422 with every reason when not eligible, 409 when this product is already open."""
        ensure_kyc_approved(user.kyc_status)
        return await self._open(user, product_id, amount, tenure_months, purpose, LoanStatus.APPLIED,
                                LoanOrigin.APPLICATION, by=user, client=client, notice=lambda loan: (
            "We received your loan application", [
                f"Your application for {_money(loan.amount)} ({loan.product.name}, {loan.tenure_months} months) "
                f"is received: reference {loan.id}.",
                f"Instalment {_money(loan.emi)} ({loan.frequency.value}); APR {loan.kfs.apr} %.",
                "We will write again once it is reviewed."]))

    async def open_direct(self, admin: User, *, user_id: str, product_id: str, amount: Decimal,
                          tenure_months: int, purpose: str, client: ClientInfo) -> Loan:
        """`POST /admin/loans`: a loan opened by an admin, APPROVED at once, under the same rules."""
        user = await self.users.get(user_id)
        if user is None:
            raise UserNotFound("The customer does not exist.")
        if user.kyc_status != KycStatus.APPROVED:
            raise KycNotApproved("The customer's KYC must be approved before a loan is opened.")
        return await self._open(user, product_id, amount, tenure_months, purpose, LoanStatus.APPROVED,
                                LoanOrigin.DIRECT, by=admin, client=client, notice=lambda loan: ("A loan was opened for you", [
            f"A loan of {_money(loan.amount)} ({loan.product.name}, {loan.tenure_months} months) is approved "
            f"for you: reference {loan.id}.",
            f"Instalment {_money(loan.emi)} ({loan.frequency.value}); APR {loan.kfs.apr} %."]))

    async def _open(self, user: User, product_id: str, amount: Decimal, tenure_months: int, purpose: str,
                    status: LoanStatus, origin: LoanOrigin, *, by: User, client: ClientInfo, notice: Notice) -> Loan:
        amount = money(amount, strict=True)
        product = await self.catalogue.product(product_id)
        self.levels.ensure(user.kyc_level, self.levels.needed(product.required_kyc_level, product.full_kyc_above, amount))
        opened = EventType.LOAN_APPLIED if status == LoanStatus.APPLIED else EventType.LOAN_APPROVED

        async def step(tx: UnitOfWork) -> Loan:
            # Judged on the book as it is inside the transaction that adds to it (see `_book`).
            result = check_eligibility(product, applicant_of(user, await self._book(tx, user.id), self.today()),
                                       self.today(), amount, tenure_months)
            loan = Loan.open(product, user_id=user.id, amount=ensure_eligible(result).amount,
                             tenure_months=tenure_months, purpose=purpose, status=status, origin=origin, by=by.id,
                             now=self.clock.now())
            stored = await tx.loans.add(loan)
            await self._publish(tx, opened, stored, user, notice)
            # In the same transaction: a loan never stands without its entry.
            await self.audit.record(AuditAction.LOAN_APPLIED if status == LoanStatus.APPLIED else AuditAction.LOAN_OPENED,
                                    user_id=user.id, actor=by, client=client, tx=tx, loan_id=stored.id,
                                    product_id=stored.product_id, amount=str(stored.amount),
                                    tenure_months=stored.tenure_months)
            return stored

        return await self.transactions.run(step)

    async def _publish(self, tx: UnitOfWork, event_type: EventType, loan: Loan, customer: User | None,
                       notice: Notice, **data: Any) -> None:
        """The change's event and the customer's notice, in its unit of work. The event carries ids, status
        and amounts only: reasons and payout references are free text."""
        await self._notify(tx, customer, loan, notice)
        await self.events.publish(event_type, tx=tx, user_id=loan.user_id, data={
            "loan_id": loan.id, "status": loan.status.value, "product_id": loan.product_id, "amount": loan.amount,
            **data})

    async def _notify(self, tx: UnitOfWork, customer: User | None, loan: Loan, notice: Notice) -> None:
        """Keyed on the loan's revision after the change: one notice per transition, however often the step runs."""
        if customer is not None:
            await self.notices.queue(tx, customer, f"loan:{loan.id}:{loan.rev}", *notice(loan))

    # --- the admin's transitions --------------------------------------------------------------

    async def _admin_loan(self, loan_id: str) -> Loan:
        loan = await self.loans.get(loan_id)
        if loan is None:
            raise LoanNotFound()
        return loan

    async def _save(self, tx: UnitOfWork, loan: Loan, after: Loan, event_type: EventType, customer: User | None,
                    notice: Notice, **data: Any) -> Loan | None:
        """`after` stored, with its event and notice; None when the loan changed since it was read."""
        done = await tx.loans.save(loan, after)
        if done is not None:
            await self._publish(tx, event_type, done, customer, notice, **data)
        return done

    async def _decide(self, admin: User, loan: Loan, after: Loan, event_type: EventType, action: AuditAction,
                      client: ClientInfo, notice: Notice, *, audit: Mapping[str, Any] | None = None,
                      check: Callable[[UnitOfWork, User | None], Awaitable[None]] | None = None, **data: Any) -> Loan:
        """An admin's transition stored with its event and notice, then audited; 409 naming the state the loan
        is in now when it changed since it was read (another admin got there first)."""
        customer = await self.users.get(loan.user_id)

        async def step(tx: UnitOfWork) -> Loan | None:
            if check is not None:
                await check(tx, customer)
            return await self._save(tx, loan, after, event_type, customer, notice, **data)

        updated = await self.transactions.run(step)
        if updated is None:
            now, target = (await self.loans.get(loan.id) or loan).status.value, after.status.value
            raise InvalidTransition(f"The loan is {now} and cannot become {target}.", current=now, target=target)
        await self._audit(admin, updated, action, client, **(audit or {}))
        return updated

    async def approve(self, admin: User, loan_id: str, client: ClientInfo) -> Loan:
        loan = await self._admin_loan(loan_id)
        return await self._decide(
            admin, loan, loan.approve(by=admin.id, now=self.clock.now()), EventType.LOAN_APPROVED,
            AuditAction.LOAN_APPROVED, client, lambda done: ("Your loan is approved", [
                f"Your loan {done.id} of {_money(done.amount)} is approved.",
                f"{_money(done.kfs.net_disbursed)} will be paid out to you after the processing fee of "
                f"{_money(done.kfs.processing_fee)}."]),
            check=lambda tx, customer: self._still_eligible(tx, loan, customer))

    async def reject(self, admin: User, loan_id: str, reason: str, client: ClientInfo) -> Loan:
        loan = await self._admin_loan(loan_id)
        return await self._decide(
            admin, loan, loan.reject(by=admin.id, reason=reason, now=self.clock.now()), EventType.LOAN_REJECTED,
            AuditAction.LOAN_REJECTED, client, lambda done: ("Your loan application was not approved", [
                f"Your application {done.id} for {_money(done.amount)} was not approved.", f"Reason: {reason}",
                "You may apply again."]), audit={"reason": reason})

    async def disburse(self, admin: User, loan_id: str, reference: str | None, client: ClientInfo) -> Loan:
        """Pays out the net amount (principal less the fee) and dates the schedule from today."""
        loan = await self._admin_loan(loan_id)
        reference = reference or f"PAYOUT-{uuid.uuid4().hex[:12].upper()}"
        disbursed = loan.disburse(by=admin.id, now=self.clock.now(), on=self.today(), reference=reference)
        ensure_accepted(loan)  # after the transition's own check: an APPLIED loan is 409 invalid_transition

        def notice(done: Loan) -> tuple[str, list[str]]:
            first = done.next_due
            lines = [f"{_money(done.kfs.net_disbursed)} of your loan {done.id} is paid out (reference {reference})."]
            if first and first.due_date:
                lines.append(f"Your first instalment of {_money(first.amount)} is due on {first.due_date.isoformat()}.")
            return "Your loan is disbursed", lines

        return await self._decide(admin, loan, disbursed, EventType.LOAN_DISBURSED, AuditAction.LOAN_DISBURSED, client,
                                  notice, audit={"net": str(loan.kfs.net_disbursed), "reference": reference},
                                  check=lambda tx, _: self.reviews.arm(tx) if self.reviews else asyncio.sleep(0),
                                  net_disbursed=loan.kfs.net_disbursed)

    async def confirm_preclosure(self, admin: User, loan_id: str, client: ClientInfo) -> tuple[Loan, Repayment]:
        """Closes a loan whose customer asked to pre-close: the final payment is the quote of today. The loan runs
        on until then, so the daily review may write it meanwhile (see `_after_review`)."""
        return await self._after_review(lambda: self._admin_loan(loan_id),
                                        lambda loan: self._confirm_preclosure(admin, loan, client))

    async def _confirm_preclosure(self, admin: User, loan: Loan, client: ClientInfo) -> tuple[Loan, Repayment]:
        closing, payment = loan.close_preclosed(on=self.today(), by=admin.id, now=self.clock.now())
        customer = await self.users.get(loan.user_id)

        async def step(tx: UnitOfWork) -> tuple[Loan, Repayment]:
            closed = await self._save(tx, loan, closing, EventType.LOAN_CLOSED, customer, lambda done: (
                "Your loan is closed", [
                    f"Your loan {done.id} is pre-closed with a final payment of {_money(payment.amount)}.",
                    *([f"You paid {_money(refund)} more than it took to close: it is refunded to you."]
                      if (refund := Decimal(str(payment.breakdown.get("refund_due") or 0))) else []),
                    "Nothing more is due on it."]), closure=closing.closure, final_payment=payment.amount)
            if closed is None:
                raise LoanChanged()
            return closed, await tx.repayments.add(payment)

        closed, record = await self.transactions.run(step)
        await self._audit(admin, closed, AuditAction.LOAN_CLOSED, client,
                          closure=closed.closure.value if closed.closure else None, amount=str(payment.amount))
        return closed, record

    # --- the Key Fact Statement (app/domain/kfs.py) --------------------------------------------

    def kfs_issue(self, loan: Loan) -> KfsIssue:
        return current_issue(loan, self.today(), self.kfs.validity_working_days, self.kfs.holidays)

    async def accept_kfs(self, user: User, loan_id: str, number: str, client: ClientInfo) -> Loan:
        """The borrower accepts the KFS issue shown (its number), recorded with the time and the caller's address;
        again with the accepted number: the same answer, nothing written."""
        loan = await self._own(user, loan_id)
        accepted = accept(loan, number, self.kfs_issue(loan), now=self.clock.now(), ip_address=client.ip_address,
                          user_agent=client.user_agent)
        if accepted is loan:
            return loan

        async def step(tx: UnitOfWork) -> Loan:
            updated = await tx.loans.save(loan, accepted)
            if updated is None:
                raise LoanChanged()
            await self._publish(tx, EventType.LOAN_KFS_ACCEPTED, updated, user, lambda done: (
                "You accepted your Key Fact Statement", [
                    f"You accepted the Key Fact Statement {number} of your loan {done.id} for {_money(done.amount)}.",
                    f"Instalment {_money(done.emi)} ({done.frequency.value}), {done.kfs.instalments} instalments; "
                    f"APR {done.kfs.apr} %; {_money(done.kfs.net_disbursed)} will be paid out."]), kfs_number=number)
            return updated

        updated = await self.transactions.run(step)
        await self.audit.record(AuditAction.LOAN_KFS_ACCEPTED, user_id=user.id, actor=user, client=client,
                                loan_id=loan.id, kfs_number=number)
        return updated

    # --- the customer's own loan -------------------------------------------------------------

    async def _own(self, user: User, loan_id: str) -> Loan:
        loan = await self.loans.get(loan_id, user_id=user.id)
        if loan is None:  # another customer's loan reads exactly like one that does not exist
            raise LoanNotFound()
        return loan

    @staticmethod
    async def _after_review(read: Callable[[], Awaitable[Loan]], change: Callable[[Loan], Awaitable[T]]) -> T:
        """`change` on the running loan as `read`. When the loan was written in between by the daily review only
        (its arrears and reminders; no money, status or schedule moved), once more on the loan as it is now, so
        nobody fails on the review's write; any other change stays 409 `loan_changed`."""
        loan = await read()
        try:
            return await change(loan)
        except LoanChanged:
            now = await read()
            if not now.reviewed_only_since(loan):
                raise
            return await change(now)

    async def _borrowers_change(self, user: User, loan_id: str, change: Callable[[Loan], Awaitable[T]]) -> T:
        return await self._after_review(lambda: self._own(user, loan_id), change)

    async def repay(self, user: User, loan_id: str, amount: Decimal, client: ClientInfo) -> tuple[Loan, Repayment]:
        """Allocated to the oldest instalments, interest first; paying the last closes the loan."""
        return await self._borrowers_change(user, loan_id, lambda loan: self._repay(user, loan, amount, client))

    async def _repay(self, user: User, loan: Loan, amount: Decimal, client: ClientInfo) -> tuple[Loan, Repayment]:
        paid, payment = loan.apply_payment(amount, by=user.id, now=self.clock.now())
        amount, left = payment.amount, payment.outstanding_after

        def notice(done: Loan) -> tuple[str, list[str]]:
            lines = [f"We received {_money(amount)} for your loan {done.id}.", f"Outstanding now: {_money(left)}."]
            if done.status != LoanStatus.CLOSED:
                return "Payment received", lines
            return "Your loan is fully repaid", [*lines, "That was the last instalment: your loan is closed."]

        async def step(tx: UnitOfWork) -> tuple[Loan, Repayment]:
            updated = await tx.loans.save(loan, paid)
            if updated is None:  # a payment or a pre-closure request got there first
                raise LoanChanged()
            record = await tx.repayments.add(payment)
            await self._publish(tx, EventType.LOAN_REPAYMENT_RECEIVED, updated, user, notice, repayment_id=record.id,
                                paid=amount, outstanding=left)
            await publish_arrears(tx, self.events, loan, updated, self.today())  # a cure, a late payment's charge
            if updated.status == LoanStatus.CLOSED:
                await self._publish(tx, EventType.LOAN_CLOSED, updated, None, notice, closure=updated.closure)
            return updated, record

        updated, record = await self.transactions.run(step)
        await self.audit.record(AuditAction.LOAN_REPAYMENT, user_id=user.id, actor=user, client=client,
                                loan_id=loan.id, amount=str(amount), outstanding=str(left), repayment_id=record.id)
        if updated.status == LoanStatus.CLOSED:
            await self.audit.record(AuditAction.LOAN_CLOSED, user_id=user.id, actor=user, client=client,
                                    loan_id=loan.id, closure=updated.closure.value if updated.closure else None)
        return updated, record

    async def preclosure_quote(self, user: User, loan_id: str) -> PreClosureQuote:
        return (await self._own(user, loan_id)).quote(self.today())

    async def request_preclosure(self, user: User, loan_id: str, client: ClientInfo) -> tuple[Loan, PreClosureQuote]:
        return await self._borrowers_change(user, loan_id, lambda loan: self._request_preclosure(user, loan, client))

    async def _request_preclosure(self, user: User, loan: Loan, client: ClientInfo) -> tuple[Loan, PreClosureQuote]:
        requested, quote = loan.request_preclosure(on=self.today(), by=user.id, now=self.clock.now())

        async def step(tx: UnitOfWork) -> Loan:
            updated = await tx.loans.save(loan, requested)
            if updated is None:
                raise LoanChanged()
            await self._notify(tx, user, updated, lambda done: ("Your pre-closure request is received", [
                f"You asked to pre-close your loan {done.id}.",
                f"Today's foreclosure amount is {_money(quote.foreclosure_amount)} (interest accrues daily until "
                "we confirm)."]))
            return updated

        updated = await self.transactions.run(step)
        await self.audit.record(AuditAction.LOAN_PRECLOSURE_REQUESTED, user_id=user.id, actor=user, client=client,
                                loan_id=loan.id, foreclosure_amount=str(quote.foreclosure_amount))
        return updated, quote

    # --- part-prepayment and the cooling-off exit (app/domain/prepayment.py) --------------------

    async def prepayment_quote(self, user: User, loan_id: str, amount: Decimal, keep: KeepTerm) -> PrepaymentQuote:
        return prepayment_quote(await self._own(user, loan_id), amount, keep, self.today())

    async def prepay(self, user: User, loan_id: str, amount: Decimal, keep: KeepTerm,
                     client: ClientInfo) -> tuple[Loan, Repayment, PrepaymentQuote]:
        """Part of the principal ahead: the schedule rebuilt from the next instalment not yet due or paid."""
        return await self._borrowers_change(user, loan_id, lambda loan: self._prepay(user, loan, amount, keep, client))

    async def _prepay(self, user: User, loan: Loan, amount: Decimal, keep: KeepTerm,
                      client: ClientInfo) -> tuple[Loan, Repayment, PrepaymentQuote]:
        after, payment, q = prepay(loan, amount, keep, on=self.today(), by=user.id, now=self.clock.now())
        updated, record = await self._settle(user, loan, after, payment, EventType.LOAN_PREPAID, (
            "Your prepayment is received", [
                f"We received {_money(q.total)} for your loan {loan.id}: {_money(q.amount)} of principal, "
                f"{_money(q.accrued_interest)} of interest since {q.accrued_from.isoformat()} and a charge of "
                f"{_money(q.prepayment_charge)}.",
                f"From instalment {q.first_instalment}: {q.instalments_after} instalments of {_money(q.emi_after)} "
                f"(before: {q.instalments_before} of {_money(q.emi_before)}), the last due on "
                f"{q.last_due_date.isoformat()}."]), keep=keep.value, prepaid=q.amount, paid=q.total,
            emi=q.emi_after, instalments=q.instalments_after)
        await self.audit.record(AuditAction.LOAN_PREPAID, user_id=user.id, actor=user, client=client, loan_id=loan.id,
                                amount=str(q.amount), paid=str(q.total), keep=keep.value, repayment_id=record.id)
        return updated, record, q

    async def cooling_off_quote(self, user: User, loan_id: str) -> CoolingOffQuote:
        return cooling_off_quote(await self._own(user, loan_id), self.today())

    async def exit_cooling_off(self, user: User, loan_id: str, client: ClientInfo) -> tuple[Loan, Repayment,
                                                                                            CoolingOffQuote]:
        """Closes the loan on repaying the principal and the APR for the days used, no penalty."""
        return await self._borrowers_change(user, loan_id, lambda loan: self._exit_cooling_off(user, loan, client))

    async def _exit_cooling_off(self, user: User, loan: Loan,
                                client: ClientInfo) -> tuple[Loan, Repayment, CoolingOffQuote]:
        closed, payment, q = exit_cooling_off(loan, on=self.today(), by=user.id, now=self.clock.now())
        updated, record = await self._settle(user, loan, closed, payment, EventType.LOAN_COOLING_OFF_EXIT, (
            "You have left your loan in the cooling-off period", [
                f"Your loan {loan.id} is closed with a payment of {_money(q.amount_due)}: the principal "
                f"{_money(q.principal)} and {_money(q.interest)} for {q.days_used} days at the APR of {q.apr} %, "
                f"less {_money(q.already_paid)} paid before. No penalty is charged.",
                *([f"{_money(q.refund_due)} is due back to you."] if q.refund_due else [])]),
            paid=q.amount_due, days_used=q.days_used)
        await self.audit.record(AuditAction.LOAN_CLOSED, user_id=user.id, actor=user, client=client, loan_id=loan.id,
                                closure=Closure.COOLING_OFF_EXIT.value, amount=str(q.amount_due), repayment_id=record.id)
        return updated, record, q

    async def _settle(self, user: User, loan: Loan, after: Loan, payment: Repayment, event_type: EventType,
                      notice: tuple[str, list[str]], **data: Any) -> tuple[Loan, Repayment]:
        """A payment that changes the loan, stored with its record, event and notice (and `loan.closed` when it
        closes the loan) in one unit of work; 409 when the loan changed since it was read."""
        async def step(tx: UnitOfWork) -> tuple[Loan, Repayment]:
            updated = await tx.loans.save(loan, after)
            if updated is None:
                raise LoanChanged()
            record = await tx.repayments.add(payment)
            await self._publish(tx, event_type, updated, user, lambda _: notice, repayment_id=record.id, **data)
            if updated.status == LoanStatus.CLOSED:
                await self._publish(tx, EventType.LOAN_CLOSED, updated, None, lambda _: notice, closure=updated.closure)
            return updated, record

        return await self.transactions.run(step)

    # --- views -------------------------------------------------------------------------------

    async def my_loans(self, user: User, page: PageRequest) -> Page[Loan]:
        return await self.loans.search(user_id=user.id, page=page)

    async def my_loan(self, user: User, loan_id: str) -> tuple[Loan, list[Repayment]]:
        return await self._with_repayments(self._own(user, loan_id), loan_id)

    async def loan(self, loan_id: str) -> tuple[Loan, list[Repayment]]:
        return await self._with_repayments(self._admin_loan(loan_id), loan_id)

    async def _with_repayments(self, loan: Awaitable[Loan], loan_id: str) -> tuple[Loan, list[Repayment]]:
        # Both reads at once; the payments are only shown once the loan proved to be the caller's.
        return await asyncio.gather(loan, self.repayments.for_loan(parse_id(loan_id) or ""))

    async def search(self, *, status: str | None, product_id: str | None, user_id: str | None,
                     page: PageRequest, loan_class: str | None = None) -> Page[Loan]:
        return await self.loans.search(status=status, product_id=product_id, user_id=user_id, loan_class=loan_class,
                                       page=page)

    async def loans_of(self, user_id: str) -> list[Loan]:
        """Every loan of a customer, newest first (for `GET /admin/users/{id}`)."""
        return (await self.loans.search(user_id=user_id, page=PageRequest(1, 100))).items

    async def stats(self) -> dict[str, Any]:
        """`{total, status_counts, disbursed_amount}` (for `GET /admin/stats`), read from the statistics."""
        figures = await self.loans.statistics(self.clock.now())
        counts = {status: group["count"] for status, group in figures["by_status"].items()}
        return {"total": sum(counts.values()), "status_counts": counts, "disbursed_amount": figures["disbursed"]["amount"],
                "by_class": figures["by_class"], "overdue_amount": sum(c["overdue"] for c in figures["by_class"].values())}

    async def statistics(self, days: int = TREND_DAYS) -> dict[str, Any]:
        """The loan book for `GET /admin/statistics`: every day of the trend present, zero or not."""
        today = self.today()
        first = today - timedelta(days=days - 1)
        since = self.clock.now().replace(year=first.year, month=first.month, day=first.day, hour=0, minute=0,
                                         second=0, microsecond=0)
        raw = await self.loans.statistics(since)
        trend = []
        for offset in range(days):
            day = (first + timedelta(days=offset)).isoformat()
            applied = raw["applied_by_day"].get(day, {"count": 0, "amount": ZERO})
            paid = raw["disbursed_by_day"].get(day, {"count": 0, "amount": ZERO})
            trend.append({"date": day, "applications": applied["count"], "applied_amount": applied["amount"],
                          "disbursals": paid["count"], "disbursed_amount": paid["amount"]})
        return {"by_status": raw["by_status"], "disbursed": raw["disbursed"], "outstanding": raw["outstanding"],
                "by_product": raw["by_product"], "daily_trend": trend, "by_class": raw["by_class"]}

    async def _audit(self, admin: User, loan: Loan, action: AuditAction, client: ClientInfo, **details: Any) -> None:
        await self.audit.record(action, user_id=loan.user_id, actor=admin, client=client, loan_id=loan.id,
                                status=loan.status.value, **details)
