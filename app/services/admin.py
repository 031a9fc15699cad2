"""Staff administration: creating auditors and admins, suspending accounts, browsing users."""

from __future__ import annotations

from app.domain.audit import AuditAction, ClientInfo
from app.domain.errors import Conflict, InvalidInput, NotFound
from app.domain.ids import parse_id
from app.domain.pages import Page, PageRequest
from app.domain.users import Role, User, UserStatus, check_password_policy, normalize_email
from app.repositories.users import UserRepository
from app.services.audit import AuditService
from app.services.clock import Clock
from app.services.passwords import PasswordHasher


class AdminService:
    def __init__(
        self, users: UserRepository, passwords: PasswordHasher,
        audit: AuditService, clock: Clock,
    ) -> None:
        self.users, self.passwords = users, passwords
        self.audit, self.clock = audit, clock

    async def create_user(
        self, *, email: str, password: str, name: str, role: Role, actor: User | None = None,
        client: ClientInfo | None = None,
    ) -> User:
        """An active account (staff, or any role from the command line)."""
        email = normalize_email(email)
        check_password_policy(password, email=email)
        user = await self.users.add(
            name=name.strip(), password_hash=await self.passwords.hash(password), role=role,
            status=UserStatus.ACTIVE, now=self.clock.now(), email=email,
        )
        await self.audit.record(AuditAction.STAFF_CREATED, user_id=user.id, actor=actor, client=client,
                                actor_role=None if actor else "system", role=role.value)
        return user

    async def set_status(self, user_id: str, status: UserStatus, actor: User, client: ClientInfo) -> User:
        if status not in (UserStatus.ACTIVE, UserStatus.SUSPENDED):
            raise InvalidInput("Status must be active or suspended.", code="invalid_status")
        user = await self.get_user(user_id)
        if user.id == parse_id(actor.id):  # both canonical: `ABC…` names the same record as `abc…`
            raise Conflict("You cannot change your own status.", code="cannot_change_own_status")
        previous = user.status
        updated = await self.users.set_status(user.id, status, self.clock.now())
        assert updated is not None
        if status == UserStatus.SUSPENDED:
            await self.users.revoke_sessions(user.id, "suspended", self.clock.now())
        await self.audit.record(AuditAction.STATUS_CHANGE, user_id=user.id, actor=actor, client=client,
                                old=previous.value, new=status.value)
        return updated

    async def list_users(
        self, *, role: str | None, kyc_status: str | None, q: str | None, page: PageRequest
    ) -> Page[User]:
        return await self.users.search(role=role, kyc_status=kyc_status, q=q, page=page)

    async def role_counts(self) -> dict[str, int]:
        return await self.users.role_counts()

    async def get_user(self, user_id: str) -> User:
        """By id in any letter case; anything but 24 hex digits is simply not found."""
        canonical = parse_id(user_id)
        user = await self.users.get(canonical) if canonical else None
        if user is None:
            raise NotFound("User not found.", code="user_not_found")
        return user
