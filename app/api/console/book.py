"""Console admin pages for the loan book, failed jobs and webhook deliveries. Each form calls the
service method its API route calls (`/admin/loans/...`, `/admin/jobs/...`, `/admin/webhooks/...`),
with the API's request models, under the permission that route requires."""

from __future__ import annotations

from collections.abc import Awaitable
from typing import Annotated
from urllib.parse import urlencode

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
from app.api.schemas.loans import DisburseIn, RejectLoanIn
from app.domain.delinquency import LoanClass
from app.domain.errors import DomainError
from app.domain.jobs import JobStatus
from app.domain.loans import LoanStatus
from app.domain.pages import PageRequest

router = APIRouter(prefix=f"{PATH}/admin", include_in_schema=False)
LOANS, JOBS, HOOKS = f"{PATH}/admin/loans", f"{PATH}/admin/jobs", f"{PATH}/admin/webhooks"
PAGE_SIZE = 20
DONE = {"approved": "The loan is approved; the customer has been told.",
        "rejected": "The application is rejected; the customer has been told the reason.",
        "disbursed": "The loan is disbursed; its due dates run from today.",
        "closed": "The pre-closure is confirmed and the loan closed.",
        "retried": "The job is queued again with fresh attempts.",
        "redelivered": "The event is queued for delivery again; its tries appear below."}
_FIELDS = {"reason": "The reason", "payout_reference": "The payout reference"}


def _pages(total: int) -> int:
    return max((total + PAGE_SIZE - 1) // PAGE_SIZE, 1)


@router.get("/loans", response_class=HTMLResponse)
async def loans(request: Request, staff: StaffDep, c: ContainerDep, status: str = "APPLIED", page: str = "1",
                done: str = "", loan_class: str = "") -> Response:
    """The loan book by status and RBI class (`GET /admin/loans?status=&loan_class=`), each row with what its
    status allows; a running loan with its class, days past due and what is overdue."""
    may(staff, "loans:manage")
    number = page_number(page)
    if number < 1 or (status and status not in LoanStatus.__members__) or (
            loan_class and loan_class not in LoanClass.__members__):
        return error_page(request, staff, 400, "That status or class is not one the loan book has.",
                          (LOANS, "Back to loans"))
    found = await c.loans.search(status=status or None, product_id=None, user_id=None, loan_class=loan_class or None,
                                 page=PageRequest(number, PAGE_SIZE))
    names = await c.users_repo.names(list({loan.user_id for loan in found.items}))  # one read for the page
    return render(request, "admin_loans.html", {
        "staff": staff, "loans": found.items, "names": names,
        "total": found.total, "status": status, "statuses": list(LoanStatus),
        "loan_class": loan_class, "classes": list(LoanClass), "today": c.clock.now().date(),
        "page": number, "pages": _pages(found.total), "notice": DONE.get(done),
        "can_disburse": staff.user.can("loans:disburse")})


@router.post("/loans/{loan_id}/{action}", response_class=HTMLResponse)
async def loan_action(loan_id: str, action: str, request: Request, staff: CheckedStaffDep, c: ContainerDep,
                      client: ClientDep, reason: Annotated[str, Form()] = "",
                      payout_reference: Annotated[str, Form()] = "", status: Annotated[str, Form()] = "",
                      loan_class: Annotated[str, Form()] = "") -> Response:
    """approve, reject (with a reason the customer is told), disburse (with the bank's payout reference,
    or one generated when left empty) and confirm (a requested pre-closure)."""
    may(staff, "loans:disburse" if action == "disburse" else "loans:manage")
    kept = {"status": status if status in LoanStatus.__members__ else ""}  # back to the page it came from
    if loan_class in LoanClass.__members__:
        kept["loan_class"] = loan_class
    listed = f"{LOANS}?{urlencode(kept)}" if any(kept.values()) else LOANS
    back = (listed, "Back to the loan book")
    work: Awaitable[object]
    try:
        if action == "approve":
            work, done = c.loans.approve(staff.user, loan_id, client), "approved"
        elif action == "reject":
            body = RejectLoanIn.model_validate({"reason": reason})
            work, done = c.loans.reject(staff.user, loan_id, body.reason, client), "rejected"
        elif action == "disburse":
            paid = DisburseIn.model_validate({"payout_reference": payout_reference.strip() or None})
            work, done = c.loans.disburse(staff.user, loan_id, paid.payout_reference, client), "disbursed"
        elif action == "confirm":
            work, done = c.loans.confirm_preclosure(staff.user, loan_id, client), "closed"
        else:
            return error_page(request, staff, 404, "There is no such loan action.", back)
    except ValidationError as exc:
        return error_page(request, staff, 400, form_problem(exc, _FIELDS), back)
    return await attempt(request, staff, work, f"{listed}{'&' if '?' in listed else '?'}done={done}", back)


@router.get("/jobs", response_class=HTMLResponse)
async def jobs(request: Request, staff: StaffDep, c: ContainerDep, client: ClientDep, status: str = "failed",
               page: str = "1", done: str = "") -> Response:
    """Background jobs by status, failed first (`GET /admin/jobs`); a failed one can be retried."""
    may(staff, "jobs:manage")
    number = page_number(page)
    if number < 1 or (status and status not in {s.value for s in JobStatus}):
        return error_page(request, staff, 400, "That status is not one a job has.", (JOBS, "Back to jobs"))
    found = await c.jobs.list(status=JobStatus(status) if status else None, page=PageRequest(number, PAGE_SIZE),
                              actor=staff.user, client=client)
    return render(request, "admin_jobs.html", {
        "staff": staff, "jobs": found.items, "total": found.total, "status": status, "statuses": list(JobStatus),
        "page": number, "pages": _pages(found.total), "notice": DONE.get(done)})


@router.post("/jobs/{job_id}/retry", response_class=HTMLResponse)
async def retry_job(job_id: str, request: Request, staff: CheckedStaffDep, c: ContainerDep,
                    client: ClientDep) -> Response:
    may(staff, "jobs:manage")
    return await attempt(request, staff, c.jobs.retry(job_id, actor=staff.user, client=client),
                         f"{JOBS}?done=retried", (JOBS, "Back to jobs"))


@router.get("/webhooks", response_class=HTMLResponse)
async def webhooks(request: Request, staff: StaffDep, c: ContainerDep, page: str = "1") -> Response:
    """The endpoints, newest first, disabled ones included (`GET /admin/webhooks`)."""
    may(staff, "webhooks:manage")
    number = page_number(page)
    if number < 1:
        return error_page(request, staff, 400, "There is no such page.", (HOOKS, "Back to webhooks"))
    found = await c.webhooks.list_endpoints(page=PageRequest(number, PAGE_SIZE))
    return render(request, "admin_webhooks.html", {"staff": staff, "endpoints": found.items, "total": found.total,
                                                   "page": number, "pages": _pages(found.total)})


@router.get("/webhooks/{webhook_id}", response_class=HTMLResponse)
async def webhook(webhook_id: str, request: Request, staff: StaffDep, c: ContainerDep, page: str = "1",
                  done: str = "") -> Response:
    """One endpoint and its recent delivery attempts, newest first, each with a redeliver button."""
    may(staff, "webhooks:manage")
    number = page_number(page) or 1
    try:
        endpoint = await c.webhooks.get(webhook_id)
        found = await c.webhooks.list_attempts(endpoint.id, page=PageRequest(number, PAGE_SIZE))
    except DomainError as exc:
        return error_page(request, staff, 404, exc.message, (HOOKS, "Back to webhooks"))
    return render(request, "admin_webhook.html", {
        "staff": staff, "endpoint": endpoint, "attempts": found.items, "total": found.total, "page": number,
        "pages": _pages(found.total), "notice": DONE.get(done)})


@router.post("/webhooks/{webhook_id}/attempts/{attempt_id}/redeliver", response_class=HTMLResponse)
async def redeliver(webhook_id: str, attempt_id: str, request: Request, staff: CheckedStaffDep, c: ContainerDep,
                    client: ClientDep) -> Response:
    may(staff, "webhooks:manage")
    here = f"{HOOKS}/{webhook_id}"
    return await attempt(request, staff, c.webhooks.redeliver(staff.user, webhook_id, attempt_id, client),
                         f"{here}?done=redelivered", (here, "Back to the endpoint"))
