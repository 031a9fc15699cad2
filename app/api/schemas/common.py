"""Shapes shared by every router: the error envelope, pages and plain messages."""

from __future__ import annotations

from datetime import datetime
from decimal import Decimal
from typing import Annotated, Any, Generic, TypeVar

from pydantic import BaseModel, ConfigDict, Field, PlainSerializer

T = TypeVar("T")


def _iso_z(value: datetime) -> str:
    return value.isoformat(timespec="milliseconds").replace("+00:00", "Z")


# ISO 8601 UTC with `Z`, as API.md asks.
UtcDatetime = Annotated[datetime, PlainSerializer(_iso_z, return_type=str, when_used="json")]


class Input(BaseModel):
    """Request bodies: unknown fields are refused (no mass assignment)."""

    model_config = ConfigDict(extra="forbid", str_strip_whitespace=True)


class FieldError(BaseModel):
    loc: list[str | int] = Field(description="Where the problem is, e.g. ['body', 'email']")
    msg: str
    type: str


class ErrorResponse(BaseModel):
    """The error envelope every failure uses."""

    model_config = ConfigDict(json_schema_extra={"example": {
        "detail": "Invalid identifier or password.", "error_code": "invalid_credentials", "status_code": 401,
        "timestamp": "2026-11-22T10:00:00.000Z", "request_id": "5f2c0e8a9b7d4c1e8f3a2b1c0d9e8f7a",
    }})

    detail: str = Field(description="A human sentence")
    error_code: str = Field(description="Machine-readable snake_case code")
    status_code: int
    timestamp: str
    request_id: str | None = None
    errors: list[FieldError] | None = None


class Message(BaseModel):
    model_config = ConfigDict(json_schema_extra={"example": {"message": "Signed out."}})

    message: str


class Page(BaseModel, Generic[T]):
    items: list[T]
    total: int
    page: int
    page_size: int


def error_responses(*codes: int) -> dict[int | str, dict[str, Any]]:
    """Documented error responses for a route, all in the envelope."""
    text = {
        400: "Invalid input", 401: "Not authenticated", 403: "Not allowed", 404: "Not found", 409: "Conflict",
        413: "File too large", 422: "Validation failed", 429: "Rate limited (see Retry-After)",
        502: "Delivery failed", 503: "Service unavailable",
    }
    return {code: {"model": ErrorResponse, "description": text.get(code, "Error")} for code in codes}


def _money_out(value: Decimal) -> float:
    # JSON number for clients; every computation stays in Decimal.
    return float(value)


Money = Annotated[
    Decimal,
    Field(ge=0, max_digits=14, decimal_places=2, description="Rupees, at most 2 decimal places", examples=[45000]),
    PlainSerializer(_money_out, return_type=float, when_used="json"),
]
