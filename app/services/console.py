"""The staff console's sign-in and cookie sessions.

Sign-in takes the API's own steps (`AuthService.check_password`, `send_login_code`,
`check_login_code`): the same lockouts, codes and audit entries. What it opens is a session kept
with the user's API sessions (`kind="console"`), so logout, suspension and a password change end it
at once. The cookie carries the user id, the session id and a secret whose SHA-256 alone is stored:
the session id appears in the audit trail, which auditors read, so it must not be enough.
"""

from __future__ import annotations

import hashlib
import hmac
import secrets
from dataclasses import dataclass
from datetime import timedelta

from app.config import Settings
from app.domain.audit import AuditAction, ClientInfo
from app.domain.errors import AccountSuspended, InvalidCredentials, InvalidOtp, Unauthenticated
from app.domain.sessions import Session
from app.domain.users import User, UserStatus
from app.repositories.users import UserRepository
from app.services.audit import AuditService
from app.services.auth import INVALID_CODE, INVALID_CREDENTIALS, AuthService, MfaChallenge
from app.services.clock import Clock

# Activity is written at most this often: a page view within a minute of the last costs no write.
TOUCH_EVERY = timedelta(seconds=60)
SIGNED_OUT = "You were signed out; sign in again."


@dataclass(frozen=True)
class StaffSession:
    """A signed-in staff member on the console, with the token their forms must carry."""

    user: User
    session_id: str
    csrf_token: str


class ConsoleService:
    def __init__(self, *, settings: Settings, auth: AuthService, users: UserRepository, audit: AuditService,
                 clock: Clock) -> None:
        self.auth, self.users, self.audit, self.clock = auth, users, audit, clock
        self.idle = timedelta(seconds=settings.console_idle_timeout_seconds)
        self.lifetime = timedelta(seconds=settings.console_session_max_seconds)
        self._key = hashlib.sha256(b"kycflow-console|" + settings.resolve_jwt_secret().encode()).digest()

    async def sign_in(self, identifier: str, password: str, client: ClientInfo) -> str | MfaChallenge:
        """The password step: a code challenge when staff sign in with a second factor (LOGIN_OTP),
        else the session cookie. A customer's right password answers as a wrong one: the console
        must not tell anyone that a customer's password is right."""
        user = await self.auth.check_password(identifier, password, client)
        await self._staff_only(user, client, INVALID_CREDENTIALS, InvalidCredentials)
        if self.auth.needs_login_otp(user):
            return await self.auth.send_login_code(user, client)
        return await self._open(user, client, method="password")

    async def finish(self, otp_token: str, code: str, client: ClientInfo) -> str:
        """The code step; a customer's passwordless code is refused like a wrong one."""
        user = await self.auth.check_login_code(otp_token, code)
        await self._staff_only(user, client, INVALID_CODE, InvalidOtp)
        return await self._open(user, client, method="otp")

    async def _staff_only(self, user: User, client: ClientInfo, message: str,
                          error: type[InvalidCredentials] | type[InvalidOtp]) -> None:
        if not user.is_staff:
            await self.audit.record(AuditAction.LOGIN_FAILURE, user_id=user.id, client=client,
                                    identifier_known=True, route="console", reason="not_staff")
            raise error(message)

    async def _open(self, user: User, client: ClientInfo, *, method: str) -> str:
        now = self.clock.now()
        secret = secrets.token_urlsafe(32)
        session = Session(
            id=secrets.token_urlsafe(16), user_id=user.id, refresh_jti=secrets.token_urlsafe(16), created_at=now,
            expires_at=now + self.lifetime, ip_address=client.ip_address, user_agent=client.user_agent,
            kind="console", secret_hash=_digest(secret), last_seen_at=now,
        )
        await self.users.add_session(session, now)
        await self.audit.record(AuditAction.LOGIN_SUCCESS, user_id=user.id, actor=user, client=client,
                                method=method, session_id=session.id, channel="console")
        return f"{user.id}.{session.id}.{secret}"

    async def resolve(self, cookie: str | None) -> StaffSession:
        """The staff member a cookie signs in, or Unauthenticated: revoked (logout, password change,
        too many sessions), idle too long, past its lifetime, suspended or no longer staff."""
        user_id, session_id, secret = _parts(cookie)
        user, session = await self.users.get_with_session(user_id, session_id) if secret else (None, None)
        now = self.clock.now()
        if user is None or session is None or session.kind != "console" or not session.secret_hash \
                or not hmac.compare_digest(session.secret_hash, _digest(secret)) or not session.is_active(now):
            raise Unauthenticated(SIGNED_OUT, code="session_revoked")
        if session.idle_for(now) > self.idle:
            await self.users.revoke_sessions(user.id, "idle", now, only=session.id)
            raise Unauthenticated(f"You were signed out after {int(self.idle.total_seconds()) // 60} minutes without "
                                  "activity; sign in again.", code="session_idle")
        if user.status == UserStatus.SUSPENDED:
            raise AccountSuspended()
        if not user.is_staff:
            raise Unauthenticated(SIGNED_OUT, code="session_revoked")
        if session.idle_for(now) > TOUCH_EVERY:
            await self.users.touch_session(user.id, session.id, now)
        return StaffSession(user=user, session_id=session.id, csrf_token=self._csrf(session.id))

    async def sign_out(self, staff: StaffSession, client: ClientInfo) -> None:
        await self.users.revoke_sessions(staff.user.id, "logout", self.clock.now(), only=staff.session_id)
        await self.audit.record(AuditAction.LOGOUT, user_id=staff.user.id, actor=staff.user, client=client,
                                session_id=staff.session_id, channel="console")

    def _csrf(self, session_id: str) -> str:
        return hmac.new(self._key, b"csrf|" + session_id.encode(), hashlib.sha256).hexdigest()

    def csrf_ok(self, staff: StaffSession, token: str | None) -> bool:
        """A signed-in form's token: tied to its session, so it is worthless in any other."""
        return bool(token) and hmac.compare_digest(staff.csrf_token, token or "")

    def pre_token(self, nonce: str) -> str:
        """The sign-in forms' token, tied to a random cookie set with the form (no session yet)."""
        return hmac.new(self._key, b"pre|" + nonce.encode(), hashlib.sha256).hexdigest()

    def pre_ok(self, nonce: str | None, token: str | None) -> bool:
        return bool(nonce) and bool(token) and hmac.compare_digest(self.pre_token(nonce or ""), token or "")


def _digest(secret: str) -> str:
    return hashlib.sha256(secret.encode()).hexdigest()


def _parts(cookie: str | None) -> list[str]:
    parts = (cookie or "").split(".")
    return parts if len(parts) == 3 and all(parts) and len(cookie or "") <= 200 else ["", "", ""]
