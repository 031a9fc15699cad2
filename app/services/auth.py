"""Sign-up, verification, login (password, OTP, passwordless), sessions and passwords."""

from __future__ import annotations

import secrets
from dataclasses import dataclass
from datetime import datetime, timedelta

from app.config import Settings
from app.domain.audit import AuditAction, ClientInfo
from app.domain.errors import Forbidden, InvalidInput, Unauthenticated
from app.domain.otp import Otp, OtpPurpose, generate_code, hash_code, hash_token
from app.domain.sessions import Session
from app.domain.users import Role, User, UserStatus, check_password_policy, normalize_identifier
from app.repositories.otps import OtpRepository
from app.repositories.users import UserRepository
from app.services.audit import AuditService
from app.services.clock import Clock
from app.services.notifications import Notifier
from app.services.passwords import PasswordHasher
from app.services.rate_limits import Quota, RateLimiter
from app.services.tokens import TokenClaims, TokenService

INVALID_CREDENTIALS = "Invalid identifier or password."


@dataclass(frozen=True)
class TokenPair:
    access_token: str
    refresh_token: str
    expires_in: int
    user_id: str
    role: str


@dataclass(frozen=True)
class MfaChallenge:
    otp_token: str
    message: str
    quota: Quota | None = None


@dataclass(frozen=True)
class Principal:
    """An authenticated caller: the user and the token they presented."""

    user: User
    claims: TokenClaims


class AuthService:
    def __init__(
        self, *, settings: Settings, users: UserRepository, otps: OtpRepository,
        passwords: PasswordHasher, tokens: TokenService, notifier: Notifier, limiter: RateLimiter,
        audit: AuditService, clock: Clock,
    ) -> None:
        self.s = settings
        self.users, self.otps = users, otps
        self.passwords, self.tokens, self.notifier = passwords, tokens, notifier
        self.limiter, self.audit, self.clock = limiter, audit, clock
        self._otp_key = settings.resolve_jwt_secret()  # HMAC key for stored OTP hashes

    # --- registration -------------------------------------------------------------------

    async def register(
        self, *, name: str, password: str, email: str | None, phone: str | None, client: ClientInfo
    ) -> User:
        email = normalize_identifier(email) if email else None
        phone = normalize_identifier(phone) if phone else None
        if not (email or phone):
            raise InvalidInput("Give an email address or a phone number.", code="identifier_required")
        check_password_policy(password, email=email, phone=phone)
        user = await self.users.add(
            name=name.strip(), password_hash=await self.passwords.hash(password), role=Role.CUSTOMER,
            status=UserStatus.PENDING_VERIFICATION, now=self.clock.now(), email=email, phone=phone,
        )
        await self.audit.record(AuditAction.REGISTER, user_id=user.id, actor=user, client=client,
                                channel="email" if email else "phone")
        await self._send_otp(user, OtpPurpose.VERIFY, to=user.primary_identifier)
        return user

    async def verify_account(self, identifier: str, code: str, client: ClientInfo) -> User:
        user = await self.users.get_by_identifier(normalize_identifier(identifier))
        if user is None or user.status != UserStatus.PENDING_VERIFICATION:
            raise InvalidInput("The code is not valid.", code="invalid_otp")
        await self._check_otp(user.id, OtpPurpose.VERIFY, code)
        user = await self.users.update(user.id, {"status": UserStatus.ACTIVE.value, "updated_at": self.clock.now()})
        assert user is not None
        await self.audit.record(AuditAction.VERIFY, user_id=user.id, actor=user, client=client)
        return user

    async def resend_verification(self, identifier: str) -> Quota:
        ident = normalize_identifier(identifier)
        user = await self.users.get_by_identifier(ident)
        if user is not None and user.status == UserStatus.PENDING_VERIFICATION:
            return (await self._send_otp(user, OtpPurpose.VERIFY, to=ident))[1]
        # Same limits whether or not the account exists (or is already verified).
        return await self._count_send(user.id if user else ident, OtpPurpose.VERIFY)

    # --- login ------------------------------------------------------------------------

    async def login(self, identifier: str, password: str, client: ClientInfo) -> TokenPair | MfaChallenge:
        ident = normalize_identifier(identifier)
        lock_key, fail_key = f"lock:{ident}", f"login_fail:{ident}"
        # Lockout and failures are keyed by identifier, so unknown identifiers behave the same.
        locked = await self.limiter.locked_for(lock_key)
        if locked:
            raise Forbidden("Too many failed logins; the account is locked for a while.", code="account_locked",
                            retry_after=locked)
        # Count the attempt before the slow password check, so parallel guesses can't all slip
        # past the limit; a successful login clears the count again.
        window, lockout = timedelta(seconds=self.s.login_failure_window_seconds), self.s.login_lockout_seconds
        attempts = await self.limiter.hit(fail_key, window)
        # Over the limit, or a parallel request locked (and reset the count) since we looked.
        locked = await self.limiter.locked_for(lock_key)
        if attempts > self.s.login_max_failures or locked:
            if not locked:
                await self.limiter.lock(lock_key, timedelta(seconds=lockout))
            raise Forbidden("Too many failed logins; the account is locked for a while.", code="account_locked",
                            retry_after=locked or lockout)
        user = await self.users.get_by_identifier(ident)
        if not await self.passwords.verify(password, user.password_hash if user else None):
            await self.audit.record(AuditAction.LOGIN_FAILURE, user_id=user.id if user else None, client=client,
                                    identifier_known=user is not None, failures=attempts)
            if attempts == self.s.login_max_failures:
                await self.limiter.lock(lock_key, timedelta(seconds=lockout))
                await self.limiter.clear(fail_key)
                await self.audit.record(AuditAction.LOCKOUT, user_id=user.id if user else None, client=client,
                                        minutes=lockout // 60)
            raise Unauthenticated(INVALID_CREDENTIALS, code="invalid_credentials")
        assert user is not None
        await self.limiter.clear(fail_key)
        user.ensure_can_sign_in()
        if self._needs_login_otp(user):
            token, quota = await self._send_otp(user, OtpPurpose.LOGIN, to=user.primary_identifier)
            await self.audit.record(AuditAction.LOGIN_OTP_SENT, user_id=user.id, actor=user, client=client)
            return MfaChallenge(otp_token=token or "", message="Enter the code we sent to finish signing in.",
                                quota=quota)
        return await self._open_session(user, client, method="password")

    def _needs_login_otp(self, user: User) -> bool:
        return self.s.login_otp == "all" or (self.s.login_otp == "staff" and user.is_staff)

    async def start_passwordless(self, identifier: str) -> MfaChallenge:
        """Send a login code if the account can sign in; answer the same either way."""
        ident = normalize_identifier(identifier)
        user = await self.users.get_by_identifier(ident)
        message = "If the account exists, we sent a sign-in code."
        # Staff always pass a password and a code; a mailed code alone must not open a staff session.
        if user is None or user.status != UserStatus.ACTIVE or user.is_staff:
            quota = await self._count_send(ident, OtpPurpose.LOGIN)
            return MfaChallenge(otp_token=secrets.token_urlsafe(32), message=message, quota=quota)
        token, quota = await self._send_otp(user, OtpPurpose.LOGIN, to=ident)
        return MfaChallenge(otp_token=token or "", message=message, quota=quota)

    async def finish_otp_login(self, otp_token: str, code: str, client: ClientInfo) -> TokenPair:
        otp = await self.otps.find_by_token(hash_token(otp_token))
        if otp is None:
            raise InvalidInput("The code is not valid.", code="invalid_otp")
        await self._verify_code(otp, code)
        user = await self.users.get(otp.user_id)
        if user is None:
            raise InvalidInput("The code is not valid.", code="invalid_otp")
        user.ensure_can_sign_in()
        return await self._open_session(user, client, method="otp")

    async def _open_session(self, user: User, client: ClientInfo, *, method: str) -> TokenPair:
        now = self.clock.now()
        session = Session(
            id=self.tokens.new_id(), user_id=user.id, refresh_jti=self.tokens.new_id(), created_at=now,
            expires_at=now + self.tokens.refresh_ttl, ip_address=client.ip_address, user_agent=client.user_agent,
        )
        await self.users.add_session(session, now)
        await self.audit.record(AuditAction.LOGIN_SUCCESS, user_id=user.id, actor=user, client=client,
                                method=method, session_id=session.id)
        return self._pair(user, session.id, session.refresh_jti, now)

    def _pair(self, user: User, session_id: str, refresh_jti: str, now: datetime) -> TokenPair:
        common = {"user_id": user.id, "role": user.role.value, "session_id": session_id, "now": now}
        return TokenPair(
            access_token=self.tokens.issue(typ="access", jti=self.tokens.new_id(), **common),
            refresh_token=self.tokens.issue(typ="refresh", jti=refresh_jti, **common),
            expires_in=int(self.tokens.access_ttl.total_seconds()), user_id=user.id, role=user.role.value,
        )

    # --- sessions ---------------------------------------------------------------------

    async def authenticate(self, token: str) -> Principal:
        """Resolve a bearer access token to a live user, or refuse."""
        claims = self.tokens.decode(token, typ="access")
        # One read: sessions live inside the user document.
        user, session = await self.users.get_with_session(claims.sub, claims.sid)
        if user is None:
            raise Unauthenticated("The token is invalid.", code="invalid_token")
        if session is None or not session.is_active(self.clock.now()):
            raise Unauthenticated("This session has ended; sign in again.", code="session_revoked")
        if user.status == UserStatus.SUSPENDED:
            raise Forbidden("This account is suspended.", code="account_suspended")
        return Principal(user=user, claims=claims)

    async def refresh(self, refresh_token: str, client: ClientInfo) -> TokenPair:
        claims = self.tokens.decode(refresh_token, typ="refresh")
        user, session = await self.users.get_with_session(claims.sub, claims.sid)
        now = self.clock.now()
        if user is None or session is None or not session.is_active(now):
            raise Unauthenticated("This session has ended; sign in again.", code="session_revoked")
        new_jti = self.tokens.new_id()
        expires = min(now + self.tokens.refresh_ttl,
                      session.created_at + timedelta(seconds=self.s.session_max_lifetime_seconds))
        if not await self.users.rotate_session(user.id, session.id, claims.jti, new_jti, expires):
            # A spent refresh token came back: someone holds a copy. End the whole session.
            await self.users.revoke_sessions(user.id, "refresh_reuse", now, only=session.id)
            await self.audit.record(AuditAction.REFRESH_REUSE, user_id=user.id, client=client,
                                    actor_id=user.id, session_id=session.id)
            raise Unauthenticated("This refresh token was already used; the session is revoked.",
                                  code="refresh_token_reused")
        if user.status == UserStatus.SUSPENDED:
            raise Forbidden("This account is suspended.", code="account_suspended")
        return self._pair(user, session.id, new_jti, now)

    async def logout(self, principal: Principal, client: ClientInfo, refresh_token: str | None = None) -> None:
        if refresh_token and self.tokens.decode(refresh_token, typ="refresh").sid != principal.claims.sid:
            raise InvalidInput("The refresh token belongs to another session.", code="token_mismatch")
        await self.users.revoke_sessions(principal.user.id, "logout", self.clock.now(), only=principal.claims.sid)
        await self.audit.record(AuditAction.LOGOUT, user_id=principal.user.id, actor=principal.user, client=client,
                                session_id=principal.claims.sid)

    # --- passwords --------------------------------------------------------------------

    async def change_password(self, principal: Principal, current: str, new: str, client: ClientInfo) -> None:
        user = principal.user
        if not await self.passwords.verify(current, user.password_hash):
            raise InvalidInput("The current password is wrong.", code="invalid_credentials")
        check_password_policy(new, email=user.email, phone=user.phone)
        await self.users.update(user.id, {"password_hash": await self.passwords.hash(new), "updated_at": self.clock.now()})
        revoked = await self.users.revoke_sessions(user.id, "password_change", self.clock.now(),
                                                   keep=principal.claims.sid)
        await self.audit.record(AuditAction.PASSWORD_CHANGE, user_id=user.id, actor=user, client=client,
                                sessions_revoked=revoked)

    async def forgot_password(self, identifier: str) -> Quota:
        ident = normalize_identifier(identifier)
        user = await self.users.get_by_identifier(ident)
        if user is None or user.status == UserStatus.SUSPENDED:
            return await self._count_send(ident, OtpPurpose.RESET)
        return (await self._send_otp(user, OtpPurpose.RESET, to=ident))[1]

    async def reset_password(self, identifier: str, code: str, new_password: str, client: ClientInfo) -> None:
        user = await self.users.get_by_identifier(normalize_identifier(identifier))
        if user is None:
            raise InvalidInput("The code is not valid.", code="invalid_otp")
        check_password_policy(new_password, email=user.email, phone=user.phone)
        await self._check_otp(user.id, OtpPurpose.RESET, code)
        changes: dict[str, object] = {"password_hash": await self.passwords.hash(new_password),
                                      "updated_at": self.clock.now()}
        if user.status == UserStatus.PENDING_VERIFICATION:
            changes["status"] = UserStatus.ACTIVE.value  # the code proves they own the identifier
        await self.users.update(user.id, changes)
        revoked = await self.users.revoke_sessions(user.id, "password_reset", self.clock.now())
        await self.limiter.clear(f"lock:{normalize_identifier(identifier)}")
        await self.audit.record(AuditAction.PASSWORD_RESET, user_id=user.id, actor=user, client=client,
                                sessions_revoked=revoked)

    # --- one-time codes ---------------------------------------------------------------

    async def _count_send(self, subject: str, purpose: OtpPurpose) -> Quota:
        """Apply and record the send limits; per purpose, since verifying and then signing in
        within a minute is normal, not abuse."""
        key, window = f"otp_send:{purpose}:{subject}", timedelta(hours=1)
        limit = self.s.otp_max_sends_per_hour
        await self.limiter.check(key, cooldown=timedelta(seconds=self.s.otp_resend_cooldown_seconds),
                                 limit=limit, window=window)
        return await self.limiter.record(key, limit=limit, window=window)

    async def _send_otp(self, user: User, purpose: OtpPurpose, *, to: str) -> tuple[str | None, Quota]:
        """Store a fresh hashed code, then deliver it (after the write, so a retry can resend)."""
        quota = await self._count_send(user.id, purpose)
        code = generate_code()
        token = secrets.token_urlsafe(32) if purpose == OtpPurpose.LOGIN else None
        now = self.clock.now()
        await self.otps.replace(
            user_id=user.id, purpose=purpose, code_hash=hash_code(self._otp_key, user.id, purpose, code),
            expires_at=now + timedelta(seconds=self.s.otp_ttl_seconds), max_attempts=self.s.otp_max_attempts,
            now=now, token_hash=hash_token(token) if token else None,
        )
        await self.notifier.send_code(to=to, purpose=purpose.value, code=code, name=user.name)
        return token, quota

    async def _check_otp(self, user_id: str, purpose: OtpPurpose, code: str) -> None:
        otp = await self.otps.find(user_id, purpose)
        if otp is None:
            raise InvalidInput("The code is not valid.", code="invalid_otp")
        await self._verify_code(otp, code)

    async def _verify_code(self, otp: Otp, code: str) -> None:
        otp.ensure_usable(self.clock.now())
        claimed = await self.otps.claim_attempt(otp.id, otp.max_attempts)
        if claimed is None:
            raise InvalidInput("Too many wrong codes; ask for a new one.", code="otp_exhausted")
        if not claimed.matches(self._otp_key, code):
            if claimed.tries_left == 0:
                await self.otps.consume(otp.id)  # spent: a new code must be requested
                raise InvalidInput("Too many wrong codes; ask for a new one.", code="otp_exhausted")
            raise InvalidInput(f"The code is not valid; {claimed.tries_left} tries left.", code="invalid_otp")
        if not await self.otps.consume(otp.id):  # used by a parallel request a moment ago
            raise InvalidInput("The code is not valid.", code="invalid_otp")
