"""Durable jobs as admins see them."""

from __future__ import annotations

from typing import Any

from pydantic import ConfigDict, Field

from app.api.schemas.common import Out, UtcDatetime
from app.domain.jobs import JobStatus


class JobOut(Out):
    model_config = ConfigDict(json_schema_extra={"example": {
        "id": "6741f0c2a1b2c3d4e5f60720", "kind": "profile_risk",
        "key": "profile_risk:6741f0c2a1b2c3d4e5f60718:2026-11-22T10:00:00+00:00",
        "payload": {"user_id": "6741f0c2a1b2c3d4e5f60718"}, "status": "failed", "attempts": 5, "max_attempts": 5,
        "run_at": "2026-11-22T10:15:00.000Z", "last_error": "TimeoutError: timeout after 300 s",
        "lease_owner": None, "lease_until": None, "created_at": "2026-11-22T10:00:00.000Z",
        "updated_at": "2026-11-22T10:31:00.000Z", "finished_at": "2026-11-22T10:31:00.000Z"}})

    id: str
    kind: str = Field(description="Which handler runs it")
    key: str = Field(description="Caller-given; one job per key")
    payload: dict[str, Any]
    status: JobStatus
    attempts: int = Field(description="Runs so far")
    max_attempts: int
    run_at: UtcDatetime = Field(description="When it is (or was) due")
    last_error: str | None
    lease_owner: str | None = Field(description="The worker holding it while running")
    lease_until: UtcDatetime | None
    created_at: UtcDatetime
    updated_at: UtcDatetime
    finished_at: UtcDatetime | None
