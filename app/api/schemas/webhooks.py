"""Webhook endpoints and delivery attempts as admins see them; never a stored secret."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Any, Self

from pydantic import AfterValidator, AliasChoices, AliasPath, AwareDatetime, ConfigDict, Field

from app.api.schemas.common import Input, Out, UtcDatetime, utc_datetime_in
from app.domain.events import EventType
from app.domain.jobs import JobStatus
from app.domain.webhooks import MAX_URL_LENGTH, WebhookEndpoint

_ID = "6741f0c2a1b2c3d4e5f60730"


class WebhookCreate(Input):
    model_config = ConfigDict(extra="forbid", str_strip_whitespace=True, json_schema_extra={"example": {
        "url": "https://lender.example.com/hooks/kycflow", "events": ["kyc.approved", "loan.disbursed"],
        "description": "Lender back end"}})

    url: str = Field(min_length=1, max_length=MAX_URL_LENGTH,
                     description="https in production, to a public address (checked again before every delivery)")
    events: list[EventType] = Field(min_length=1, max_length=len(EventType), description="Event types to receive")
    description: str = Field("", max_length=500)


class WebhookOut(Out):
    model_config = ConfigDict(json_schema_extra={"example": {
        "id": _ID, "url": "https://lender.example.com/hooks/kycflow", "events": ["kyc.approved"],
        "description": "Lender back end", "enabled": True, "created_at": "2026-11-22T10:00:00.000Z",
        "updated_at": "2026-11-22T10:00:00.000Z", "disabled_at": None, "disabled_reason": None, "failing_since": None,
        "previous_secret_expires_at": None}})

    id: str
    url: str
    events: list[str]
    description: str
    enabled: bool = Field(description="False once deleted: nothing more is sent")
    created_at: UtcDatetime
    updated_at: UtcDatetime
    disabled_at: UtcDatetime | None
    disabled_reason: str | None = Field(description="`admin` (deleted), `gone` (it answered 410) or `failing` "
                                        "(every try failed for WEBHOOK_DISABLE_AFTER_DAYS)")
    failing_since: UtcDatetime | None = Field(description="The first failed try since the last success")
    previous_secret_expires_at: UtcDatetime | None = Field(
        description="After a rotation: until when the previous secret still signs beside the new one")

    @classmethod
    def at(cls, endpoint: WebhookEndpoint, now: datetime, **extra: Any) -> Self:
        return cls.of(endpoint, previous_secret_expires_at=endpoint.previous_secret_expires_at(now), **extra)


class WebhookWithSecret(WebhookOut):
    model_config = ConfigDict(json_schema_extra={"example": {
        "id": _ID, "url": "https://lender.example.com/hooks/kycflow", "events": ["kyc.approved"],
        "description": "Lender back end", "enabled": True, "created_at": "2026-11-22T10:00:00.000Z",
        "updated_at": "2026-11-22T10:00:00.000Z", "disabled_at": None, "disabled_reason": None, "failing_since": None,
        "previous_secret_expires_at": None, "secret": "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw"}})

    secret: str = Field(description="The signing secret (`whsec_...`): shown only now; verify deliveries with it")


class AttemptOut(Out):
    model_config = ConfigDict(json_schema_extra={"example": {
        "id": "6741f0c2a1b2c3d4e5f60740", "event_id": "6741f0c2a1b2c3d4e5f60741", "event_type": "kyc.approved",
        "delivery": "auto", "attempt": 2, "at": "2026-11-22T10:01:00.000Z",
        "url": "https://lender.example.com/hooks/kycflow", "status_code": 500, "duration_ms": 41.7,
        "error": "HTTP 500", "success": False, "next_retry_at": "2026-11-22T10:03:00.000Z"}})

    id: str
    event_id: str = Field(description="Also the `webhook-id` header: the same on every retry and redelivery")
    event_type: str
    delivery: str = Field(description="`auto`, or `redeliver:<id>` for one an admin asked for")
    attempt: int = Field(description="1-based within its delivery")
    at: UtcDatetime
    url: str
    status_code: int | None = Field(description="The receiver's answer; null when none came (timeout, refused)")
    duration_ms: float | None
    error: str | None
    success: bool
    next_retry_at: UtcDatetime | None = Field(description="When the next try is due (the schedule, its jitter and any "
                                              "Retry-After applied); null after a success, a 410 or the last try")


class RedeliveryOut(Out):
    model_config = ConfigDict(json_schema_extra={"example": {
        "event_id": "6741f0c2a1b2c3d4e5f60741", "webhook_id": _ID, "job_id": "6741f0c2a1b2c3d4e5f60750",
        "status": "queued"}})

    event_id: str = Field(validation_alias=AliasPath("payload", "event_id"))
    webhook_id: str = Field(validation_alias=AliasPath("payload", "endpoint_id"))
    job_id: str = Field(validation_alias=AliasChoices("job_id", "id"),
                        description="The delivery job (`GET /admin/jobs`); its tries appear under the attempts")
    status: JobStatus


class ReplayIn(Input):
    model_config = ConfigDict(extra="forbid", json_schema_extra={"example": {"since": "2026-11-22T10:00:00Z"}})

    since: Annotated[AwareDatetime, AfterValidator(utc_datetime_in)] = Field(  # in UTC's years 1-9999
        description="Replay the events whose last try at or after this instant failed for good (with its offset: `Z` or `+05:30`)")


class ReplayOut(Out):
    model_config = ConfigDict(json_schema_extra={"example": {"webhook_id": _ID, "since": "2026-11-22T10:00:00.000Z",
                                                             "queued": 3}})

    webhook_id: str
    since: UtcDatetime
    queued: int = Field(description="Events queued for a new delivery (asked again before they ran: the same ones, "
                                    "not sent twice)")
