"""Dependencies: the services built in the lifespan, the caller, and role checks."""

from __future__ import annotations

import ipaddress
from collections.abc import Awaitable, Callable
from typing import Annotated, Any

from fastapi import Depends, Request
from fastapi.security import APIKeyHeader, HTTPAuthorizationCredentials, HTTPBearer
from starlette.requests import HTTPConnection

from app.api.credentials import credential_of
from app.bootstrap import Container
from app.config import Settings
from app.domain.api_keys import ApiKey, Scope
from app.domain.audit import ClientInfo
from app.domain.errors import InsufficientRole, Unauthenticated
from app.domain.users import ALL_PERMISSIONS
from app.services.admin import AdminService
from app.services.api_keys import ApiKeyService
from app.services.audit import AuditService
from app.services.auth import AuthService, Principal
from app.services.catalogue import CatalogueService
from app.services.clock import Clock
from app.services.grievances import GrievanceService
from app.services.idempotency import IdempotencyService
from app.services.jobs import JobService
from app.services.kyc.case import KycCaseService
from app.services.kyc.review import KycReviewService
from app.services.loans import LoanService
from app.services.statements import StatementService
from app.services.users import UserService
from app.services.verification import VerificationService
from app.services.webhooks import WebhookService


# The two security schemes Swagger's Authorize button offers. Their values come from the request's one
# parsed credential (app/api/credentials.py), never from the headers again.
class _Bearer(HTTPBearer):
    async def __call__(self, request: HTTPConnection) -> HTTPAuthorizationCredentials | None:
        token = credential_of(request.scope).bearer
        return HTTPAuthorizationCredentials(scheme="Bearer", credentials=token) if token else None


class _ApiKeyHeader(APIKeyHeader):
    async def __call__(self, request: HTTPConnection) -> str | None:
        return credential_of(request.scope).api_key


bearer = _Bearer(auto_error=False, scheme_name="HTTPBearer",
                 description="Access token from /auth/login or /auth/login/verify-otp")


async def get_container(request: Request) -> Container:
    return request.app.state.container


ContainerDep = Annotated[Container, Depends(get_container)]


def _part(name: str) -> Any:
    """`Depends` on one part of the container: a route names the service it uses, not the container."""
    if name not in Container.__dataclass_fields__:  # a typo fails at import, not at the first request
        raise ValueError(f"the container has no {name!r}")

    async def part(c: ContainerDep) -> Any:
        return getattr(c, name)

    return Depends(part)


AuthServiceDep = Annotated[AuthService, _part("auth")]
UserServiceDep = Annotated[UserService, _part("users")]
AdminServiceDep = Annotated[AdminService, _part("admin")]
AuditServiceDep = Annotated[AuditService, _part("audit")]
VerificationServiceDep = Annotated[VerificationService, _part("verification")]
ApiKeyServiceDep = Annotated[ApiKeyService, _part("api_keys")]
JobServiceDep = Annotated[JobService, _part("jobs")]
WebhookServiceDep = Annotated[WebhookService, _part("webhooks")]
KycCaseServiceDep = Annotated[KycCaseService, _part("kyc")]
KycReviewServiceDep = Annotated[KycReviewService, _part("kyc_review")]
LoanServiceDep = Annotated[LoanService, _part("loans")]
CatalogueServiceDep = Annotated[CatalogueService, _part("catalogue")]
GrievanceServiceDep = Annotated[GrievanceService, _part("grievances")]
StatementServiceDep = Annotated[StatementService, _part("statements")]
IdempotencyServiceDep = Annotated[IdempotencyService, _part("idempotency")]
ClockDep = Annotated[Clock, _part("clock")]
SettingsDep = Annotated[Settings, _part("settings")]


async def client_info(request: Request, c: ContainerDep) -> ClientInfo:
    """Caller's address: `X-Forwarded-For` is believed only from configured proxies."""
    peer = request.client.host if request.client else None
    ip = client_ip(peer, request.headers.get("x-forwarded-for"), c.settings.trusted_proxies)
    return ClientInfo(ip_address=ip, user_agent=request.headers.get("user-agent"))


def client_ip(peer: str | None, forwarded: str | None, proxies: list[str]) -> str | None:
    """The first X-Forwarded-For address when the peer is a trusted proxy, else the peer
    (one rule for the audit trail, the rate limits and the gateway)."""
    if forwarded and is_trusted_proxy(peer, proxies):
        return forwarded.split(",")[0].strip() or peer
    return peer


def is_trusted_proxy(peer: str | None, proxies: list[str]) -> bool:
    if not peer:
        return False
    try:
        address = ipaddress.ip_address(peer)
        return any(address in ipaddress.ip_network(p, strict=False) for p in proxies)
    except ValueError:
        return False


ClientDep = Annotated[ClientInfo, Depends(client_info)]


async def optional_principal(
    auth: AuthServiceDep, credentials: Annotated[HTTPAuthorizationCredentials | None, Depends(bearer)]
) -> Principal | None:
    """The caller when a bearer token is sent (it must then be valid); None for anonymous callers."""
    return None if credentials is None else await auth.authenticate(credentials.credentials)


OptionalPrincipalDep = Annotated[Principal | None, Depends(optional_principal)]


async def current_principal(principal: OptionalPrincipalDep) -> Principal:
    if principal is None:
        raise Unauthenticated("Send a bearer access token.", code="not_authenticated")
    return principal


PrincipalDep = Annotated[Principal, Depends(current_principal)]


def require(permission: str) -> Callable[[Principal], Awaitable[Principal]]:
    """A route dependency: the caller's role must hold `permission` in the table `GET /roles` shows."""
    if permission not in ALL_PERMISSIONS:  # a typo would lock everyone out: fail at import, not at request
        raise ValueError(f"unknown permission {permission!r}")

    async def check(principal: PrincipalDep) -> Principal:
        if not principal.user.can(permission):
            raise InsufficientRole(permission=permission)
        return principal

    return check


def allow(permission: str) -> Any:
    """For a route's `dependencies=[...]`; the route takes `PrincipalDep` too when it needs the caller
    (FastAPI resolves the principal once per request)."""
    return Depends(require(permission))


api_key_header = _ApiKeyHeader(name="X-API-Key", auto_error=False, scheme_name="APIKeyHeader",
                               description="Integrator key from /admin/api-keys")


def scoped_caller(scope: Scope, *, staff_permission: str | None = None) -> Any:
    """A signed-in person or an API key holding `scope` (403 `insufficient_scope` otherwise); with
    `staff_permission`, the person must also hold that permission. Returns who called (`api_key:<id>`
    or `user:<id>`). The key the rate-limit middleware already checked is not read twice."""
    if staff_permission is not None and staff_permission not in ALL_PERMISSIONS:
        raise ValueError(f"unknown permission {staff_permission!r}")

    async def caller(request: Request, c: ContainerDep, principal: OptionalPrincipalDep,
                     api_key: Annotated[str | None, Depends(api_key_header)]) -> str:
        if api_key:
            key: ApiKey | None = getattr(request.state, "api_key", None)
            if key is None:
                key = await c.api_keys.authenticate(api_key)
            key.require(scope)
            return f"api_key:{key.id}"
        if principal is not None:
            if staff_permission is not None and not principal.user.can(staff_permission):
                raise InsufficientRole(permission=staff_permission)
            return f"user:{principal.user.id}"
        raise Unauthenticated("Send a bearer access token or an X-API-Key.", code="not_authenticated")

    return Depends(caller)


VerifyCaller = Annotated[str, scoped_caller(Scope.VERIFY)]
OcrCaller = Annotated[str, scoped_caller(Scope.OCR)]
LivenessCaller = Annotated[str, scoped_caller(Scope.LIVENESS)]
# The gateway reaches internal services: staff holding `gateway:use`, or a key with the gateway scope.
GatewayCaller = Annotated[str, scoped_caller(Scope.GATEWAY, staff_permission="gateway:use")]
