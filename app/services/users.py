"""A signed-in user's own record: profile, financial and employment details, KYC status."""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable
from datetime import datetime
from typing import Any

from app.domain.audit import AuditAction, ClientInfo
from app.domain.errors import NotFound
from app.domain.jobs import Job
from app.domain.profile import (
    ensure_identity_unchanged,
    identity_changes,
    identity_held,
    is_profile_complete,
    profile_risk_score,
)
from app.domain.users import EmploymentDetails, FinancialDetails, KycStatus, User
from app.repositories.transactions import Transactions, UnitOfWork
from app.repositories.users import UserRepository
from app.services.audit import AuditService
from app.services.clock import Clock
from app.services.jobs import JobService

log = logging.getLogger("kycflow.users")
PROFILE_RISK = "profile_risk"  # job kind


class UserService:
    def __init__(self, users: UserRepository, audit: AuditService, clock: Clock, jobs: JobService,
                 transactions: Transactions) -> None:
        self.users, self.audit, self.clock, self.jobs, self.transactions = users, audit, clock, jobs, transactions
        jobs.register(PROFILE_RISK, self.assess_profile_risk)

    async def get(self, user_id: str) -> User:
        user = await self.users.get(user_id)
        if user is None:
            raise NotFound("User not found.", code="user_not_found")
        return user

    async def update_profile(self, user: User, changes: dict[str, Any], client: ClientInfo) -> User:
        """Merge profile fields; a profile that becomes complete queues its risk assessment. A name or
        date of birth that a KYC case is reviewing or approved is refused (409), not changed."""
        if user.kyc_status in (KycStatus.SUBMITTED, KycStatus.APPROVED, KycStatus.RESUBMISSION_REQUESTED):
            # checks compare them (an untouched document's keep across a resubmission); approval pins them
            ensure_identity_unchanged(user.identity, changes, approved=user.kyc_status == KycStatus.APPROVED)
        moving = identity_changes(user.identity, changes)  # allowed now: the write re-checks that it still is
        profile = {k: v for k, v in {**user.profile, **changes}.items() if v is not None}  # null clears
        name = profile.pop("name", None)

        async def write(queued: datetime | None, users: UserRepository) -> User:
            saved = await users.save_profile(user.id, profile=profile, name=name, now=self.clock.now(),
                                             queue_risk_at=queued, identity_open=bool(moving))
            if saved is None:  # a case was submitted (or approved) since this request read the user
                fresh = await self.users.get(user.id)
                raise identity_held(moving, approved=fresh is not None and fresh.kyc_status == KycStatus.APPROVED)
            return saved

        updated = await self._save(user.id, is_profile_complete(profile), write)
        await self.audit.record(AuditAction.PROFILE_UPDATE, user_id=user.id, actor=user, client=client,
                                fields=sorted(changes))
        return updated

    async def _save(self, user_id: str, assess: bool,
                    write: Callable[[datetime | None, UserRepository], Awaitable[User | None]]) -> User:
        """`write(queued_at, users)`; with `assess`, a new risk assessment is queued in the same transaction."""
        if not assess:
            updated = await write(None, self.users)
        else:
            queued_at = self.clock.now()  # marks this assessment: only its job may write it

            async def save(tx: UnitOfWork) -> User | None:
                await self.jobs.enqueue(PROFILE_RISK, f"{PROFILE_RISK}:{user_id}:{queued_at.isoformat()}",
                                        {"user_id": user_id, "queued_at": queued_at}, tx=tx)
                return await write(queued_at, tx.users)

            updated = await self.transactions.run(save)
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
        await self.users.finish_profile_risk(user_id, queued_at, score=score, level=level, factors=factors,
                                             now=self.clock.now())

    @staticmethod
    def details(user: User, kind: str) -> dict[str, Any]:
        """`financial_details` or `employment_details`, once saved."""
        value = getattr(user, kind)
        if not value:
            raise NotFound(f"No {kind.replace('_', ' ')} saved yet.", code="details_not_found")
        return value

    async def set_details(self, user: User, kind: str, details: FinancialDetails | EmploymentDetails) -> User:
        """`financial_details` or `employment_details`: both feed the profile risk, so a complete profile
        is assessed again."""
        return await self._save(user.id, is_profile_complete(user.profile), lambda queued, users:
                                users.save_details(user.id, kind, details, self.clock.now(), queue_risk_at=queued))

