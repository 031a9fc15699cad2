"""Console admin pages: the dashboard, users (find, view, suspend, reactivate) and staff creation.
Each form calls the service method its API route calls, under the permission that route requires."""

from __future__ import annotations

from typing import Annotated, Any
from urllib.parse import quote

from fastapi import APIRouter, Form, Request
from fastapi.responses import HTMLResponse, Response
from pydantic import ValidationError

from app.api.console.pages import (
    PATH,
    CheckedStaffDep,
    StaffDep,
    attempt,
    error_page,
    form_problem,
    may,
    page_number,
    render,
)
from app.api.deps import ClientDep, ContainerDep
from app.api.schemas.admin import CreateStaffRequest
from app.domain.errors import DomainError
from app.domain.pages import PageRequest
from app.domain.users import Role, UserStatus

router = APIRouter(prefix=f"{PATH}/admin", include_in_schema=False)
USERS = f"{PATH}/admin/users"
DONE = {"suspended": "The account is suspended and signed out everywhere.",
        "active": "The account is active again.",
        "staff": "The staff account is created; they sign in with that email and password."}
_STAFF_FIELDS = {"email": "The email", "password": "The password", "name": "The name", "role": "The role"}


def trend_chart(days: list[dict[str, Any]], height: int = 160, bar: int = 14, gap: int = 10) -> dict[str, Any]:
    """Bars for each day's applications and disbursals, as SVG geometry the template draws (no script)."""
    top = max([max(d["applications"], d["disbursals"]) for d in days] + [1])
    slot = 2 * bar + gap
    bars = []
    for n, day in enumerate(days):
        for k, name in enumerate(("applications", "disbursals")):
            h = round(day[name] / top * height)
            bars.append({"x": 40 + n * slot + k * bar, "y": 10 + height - h, "h": h, "kind": name,
                         "title": f"{day['date']}: {day[name]} {name}"})
    labels = [{"x": 40 + n * slot, "text": d["date"][5:]} for n, d in enumerate(days) if n % 5 == 0]
    return {"width": 40 + len(days) * slot + 10, "height": height + 40, "base": 10 + height, "top": top,
            "bars": bars, "labels": labels, "bar": bar}


@router.get("", response_class=HTMLResponse)
async def dashboard(request: Request, staff: StaffDep, c: ContainerDep) -> Response:
    """What `GET /admin/stats` and `GET /admin/statistics` count, on one page."""
    may(staff, "stats:read")
    kyc, book = await c.kyc_review.stats(), await c.loans.statistics()
    return render(request, "admin_dashboard.html", {"staff": staff, "kyc": kyc, "book": book,
                                                   "chart": trend_chart(book["daily_trend"])})


@router.get("/users", response_class=HTMLResponse)
async def users(request: Request, staff: StaffDep, c: ContainerDep, q: str = "", page: str = "1",
                done: str = "") -> Response:
    """Find a user by name, email or phone (the API's `GET /admin/users?q=`); staff creation below."""
    may(staff, "users:manage")
    number = page_number(page)
    if number < 1 or len(q) > 100:
        return error_page(request, staff, 400, "Search with at most 100 characters.", (USERS, "Back to users"))
    found = await c.admin.list_users(role=None, kyc_status=None, q=q.strip() or None, page=PageRequest(number, 20))
    return render(request, "admin_users.html", {
        "staff": staff, "users": found.items, "total": found.total, "q": q, "page": number,
        "pages": max((found.total + 19) // 20, 1), "notice": DONE.get(done), "roles": ("auditor", "admin"),
        "can_create": staff.user.can("staff:create"), "form": {}})


@router.get("/users/{user_id}", response_class=HTMLResponse)
async def user_page(user_id: str, request: Request, staff: StaffDep, c: ContainerDep, done: str = "") -> Response:
    """One user, their KYC cases and loans (what `GET /admin/users/{id}` answers)."""
    may(staff, "users:manage")
    try:
        user = await c.admin.get_user(user_id)
    except DomainError as exc:
        return error_page(request, staff, 404, exc.message, (USERS, "Back to users"))
    return render(request, "admin_user.html", {
        "staff": staff, "user": user, "cases": await c.kyc_review.cases_of(user.id), "loans": await c.loans.loans_of(user.id),
        "notice": DONE.get(done), "is_me": user.id == staff.user.id})


@router.post("/users/{user_id}/status", response_class=HTMLResponse)
async def set_status(user_id: str, request: Request, staff: CheckedStaffDep, c: ContainerDep, client: ClientDep,
                     status: Annotated[str, Form()] = "") -> Response:
    """Suspend (signs them out everywhere at once) or reactivate, as `PUT /admin/users/{id}/status`."""
    may(staff, "users:manage")
    back = (f"{USERS}/{user_id}", "Back to the user")
    if status not in (UserStatus.ACTIVE.value, UserStatus.SUSPENDED.value):
        return error_page(request, staff, 400, "Choose suspend or reactivate.", back)
    return await attempt(request, staff, c.admin.set_status(user_id, UserStatus(status), staff.user, client),
                         f"{USERS}/{user_id}?done={status}", back)


@router.post("/staff", response_class=HTMLResponse)
async def create_staff(request: Request, staff: CheckedStaffDep, c: ContainerDep, client: ClientDep,
                       email: Annotated[str, Form()] = "", name: Annotated[str, Form()] = "",
                       password: Annotated[str, Form()] = "", role: Annotated[str, Form()] = "") -> Response:
    """An active auditor or admin, as `POST /admin/users`, with the API's rules for each field."""
    may(staff, "staff:create")
    back = (USERS, "Back to users")
    try:
        body = CreateStaffRequest.model_validate({"email": email, "name": name, "password": password, "role": role})
    except ValidationError as exc:
        return error_page(request, staff, 400, form_problem(exc, _STAFF_FIELDS), back)
    return await attempt(request, staff, c.admin.create_user(email=body.email, password=body.password, name=body.name,
                                                             role=Role(body.role), actor=staff.user, client=client),
                         f"{USERS}?done=staff&q={quote(body.email.strip().lower())}", back)
