"""Sign-up, verification, login (password, OTP, passwordless), sessions and passwords."""

from __future__ import annotations

import logging
import secrets
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from datetime import datetime, timedelta

from app.config import Settings
from app.domain.audit import AuditAction, ClientInfo
from app.domain.errors import (
    AccountLocked,
    AccountSuspended,
    DeliveryFailed,
    IdentifierTaken,
    InvalidCredentials,
    InvalidInput,
    InvalidOtp,
    OtpExhausted,
    Unauthenticated,
)
from app.domain.otp import Otp, OtpPurpose, decoy_hash, generate_code, hash_code, hash_token
from app.domain.sessions import Session
from app.domain.users import (
    Role,
    User,
    UserStatus,
    check_password_policy,
    identifier_kind,
    normalize_email,
    normalize_identifier,
    normalize_phone,
)
from app.repositories.otps import OtpRepository
from app.repositories.users import UserRepository
from app.services.audit import AuditService
from app.services.clock import Clock
from app.services.notifications import Notifier
from app.services.passwords import PasswordHasher
from app.services.rate_limits import Quota, RateLimiter
from app.services.tokens import TokenClaims, TokenService

log = logging.getLogger("kycflow.auth")

# Runs a delivery after the HTTP answer (the route's BackgroundTasks.add_task).
Later = Callable[[Callable[[], Awaitable[None]]], None]

INVALID_CREDENTIALS = "Invalid identifier or password."
INVALID_CODE = "The code is not valid."
LOCKED = "Too many failed sign-in attempts; the account is locked for a while."
IDENTIFIER_TAKEN = "An account with this email or phone already exists."


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
        email = normalize_email(email) if email else None
        phone = normalize_phone(phone) if phone else None
        if not (email or phone):
            raise InvalidInput("Give an email address or a phone number.", code="identifier_required")
        check_password_policy(password, email=email, phone=phone)
        # The phone beside an email is only a claim until its own code is verified, so it never
        # blocks its owner; one already held by an account is refused like the contract's 409.
        if email and phone and await self.users.identifier_held(phone):
            raise IdentifierTaken(IDENTIFIER_TAKEN)
        user = await self.users.add(
            name=name.strip(), password_hash=await self.passwords.hash(password), role=Role.CUSTOMER,
            status=UserStatus.PENDING_VERIFICATION, now=self.clock.now(), email=email, phone=phone,
        )
        await self.audit.record(AuditAction.REGISTER, user_id=user.id, actor=user, client=client,
                                channel="email" if email else "phone")
        await self._send_otp(user, OtpPurpose.VERIFY, to=user.primary_identifier)
        return user

    async def verify_account(self, identifier: str, code: str, client: ClientInfo,
                             principal: Principal | None = None) -> User:
        """Anonymous: the primary identifier's code activates a pending account. Signed in: the code
        sent to the caller's unverified second identifier makes it theirs (first to verify wins)."""
        ident = normalize_identifier(identifier)
        if principal is not None and principal.user.unverified_claim(ident):
            otp = await self.otps.find_for(ident, OtpPurpose.CONFIRM, principal.user.id)
            if otp is None:
                raise InvalidOtp(INVALID_CODE)
            await self._verify_code(otp, code)
            return await self._take_identifier(principal.user, ident, client, activate=False)
        otp = await self._live_otp(ident, OtpPurpose.VERIFY)
        await self._verify_code(otp, code)  # a decoy never matches
        user = await self.users.get(otp.user_id) if otp.user_id else None
        if user is None or not user.can_use(ident) or user.status == UserStatus.SUSPENDED:
            raise InvalidOtp(INVALID_CODE)
        return await self._take_identifier(user, ident, client,
                                           activate=user.status == UserStatus.PENDING_VERIFICATION)

    async def _take_identifier(self, user: User, ident: str, client: ClientInfo, *, activate: bool) -> User:
        """`ident`'s code was verified by `user`: other accounts' unverified claims to it are dropped."""
        dropped = await self.users.drop_claims(ident, winner_id=user.id)
        updated = await self.users.mark_verified(user, ident, self.clock.now(), activate=activate)
        if updated is None:  # activated by a parallel request a moment ago
            updated = await self.users.get(user.id)
            assert updated is not None
        await self.audit.record(AuditAction.VERIFY, user_id=user.id, actor=updated, client=client,
                                channel=identifier_kind(ident), pending_accounts_dropped=len(dropped))
        return updated

    async def resend_verification(self, identifier: str, principal: Principal | None = None, *,
                                  later: Later | None = None) -> Quota:
        ident = normalize_identifier(identifier)
        if principal is not None and principal.user.unverified_claim(ident):
            return (await self._send_otp(principal.user, OtpPurpose.CONFIRM, to=ident))[1]
        user = await self._usable_account(ident)
        if user is not None and user.status == UserStatus.PENDING_VERIFICATION:
            return (await self._send_otp(user, OtpPurpose.VERIFY, to=ident, anonymous=True, later=later))[1]
        # The same limits, headers and stored decoy whether or not the account exists.
        return (await self._store_code(OtpPurpose.VERIFY, ident, None, decoy_hash()))[1]

    async def _usable_account(self, ident: str) -> User | None:
        """The account that may use `ident` (sign in, codes, reset); None for an unverified claim."""
        user = await self.users.get_by_identifier(ident)
        return user if user is not None and user.can_use(ident) else None

    # --- login ------------------------------------------------------------------------

    async def login(self, identifier: str, password: str, client: ClientInfo) -> TokenPair | MfaChallenge:
        user = await self.check_password(identifier, password, client)
        if self.needs_login_otp(user):
            return await self.send_login_code(user, client)
        return await self._open_session(user, client, method="password")

    async def check_password(self, identifier: str, password: str, client: ClientInfo) -> User:
        """The password step every sign-in takes (the API's `/auth/login`, the staff console): failures
        counted and locking, the account able to sign in. Opens no session."""
        ident = normalize_identifier(identifier)
        user = await self._usable_account(ident)
        # Failures count and lock per account, whichever identifier is used; an identifier with no
        # account locks on its own, so it behaves like any single-identifier account.
        subject = _account(user.id) if user else ident
        attempts = await self._begin_attempt(subject)
        if not await self.passwords.verify(password, user.password_hash if user else None):
            await self.audit.record(AuditAction.LOGIN_FAILURE, user_id=user.id if user else None, client=client,
                                    identifier_known=user is not None, failures=attempts)
            await self._after_failure(subject, attempts, user, client)
            raise InvalidCredentials(INVALID_CREDENTIALS)
        assert user is not None
        await self.limiter.clear(f"login_fail:{subject}")
        user.ensure_can_sign_in()
        return user

    async def send_login_code(self, user: User, client: ClientInfo) -> MfaChallenge:
        """The second factor after a right password: a code mailed to the account's primary identifier."""
        token, quota = await self._send_otp(user, OtpPurpose.LOGIN, to=user.primary_identifier)
        await self.audit.record(AuditAction.LOGIN_OTP_SENT, user_id=user.id, actor=user, client=client)
        return MfaChallenge(otp_token=token or "", message="Enter the code we sent to finish signing in.",
                            quota=quota)

    async def _begin_attempt(self, subject: str) -> int:
        """Refuse while locked; count the attempt before the slow password check, so parallel
        guesses can't all slip past the limit (a success clears the count again)."""
        lock_key = f"lock:{subject}"
        locked = await self.limiter.locked_for(lock_key)
        if locked:
            raise AccountLocked(LOCKED, retry_after=locked)
        window, lockout = timedelta(seconds=self.s.login_failure_window_seconds), self.s.login_lockout_seconds
        attempts = await self.limiter.hit(f"login_fail:{subject}", window)
        # Over the limit, or a parallel request locked (and reset the count) since we looked.
        locked = await self.limiter.locked_for(lock_key)
        if attempts > self.s.login_max_failures or locked:
            if not locked:
                await self.limiter.lock(lock_key, timedelta(seconds=lockout))
            raise AccountLocked(LOCKED, retry_after=locked or lockout)
        return attempts

    async def _after_failure(self, subject: str, attempts: int, user: User | None, client: ClientInfo) -> bool:
        """Lock when this failure reaches the limit; True when it did."""
        if attempts != self.s.login_max_failures:
            return False
        lockout = self.s.login_lockout_seconds
        await self.limiter.lock(f"lock:{subject}", timedelta(seconds=lockout))
        await self.limiter.clear(f"login_fail:{subject}")
        await self.audit.record(AuditAction.LOCKOUT, user_id=user.id if user else None, client=client,
                                minutes=lockout // 60)
        return True

    def needs_login_otp(self, user: User) -> bool:
        return self.s.login_otp == "all" or (self.s.login_otp == "staff" and user.is_staff)

    async def start_passwordless(self, identifier: str, *, later: Later | None = None) -> MfaChallenge:
        """Send a login code if the account can sign in; answer the same either way."""
        ident = normalize_identifier(identifier)
        user = await self._usable_account(ident)
        message = "If the account exists, we sent a sign-in code."
        # Staff always pass a password and a code; a mailed code alone must not open a staff session.
        if user is None or user.status != UserStatus.ACTIVE or user.is_staff:
            token, quota = await self._store_code(OtpPurpose.LOGIN, ident, None, decoy_hash())
        else:
            token, quota = await self._send_otp(user, OtpPurpose.LOGIN, to=ident, anonymous=True, later=later)
        return MfaChallenge(otp_token=token or "", message=message, quota=quota)

    async def finish_otp_login(self, otp_token: str, code: str, client: ClientInfo) -> TokenPair:
        return await self._open_session(await self.check_login_code(otp_token, code), client, method="otp")

    async def check_login_code(self, otp_token: str, code: str) -> User:
        """The code step of a sign-in (after a password, or passwordless): the user it signs in, who
        can sign in. Opens no session."""
        otp = await self.otps.find_by_token(hash_token(otp_token))
        if otp is None:
            raise InvalidOtp(INVALID_CODE)
        await self._verify_code(otp, code)  # a decoy never matches
        user = await self.users.get(otp.user_id) if otp.user_id else None
        if user is None or (otp.identifier and not user.can_use(otp.identifier)):
            raise InvalidOtp(INVALID_CODE)
        user.ensure_can_sign_in()
        return user

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
        def issue(typ: str, jti: str) -> str:
            return self.tokens.issue(typ=typ, jti=jti, user_id=user.id, role=user.role.value,
                                     session_id=session_id, now=now)

        return TokenPair(
            access_token=issue("access", self.tokens.new_id()),
            refresh_token=issue("refresh", refresh_jti),
            expires_in=int(self.tokens.access_ttl.total_seconds()), user_id=user.id, role=user.role.value,
        )

    # --- sessions ---------------------------------------------------------------------

    async def authenticate(self, token: str) -> Principal:
        """Resolve a bearer access token to a live user, or refuse."""
        return await self._live(self.tokens.decode(token, typ="access"))

    async def recheck(self, principal: Principal) -> Principal:
        """`authenticate` again for a response that outlives its request (a live stream): refuses once
        the session was revoked (logout, password change) or the account suspended."""
        return await self._live(principal.claims)

    async def _live(self, claims: TokenClaims) -> Principal:
        # One read: sessions live inside the user document.
        user, session = await self.users.get_with_session(claims.sub, claims.sid)
        if user is None:
            raise Unauthenticated("The token is invalid.", code="invalid_token")
        if session is None or session.kind != "api" or not session.is_active(self.clock.now()):
            raise Unauthenticated("This session has ended; sign in again.", code="session_revoked")
        if user.status == UserStatus.SUSPENDED:
            raise AccountSuspended("This account is suspended.")
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
            raise AccountSuspended("This account is suspended.")
        return self._pair(user, session.id, new_jti, now)

    async def logout(self, principal: Principal, client: ClientInfo, refresh_token: str | None = None) -> None:
        if refresh_token and self.tokens.decode(refresh_token, typ="refresh").sid != principal.claims.sid:
            raise InvalidInput("The refresh token belongs to another session.", code="token_mismatch")
        await self.users.revoke_sessions(principal.user.id, "logout", self.clock.now(), only=principal.claims.sid)
        await self.audit.record(AuditAction.LOGOUT, user_id=principal.user.id, actor=principal.user, client=client,
                                session_id=principal.claims.sid)

    # --- passwords --------------------------------------------------------------------

    async def change_password(self, principal: Principal, current: str, new: str, client: ClientInfo) -> None:
        """Wrong current passwords count with failed logins and lock the account the same way. The
        failure that locks also signs out every session: a token that guesses is presumed stolen."""
        user = principal.user
        subject = _account(user.id)
        attempts = await self._begin_attempt(subject)
        if not await self.passwords.verify(current, user.password_hash):
            await self.audit.record(AuditAction.LOGIN_FAILURE, user_id=user.id, actor=user, client=client,
                                    identifier_known=True, failures=attempts, route="change_password")
            if await self._after_failure(subject, attempts, user, client):
                await self.users.revoke_sessions(user.id, "password_guessing", self.clock.now())
                raise AccountLocked(LOCKED, retry_after=self.s.login_lockout_seconds)
            raise InvalidInput("The current password is wrong.", code="invalid_credentials")
        await self.limiter.clear(f"login_fail:{subject}")
        check_password_policy(new, email=user.email, phone=user.phone)
        await self.users.set_password(user.id, await self.passwords.hash(new), self.clock.now())
        revoked = await self.users.revoke_sessions(user.id, "password_change", self.clock.now(),
                                                   keep=principal.claims.sid)
        await self.audit.record(AuditAction.PASSWORD_CHANGE, user_id=user.id, actor=user, client=client,
                                sessions_revoked=revoked)

    async def forgot_password(self, identifier: str, *, later: Later | None = None) -> Quota:
        ident = normalize_identifier(identifier)
        user = await self._usable_account(ident)
        if user is None or user.status == UserStatus.SUSPENDED:
            return (await self._store_code(OtpPurpose.RESET, ident, None, decoy_hash()))[1]
        return (await self._send_otp(user, OtpPurpose.RESET, to=ident, anonymous=True, later=later))[1]

    async def reset_password(self, identifier: str, code: str, new_password: str, client: ClientInfo) -> None:
        ident = normalize_identifier(identifier)
        otp = await self._live_otp(ident, OtpPurpose.RESET)
        # The code first: before it is proven, nothing about the account (its password policy
        # included) may show. Kept until the new password passes, so a weak one can be retried.
        await self._verify_code(otp, code, consume=False)
        user = await self.users.get(otp.user_id) if otp.user_id else None
        if user is None or not user.can_use(ident) or user.status == UserStatus.SUSPENDED:
            raise InvalidOtp(INVALID_CODE)
        check_password_policy(new_password, email=user.email, phone=user.phone)
        if not await self.otps.consume(otp.id):  # used by a parallel request a moment ago
            raise InvalidOtp(INVALID_CODE)
        await self.users.set_password(user.id, await self.passwords.hash(new_password), self.clock.now())
        # The code proves they own the identifier: it counts as verified (and activates a pending account).
        await self.users.drop_claims(ident, winner_id=user.id)
        await self.users.mark_verified(user, ident, self.clock.now(),
                                       activate=user.status == UserStatus.PENDING_VERIFICATION)
        revoked = await self.users.revoke_sessions(user.id, "password_reset", self.clock.now())
        for key in (f"lock:{_account(user.id)}", f"login_fail:{_account(user.id)}", f"lock:{ident}"):
            await self.limiter.clear(key)
        await self.audit.record(AuditAction.PASSWORD_RESET, user_id=user.id, actor=user, client=client,
                                sessions_revoked=revoked)

    # --- one-time codes ---------------------------------------------------------------

    async def _store_code(self, purpose: OtpPurpose, to: str, user_id: str | None,
                          code_hash: str) -> tuple[str | None, Quota]:
        """Apply and record the send limits, then store the code (a decoy's hash, which nothing
        matches, where no account may use `to`: later guesses count tries and expire like real ones).
        Limits are per identifier and purpose, never per account, so an email and a phone of one
        account count apart exactly as two strangers' would (and verifying and then signing in
        within a minute is normal, not abuse)."""
        key, window = f"otp_send:{purpose}:{to}", timedelta(hours=1)
        limit = self.s.otp_max_sends_per_hour
        await self.limiter.check(key, cooldown=timedelta(seconds=self.s.otp_resend_cooldown_seconds),
                                 limit=limit, window=window)
        quota = await self.limiter.record(key, limit=limit, window=window)
        token = secrets.token_urlsafe(32) if purpose == OtpPurpose.LOGIN else None
        now = self.clock.now()
        await self.otps.replace(
            user_id=user_id, purpose=purpose, code_hash=code_hash, max_attempts=self.s.otp_max_attempts,
            expires_at=now + timedelta(seconds=self.s.otp_ttl_seconds), now=now,
            token_hash=hash_token(token) if token else None, identifier=to,
        )
        return token, quota

    async def _send_otp(self, user: User, purpose: OtpPurpose, *, to: str, anonymous: bool = False,
                        later: Later | None = None) -> tuple[str | None, Quota]:
        """Store a fresh hashed code, then deliver it (after the write, so a retry can resend).
        `anonymous`: the caller proved nothing, so a failed delivery must answer like a decoy (200);
        it is logged, and the code can be sent again. `later`: hand the delivery to the caller to run
        after the answer has gone out, so an anonymous caller cannot tell by the answer's timing that
        a real mail (an SMTP round trip) was sent rather than a decoy stored."""
        code = generate_code()
        token, quota = await self._store_code(purpose, to, user.id, hash_code(self._otp_key, user.id, purpose, code))

        async def deliver() -> None:
            try:
                await self.notifier.send_code(to=to, purpose=purpose.value, code=code, name=user.name)
            except DeliveryFailed:
                if not anonymous:
                    raise
                log.warning("code delivery failed on an anonymous route", extra={"purpose": purpose.value})

        if anonymous and later is not None:
            later(deliver)
        else:
            await deliver()
        return token, quota

    async def _live_otp(self, ident: str, purpose: OtpPurpose) -> Otp:
        """The code sent to `ident`, or a decoy in its place: a guess at an identifier that was never
        sent a code (no account, or an active one) is answered as one at a pending account."""
        otp = await self.otps.find_for(ident, purpose)
        if otp is None:
            now = self.clock.now()
            await self.otps.add_decoy_if_absent(
                identifier=ident, purpose=purpose, code_hash=decoy_hash(), max_attempts=self.s.otp_max_attempts,
                expires_at=now + timedelta(seconds=self.s.otp_ttl_seconds), now=now,
            )
            otp = await self.otps.find_for(ident, purpose)
            assert otp is not None
        return otp

    async def _verify_code(self, otp: Otp, code: str, *, consume: bool = True) -> None:
        otp.ensure_usable(self.clock.now())
        claimed = await self.otps.claim_attempt(otp.id, otp.max_attempts)
        if claimed is None:
            raise OtpExhausted("Too many wrong codes; ask for a new one.")
        if not claimed.matches(self._otp_key, code):
            if claimed.tries_left == 0:
                await self.otps.consume(otp.id)  # spent: a new code must be requested
                raise OtpExhausted("Too many wrong codes; ask for a new one.")
            raise InvalidOtp(f"The code is not valid; {claimed.tries_left} tries left.")
        if consume and not await self.otps.consume(otp.id):  # used by a parallel request a moment ago
            raise InvalidOtp(INVALID_CODE)


def _account(user_id: str) -> str:
    """Rate-limit subject of an account (an identifier never starts with `user:`)."""
    return f"user:{user_id}"
