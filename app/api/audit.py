"""The audit trail: who did what to which account or case, when and from where (append-only)."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Query

from app.api.deps import AuditServiceDep, allow
from app.api.routing import ExactJsonRoute
from app.api.schemas.admin import AuditLogOut
from app.api.schemas.common import IdFilter, Page, PageNo, PageSize, UtcDatetimeIn, error_responses
from app.domain.ids import parse_id
from app.domain.pages import PageRequest
from app.services.auth import Principal

router = APIRouter(tags=["Admin"], route_class=ExactJsonRoute)


@router.get("/audit-logs", response_model=Page[AuditLogOut], summary="The audit trail",
            responses=error_responses(401, 403, 422))
async def audit_logs(
    _: Annotated[Principal, allow("audit:read")], audit: AuditServiceDep, page: PageNo = 1, page_size: PageSize = 20,
    user_id: IdFilter = None, actor_id: IdFilter = None, action: str | None = None,
    from_: Annotated[UtcDatetimeIn | None, Query(alias="from")] = None,
    to: UtcDatetimeIn | None = None,
) -> Page[AuditLogOut]:
    """Newest first; filter by subject, actor, action and time range."""
    entries = await audit.search(user_id=parse_id(user_id), actor_id=parse_id(actor_id), action=action,
                                 since=from_, until=to, page=PageRequest(page, page_size))
    return Page.of(entries, AuditLogOut.of)
