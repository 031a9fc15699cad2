"""One map from domain errors to HTTP, and the error envelope of API.md for every error."""

from __future__ import annotations

import logging
from datetime import UTC, datetime
from typing import Any

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse, Response
from pymongo.errors import DocumentTooLarge
from starlette.exceptions import HTTPException as StarletteHTTPException
from starlette.requests import ClientDisconnect

from app.domain import catalogue, grievances, jobs, kfs, kyc, kyc_levels, loan_schedule, loans, money, profile, webhooks
from app.domain import errors as e
from app.domain.api_keys import InsufficientScope
from app.domain.gateway import GatewayPathRefused, UnknownService, UpstreamFailed, UpstreamTimeout
from app.domain.prepayment import CoolingOffEnded, InstalmentsOverdue, PrepaymentOutOfRange
from app.domain.rate_limits import TooManyConcurrent
from app.domain.screening import WatchlistInvalid
from app.logging_setup import request_id_var

log = logging.getLogger("kycflow.errors")

# Every domain error class, by name: a test fails when one is missing, and an unmapped error
# is a 500 (logged with its request id) rather than a guess.
STATUS: dict[type[e.DomainError], int] = {
    e.InvalidInput: 400, e.InvalidImage: 400, e.NoFaceDetected: 400, e.InvalidOtp: 400, e.OtpExpired: 400,
    e.OtpExhausted: 400, e.WeakPassword: 400, e.InvalidIdentifier: 400,
    e.Unauthenticated: 401, e.InvalidCredentials: 401, e.InvalidToken: 401, e.SessionRevoked: 401,
    e.Forbidden: 403, e.AccountLocked: 403, e.AccountSuspended: 403, e.AccountNotVerified: 403,
    e.InsufficientRole: 403,
    e.NotFound: 404, e.UserNotFound: 404,
    e.Conflict: 409, e.IdentifierTaken: 409, e.DocumentIntegrityError: 409, e.IdempotencyInProgress: 409,
    e.ConcurrentChange: 409,
    e.FileTooLarge: 413, e.RecordTooLarge: 413,
    e.RuleViolation: 422, e.IdempotencyKeyReused: 422,
    e.TooManyRequests: 429,
    e.DeliveryFailed: 502,
    e.ServiceUnavailable: 503, e.ModelsUnavailable: 503, e.DocumentKeyUnavailable: 503,
    # KYC cases
    kyc.CaseNotFound: 404, kyc.CaseIncomplete: 422, kyc.CaseNotEditable: 409, kyc.CaseNotReviewable: 409,
    kyc.AlreadyApproved: 409, kyc.SecondApproverRequired: 409,
    kyc_levels.UnknownLevel: 422, kyc_levels.LevelReached: 409, kyc_levels.LevelRequired: 403,
    # jobs
    jobs.JobNotFound: 404, jobs.JobNotFailed: 409,
    # lending: amounts and terms that parse but break a rule are 422, like the schema's own refusals
    money.InvalidAmount: 422, money.InvalidRate: 422, loan_schedule.InvalidLoanTerms: 422,
    loans.InvalidLoanProduct: 422, loans.NotEligible: 422, loans.Overpayment: 422, loans.InvalidTransition: 409,
    loans.LoanRepaid: 409, loans.PaidAhead: 409,
    loans.KycNotApproved: 403, loans.LoanNotFound: 404, catalogue.ProductNotFound: 404, catalogue.BankNotFound: 404,
    loans.DuplicateApplication: 409, catalogue.BankExists: 409, catalogue.ProductExists: 409, loans.LoanChanged: 409,
    InstalmentsOverdue: 409, PrepaymentOutOfRange: 422, CoolingOffEnded: 409,
    kfs.KfsNotAccepted: 409, kfs.KfsExpired: 409, kfs.KfsStale: 409,
    # a name or date of birth that KYC verified (or is reviewing) cannot change
    profile.IdentityVerified: 409, profile.IdentityUnderReview: 409,
    # integrators: a key outside its scope, too many heavy requests at once, the gateway's upstreams
    InsufficientScope: 403, TooManyConcurrent: 429,
    GatewayPathRefused: 400, UnknownService: 404, UpstreamFailed: 502, UpstreamTimeout: 504,
    # webhooks: a refused URL or event list names the field, like the schema's own refusals
    webhooks.InvalidWebhookUrl: 422, webhooks.InvalidWebhookEvents: 422, webhooks.WebhookNotFound: 404,
    webhooks.DeliveryAttemptNotFound: 404, webhooks.WebhookDisabled: 409,
    grievances.GrievanceNotFound: 404, grievances.GrievanceClosed: 409,
    # screening: a watchlist file is refused by `kycflow screening load`; no route raises it today
    WatchlistInvalid: 422,
}

_HTTP_CODES = {
    400: "bad_request", 401: "not_authenticated", 403: "forbidden", 404: "not_found", 405: "method_not_allowed",
    409: "conflict", 413: "payload_too_large", 415: "unsupported_media_type", 422: "validation_error",
    429: "rate_limited", 500: "internal_error", 502: "bad_gateway", 503: "service_unavailable",
    504: "gateway_timeout",
}


def status_for(exc: e.DomainError) -> int | None:
    """The status of the error's own class; None when nobody decided one (a defect)."""
    return STATUS.get(type(exc))


def envelope(status: int, code: str, detail: str, errors: list[dict[str, Any]] | None = None,
             headers: dict[str, str] | None = None, reasons: list[dict[str, Any]] | None = None) -> JSONResponse:
    body: dict[str, Any] = {
        "detail": detail, "error_code": code, "status_code": status,
        "timestamp": datetime.now(UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z"),
        "request_id": request_id_var.get(),
    }
    if errors:
        body["errors"] = errors
    if reasons:  # every rule a request broke (422 not_eligible), not only the first
        body["reasons"] = reasons
    return JSONResponse(body, status_code=status, headers=headers)


async def _domain_error(_: Request, exc: e.DomainError) -> JSONResponse:
    headers: dict[str, str] = {}
    retry_after = getattr(exc, "retry_after", None) or exc.details.get("retry_after")
    if isinstance(exc, e.Unauthenticated):
        headers["WWW-Authenticate"] = "Bearer"
    if retry_after:
        headers["Retry-After"] = str(int(retry_after))
    if isinstance(exc, e.TooManyRequests) and exc.limit:
        # The quota as the limiter saw it (a cooldown leaves some of it); Retry-After is the wait.
        reset_at = exc.details.get("reset_at")
        headers.update({
            "X-RateLimit-Limit": str(exc.limit), "X-RateLimit-Remaining": str(exc.details.get("remaining", 0)),
            "X-RateLimit-Reset": str(int(reset_at.timestamp()) if isinstance(reset_at, datetime)
                                     else int(datetime.now(UTC).timestamp()) + exc.retry_after),
        })
    status = status_for(exc)
    if status is None:
        log.error("unmapped domain error %s", type(exc).__name__, extra={"error_code": exc.code},
                  exc_info=exc)
        return envelope(500, "internal_error", "Something went wrong on our side; it has been logged.")
    # A domain error naming fields (`errors=[{field, message}]`) answers in the same shape as a schema refusal.
    errors = [{"loc": ["body", x["field"]], "msg": x["message"], "type": exc.code}
              for x in exc.details.get("errors") or [] if isinstance(x, dict) and "field" in x]
    return envelope(status, exc.code, exc.message, errors or None, headers=headers or None,
                    reasons=exc.details.get("reasons"))


async def _validation_error(_: Request, exc: RequestValidationError) -> JSONResponse:
    errors = [
        {"loc": list(err.get("loc", ())), "msg": err.get("msg", ""), "type": err.get("type", "")}
        for err in exc.errors()
    ]
    malformed = any(err["type"] == "json_invalid" for err in errors)
    detail = "The request body is not valid JSON." if malformed else "The request has invalid or missing fields."
    return envelope(422, "malformed_json" if malformed else "validation_error", detail, errors)


async def _http_error(_: Request, exc: StarletteHTTPException) -> JSONResponse:
    detail = exc.detail if isinstance(exc.detail, str) else "Request failed."
    return envelope(exc.status_code, _HTTP_CODES.get(exc.status_code, "error"), detail,
                    headers=dict(exc.headers) if exc.headers else None)


async def _document_too_large(_: Request, exc: Exception) -> JSONResponse:
    # The driver refuses a record over the database's size limit before sending it (repositories
    # turn it into RecordTooLarge; this catches any write outside them): too much was sent, not a 500.
    log.warning("refused a record too large to store", extra={"error": str(exc)[:200]})
    return envelope(413, e.RecordTooLarge.code, e.RecordTooLarge().message)


async def _client_disconnect(_: Request, exc: ClientDisconnect) -> Response:
    # The caller hung up while sending its body: nobody reads an answer, and it is not our failure (no 500,
    # no traceback in the log); 400 for the access log and metrics.
    log.info("client disconnected before its request body arrived")
    return Response(status_code=400)


def install_error_handlers(app: FastAPI) -> None:
    # FastAPI's decorator form takes a handler typed for its own exception class.
    app.exception_handler(e.DomainError)(_domain_error)
    app.exception_handler(DocumentTooLarge)(_document_too_large)
    app.exception_handler(ClientDisconnect)(_client_disconnect)
    app.exception_handler(RequestValidationError)(_validation_error)
    app.exception_handler(StarletteHTTPException)(_http_error)
