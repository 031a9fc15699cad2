"""Console sign-in and sign-out: the API's password and mailed-code steps, then a cookie session."""

from __future__ import annotations

import logging
import secrets
from typing import Annotated

from fastapi import APIRouter, Form, Request
from fastapi.responses import HTMLResponse, Response

from app.api.console.pages import (
    PATH,
    PRE_COOKIE,
    SIGN_IN_REASONS,
    CheckedStaffDep,
    ConsoleDep,
    clear_session_cookie,
    redirect,
    render,
    set_session_cookie,
    sign_in_url,
)
from app.api.deps import ClientDep, ContainerDep
from app.api.errors import status_for
from app.bootstrap import Container
from app.domain.audit import ClientInfo
from app.domain.errors import DomainError
from app.domain.rate_limits import RouteGroup
from app.services.auth import MfaChallenge

log = logging.getLogger("kycflow.limits")

router = APIRouter(prefix=PATH, include_in_schema=False)
# Longest a sign-in form field can sensibly be; anything longer is refused before any check runs.
_LIMITS = {"identifier": 254, "password": 256, "code": 12, "otp_token": 128}
_EXPIRED = "The sign-in form expired; please try again."


def _nonce(request: Request) -> str:
    value = request.cookies.get(PRE_COOKIE) or ""
    return value if 20 <= len(value) <= 64 else secrets.token_urlsafe(24)


def _form(request: Request, console: ConsoleDep, name: str, status: int = 200, **context: object) -> HTMLResponse:
    """A sign-in form with its CSRF token, tied to a nonce cookie (kept across tabs and retries)."""
    nonce = _nonce(request)
    response = render(request, name, {"staff": None, "csrf_token": console.pre_token(nonce), **context}, status)
    secure = request.app.state.container.settings.is_production
    response.set_cookie(PRE_COOKIE, nonce, max_age=3600, path=PATH, httponly=True, samesite="strict", secure=secure)
    return response


async def _over_limit(c: Container, client: ClientInfo, group: RouteGroup) -> int | None:
    """The API's per-address limit for the same step (`auth` for the password, `otp` for the code),
    on the same counter: seconds to wait when spent, else None. Fails open, as the API's does."""
    if not c.settings.rate_limits_enabled:
        return None
    try:
        quota = await c.request_limits.hit(f"ip:{client.ip_address}", group)
    except Exception as exc:  # the database is down: the form answers for itself
        log.warning("rate limit not counted", extra={"error": type(exc).__name__})
        return None
    return quota.retry_after if quota.exceeded else None


def _too_many(request: Request, console: ConsoleDep, name: str, wait: int, **context: object) -> HTMLResponse:
    response = _form(request, console, name, 429, error=f"Too many sign-in attempts from your address; try again in "
                                                        f"{wait} seconds.", **context)
    response.headers["Retry-After"] = str(wait)
    return response


def _too_long(**fields: str) -> bool:
    return any(len(value) > _LIMITS[name] for name, value in fields.items())


@router.get("", response_class=HTMLResponse)
async def console_home() -> Response:
    return redirect(f"{PATH}/kyc")


@router.get("/login", response_class=HTMLResponse)
async def sign_in_form(request: Request, console: ConsoleDep, reason: str | None = None) -> HTMLResponse:
    return _form(request, console, "login.html", notice=SIGN_IN_REASONS.get(reason or ""))


@router.post("/login", response_class=HTMLResponse)
async def sign_in(request: Request, console: ConsoleDep, c: ContainerDep, client: ClientDep,
                  identifier: Annotated[str, Form()] = "", password: Annotated[str, Form()] = "",
                  csrf_token: Annotated[str, Form()] = "") -> Response:
    if wait := await _over_limit(c, client, RouteGroup.AUTH):
        return _too_many(request, console, "login.html", wait, identifier=identifier[:254])
    if not console.pre_ok(request.cookies.get(PRE_COOKIE), csrf_token):
        return _form(request, console, "login.html", 403, error=_EXPIRED, identifier=identifier[:254])
    if not identifier or not password or _too_long(identifier=identifier, password=password):
        return _form(request, console, "login.html", 400, error="Enter your email (or phone) and your password.",
                     identifier=identifier[:254])
    try:
        result = await console.sign_in(identifier, password, client)
    except DomainError as exc:
        return _form(request, console, "login.html", status_for(exc) or 400, error=exc.message,
                     identifier=identifier)
    if isinstance(result, MfaChallenge):
        return _form(request, console, "code.html", otp_token=result.otp_token, notice=result.message)
    return _signed_in(c, result)


@router.post("/login/code", response_class=HTMLResponse)
async def sign_in_code(request: Request, console: ConsoleDep, c: ContainerDep, client: ClientDep,
                       otp_token: Annotated[str, Form()] = "", code: Annotated[str, Form()] = "",
                       csrf_token: Annotated[str, Form()] = "") -> Response:
    if wait := await _over_limit(c, client, RouteGroup.OTP):
        return _too_many(request, console, "code.html", wait, otp_token=otp_token[:128])
    if _too_long(otp_token=otp_token, code=code):
        return _form(request, console, "login.html", 400, error=_EXPIRED)
    if not console.pre_ok(request.cookies.get(PRE_COOKIE), csrf_token):
        return _form(request, console, "code.html", 403, error=_EXPIRED, otp_token=otp_token)
    try:
        cookie = await console.finish(otp_token, code.strip(), client)
    except DomainError as exc:
        return _form(request, console, "code.html", status_for(exc) or 400, error=exc.message, otp_token=otp_token)
    return _signed_in(c, cookie)


def _signed_in(c: ContainerDep, cookie: str) -> Response:
    response = redirect(f"{PATH}/kyc")
    set_session_cookie(response, cookie, secure=c.settings.is_production,
                       max_age=c.settings.console_session_max_seconds)
    response.delete_cookie(PRE_COOKIE, path=PATH)
    return response


@router.post("/logout", response_class=HTMLResponse)
async def sign_out(staff: CheckedStaffDep, console: ConsoleDep, c: ContainerDep, client: ClientDep) -> Response:
    await console.sign_out(staff, client)
    response = redirect(sign_in_url("signed_out"))
    clear_session_cookie(response, secure=c.settings.is_production)
    return response
