"""Grievance routes: a borrower raises and follows grievances about a loan; staff work the queue."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Query, status

from app.api.deps import ClientDep, ClockDep, GrievanceServiceDep, allow
from app.api.routing import ExactJsonRoute
from app.api.schemas.common import Page, PageNo, PageSize, error_responses
from app.api.schemas.grievances import GrievanceIn, GrievanceOut, ReplyIn
from app.domain.errors import ConcurrentChange
from app.domain.grievances import GrievanceClosed, GrievanceNotFound, GrievanceStatus
from app.domain.loans import LoanNotFound
from app.domain.pages import PageRequest
from app.services.auth import Principal

router = APIRouter(tags=["Grievances"], route_class=ExactJsonRoute)
Grievances = GrievanceServiceDep
Borrower = Annotated[Principal, allow("loans:apply")]
OwnReader = Annotated[Principal, allow("loans:read_own")]
QueueReader = Annotated[Principal, allow("loans:read_any")]
Handler = Annotated[Principal, allow("loans:manage")]


@router.post("/loans/my-loans/{loan_id}/grievances", status_code=status.HTTP_201_CREATED,
             response_model=GrievanceOut, summary="Raise a grievance about my loan",
             responses=error_responses(401, 403, LoanNotFound, 422))
async def raise_grievance(loan_id: str, body: GrievanceIn, principal: Borrower, grievances: Grievances,
                          clock: ClockDep, client: ClientDep) -> GrievanceOut:
    """Registered with a 30-day clock (`due_at`) and acknowledged by mail; anyone else's loan is 404."""
    found = await grievances.raise_(principal.user, loan_id.lower(), body.category, body.text, client)
    return GrievanceOut.at(found, clock.now(), grievances.officer)


@router.get("/loans/my-loans/{loan_id}/grievances", response_model=Page[GrievanceOut],
            summary="My grievances about a loan", responses=error_responses(401, 403, LoanNotFound, 422))
async def loan_grievances(loan_id: str, principal: OwnReader, grievances: Grievances, clock: ClockDep,
                          page: PageNo = 1, page_size: PageSize = 20) -> Page[GrievanceOut]:
    """Newest first, with status and replies; unresolved past 30 days: `escalation` names the RBI Ombudsman."""
    found = await grievances.of_loan(principal.user, loan_id.lower(), PageRequest(page, page_size))
    now = clock.now()
    return Page.of(found, lambda g: GrievanceOut.at(g, now, grievances.officer))


@router.get("/admin/grievances", response_model=Page[GrievanceOut], summary="The grievance queue",
            responses=error_responses(401, 403, 422))
async def grievance_queue(_: QueueReader, grievances: Grievances, clock: ClockDep, page: PageNo = 1, page_size: PageSize = 20,
                status: Annotated[GrievanceStatus | None, Query(
                    description="Only this status; unresolved (OPEN and RESPONDED) when absent")] = None,
                ) -> Page[GrievanceOut]:
    """Oldest first (the nearest to its 30 days on top), with days open and the due date."""
    found = await grievances.queue(status, PageRequest(page, page_size))
    now = clock.now()
    return Page.of(found, lambda g: GrievanceOut.at(g, now, grievances.officer))


_REPLY_ERRORS = error_responses(401, 403, GrievanceNotFound, GrievanceClosed, ConcurrentChange, 422)


@router.post("/admin/grievances/{grievance_id}/responses", response_model=GrievanceOut,
             summary="Reply to a grievance", responses=_REPLY_ERRORS)
async def respond_to_grievance(grievance_id: str, body: ReplyIn, staff: Handler, grievances: Grievances, clock: ClockDep,
                  client: ClientDep) -> GrievanceOut:
    """Mailed to the borrower; the grievance is `RESPONDED` and stays unresolved until closed."""
    found = await grievances.reply(staff.user, grievance_id, body.message, client, close=False)
    return GrievanceOut.at(found, clock.now(), grievances.officer)


@router.post("/admin/grievances/{grievance_id}/close", response_model=GrievanceOut,
             summary="Close a grievance", responses=_REPLY_ERRORS)
async def close_grievance(grievance_id: str, body: ReplyIn, staff: Handler, grievances: Grievances, clock: ClockDep,
                client: ClientDep) -> GrievanceOut:
    """Resolved, with the resolution mailed to the borrower; 409 when already closed."""
    found = await grievances.reply(staff.user, grievance_id, body.message, client, close=True)
    return GrievanceOut.at(found, clock.now(), grievances.officer)

