"""The signed-in user's own record."""

from __future__ import annotations

from typing import Any, cast

from fastapi import APIRouter

from app.api.deps import ClientDep, PrincipalDep, UserServiceDep
from app.api.routing import ExactJsonRoute
from app.api.schemas.common import error_responses
from app.api.schemas.users import EmploymentDetails, FinancialDetails, KycStatusOut, ProfileUpdate, UserOut
from app.domain import errors as e
from app.domain.profile import IdentityUnderReview, IdentityVerified
from app.domain.users import EmploymentDetails as DomainEmploymentDetails
from app.domain.users import FinancialDetails as DomainFinancialDetails

router = APIRouter(prefix="/users", tags=["Users"], route_class=ExactJsonRoute)
AUTH_ERRORS = error_responses(401, e.InvalidToken, e.AccountSuspended)


@router.get("/me", response_model=UserOut, summary="My account", responses=AUTH_ERRORS)
async def me(principal: PrincipalDep) -> UserOut:
    """The signed-in user with profile and profile risk."""
    return UserOut.of(principal.user)


@router.patch("/me", response_model=UserOut, summary="Update my profile",
              responses=error_responses(401, e.AccountSuspended, IdentityVerified, IdentityUnderReview, 422))
async def update_me(body: ProfileUpdate, principal: PrincipalDep, users: UserServiceDep, client: ClientDep) -> UserOut:
    """Profile fields only; `name` and `dob` are held while a KYC case reviews them and pinned once it
    is approved (409 naming them in `errors`)."""
    changes = body.model_dump(mode="json", exclude_unset=True)
    return UserOut.of(await users.update_profile(principal.user, changes, client))


@router.get("/me/kyc-status", response_model=KycStatusOut, summary="My KYC status", responses=AUTH_ERRORS)
async def kyc_status(principal: PrincipalDep) -> KycStatusOut:
    """Where my KYC stands (`risk_level` is always null: the case's risk is for auditors)."""
    user = principal.user
    # The risk level teaches a fraudster how an attempt was rated, as scores would (issue 15, item 15);
    # the key stays for the contract's shape, empty.
    return KycStatusOut(kyc_status=user.kyc_status, risk_level=None, updated_at=user.kyc_status_changed_at)


@router.get("/me/financial-details", response_model=FinancialDetails, summary="My financial details",
            responses=error_responses(401, e.AccountSuspended, (404, "details_not_found", "No financial details saved yet.")))
async def get_financial(principal: PrincipalDep, users: UserServiceDep) -> Any:
    """Income, expenses and existing EMIs, as last saved."""
    return users.details(principal.user, "financial_details")


@router.put("/me/financial-details", response_model=FinancialDetails, summary="Save my financial details",
            responses=error_responses(401, e.AccountSuspended, 422))
async def put_financial(body: FinancialDetails, principal: PrincipalDep, users: UserServiceDep) -> Any:
    """Replaces the saved financial details."""
    user = await users.set_details(principal.user, "financial_details", cast(DomainFinancialDetails, body.model_dump()))
    return user.financial_details


@router.get("/me/employment-details", response_model=EmploymentDetails, summary="My employment details",
            responses=error_responses(401, e.AccountSuspended, (404, "details_not_found", "No employment details saved yet.")))
async def get_employment(principal: PrincipalDep, users: UserServiceDep) -> Any:
    """Employer and experience, as last saved."""
    return users.details(principal.user, "employment_details")


@router.put("/me/employment-details", response_model=EmploymentDetails, summary="Save my employment details",
            responses=error_responses(401, e.AccountSuspended, 422))
async def put_employment(body: EmploymentDetails, principal: PrincipalDep, users: UserServiceDep) -> Any:
    """Replaces the saved employment details."""
    user = await users.set_details(principal.user, "employment_details",
                                   cast(DomainEmploymentDetails, body.model_dump()))
    return user.employment_details
