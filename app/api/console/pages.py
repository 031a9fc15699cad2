"""What every console page shares: the templates, the signed-in staff member, CSRF checks, and the
headers a page goes out with."""

from __future__ import annotations

from collections.abc import Awaitable, Mapping
from pathlib import Path
from typing import Annotated, Any
from urllib.parse import urlencode

from fastapi import Depends, Form, Request
from fastapi.responses import HTMLResponse, RedirectResponse, Response
from fastapi.templating import Jinja2Templates
from pydantic import ValidationError

from app.api.deps import ContainerDep
from app.api.errors import status_for
from app.bootstrap import Container
from app.domain.errors import DomainError, Forbidden, Unauthenticated
from app.domain.money import rupees
from app.services.console import ConsoleService, StaffSession

HERE = Path(__file__).parent
templates = Jinja2Templates(directory=str(HERE / "templates"))


templates.env.filters["rupees"] = rupees
COOKIE = "kycflow_console"
PRE_COOKIE = "kycflow_console_signin"  # the sign-in forms' CSRF nonce, before any session exists
PATH = "/console"

# No script at all, styles and images from the service only, forms only back to it, never framed.
CSP = ("default-src 'none'; style-src 'self'; img-src 'self'; form-action 'self'; frame-ancestors 'none'; "
       "base-uri 'none'")
PAGE_HEADERS = {"Content-Security-Policy": CSP, "Cache-Control": "no-store"}

# Why the sign-in page is shown: a fixed sentence per code, so no query string writes on the page.
SIGN_IN_REASONS = {
    "signed_out": "You signed out.",
    "session_revoked": "Your session ended (signed out elsewhere, password changed, or it expired); sign in again.",
    "session_idle": "You were signed out after a while without activity; sign in again.",
    "account_suspended": "This account is suspended.",
    "not_signed_in": "Sign in to continue.",
}


class SignInRequired(Exception):
    def __init__(self, reason: str) -> None:
        self.reason = reason if reason in SIGN_IN_REASONS else "not_signed_in"


class Refused(Exception):
    """A console request refused as a page (never the API's JSON envelope)."""

    def __init__(self, staff: StaffSession | None, status: int, message: str) -> None:
        self.staff, self.status, self.message = staff, status, message


def console_service(request: Request, c: ContainerDep) -> ConsoleService:
    """Built once per container (the app's lifespan), from the services the API uses."""
    built: tuple[Container, ConsoleService] | None = getattr(request.app.state, "console", None)
    if built is None or built[0] is not c:
        built = (c, ConsoleService(settings=c.settings, auth=c.auth, users=c.users_repo, audit=c.audit,
                                   clock=c.clock))
        request.app.state.console = built
    return built[1]


ConsoleDep = Annotated[ConsoleService, Depends(console_service)]


async def _staff(request: Request, console: ConsoleDep) -> StaffSession:
    try:
        return await console.resolve(request.cookies.get(COOKIE))
    except (Unauthenticated, Forbidden) as exc:
        raise SignInRequired("not_signed_in" if COOKIE not in request.cookies else exc.code) from None


StaffDep = Annotated[StaffSession, Depends(_staff)]


def page_number(value: str) -> int:
    """A `page` query value as a number; 0 (refused by the caller) unless it is 1 to 5 ASCII digits: `str.isdigit`
    also takes "²" and other digits `int` refuses."""
    return int(value) if value.isascii() and value.isdigit() and 0 < len(value) < 6 else 0


def may(staff: StaffSession, permission: str) -> None:
    """The permission table the API uses (`GET /roles`)."""
    if not staff.user.can(permission):
        raise Refused(staff, 403, "Your role may not do this; ask an admin if you need it.")


async def _csrf_checked(staff: StaffDep, console: ConsoleDep,
                        csrf_token: Annotated[str | None, Form(max_length=128)] = None) -> StaffSession:
    if not console.csrf_ok(staff, csrf_token):
        raise Refused(staff, 403, "The form has expired or did not come from this console; "
                                  "reload the page and try again.")
    return staff


# State-changing forms take this instead of StaffDep: signed in and the session's token in the form.
CheckedStaffDep = Annotated[StaffSession, Depends(_csrf_checked)]


def render(request: Request, name: str, context: dict[str, Any], status_code: int = 200) -> HTMLResponse:
    response = templates.TemplateResponse(request, name, context, status_code=status_code)
    response.headers.update(PAGE_HEADERS)
    return response


def redirect(url: str) -> RedirectResponse:
    """After a POST, a GET of the page that shows its result (303: the browser does not resend the form)."""
    return RedirectResponse(url, status_code=303, headers={"Cache-Control": "no-store"})


def set_session_cookie(response: Response, value: str, *, secure: bool, max_age: int) -> None:
    response.set_cookie(COOKIE, value, max_age=max_age, path=PATH, httponly=True, samesite="strict", secure=secure)


def clear_session_cookie(response: Response, *, secure: bool) -> None:
    response.delete_cookie(COOKIE, path=PATH, httponly=True, samesite="strict", secure=secure)


def sign_in_url(reason: str) -> str:
    return f"{PATH}/login?{urlencode({'reason': reason})}"


def error_page(request: Request, staff: StaffSession | None, status: int, message: str,
               back: tuple[str, str] | None = None) -> HTMLResponse:
    """`back`: (url, words) of the page to return to; the review queue when not given."""
    return render(request, "error.html", {"staff": staff, "message": message, "status": status,
                                          "back": back or (f"{PATH}/kyc", "Back to the review queue")}, status)


async def attempt(request: Request, staff: StaffSession, work: Awaitable[object], then: str,
                  back: tuple[str, str]) -> Response:
    """Run a service call for a form; its refusal (a domain error) becomes a page that says it in words."""
    try:
        await work
    except DomainError as exc:
        return error_page(request, staff, status_for(exc) or 400, exc.message, back)
    return redirect(then)


def form_problem(exc: ValidationError, names: Mapping[str, str]) -> str:
    """A form's first problem in words, naming the field as the form labels it (no paths or JSON)."""
    error = exc.errors()[0]
    name = names.get(str(error["loc"][0]) if error["loc"] else "", "A field")
    if error["type"] in ("string_too_long", "too_long") and "max_length" in error.get("ctx", {}):
        return f"{name} is too long (at most {error['ctx']['max_length']} characters)."
    if error["type"] in ("string_too_short", "too_short") and "min_length" in error.get("ctx", {}):
        return f"{name} is too short (at least {error['ctx']['min_length']} characters)."
    if error["type"] == "enum":
        return "Choose the reasons from the list."
    if error["type"] == "string_pattern_mismatch":
        return f"{name} has characters or a length it cannot have."
    return f"{name} is not acceptable: {error['msg'].removeprefix('Value error, ')}."
