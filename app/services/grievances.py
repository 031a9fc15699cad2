"""Grievances: a borrower raises one about their own loan; staff work the queue on the RBI's 30-day
clock, reply and close. Each change commits with its event, its audit entry and the borrower's
notice (a durable `customer_notice` job) in one transaction."""

from __future__ import annotations

import asyncio
from dataclasses import dataclass

from app.domain.audit import AuditAction, ClientInfo
from app.domain.errors import ConcurrentChange
from app.domain.events import EventType
from app.domain.grievances import Grievance, GrievanceCategory, GrievanceNotFound, GrievanceStatus
from app.domain.loans import LoanNotFound
from app.domain.pages import Page, PageRequest
from app.domain.users import User
from app.repositories.grievances import GrievanceRepository
from app.repositories.loans import LoanRepository
from app.repositories.transactions import Transactions, UnitOfWork
from app.repositories.users import UserRepository
from app.services.audit import AuditService
from app.services.clock import Clock
from app.services.events import EventService
from app.services.notifications import Notices


@dataclass(frozen=True)
class GrievanceOfficer:
    name: str
    email: str
    phone: str

    @property
    def line(self) -> str:
        return f"Our grievance officer: {self.name}, {self.email}, {self.phone}."


class GrievanceService:
    def __init__(self, *, grievances: GrievanceRepository, loans: LoanRepository, users: UserRepository,
                 transactions: Transactions, notices: Notices, events: EventService, audit: AuditService,
                 clock: Clock, officer: GrievanceOfficer) -> None:
        self.grievances, self.loans, self.users, self.transactions = grievances, loans, users, transactions
        self.notices, self.events, self.audit, self.clock, self.officer = notices, events, audit, clock, officer

    async def raise_(self, user: User, loan_id: str, category: GrievanceCategory, text: str,
                     client: ClientInfo) -> Grievance:
        """On one of the caller's own loans: anyone else's reads as not found."""
        if await self.loans.get(loan_id, user_id=user.id) is None:
            raise LoanNotFound()
        opened = Grievance.open(user_id=user.id, loan_id=loan_id, category=category, text=text, now=self.clock.now())

        async def step(tx: UnitOfWork) -> Grievance:
            stored = await tx.grievances.add(opened)
            await self._record(tx, EventType.GRIEVANCE_OPENED, AuditAction.GRIEVANCE_OPENED, stored, user, client)
            await self.notices.queue(tx, user, f"grievance:{stored.id}:0", "We received your grievance", [
                f"Your grievance {stored.id} about loan {loan_id} is registered.",
                f"We will resolve it by {stored.due_at.date().isoformat()} (within 30 days).", self.officer.line])
            return stored

        return await self.transactions.run(step)

    async def of_loan(self, user: User, loan_id: str, page: PageRequest) -> Page[Grievance]:
        loan, found = await asyncio.gather(self.loans.get(loan_id, user_id=user.id),
                                           self.grievances.of_loan(user.id, loan_id, page))
        if loan is None:
            raise LoanNotFound()
        return found

    async def queue(self, status: GrievanceStatus | None, page: PageRequest) -> Page[Grievance]:
        return await self.grievances.queue(status, page)

    async def reply(self, staff: User, grievance_id: str, message: str, client: ClientInfo, *,
                    close: bool) -> Grievance:
        """A reply to the borrower, closing the grievance with `close`; 409 once closed."""
        found = await self.grievances.get(grievance_id)
        if found is None:
            raise GrievanceNotFound()
        after = found.reply(message, by=staff.id, now=self.clock.now(), close=close)
        customer = await self.users.get(found.user_id)
        subject = "Your grievance is resolved" if close else "A reply to your grievance"

        async def step(tx: UnitOfWork) -> Grievance:
            saved = await tx.grievances.save(found, after)
            if saved is None:
                raise ConcurrentChange("The grievance changed while this reply was sent; read it again.",
                                       retry_after=1)
            event, action = ((EventType.GRIEVANCE_CLOSED, AuditAction.GRIEVANCE_CLOSED) if close else
                             (EventType.GRIEVANCE_RESPONDED, AuditAction.GRIEVANCE_RESPONDED))
            await self._record(tx, event, action, saved, staff, client)
            if customer is not None:
                await self.notices.queue(tx, customer, f"grievance:{saved.id}:{saved.rev}", subject, [
                    f"About your grievance {saved.id} (loan {saved.loan_id}):", message, self.officer.line])
            return saved

        return await self.transactions.run(step)

    async def _record(self, tx: UnitOfWork, event: EventType, action: AuditAction, grievance: Grievance,
                      actor: User, client: ClientInfo) -> None:
        """The event (ids, category and status: the text stays out of the outbox) and the audit entry."""
        data = {"grievance_id": grievance.id, "loan_id": grievance.loan_id, "category": grievance.category.value,
                "status": grievance.status.value}
        await self.events.publish(event, tx=tx, user_id=grievance.user_id, data=data)
        await self.audit.record(action, user_id=grievance.user_id, actor=actor, client=client, tx=tx, **data)
