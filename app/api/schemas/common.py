"""Shapes shared by every router: the error envelope, pages and plain messages."""

from __future__ import annotations

import unicodedata
from collections.abc import Callable
from datetime import UTC, date, datetime, timedelta
from decimal import Decimal
from typing import Annotated, Any, Generic, Self, TypeVar

from fastapi import Query
from pydantic import AfterValidator, BaseModel, BeforeValidator, ConfigDict, Field, PlainSerializer, WithJsonSchema

from app.api.errors import status_for
from app.domain.errors import DomainError
from app.domain.pages import Page as DomainPage

T = TypeVar("T")


def _iso_z(value: datetime) -> str:
    return value.isoformat(timespec="milliseconds").replace("+00:00", "Z")


# ISO 8601 UTC with `Z`, as API.md asks.
UtcDatetime = Annotated[datetime, PlainSerializer(_iso_z, return_type=str, when_used="json")]


class Input(BaseModel):
    """Request bodies: unknown fields are refused (no mass assignment)."""

    model_config = ConfigDict(extra="forbid", str_strip_whitespace=True)


class Overlay:
    """An object's attributes, with some given beside them (what the object itself does not hold)."""

    __slots__ = ("_obj", "_extra")

    def __init__(self, obj: Any, extra: dict[str, Any]) -> None:
        self._obj, self._extra = obj, extra

    def __getattr__(self, name: str) -> Any:
        return self._extra[name] if name in self._extra else getattr(self._obj, name)


class Out(BaseModel):
    """Response bodies, read from a domain object's attributes: `Model.of(obj)`; a field whose name
    differs from the attribute names it with `validation_alias` (an `AliasPath` for a nested one)."""

    model_config = ConfigDict(from_attributes=True, validate_by_name=True, validate_by_alias=True)

    @classmethod
    def of(cls, obj: Any, **extra: Any) -> Self:
        """`extra` gives the fields (by their alias, where they have one) that `obj` does not hold."""
        return cls.model_validate(Overlay(obj, extra) if extra else obj)


class FieldError(BaseModel):
    loc: list[str | int] = Field(description="Where the problem is, e.g. ['body', 'email']")
    msg: str
    type: str


class ErrorResponse(BaseModel):
    """The error envelope every failure uses (examples sit on each route's responses)."""

    detail: str = Field(description="A human sentence")
    error_code: str = Field(description="Machine-readable snake_case code")
    status_code: int
    timestamp: str
    request_id: str | None = None
    errors: list[FieldError] | None = None


class Message(BaseModel):
    """A sentence for the user; each route documents its own (see `error_responses(message=...)`)."""

    message: str


# The list routes' query parameters (API.md: page from 1, page_size at most 100).
PageNo = Annotated[int, Query(ge=1, le=1_000_000, description="1-based page number")]
PageSize = Annotated[int, Query(ge=1, le=100, description="Items per page (max 100)")]
# A malformed id in a filter is a 422, not a silently empty page; any letter case names the same record.
IdFilter = Annotated[str | None, Query(pattern="^[0-9a-fA-F]{24}$", description="24 hex digits")]


class Page(BaseModel, Generic[T]):
    items: list[T]
    total: int
    page: int
    page_size: int

    @classmethod
    def of(cls, result: DomainPage[Any], convert: Callable[[Any], T]) -> Page[T]:
        """A service's page with each item shaped for the response."""
        return cls(items=[convert(item) for item in result.items], total=result.total, page=result.page,
                   page_size=result.page_size)


# The generic answer for each status; routes pass (status, error_code, detail) for their own.
_DEFAULT_ERRORS: dict[int, tuple[str, str, str]] = {
    400: ("Invalid input", "bad_request", "The request cannot be processed as sent."),
    401: ("Not authenticated", "not_authenticated", "Send a bearer access token."),
    403: ("Not allowed", "insufficient_role", "Your role may not do this."),
    404: ("Not found", "not_found", "Nothing was found with this id."),
    409: ("Conflict", "conflict", "This conflicts with the current state."),
    413: ("Too large", "payload_too_large", "The request body is too large for this route."),
    422: ("Validation failed", "validation_error", "The request has invalid or missing fields."),
    429: ("Rate limited (see Retry-After)", "rate_limited", "Too many requests; retry after the time in Retry-After."),
    502: ("Delivery failed", "delivery_failed", "The code could not be sent; try again shortly."),
    503: ("Service unavailable", "service_unavailable", "The service is not ready; try again shortly."),
}

ErrorSpec = int | tuple[int, str, str] | type[DomainError]


def _triple(spec: ErrorSpec) -> tuple[int, str, str]:
    if isinstance(spec, int):
        return (spec, *_DEFAULT_ERRORS[spec][1:])
    if isinstance(spec, tuple):
        return spec
    error = spec()  # a domain error class: its status from the one map, its code and sentence from itself
    status = status_for(error)
    if status is None:
        raise ValueError(f"{spec.__qualname__} has no HTTP status in app/api/errors.py STATUS")
    return status, error.code, error.message


def error_example(status: int, code: str, detail: str) -> dict[str, Any]:
    body: dict[str, Any] = {"detail": detail, "error_code": code, "status_code": status,
                            "timestamp": "2026-11-22T10:00:00.000Z", "request_id": "5f2c0e8a9b7d4c1e8f3a2b1c0d9e8f7a"}
    if status == 422:
        body["errors"] = [{"loc": ["body", "name"], "msg": "Field required", "type": "missing"}]
    return body


def error_responses(*specs: ErrorSpec, message: str | None = None) -> dict[int | str, dict[str, Any]]:
    """Documented responses for a route, all in the envelope, each with an example of its own status.

    A spec is a status (the generic example), a domain error class (`e.InvalidOtp`) or
    `(status, error_code, detail)`; several specs of one status become named examples.
    `message` is the route's own 200 `Message` example."""
    grouped: dict[int, list[tuple[str, str]]] = {}
    for spec in specs:
        status, code, detail = _triple(spec)
        grouped.setdefault(status, []).append((code, detail))
    out: dict[int | str, dict[str, Any]] = {}
    for status, examples in grouped.items():
        content: dict[str, Any] = (
            {"example": error_example(status, *examples[0])} if len(examples) == 1 else
            {"examples": {code: {"summary": detail, "value": error_example(status, code, detail)}
                          for code, detail in examples}})
        text = _DEFAULT_ERRORS.get(status, ("Error",))[0]
        out[status] = {"model": ErrorResponse, "description": text, "content": {"application/json": content}}
    if message is not None:
        out[200] = {"content": {"application/json": {"example": {"message": message}}}}
    return out


# Characters that make a stored name lie about itself: NUL and other controls, and bidi overrides
# and isolates that reorder what a reviewer reads (U+202A-U+202E, U+2066-U+2069).
_BIDI = set(range(0x202A, 0x202F)) | set(range(0x2066, 0x206A))


def _plain_text(value: str) -> str:
    for ch in value:
        if ord(ch) in _BIDI or unicodedata.category(ch) == "Cc":
            raise ValueError(f"must not contain control or text-direction characters (U+{ord(ch):04X})")
    return value


# Free text shown to staff and on documents: printable characters only.
PlainText = Annotated[str, AfterValidator(_plain_text)]
PersonName = Annotated[str, Field(min_length=1, max_length=120), AfterValidator(_plain_text)]

MAX_AGE_YEARS = 120


def _birth_date(value: date) -> date:
    today = datetime.now(UTC).date()
    if value > today:
        raise ValueError("date of birth cannot be in the future")
    if value < today - timedelta(days=int(MAX_AGE_YEARS * 365.25)):
        raise ValueError(f"date of birth cannot be more than {MAX_AGE_YEARS} years ago")
    return value


BirthDate = Annotated[date, AfterValidator(_birth_date)]


def utc_datetime_in(value: datetime) -> datetime:
    # Stored and queried as UTC: an offset that pushes it past year 9999 (or before year 1)
    # would overflow in the driver, so refuse it here. Naive times are taken as UTC.
    if value.tzinfo is None:
        return value.replace(tzinfo=UTC)
    try:
        return value.astimezone(UTC)
    except OverflowError:
        raise ValueError("date is outside the supported range (years 1-9999 in UTC)") from None


# Datetimes that come in (query or body): always aware, always convertible to UTC.
UtcDatetimeIn = Annotated[datetime, AfterValidator(utc_datetime_in)]


def _unsigned(value: Decimal) -> Decimal:
    # -0 passes `ge=0` but is stored and shown as "-0": refuse it as the negative it spells.
    if value.is_signed():
        raise ValueError("must not be negative")
    return value


def _json_number(value: Any) -> Any:
    """Amounts and rates travel as JSON numbers: "1000" is refused like any malformed amount (pydantic
    would read a Decimal from a string), and the schema says `number`, not `number | string`."""
    if isinstance(value, str):
        raise ValueError("must be a JSON number, not a string")
    return value


def _number_schema(description: str, example: float, **bounds: float) -> WithJsonSchema:
    """The JSON schema of a Decimal read by `_json_number`: a number with standard JSON-schema bounds."""
    return WithJsonSchema({"type": "number", **bounds, "description": description, "examples": [example]})


# Decimals in and out as JSON numbers; every computation stays in Decimal.
_NUMBER_IN, _NUMBER_OUT = BeforeValidator(_json_number), PlainSerializer(float, return_type=float, when_used="json")
_RUPEES = "Rupees, at most 2 decimal places"
Money = Annotated[Decimal, _NUMBER_IN, Field(ge=0, max_digits=14, decimal_places=2), AfterValidator(_unsigned),
                  _NUMBER_OUT, _number_schema(_RUPEES, 45000, minimum=0)]
PositiveMoney = Annotated[Money, Field(gt=0), _number_schema(_RUPEES, 45000, exclusiveMinimum=0)]
# A percentage such as 10.4567 (at most 4 decimal places).
Rate = Annotated[Decimal, _NUMBER_IN, Field(ge=0, le=100, max_digits=8, decimal_places=4), AfterValidator(_unsigned),
                 _NUMBER_OUT, _number_schema("Percent, e.g. 10.5", 10.5, minimum=0, maximum=100)]
# A fraction of income: 0.55 means 55 %.
Fraction = Annotated[Decimal, _NUMBER_IN, Field(gt=0, le=1, max_digits=5, decimal_places=4), _NUMBER_OUT,
                     _number_schema("A fraction of income: 0.55 means 55 %", 0.55, exclusiveMinimum=0, maximum=1)]
