"""Integrator API keys (admin only): the secret is shown once, at creation."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, status
from pydantic import AfterValidator, ConfigDict, Field

from app.api.deps import ApiKeyServiceDep, ClientDep, allow
from app.api.routing import ExactJsonRoute
from app.api.schemas.common import Input, Out, Page, PageNo, PageSize, UtcDatetime, UtcDatetimeIn, error_responses
from app.domain.api_keys import LEGACY_SCOPES, Scope
from app.domain.pages import PageRequest
from app.services.auth import Principal

router = APIRouter(prefix="/admin/api-keys", tags=["Admin"], route_class=ExactJsonRoute)


class ApiKeyCreate(Input):
    # A whole example: generated from the fields, Swagger UI sent `expires_at: "string"` and a limit of 0.
    model_config = ConfigDict(json_schema_extra={"example": {"name": "Partner bank onboarding",
                                                             "scopes": ["verify", "ocr"]}})

    name: str = Field(min_length=1, max_length=100, examples=["Partner bank onboarding"])
    # Left out: verify, ocr and liveness, what keys could do before scopes existed (never gateway).
    scopes: list[Scope] = Field(default_factory=lambda: sorted(LEGACY_SCOPES), min_length=1, max_length=len(Scope),
                                examples=[["verify", "ocr"]],
                                description="Routes the key may call: verify (/kyc/verify), ocr (/ocr/extract), "
                                            "liveness (/liveness/*), gateway (/gateway/*). Default: verify, ocr "
                                            "and liveness")
    expires_at: UtcDatetimeIn | None = Field(None, description="In the future, within 730 days; none: until revoked")
    rate_limit_per_minute: int | None = Field(None, ge=1, le=100_000,
                                              description="This key's own limit per route group; none: the "
                                                          "group's limit from settings")


class ApiKeyOut(Out):
    id: str
    name: str
    prefix: str = Field(description="Identifies the key without revealing it")
    created_at: UtcDatetime
    revoked_at: UtcDatetime | None
    last_used_at: UtcDatetime | None = Field(description="Written at most once a minute per key (by default): "
                                                         "may lag the last request by that much")
    scopes: Annotated[list[Scope], AfterValidator(sorted)]
    expires_at: UtcDatetime | None
    rate_limit_per_minute: int | None


class ApiKeyCreated(ApiKeyOut):
    model_config = ConfigDict(json_schema_extra={"example": {"id": "6741f0c2a1b2c3d4e5f60720", "name": "Partner bank onboarding", "prefix": "1a2b3c4d",
                                          "created_at": "2026-11-22T10:00:00.000Z", "revoked_at": None,
                                          "last_used_at": None, "scopes": ["ocr", "verify"],
                                          "expires_at": "2027-11-22T00:00:00.000Z", "rate_limit_per_minute": 120,
                                          "api_key": "kf_1a2b3c4d_Zk3..."}})

    api_key: str = Field(description="The secret: shown only now, store it safely; send it as X-API-Key")


@router.post("", status_code=status.HTTP_201_CREATED, response_model=ApiKeyCreated, summary="Create an API key",
             responses=error_responses(401, 403, 422, (422, "invalid_expiry", "expires_at must be in the future.")))
async def create(body: ApiKeyCreate, admin: Annotated[Principal, allow("api_keys:manage")], keys: ApiKeyServiceDep, client: ClientDep) -> ApiKeyCreated:
    """Returns the secret once; only its hash is stored."""
    key, secret = await keys.create(body.name, admin.user, client, scopes=frozenset(body.scopes),
                                    expires_at=body.expires_at, rate_limit_per_minute=body.rate_limit_per_minute)
    return ApiKeyCreated.of(key, api_key=secret)


@router.get("", response_model=Page[ApiKeyOut], summary="List API keys", responses=error_responses(401, 403, 422))
async def list_keys(
    _: Annotated[Principal, allow("api_keys:manage")], keys: ApiKeyServiceDep,
    page: PageNo = 1, page_size: PageSize = 20,
) -> Page[ApiKeyOut]:
    """Every key with its prefix and state, never the secret; newest first."""
    return Page.of(await keys.list(page=PageRequest(page, page_size)), ApiKeyOut.of)


@router.delete("/{key_id}", response_model=ApiKeyOut, summary="Revoke an API key",
               responses=error_responses(401, 403, (404, "api_key_not_found", "No active API key with this id.")))
async def revoke(key_id: str, admin: Annotated[Principal, allow("api_keys:manage")], keys: ApiKeyServiceDep, client: ClientDep) -> ApiKeyOut:
    """The key stops working at once."""
    return ApiKeyOut.of(await keys.revoke(key_id, admin.user, client))
