"""Console KYC pages: the review queue, a case with its images and checks, claims and decisions.
Each calls the service method the API route calls, so both apply the same rules."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Annotated, Any

from fastapi import APIRouter, Form, Request
from fastapi.responses import HTMLResponse, Response
from pydantic import ValidationError

from app.api.console import views
from app.api.console.pages import (
    PATH,
    CheckedStaffDep,
    StaffDep,
    error_page,
    form_problem,
    may,
    page_number,
    redirect,
    render,
)
from app.api.deps import ClientDep, ContainerDep
from app.api.errors import status_for
from app.api.kyc import FILE_CSP
from app.api.model_routes import RUNS_MODELS
from app.api.schemas.kyc import ApproveIn, RejectIn, ResubmissionIn
from app.domain.audit import ClientInfo
from app.domain.documents import DocumentType
from app.domain.errors import DomainError, TooManyRequests
from app.domain.kyc import CaseStatus, ChecksState
from app.domain.pages import PageRequest
from app.services.console import StaffSession
from app.services.kyc.review import DecisionInput

router = APIRouter(prefix=PATH, include_in_schema=False)
PAGE_SIZE = 20
RISKS = ("High", "Medium", "Low")
DOCUMENT_TYPES = [(d.value, views.DOCUMENT_NAMES[d.value]) for d in DocumentType if d != DocumentType.GENERIC]
DONE_NOTICES = {"approved": "Case approved; the customer has been told.",
                "rejected": "Case rejected; the customer has been told the reasons and your message.",
                "released": "You released the case; another auditor can take it.",
                "first_approval": "Your approval is recorded; a second auditor must approve this High-risk case "
                                  "before it is decided.",
                "sent_back": "Case sent back; the customer has been told what to redo and your message."}


@router.get("/kyc", response_class=HTMLResponse)
async def queue(request: Request, staff: StaffDep, c: ContainerDep, page: str = "1", risk_level: str = "",
                document_type: str = "", sort: str = "oldest", done: str = "") -> Response:
    """The waiting cases, filtered and sorted as `GET /kyc/pending` offers."""
    may(staff, "kyc:read_any")
    number = page_number(page)
    if (number < 1 or (risk_level and risk_level not in RISKS) or sort not in ("oldest", "risk")
            or (document_type and document_type not in dict(DOCUMENT_TYPES))):
        return error_page(request, staff, 400, "That filter is not one the queue offers; use the form above it.")
    cases = await c.kyc_review.pending(risk_level=risk_level or None, document_type=document_type or None,
                                       by_risk=sort == "risk", page=PageRequest(number, PAGE_SIZE))
    now = c.clock.now()
    pages = max((cases.total + PAGE_SIZE - 1) // PAGE_SIZE, 1)
    return render(request, "queue.html", {
        "staff": staff, "rows": [views.queue_row(case, now, staff.user.id) for case in cases.items],
        "total": cases.total, "page": number, "pages": pages, "risk_level": risk_level, "sort": sort,
        "document_type": document_type, "risks": RISKS, "document_types": DOCUMENT_TYPES,
        "notice": DONE_NOTICES.get(done)})


async def _case_page(request: Request, staff: StaffSession, c: ContainerDep, client: ClientInfo, kyc_id: str,
                     *, status: int = 200, error: str | None = None, form: Mapping[str, object] | None = None) -> Response:
    try:
        case = await c.kyc_review.get_case(kyc_id, staff.user, client)  # the view is audit-logged, as the API's
    except DomainError as exc:
        return error_page(request, staff, status_for(exc) or 400, exc.message)
    user = await c.users_repo.get(case.user_id)
    entries = (await c.audit.search(user_id=case.user_id, page=PageRequest(1, 100))).items
    names = {case.user_id: "the customer", staff.user.id: "you", "system": "the service"}
    if case.claim:
        names.setdefault(case.claim.by, case.claim.by_name)
    now = c.clock.now()
    claim = case.claim if case.claim is not None and now < case.claim.until else None
    files = [(views.document_label(d), f"{PATH}/kyc/{case.id}/files/{d.file_id}") for d in case.documents]
    if case.selfie:
        files.append(("Selfie", f"{PATH}/kyc/{case.id}/files/{case.selfie.file_id}"))
    decidable = (case.status == CaseStatus.SUBMITTED and case.checks_state == ChecksState.DONE
                 and case.user_id != staff.user.id and staff.user.can("kyc:review"))
    return render(request, "case.html", {
        "staff": staff, "case": case, "files": files, "checks": views.check_rows(case, c.settings, await c.kyc_review.duplicates(case)),
        "documents": views.document_views(case, user), "history": views.history(case, entries, names),
        "claim": claim, "claimed_by_me": claim is not None and claim.by == staff.user.id,
        "held_by_other": claim is not None and claim.by != staff.user.id, "decidable": decidable,
        "can_review": staff.user.can("kyc:review"), "reasons": views.REASONS, "error": error, "form": form or {},
        "waiting": views.waiting(case.submitted_at, now), "profile_dob": (user.profile or {}).get("dob") if user else None,
        "redo": [(f"{d.type}:{d.side or ''}", views.document_label(d)) for d in case.documents]
        + [("selfie", "Selfie"), ("liveness", "Liveness (a new selfie with a passed challenge)")],
    }, status)


@router.get("/kyc/{kyc_id}", response_class=HTMLResponse)
async def case_page(kyc_id: str, request: Request, staff: StaffDep, c: ContainerDep, client: ClientDep) -> Response:
    may(staff, "kyc:read_any")
    return await _case_page(request, staff, c, client, kyc_id)


@router.get("/kyc/{kyc_id}/files/{file_id}", dependencies=[RUNS_MODELS])
async def case_file(kyc_id: str, file_id: str, request: Request, staff: StaffDep, c: ContainerDep, client: ClientDep) -> Response:
    """The API's file route for the console's <img> tags: the same service call, audit entry and sandbox.
    A PDF is rendered by the models, so the view takes one of the staff member's in-flight slots, the
    same ones their API calls take (the request limits cover /api/v1 only, and know no cookie)."""
    may(staff, "kyc:read_any")
    caller = f"user:{staff.user.id}"
    try:
        c.in_flight.acquire(caller)
    except TooManyRequests as exc:
        return error_page(request, staff, 429, exc.message)
    try:
        data, content_type = await c.kyc_review.file(kyc_id, file_id, staff.user, client)
    except DomainError as exc:
        return error_page(request, staff, status_for(exc) or 400, exc.message)
    finally:
        c.in_flight.release(caller)
    return Response(data, media_type=content_type, headers={
        "Content-Disposition": "inline", "Content-Security-Policy": FILE_CSP, "Cache-Control": "no-store",
        "X-Content-Type-Options": "nosniff"})


async def _hold(act: Any, then: str, kyc_id: str, request: Request, staff: StaffSession, c: ContainerDep,
                client: ClientInfo) -> Response:
    """Claim or release (`act`), then go to `then`; a refusal shows the case page with it in words."""
    may(staff, "kyc:review")
    try:
        await act(kyc_id, staff.user, client)
    except DomainError as exc:
        return await _case_page(request, staff, c, client, kyc_id, status=status_for(exc) or 400, error=exc.message)
    return redirect(then)


@router.post("/kyc/{kyc_id}/claim", response_class=HTMLResponse)
async def claim_case(kyc_id: str, request: Request, staff: CheckedStaffDep, c: ContainerDep,
                     client: ClientDep) -> Response:
    return await _hold(c.kyc_review.claim, f"{PATH}/kyc/{kyc_id}", kyc_id, request, staff, c, client)


@router.post("/kyc/{kyc_id}/release", response_class=HTMLResponse)
async def release_case(kyc_id: str, request: Request, staff: CheckedStaffDep, c: ContainerDep,
                       client: ClientDep) -> Response:
    return await _hold(c.kyc_review.release, f"{PATH}/kyc?done=released", kyc_id, request, staff, c, client)


@router.post("/kyc/{kyc_id}/decision", response_class=HTMLResponse)
async def decide_case(
    kyc_id: str, request: Request, staff: CheckedStaffDep, c: ContainerDep, client: ClientDep,
    decision: Annotated[str, Form()] = "", reasons: Annotated[list[str] | None, Form()] = None,
    internal_note: Annotated[str, Form()] = "", customer_message: Annotated[str, Form()] = "",
    final: Annotated[str, Form()] = "",
) -> Response:
    """The API's decision with the API's request rules (`PUT /kyc/{id}/approve` and `/reject` bodies)."""
    may(staff, "kyc:review")
    form = {"decision": decision, "reasons": reasons or [], "internal_note": internal_note,
            "customer_message": customer_message, "final": final}

    async def refuse(message: str, status: int = 400) -> Response:
        return await _case_page(request, staff, c, client, kyc_id, status=status, error=message, form=form)

    if decision not in ("approve", "reject"):
        return await refuse("Choose approve or reject.")
    if decision == "approve" and reasons:
        return await refuse("Reasons are for a rejection: untick them to approve, or choose reject.")
    if decision == "reject" and not reasons:
        return await refuse("Choose at least one reason to reject the case.")
    try:
        body = (ApproveIn.model_validate({"internal_note": internal_note, "customer_message": customer_message})
                if decision == "approve" else
                RejectIn.model_validate({"reasons": reasons, "internal_note": internal_note,
                                         "customer_message": customer_message,
                                         "reject_type": "FINAL" if final else "RETRY"}))
    except ValidationError as exc:
        return await refuse(form_problem(exc, _FIELDS))
    given = DecisionInput(approved=decision == "approve",
                          reasons=[str(r) for r in getattr(body, "reasons", None) or []],
                          internal_note=body.internal_note, customer_message=body.customer_message,
                          final=bool(final))
    try:
        case = await c.kyc_review.decide(kyc_id, staff.user, given, client)
    except DomainError as exc:
        return await refuse(exc.message, status_for(exc) or 400)
    done = "rejected" if not given.approved else "approved" if case.status != CaseStatus.SUBMITTED else "first_approval"
    return redirect(f"{PATH}/kyc?done={done}")


@router.post("/kyc/{kyc_id}/resubmission", response_class=HTMLResponse)
async def send_back(
    kyc_id: str, request: Request, staff: CheckedStaffDep, c: ContainerDep, client: ClientDep,
    items: Annotated[list[str] | None, Form()] = None, internal_note: Annotated[str, Form()] = "",
    customer_message: Annotated[str, Form()] = "",
) -> Response:
    """The API's `PUT /kyc/{id}/request-resubmission` with its body's rules; an item is `type:side`, `selfie` or
    `liveness`."""
    may(staff, "kyc:review")
    form = {"items": items or [], "resubmit_note": internal_note, "resubmit_message": customer_message}
    asked = [i if i in ("selfie", "liveness") else {"document_type": i.partition(":")[0],
                                                    "side": i.partition(":")[2] or None} for i in items or []]
    try:
        body = ResubmissionIn.model_validate({"items": asked, "customer_message": customer_message,
                                              "internal_note": internal_note})
        await c.kyc_review.request_resubmission(kyc_id, staff.user, body.redo(), body.customer_message,
                                                body.internal_note or None, client)
    except ValidationError as exc:
        return await _case_page(request, staff, c, client, kyc_id, status=400, error=form_problem(exc, _FIELDS),
                                form=form)
    except DomainError as exc:
        return await _case_page(request, staff, c, client, kyc_id, status=status_for(exc) or 400, error=exc.message,
                                form=form)
    return redirect(f"{PATH}/kyc?done=sent_back")


_FIELDS = {"internal_note": "The internal note", "customer_message": "The message to the customer",
           "reasons": "A reason", "items": "What to redo"}

