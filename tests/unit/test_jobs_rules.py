"""Job backoff: exponential, capped, deterministic."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from app.domain.jobs import Job, JobStatus, backoff_seconds, next_run_at


def test_backoff_doubles_from_the_base_up_to_the_cap():
    assert [backoff_seconds(n, base=5, cap=60) for n in range(1, 7)] == [5, 10, 20, 40, 60, 60]
    assert backoff_seconds(0, base=5, cap=60) == 0
    assert backoff_seconds(10_000, base=5, cap=900) == 900  # no overflow on absurd attempt counts


def test_backoff_is_deterministic_and_gives_the_next_run_time():
    now = datetime(2026, 11, 22, tzinfo=UTC)
    assert {next_run_at(now, 3, base=2, cap=900) for _ in range(20)} == {now + timedelta(seconds=8)}
    assert next_run_at(now, 1, base=0, cap=900) == now  # base 0: retry at once


def test_only_a_failed_job_can_be_retried_and_attempts_are_counted():
    now = datetime(2026, 11, 22, tzinfo=UTC)
    job = Job(id="1", key="k", kind="demo", payload={}, status=JobStatus.FAILED, attempts=3, max_attempts=3,
              run_at=now, created_at=now, updated_at=now)
    assert job.can_retry() and job.attempts_exhausted
    job.status, job.attempts = JobStatus.QUEUED, 2
    assert not job.can_retry() and not job.attempts_exhausted
