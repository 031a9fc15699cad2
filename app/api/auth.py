"""Auth routes: HTTP only; every rule lives in AuthService."""

from __future__ import annotations

from fastapi import APIRouter, BackgroundTasks, Response, status

from app.api.deps import AuthServiceDep, ClientDep, OptionalPrincipalDep, PrincipalDep
from app.api.routing import ExactJsonRoute
from app.api.schemas.auth import (
    ChangePasswordRequest,
    IdentifierRequest,
    LoginRequest,
    LoginVerifyRequest,
    LogoutRequest,
    MfaRequiredResponse,
    OtpTokenResponse,
    RefreshRequest,
    RegisterRequest,
    RegisterResponse,
    ResetPasswordRequest,
    TokenPairResponse,
    VerifyOtpRequest,
    VerifyOtpResponse,
    VerifyTokenResponse,
)
from app.api.schemas.common import Message, error_responses
from app.domain import errors as e
from app.services.auth import MfaChallenge
from app.services.rate_limits import Quota

router = APIRouter(prefix="/auth", tags=["Auth"], route_class=ExactJsonRoute)


def _quota(response: Response, quota: Quota | None) -> None:
    """X-RateLimit-* on the routes that send codes (API.md conventions)."""
    if quota is not None:
        response.headers["X-RateLimit-Limit"] = str(quota.limit)
        response.headers["X-RateLimit-Remaining"] = str(quota.remaining)
        response.headers["X-RateLimit-Reset"] = str(int(quota.reset_at.timestamp()))


@router.post("/register", status_code=status.HTTP_201_CREATED, response_model=RegisterResponse,
             summary="Register a customer",
             responses=error_responses(e.InvalidIdentifier, e.WeakPassword, e.IdentifierTaken, 422, 429, 502))
async def register(body: RegisterRequest, auth: AuthServiceDep, client: ClientDep) -> RegisterResponse:
    """Create a customer account and send a verification code by email (or SMS)."""
    user = await auth.register(name=body.name, password=body.password, email=body.email, phone=body.phone,
                               client=client)
    return RegisterResponse.of(user, message="Account created. Enter the code we sent to verify it.")


@router.post("/verify-otp", response_model=VerifyOtpResponse, summary="Verify a new account",
             responses=error_responses(e.InvalidOtp, e.OtpExpired, e.OtpExhausted, e.InvalidToken, e.IdentifierTaken,
                                       422))
async def verify_otp(body: VerifyOtpRequest, auth: AuthServiceDep, client: ClientDep,
                     principal: OptionalPrincipalDep) -> VerifyOtpResponse:
    """Activate an account with the code sent at registration. Signed in (bearer), verify your second
    identifier (the phone given beside an email) with the code `/auth/resend-otp` sent to it: only
    then can it be used to sign in or reset the password."""
    user = await auth.verify_account(body.identifier, body.otp, client, principal)
    if principal is not None and principal.user.id == user.id:
        return VerifyOtpResponse(message="Verified: you can sign in with it now.", user_id=user.id)
    return VerifyOtpResponse(message="Account verified. You can sign in now.", user_id=user.id)


@router.post("/resend-otp", response_model=Message, summary="Resend the verification code",
             responses=error_responses(e.InvalidIdentifier, e.InvalidToken, 422, 429, 502,
                                       message="If the account is awaiting verification, a new code has been sent."))
async def resend_otp(body: IdentifierRequest, auth: AuthServiceDep, response: Response,
                     principal: OptionalPrincipalDep, background: BackgroundTasks) -> Message:
    """Send a fresh verification code (once a minute, five times an hour). Signed in (bearer) with your
    unverified second identifier: sends its code, to use with `/auth/verify-otp`."""
    _quota(response, await auth.resend_verification(body.identifier, principal, later=background.add_task))
    return Message(message="If the account is awaiting verification, a new code has been sent.")


@router.post("/login", response_model=TokenPairResponse | MfaRequiredResponse, summary="Sign in with a password",
             responses=error_responses(e.InvalidIdentifier, e.InvalidCredentials, e.AccountLocked,
                                       e.AccountSuspended, 422, 429, 502))
async def login(body: LoginRequest, auth: AuthServiceDep, client: ClientDep,
                response: Response) -> TokenPairResponse | MfaRequiredResponse:
    """Returns a token pair, or `mfa_required` with an `otp_token` when a code must follow."""
    result = await auth.login(body.identifier, body.password, client)
    if isinstance(result, MfaChallenge):
        _quota(response, result.quota)
        return MfaRequiredResponse.of(result)
    return TokenPairResponse.of(result)


@router.post("/login/otp", response_model=OtpTokenResponse, summary="Passwordless sign-in: send a code",
             responses=error_responses(e.InvalidIdentifier, 422, 429, 502))
async def login_otp(body: IdentifierRequest, auth: AuthServiceDep, response: Response,
                    background: BackgroundTasks) -> OtpTokenResponse:
    """Send a sign-in code; the answer is the same whether or not the account exists."""
    challenge = await auth.start_passwordless(body.identifier, later=background.add_task)
    _quota(response, challenge.quota)
    return OtpTokenResponse.of(challenge)


@router.post("/login/verify-otp", response_model=TokenPairResponse, summary="Finish sign-in with the code",
             responses=error_responses(e.InvalidOtp, e.OtpExpired, e.AccountLocked, 422))
async def login_verify_otp(body: LoginVerifyRequest, auth: AuthServiceDep, client: ClientDep) -> TokenPairResponse:
    """Exchange the `otp_token` and the code for a token pair."""
    return TokenPairResponse.of(await auth.finish_otp_login(body.otp_token, body.otp, client))


@router.post("/refresh", response_model=TokenPairResponse, summary="Rotate the refresh token",
             responses=error_responses(e.InvalidToken, e.SessionRevoked, e.AccountSuspended, 422))
async def refresh(body: RefreshRequest, auth: AuthServiceDep, client: ClientDep) -> TokenPairResponse:
    """The old refresh token is spent; presenting it again revokes the whole session."""
    return TokenPairResponse.of(await auth.refresh(body.refresh_token, client))


@router.post("/logout", response_model=Message, summary="Sign out",
             responses=error_responses(401, e.InvalidToken, e.AccountSuspended, 422, message="Signed out."))
async def logout(principal: PrincipalDep, auth: AuthServiceDep, client: ClientDep,
                 body: LogoutRequest | None = None) -> Message:
    """End this session: its access and refresh tokens stop working at once. A `refresh_token`, if
    sent, must belong to the same session."""
    await auth.logout(principal, client, body.refresh_token if body else None)
    return Message(message="Signed out.")


@router.get("/verify-token", response_model=VerifyTokenResponse, summary="Check an access token",
            responses=error_responses(401, e.InvalidToken, e.SessionRevoked, e.AccountSuspended))
async def verify_token(principal: PrincipalDep) -> VerifyTokenResponse:
    """Valid tokens answer with their user, role and expiry."""
    return VerifyTokenResponse(user_id=principal.user.id, role=principal.user.role.value,
                               expires_at=principal.claims.exp)


@router.post("/change-password", response_model=Message, summary="Change password",
             responses=error_responses((400, "invalid_credentials", "The current password is wrong."),
                                       e.WeakPassword, 401, e.AccountSuspended, e.AccountLocked, 422, message="Password changed. Other sessions were signed out."))
async def change_password(body: ChangePasswordRequest, principal: PrincipalDep, auth: AuthServiceDep,
                          client: ClientDep) -> Message:
    """Sets a new password; every other session is signed out. Wrong current passwords count with failed
    logins: the one that locks the account answers 403 `account_locked` and signs out every session."""
    await auth.change_password(principal, body.current_password, body.new_password, client)
    return Message(message="Password changed. Other sessions were signed out.")


@router.post("/password/forgot", response_model=Message, summary="Ask for a password reset code",
             responses=error_responses(e.InvalidIdentifier, 422, 429, 502, message="If the account exists, we sent a reset code."))
async def forgot_password(body: IdentifierRequest, auth: AuthServiceDep, response: Response,
                          background: BackgroundTasks) -> Message:
    """Always answers 200, whether or not the account exists (the code is mailed after the answer)."""
    _quota(response, await auth.forgot_password(body.identifier, later=background.add_task))
    return Message(message="If the account exists, we sent a reset code.")


@router.post("/password/reset", response_model=Message, summary="Reset password with a code",
             responses=error_responses(e.InvalidOtp, e.WeakPassword, 422, message="Password reset. Sign in with the new password."))
async def reset_password(body: ResetPasswordRequest, auth: AuthServiceDep, client: ClientDep) -> Message:
    """Sets a new password with the emailed code; every session is signed out."""
    await auth.reset_password(body.identifier, body.otp, body.new_password, client)
    return Message(message="Password reset. Sign in with the new password.")
