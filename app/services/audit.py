"""Writes the audit trail (`user_log`) and reads it back for auditors."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from app.domain.audit import AuditEntry, ClientInfo
from app.domain.pages import Page, PageRequest
from app.domain.users import User
from app.repositories.transactions import UnitOfWork
from app.repositories.user_log import UserLogRepository
from app.services.clock import Clock


class AuditService:
    def __init__(self, repo: UserLogRepository, clock: Clock) -> None:
        self.repo, self.clock = repo, clock

    async def record(
        self, action: str, *, user_id: str | None, actor: User | None = None, client: ClientInfo | None = None,
        actor_id: str | None = None, actor_role: str | None = None, tx: UnitOfWork | None = None, **details: Any,
    ) -> None:
        """With `tx`, in that unit of work: the entry commits with the change it records."""
        client = client or ClientInfo()
        await (tx.audit if tx else self.repo).add(AuditEntry(
            action=str(action), timestamp=self.clock.now(), user_id=user_id,
            actor_id=actor.id if actor else actor_id, actor_role=actor.role.value if actor else actor_role,
            ip_address=client.ip_address, user_agent=client.user_agent, details=details,
        ))

    async def search(
        self, *, user_id: str | None = None, actor_id: str | None = None, action: str | None = None,
        since: datetime | None = None, until: datetime | None = None, page: PageRequest = PageRequest(),
    ) -> Page[AuditEntry]:
        return await self.repo.search(user_id=user_id, actor_id=actor_id, action=action, since=since, until=until,
                                      page=page)
