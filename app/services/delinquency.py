"""The daily loan review (job `loan_reviews`, 00:00 UTC): days past due, class, penal charges, reminders.

Armed by the first disbursal (`JobService.arm_daily`); each run arms the next. A run reviews every running
loan whose oldest unpaid instalment falls due by today + LOAN_REMINDER_DAYS_BEFORE (the late ones included:
one indexed query, read by id in batches from one cursor); the rest have nothing due. What a review finds is computed on today's date,
so a missed day is caught up by the next run. A loan whose arrears did not move is not written; one that
moved is written under its revision (`save`) with its events and mail in a transaction (up to PER_COMMIT loans
each: one commit per hundred, not per loan), so a second run finds nothing to do, and a payment racing the
review wins (the next run reviews it again).
"""

from __future__ import annotations

from dataclasses import replace
from datetime import date, timedelta

from app.domain.delinquency import Reminders
from app.domain.events import EventType
from app.domain.jobs import Job
from app.domain.loans import Loan
from app.domain.users import User
from app.repositories.loans import LoanRepository
from app.repositories.transactions import Transactions, UnitOfWork
from app.repositories.users import UserRepository
from app.services.clock import Clock
from app.services.events import EventService
from app.services.jobs import JobService
from app.services.notifications import Notices

REVIEW_JOB = "loan_reviews"
BATCH = 500  # loans reviewed at once (one getMore each)
PER_COMMIT = 100  # changed loans written in one transaction


def _rupees(amount: object) -> str:
    return f"₹{amount:,.2f}"


async def publish_arrears(tx: UnitOfWork, events: EventService, before: Loan, after: Loan, today: date) -> None:
    """`loan.overdue` when more fell past due, `loan.classified` when the class moved (the review, a payment)."""
    old, new = before.arrears, after.arrears
    base = {"loan_id": after.id, "loan_class": new.loan_class.value, "days_past_due": after.dpd_on(today),
            "overdue": new.overdue}
    if new.overdue > old.overdue:
        await events.publish(EventType.LOAN_OVERDUE, tx=tx, user_id=after.user_id, data={
            **base, "penal_charges": [{"instalment": c.instalment, "amount": c.amount}
                                      for c in new.charges[len(old.charges):]]})
    if new.loan_class != old.loan_class:
        await events.publish(EventType.LOAN_CLASSIFIED, tx=tx, user_id=after.user_id, data={
            **base, "previous_class": old.loan_class.value, "on": today.isoformat()})


class LoanReviews:
    def __init__(self, *, loans: LoanRepository, users: UserRepository, transactions: Transactions,
                 jobs: JobService, events: EventService, notices: Notices, clock: Clock, reminders: Reminders) -> None:
        self.loans, self.users, self.transactions, self.jobs = loans, users, transactions, jobs
        self.events, self.notices, self.clock, self.reminders = events, notices, clock, reminders
        jobs.register(REVIEW_JOB, self._run)

    async def arm(self, tx: UnitOfWork | None = None) -> None:
        await self.jobs.arm_daily(REVIEW_JOB, tx)

    async def _run(self, job: Job) -> None:
        await self.arm()
        await self.sweep()

    async def sweep(self) -> int:
        """Reviews every loan with something due; how many changed."""
        today, changed = self.clock.now().date(), 0
        async for batch in self.loans.due_for_review(today + timedelta(days=self.reminders.before), BATCH):
            moved = [m for m in (self._review(loan, today) for loan in batch) if m]
            for first in range(0, len(moved), PER_COMMIT):
                changed += await self._write(moved[first:first + PER_COMMIT], today)
        return changed

    def _review(self, loan: Loan, today: date) -> tuple[Loan, Loan, int | None] | None:
        """(the loan, as reviewed today, the reminder milestone to mail) when its arrears moved."""
        after, due = loan.assessed(today), loan.next_due
        milestone = (self.reminders.due(due.due_date, today, days_apart=loan.frequency.days_apart)
                     if due and due.due_date else None)
        key = f"{due.number}:{milestone}" if due and milestone is not None else loan.arrears.reminded
        if key != loan.arrears.reminded:
            after = replace(after, arrears=replace(after.arrears, reminded=key))
        if after.arrears == loan.arrears:
            return None
        return loan, after, milestone if key != loan.arrears.reminded else None

    async def _write(self, moved: list[tuple[Loan, Loan, int | None]], today: date) -> int:
        """Up to PER_COMMIT loans in one transaction (one commit, not one each), each saved under its revision
        with its events and reminder; a loan a payment changed meanwhile is left to the next run."""
        customers = await self.users.get_many([loan.user_id for loan, _, mail in moved if mail is not None])

        async def step(tx: UnitOfWork) -> int:
            saved_count = 0
            for loan, after, milestone in moved:
                saved = await tx.loans.save(loan, after)
                if saved is None:
                    continue
                saved_count += 1
                await publish_arrears(tx, self.events, loan, saved, today)
                customer, due = customers.get(loan.user_id), loan.next_due
                if customer is not None and due is not None and milestone is not None:
                    await self.notices.queue(tx, customer, f"loan_reminder:{loan.id}:{due.number}:{milestone}",
                                             *self._reminder(saved, customer, due.number, due.due_date, milestone,
                                                             today))
            return saved_count

        return await self.transactions.run(step)

    @staticmethod
    def _reminder(loan: Loan, customer: User, number: int, due_on: date | None, milestone: int,
                  today: date) -> tuple[str, list[str]]:
        """RBI (penal charges, 2023): a reminder states the penal charge that applies, and each one levied with why."""
        rule, row = loan.product.penal_charge, loan.next_due
        amount = _rupees(row.amount if row else 0)
        if milestone <= 0:
            lines = [f"Instalment {number} of your loan {loan.id}, {amount}, is due on {due_on}."]
            if rule:
                lines.append(f"If it is paid late, a penal charge of {rule.value}"
                             f"{' %' if rule.kind.value == 'percent' else ' rupees'} applies"
                             f"{f' (at most {_rupees(rule.cap)})' if rule.cap is not None else ''}; "
                             "no interest is charged on it.")
            return "Your loan instalment is due soon", lines
        lines = [f"Instalment {number} of your loan {loan.id} was due on {due_on} and is unpaid: "
                 f"{loan.dpd_on(today)} days past due; {_rupees(loan.arrears.overdue)} is overdue."]
        lines += [f"Penal charge {_rupees(c.amount)} levied on {c.charged_on} because instalment {c.instalment} "
                  "was not paid by its due date (no interest is charged on it)." for c in loan.arrears.charges
                  if c.left > 0]
        lines.append("Please pay in the app to bring your loan up to date.")
        return "Your loan instalment is overdue", lines
