"""Admin and auditor routes: staff, account status, user browsing, roles and the overall counts."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Query, status

from app.api.deps import AdminServiceDep, ClientDep, KycReviewServiceDep, LoanServiceDep, PrincipalDep, allow
from app.api.routing import ExactJsonRoute
from app.api.schemas.admin import (
    CreateStaffRequest,
    KycCounts,
    LoanCounts,
    RoleOut,
    StaffOut,
    StatsOut,
    StatusUpdate,
    UserCounts,
    UserDetail,
    UserSummary,
)
from app.api.schemas.common import Page, PageNo, PageSize, error_responses
from app.domain import errors as e
from app.domain.pages import PageRequest
from app.domain.users import PERMISSIONS, KycStatus, Role, UserStatus
from app.services.auth import Principal

router = APIRouter(tags=["Admin"], route_class=ExactJsonRoute)


@router.post("/admin/users", status_code=status.HTTP_201_CREATED, response_model=StaffOut,
             summary="Create a staff account",
             responses=error_responses(e.InvalidIdentifier, e.WeakPassword, 401, 403, e.IdentifierTaken, 422))
async def create_staff(body: CreateStaffRequest, admin: Annotated[Principal, allow("staff:create")], service: AdminServiceDep,
                       client: ClientDep) -> StaffOut:
    """An admin creates an active auditor or admin account."""
    user = await service.create_user(email=body.email, password=body.password, name=body.name,
                                     role=Role(body.role), actor=admin.user, client=client)
    return StaffOut.of(user)


@router.put("/admin/users/{user_id}/status", response_model=UserSummary, summary="Suspend or reactivate an account",
            responses=error_responses(401, 403, e.UserNotFound,
                                      (409, "cannot_change_own_status", "You cannot change your own status."), 422))
async def set_status(user_id: str, body: StatusUpdate, admin: Annotated[Principal, allow("users:manage")], service: AdminServiceDep,
                     client: ClientDep) -> UserSummary:
    """Suspending signs the user out everywhere at once."""
    return UserSummary.of(await service.set_status(user_id, UserStatus(body.status), admin.user, client))


@router.get("/admin/users", response_model=Page[UserSummary], summary="Browse users",
            responses=error_responses(401, 403, 422))
async def list_users(
    _: Annotated[Principal, allow("users:read")], service: AdminServiceDep, page: PageNo = 1, page_size: PageSize = 20,
    role: Annotated[Role | None, Query()] = None,
    kyc_status: Annotated[KycStatus | None, Query()] = None,
    q: Annotated[str | None, Query(max_length=100, description="Search name, email or phone")] = None,
) -> Page[UserSummary]:
    """Auditors and admins; filter by role, KYC status or a search text."""
    users = await service.list_users(role=role.value if role else None, kyc_status=kyc_status, q=q,
                                     page=PageRequest(page, page_size))
    return Page.of(users, UserSummary.of)


@router.get("/admin/users/{user_id}", response_model=UserDetail, summary="One user in full",
            responses=error_responses(401, 403, e.UserNotFound))
async def get_user(user_id: str, _: Annotated[Principal, allow("users:read")], service: AdminServiceDep,
                   kyc: KycReviewServiceDep, loans: LoanServiceDep) -> UserDetail:
    """The user with profile, details, KYC cases (newest first) and loans."""
    user = await service.get_user(user_id)
    return UserDetail.of(user, kyc_cases=await kyc.cases_of(user.id), loans=await loans.loans_of(user.id))


@router.get("/admin/stats", response_model=StatsOut, summary="Users, KYC and loans at a glance",
            responses=error_responses(401, 403))
async def stats(_: Annotated[Principal, allow("stats:read")], service: AdminServiceDep, kyc: KycReviewServiceDep,
                loans: LoanServiceDep) -> StatsOut:
    """Counted by aggregation pipelines in the database, never by reading every record."""
    by_role = await service.role_counts()
    return StatsOut(users=UserCounts(total=sum(by_role.values()), by_role=by_role), kyc=KycCounts(**await kyc.stats()),
                    loans=LoanCounts(**await loans.stats()))


@router.get("/roles", response_model=list[RoleOut], summary="Roles and their permissions",
            responses=error_responses(401, e.AccountSuspended))
async def roles(_: PrincipalDep) -> list[RoleOut]:
    """Any signed-in user may read the role model."""
    return [RoleOut(name=role.value, permissions=list(perms)) for role, perms in PERMISSIONS.items()]
