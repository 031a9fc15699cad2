"""`GET /metrics` on the API port (Prometheus text), for a scraper holding METRICS_TOKEN."""

from __future__ import annotations

import hmac

from fastapi import APIRouter, Request, Response
from prometheus_client import CONTENT_TYPE_LATEST
from starlette.exceptions import HTTPException

from app import metrics
from app.api.deps import ContainerDep
from app.domain.errors import Unauthenticated

router = APIRouter(include_in_schema=False)  # for operators, not integrators: not in the API docs


@router.get("/metrics")
async def prometheus_metrics(request: Request, c: ContainerDep) -> Response:
    """Without METRICS_TOKEN the route answers like an unknown path (404); with it, a bearer token is needed (401)."""
    token = c.settings.metrics_token
    if token is None:
        raise HTTPException(404, "Not Found")
    scheme, _, given = request.headers.get("authorization", "").partition(" ")
    if scheme.lower() != "bearer" or not hmac.compare_digest(given.strip().encode(), token.get_secret_value().encode()):
        raise Unauthenticated("/metrics needs the bearer token set in METRICS_TOKEN.")
    return Response(await metrics.exposition(c.metrics_figures), media_type=CONTENT_TYPE_LATEST)
