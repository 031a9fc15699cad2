"""Periodic re-KYC: a daily job tells customers KYC_RENEWAL_NOTICE_DAYS ahead that their approval runs out,
then marks them RE_KYC_DUE and sends their approved case back with a round of what to renew (the
resubmission mechanism: they renew into the same case, and its approval restarts the validity).

The job (`kyc_renewals`) runs at 00:00 UTC, keyed by the day: the first approval queues the next day's, each
run queues the next before its sweep. A sweep handles everything due up to now, so a missed day is caught
up, and each step is one transaction filtered on the approval's end, so a second run changes nothing."""

from __future__ import annotations

from datetime import datetime

from app.domain.audit import AuditAction
from app.domain.events import EventType
from app.domain.jobs import Job
from app.domain.kyc import LIVENESS, RENEWAL_BY, CaseStatus, Redo, Round
from app.domain.kyc_renewal import Renewal
from app.domain.users import User
from app.repositories.kyc import KycCaseRepository
from app.repositories.transactions import Transactions, UnitOfWork
from app.repositories.users import UserRepository
from app.services.audit import AuditService
from app.services.clock import Clock
from app.services.events import EventService
from app.services.jobs import JobService
from app.services.notifications import Notices

RENEWAL_JOB = "kyc_renewals"
BATCH = 100


def _ask(item: Redo) -> str:
    return "a new selfie with a passed liveness challenge" if item.kind == LIVENESS else f"your {item.label}"


class KycRenewals:
    def __init__(self, *, renewal: Renewal, users: UserRepository, cases: KycCaseRepository,
                 transactions: Transactions, jobs: JobService, events: EventService, notices: Notices,
                 audit: AuditService, clock: Clock) -> None:
        self.renewal, self.users, self.cases, self.transactions = renewal, users, cases, transactions
        self.jobs, self.events, self.notices, self.audit, self.clock = jobs, events, notices, audit, clock
        jobs.register(RENEWAL_JOB, self._run)

    async def arm(self, tx: UnitOfWork | None = None) -> None:
        await self.jobs.arm_daily(RENEWAL_JOB, tx)

    async def start(self) -> None:
        """At a start, today's run now while approvals older than periodic re-KYC are left: they armed no run."""
        if await self.users.unrenewed(1):
            await self.jobs.enqueue(RENEWAL_JOB, f"{RENEWAL_JOB}:{self.clock.now().date()}", {})

    async def _run(self, job: Job) -> None:
        await self.arm()  # first: a sweep that fails for good leaves the days after it running
        await self.sweep()

    async def sweep(self) -> None:
        await self._adopt()
        done: set[str] = set()
        while True:
            now = self.clock.now()
            due = [u for u in await self.users.renewals_due(now, BATCH) if u.id not in done]
            for user in due:
                done.add(user.id)
                assert user.kyc_valid_until is not None  # set with kyc_renewal_at
                await (self._expire(user, now) if user.kyc_valid_until <= now else self._notice(user))
            if len(due) < BATCH:
                return

    async def _adopt(self) -> None:
        """Approvals older than periodic re-KYC get the validity their approval gave them (its decision date, risk
        and documents, as `KycReviewService.record`; none approved: High from the status's date), a page at a time.
        Each leaves the page's query once written, so the sweep then handles those due like any other."""
        while users := await self.users.unrenewed(BATCH):
            for user in users:
                case = next((c for c in await self.cases.list_for_user(user.id)
                             if c.status == CaseStatus.APPROVED and c.decided_at), None)
                validity = self.renewal.validity(case, case.decided_at if case and case.decided_at else
                                                 user.kyc_status_changed_at)
                if case:  # first: the user's write takes them off the query, so a failure between is retried
                    await self.cases.set_valid_until(case.id, validity.until)
                await self.users.set_validity(user.id, validity)

    async def _notice(self, user: User) -> None:
        until = user.kyc_valid_until
        assert until is not None

        async def step(tx: UnitOfWork) -> None:
            if not await tx.users.renewal_noticed(user):
                return
            await self.events.publish(EventType.KYC_EXPIRING, tx=tx, user_id=user.id, data={"valid_until": until})
            await self.notices.queue(tx, user, f"kyc_expiring:{user.id}:{until:%Y%m%dT%H%M%S}",
                                     "Your KYC verification runs out soon", [
                                         f"Your KYC verification is valid until {until:%Y-%m-%d} (UTC).",
                                         "Then we will ask you to renew it in the app before you apply for a new "
                                         "loan; loans you already have are not affected."])

        await self.transactions.run(step)

    async def _expire(self, user: User, now: datetime) -> None:
        """RE_KYC_DUE; the approved case (none while a step-up is open) sent back with what to renew."""
        until = user.kyc_valid_until
        case = await self.cases.latest_for_user(user.id)
        case = case if case and case.status == CaseStatus.APPROVED else None
        items = self.renewal.items(case, now) if case else []
        labels = [i.label for i in items]
        message = f"Your KYC verification ran out on {until:%Y-%m-%d}; renew it to apply for new loans."

        async def step(tx: UnitOfWork) -> None:
            if not await tx.users.renewal_due(user, now):
                return
            if case is not None:
                await tx.kyc.renew(case.id, Round(
                    len(case.rounds) + 1, case.submitted_at, case.documents, case.selfie, case.checks,
                    case.overall_score, case.risk_level, RENEWAL_BY, "Periodic re-KYC", now, items, message,
                    f"Approval valid until {until:%Y-%m-%d}; risk {case.risk_level}."))
            kyc_id = case.id if case else None
            await self.events.publish(EventType.KYC_EXPIRED, tx=tx, user_id=user.id, data={
                "kyc_id": kyc_id, "status": "RE_KYC_DUE", "valid_until": until, "items": labels})
            await self.audit.record(AuditAction.KYC_EXPIRED, user_id=user.id, actor_id="system", actor_role="system",
                                    tx=tx, kyc_id=kyc_id, valid_until=until.isoformat() if until else None, items=labels)
            upload = ["Upload in the app:", *(f"- {_ask(i)}" for i in items), "then submit your KYC again."]
            await self.notices.queue(tx, user, f"kyc_expired:{user.id}:{until:%Y%m%dT%H%M%S}",
                                     "Your KYC verification needs renewing", [
                                         message, *(upload if items else []),
                                         "Loans you already have are not affected."])

        await self.transactions.run(step)
