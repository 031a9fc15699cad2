"""A signed-in user's own record: profile, financial and employment details, KYC status."""

from __future__ import annotations

import logging
from typing import Any

from app.domain.audit import AuditAction, ClientInfo
from app.domain.errors import NotFound
from app.domain.jobs import Job
from app.domain.profile import is_profile_complete, profile_risk_score
from app.domain.users import User
from app.repositories.users import UserRepository
from app.services.audit import AuditService
from app.services.clock import Clock
from app.services.jobs import JobService

log = logging.getLogger("kycflow.users")
PROFILE_RISK = "profile_risk"  # job kind


class UserService:
    def __init__(self, users: UserRepository, audit: AuditService, clock: Clock, jobs: JobService) -> None:
        self.users, self.audit, self.clock, self.jobs = users, audit, clock, jobs
        jobs.register(PROFILE_RISK, self.assess_profile_risk)

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
        updated = await self._save(user.id, fields, assess=is_profile_complete(profile))
        await self.audit.record(AuditAction.PROFILE_UPDATE, user_id=user.id, actor=user, client=client,
                                fields=sorted(changes))
        return updated

    async def _save(self, user_id: str, fields: dict[str, Any], *, assess: bool) -> User:
        """Write `fields`; with `assess`, queue a new risk assessment in the same step."""
        queued_at = self.clock.now()  # marks this assessment: only its own job may write the result
        if assess:
            fields = {**fields, "profile_risk": {"status": "PENDING", "score": None, "level": None,
                                                 "queued_at": queued_at}}

        async def save(session: Any) -> User | None:
            if assess:  # job first: without a transaction, a crash leaves a job that finds nothing to do
                await self.jobs.enqueue(PROFILE_RISK, f"{PROFILE_RISK}:{user_id}:{queued_at.isoformat()}",
                                        {"user_id": user_id, "queued_at": queued_at}, session=session)
            return await self.users.update(user_id, fields, session=session)

        updated = await self.jobs.atomically(save) if assess else await self.users.update(user_id, fields)
        assert updated is not None
        return updated

    async def assess_profile_risk(self, job: Job) -> None:
        """Job handler: score the profile and write it only while the assessment this job was queued
        for is still the pending one (a newer edit queued its own; a retry after success finds DONE)."""
        user_id, queued_at = job.payload["user_id"], job.payload["queued_at"]
        user = await self.users.get(user_id)
        risk = user.profile_risk if user else None
        if user is None or not risk or risk.get("status") != "PENDING" or risk.get("queued_at") != queued_at:
            return
        score, level, factors = profile_risk_score(user.profile, self.clock.now().date(), user.financial_details,
                                                   user.employment_details)
        await self.users.update(user_id, {"profile_risk": {
            "status": "DONE", "score": score, "level": level, "factors": factors, "assessed_at": self.clock.now(),
        }}, expect={"profile_risk.status": "PENDING", "profile_risk.queued_at": queued_at})

    @staticmethod
    def details(user: User, kind: str) -> dict[str, Any]:
        """`financial_details` or `employment_details`, once saved."""
        value = getattr(user, kind)
        if not value:
            raise NotFound(f"No {kind.replace('_', ' ')} saved yet.", code="details_not_found")
        return value  # type: ignore[no-any-return]

    async def set_details(self, user: User, kind: str, details: dict[str, Any]) -> User:
        """Replace `financial_details` or `employment_details`; both feed the profile risk, so a
        complete profile is assessed again."""
        return await self._save(user.id, {kind: details, "updated_at": self.clock.now()},
                                assess=is_profile_complete(user.profile))
