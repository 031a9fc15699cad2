"""Durable jobs (collection `jobs`): work that outlives a request, claimed under a lease. No I/O."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta
from enum import StrEnum
from typing import Any

from app.domain.errors import Conflict, NotFound


class JobStatus(StrEnum):
    QUEUED = "queued"    # waiting for `run_at`
    RUNNING = "running"  # claimed: `lease_owner` holds it until `lease_until`
    DONE = "done"
    FAILED = "failed"    # attempts used up; an admin may retry it


@dataclass
class Job:
    id: str
    key: str  # caller-given, unique: the same logical job is queued once
    kind: str
    payload: dict[str, Any]
    status: JobStatus
    attempts: int  # claims so far, the running one included
    max_attempts: int
    run_at: datetime
    created_at: datetime
    updated_at: datetime
    lease_owner: str | None = None
    lease_until: datetime | None = None
    last_error: str | None = None
    finished_at: datetime | None = None

    @property
    def attempts_exhausted(self) -> bool:
        return self.attempts >= self.max_attempts

    def can_retry(self) -> bool:
        return self.status is JobStatus.FAILED


def backoff_seconds(attempt: int, *, base: float, cap: float) -> float:
    """Delay before the next try after `attempt` (1-based) failed: base·2^(attempt-1), at most `cap`.
    No jitter: workers already spread out by when they claim, and tests can predict `run_at`."""
    if attempt < 1:
        return 0.0
    return float(min(cap, base * 2 ** min(attempt - 1, 62)))


def next_run_at(now: datetime, attempt: int, *, base: float, cap: float) -> datetime:
    return now + timedelta(seconds=backoff_seconds(attempt, base=base, cap=cap))


class JobNotFound(NotFound):
    """No such job."""

    code = "job_not_found"


class JobNotFailed(Conflict):
    """Only a failed job can be retried."""

    code = "job_not_failed"
