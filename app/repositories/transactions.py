"""One unit of work: a step runs in one transaction and writes through repositories bound to its
session, so what it writes commits together or not at all.

Not the driver's `with_transaction`, which retries for 120 s: a request still conflicting after about
a second answers 409 `concurrent_change` (Retry-After: 1). As the driver does, a transient error runs
the whole step again after a short backoff, and an unknown commit result retries the commit alone.
"""

from __future__ import annotations

import asyncio
import random
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, fields
from typing import Any, TypeVar

from pymongo.errors import PyMongoError

from app.domain.errors import ConcurrentChange
from app.repositories.base import unavailable
from app.repositories.events import EventRepository
from app.repositories.grievances import GrievanceRepository
from app.repositories.jobs import JobRepository
from app.repositories.kyc import KycCaseRepository
from app.repositories.loans import LoanRepository
from app.repositories.repayments import RepaymentRepository
from app.repositories.user_log import UserLogRepository
from app.repositories.users import UserRepository
from app.repositories.webhooks import WebhookEndpointRepository

T = TypeVar("T")
TRIES = 10  # backoff 5, 10, 20 … 160, then 200 ms (±50 %) between them: about a second in all
_COMMIT_TRIES = 3


@dataclass(frozen=True)
class UnitOfWork:
    """What a step may write: each repository bound to the transaction's session."""

    users: UserRepository
    kyc: KycCaseRepository
    loans: LoanRepository
    repayments: RepaymentRepository
    jobs: JobRepository
    events: EventRepository
    audit: UserLogRepository
    grievances: GrievanceRepository
    webhooks: WebhookEndpointRepository

    def bound(self, session: Any) -> UnitOfWork:
        return UnitOfWork(**{f.name: getattr(self, f.name).bound(session) for f in fields(self)})


class Transactions:
    def __init__(self, client: Any, repositories: UnitOfWork, *, after_commit: Callable[[], None]) -> None:
        self.client, self.repositories, self.after_commit = client, repositories, after_commit

    async def run(self, step: Callable[[UnitOfWork], Awaitable[T]]) -> T:
        """`step(tx)` in one transaction, run again on a transient conflict: so it writes only through
        `tx` (a mail goes through a notice job, never from the step). `after_commit` (waking the job
        workers: a job written here is visible to them only now) runs once it committed."""
        async with self.client.start_session() as session:
            tx = self.repositories.bound(session)
            for attempt in range(TRIES):
                try:
                    await session.start_transaction()
                    try:
                        result = await step(tx)
                    except BaseException:
                        if session.in_transaction:
                            await session.abort_transaction()
                        raise
                    await self._commit(session)
                    break
                except PyMongoError as exc:
                    if not exc.has_error_label("TransientTransactionError"):
                        raise
                    if attempt == TRIES - 1:  # still conflicting: the caller may retry (409), never a 500
                        raise ConcurrentChange(retry_after=1) from exc
                    # A write conflict: the other transaction is still open; give it time to commit
                    # (retrying at once conflicts again), then the retry sees its result.
                    await asyncio.sleep(min(0.005 * 2 ** attempt, 0.2) * random.uniform(0.5, 1.5))
        self.after_commit()
        return result

    @staticmethod
    async def _commit(session: Any) -> None:
        """Retried while its result is unknown (the connection dropped as the server answered): the
        commit is idempotent. Still unknown: 503, as any write whose fate is unknown."""
        for attempt in range(_COMMIT_TRIES):
            try:
                await session.commit_transaction()
                return
            except PyMongoError as exc:
                if not exc.has_error_label("UnknownTransactionCommitResult"):
                    raise
                if attempt == _COMMIT_TRIES - 1:
                    raise unavailable(exc) from exc
