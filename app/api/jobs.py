"""Admin view of the durable jobs: what failed, and a retry."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Query

from app.api.deps import ClientDep, JobServiceDep, allow
from app.api.routing import ExactJsonRoute
from app.api.schemas.common import Page, PageNo, PageSize, error_responses
from app.api.schemas.jobs import JobOut
from app.domain.jobs import JobStatus
from app.domain.pages import PageRequest
from app.services.auth import Principal

router = APIRouter(tags=["Admin"], route_class=ExactJsonRoute)
Admin = Annotated[Principal, allow("jobs:manage")]


@router.get("/admin/jobs", response_model=Page[JobOut], summary="Browse background jobs",
            responses=error_responses(401, 403, 422))
async def list_jobs(
    admin: Admin, jobs: JobServiceDep, client: ClientDep,
    status: Annotated[JobStatus | None, Query(description="queued, running, done or failed")] = None,
    page: PageNo = 1, page_size: PageSize = 20,
) -> Page[JobOut]:
    """Admins; most recently changed first. `status=failed` lists the jobs waiting for a retry."""
    found = await jobs.list(status=status, page=PageRequest(page, page_size), actor=admin.user, client=client)
    return Page.of(found, JobOut.of)


@router.post("/admin/jobs/{job_id}/retry", response_model=JobOut, summary="Retry a failed job",
             responses=error_responses(401, 403, 404, 409))
async def retry_job(job_id: str, admin: Admin, jobs: JobServiceDep, client: ClientDep) -> JobOut:
    """Admins; queues a `failed` job again with fresh attempts (409 `job_not_failed` otherwise)."""
    return JobOut.of(await jobs.retry(job_id, actor=admin.user, client=client))
