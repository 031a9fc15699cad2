"""A signed-in user's own record: profile, financial and employment details, KYC status."""

from __future__ import annotations

import asyncio
import logging
from typing import Any

from app.domain.audit import AuditAction, ClientInfo
from app.domain.errors import NotFound
from app.domain.profile import is_profile_complete, profile_risk_score
from app.domain.users import User
from app.repositories.users import UserRepository
from app.services.audit import AuditService
from app.services.clock import Clock

log = logging.getLogger("kycflow.users")


class UserService:
    def __init__(self, users: UserRepository, audit: AuditService, clock: Clock) -> None:
        self.users, self.audit, self.clock = users, audit, clock
        self._tasks: set[asyncio.Task[None]] = set()

    async def get(self, user_id: str) -> User:
        user = await self.users.get(user_id)
        if user is None:
            raise NotFound("User not found.", code="user_not_found")
        return user

    async def update_profile(self, user: User, changes: dict[str, Any], client: ClientInfo) -> User:
        """Merge profile fields; a profile that becomes complete queues its risk assessment."""
        profile = {k: v for k, v in {**user.profile, **changes}.items() if v is not None}  # null clears
        fields: dict[str, Any] = {"profile": profile, "updated_at": self.clock.now()}
        if "name" in profile:
            fields["name"] = profile.pop("name")
        queue = is_profile_complete(profile)
        if queue:
            fields["profile_risk"] = {"status": "PENDING", "score": None, "level": None, "queued_at": self.clock.now()}
        updated = await self.users.update(user.id, fields)
        assert updated is not None
        await self.audit.record(AuditAction.PROFILE_UPDATE, user_id=user.id, actor=user, client=client,
                                fields=sorted(changes))
        if queue:
            self.schedule_profile_risk(user.id)
        return updated

    def schedule_profile_risk(self, user_id: str) -> None:
        task = asyncio.get_running_loop().create_task(self.assess_profile_risk(user_id))
        self._tasks.add(task)  # keep a reference until done
        task.add_done_callback(self._finished)

    def _finished(self, task: asyncio.Task[None]) -> None:
        self._tasks.discard(task)
        if not task.cancelled() and task.exception() is not None:
            log.error("profile risk assessment failed", exc_info=task.exception())

    async def assess_profile_risk(self, user_id: str) -> None:
        user = await self.users.get(user_id)
        if user is None or not user.profile_risk or user.profile_risk.get("status") != "PENDING":
            return
        score, level, factors = profile_risk_score(user.profile, self.clock.now().date())
        # Only if no newer edit queued another assessment meanwhile (that one will write its own).
        await self.users.update(user_id, {"profile_risk": {
            "status": "DONE", "score": score, "level": level, "factors": factors, "assessed_at": self.clock.now(),
        }}, expect={"profile_risk.queued_at": user.profile_risk.get("queued_at")})

    async def resume_pending(self) -> int:
        """Re-queue assessments a restart interrupted."""
        pending = await self.users.with_pending_profile_risk()
        for user_id in pending:
            self.schedule_profile_risk(user_id)
        return len(pending)

    async def drain(self) -> None:
        if self._tasks:
            await asyncio.gather(*self._tasks, return_exceptions=True)

    @staticmethod
    def details(user: User, kind: str) -> dict[str, Any]:
        """`financial_details` or `employment_details`, once saved."""
        value = getattr(user, kind)
        if not value:
            raise NotFound(f"No {kind.replace('_', ' ')} saved yet.", code="details_not_found")
        return value  # type: ignore[no-any-return]

    async def set_details(self, user: User, kind: str, details: dict[str, Any]) -> User:
        """Replace `financial_details` or `employment_details`."""
        updated = await self.users.update(user.id, {kind: details, "updated_at": self.clock.now()})
        assert updated is not None
        return updated
