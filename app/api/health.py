"""Health: `/health` (the whole picture), and the probes `/health/live` and `/health/ready`."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime
from typing import Any, Literal

from fastapi import APIRouter
from fastapi.responses import JSONResponse
from pydantic import BaseModel, ConfigDict

from app import __version__
from app.api.deps import ContainerDep
from app.api.errors import envelope
from app.api.routing import ExactJsonRoute
from app.api.schemas.common import error_responses
from app.bootstrap import Container


class ModelStatus(BaseModel):
    loaded: bool
    name: str | None
    error: str | None


class HealthOut(BaseModel):
    model_config = ConfigDict(json_schema_extra={"example": {
        "status": "healthy", "version": "1.0.0", "database": {"ok": True, "name": "kycflow"},
        "models": {"face_detector": {"loaded": True, "name": "dlib-hog+dlib-hog+mediapipe", "error": None},
                   "face_matcher": {"loaded": True, "name": "dlib-resnet", "error": None},
                   "ocr_extractor": {"loaded": True, "name": "pp-ocr (rapidocr-ppocrv6-small)", "error": None},
                   "liveness_detector": {"loaded": True, "name": "mediapipe-facemesh", "error": None}},
        "timestamp": "2026-11-22T12:00:00Z"}})

    status: Literal["healthy", "degraded"]
    version: str
    database: dict[str, Any]
    models: dict[str, ModelStatus]
    timestamp: str


router = APIRouter(tags=["Health"], route_class=ExactJsonRoute)


@router.get("/health", response_model=HealthOut, summary="Service health",
            responses={503: {"model": HealthOut, "description": "Database or a model is not usable"}})
async def health(c: ContainerDep) -> Any:
    """200 when the database and every model are usable, else 503 with `status: degraded`."""
    database = await c.database_status()
    models = c.ml.status()
    ok = database["ok"] and _models_ok(c, models)
    body = HealthOut(
        status="healthy" if ok else "degraded", version=__version__, database=database,
        models={k: ModelStatus(**v) for k, v in models.items()},
        timestamp=datetime.now(UTC).isoformat(timespec="seconds").replace("+00:00", "Z"),
    )
    return JSONResponse(body.model_dump(), status_code=200 if ok else 503)


def _models_ok(c: Container, models: dict[str, dict[str, Any]]) -> bool:
    # Not when a model failed to load, or is still loading at start-up (ML_PRELOAD; else it loads on first use).
    return all(m["loaded"] or (m["error"] is None and not c.settings.ml_preload) for m in models.values())


class LiveOut(BaseModel):
    status: Literal["alive"]


class ReadyOut(BaseModel):
    model_config = ConfigDict(json_schema_extra={"example": {
        "status": "ready", "checks": {"database": True, "models": True, "jobs": True}}})

    status: Literal["ready"]
    checks: dict[str, bool]


@router.get("/health/live", response_model=LiveOut, summary="Liveness probe")
async def live() -> Any:
    """200 while the process answers. Reads nothing: a database blip must not get the instance restarted."""
    return {"status": "alive"}


@router.get("/health/ready", response_model=ReadyOut, summary="Readiness probe", responses=error_responses(
    (503, "not_ready", "Not ready: models.")))
async def ready(c: ContainerDep) -> Any:
    """200 when the database answers a ping (within 2 s), the models are loaded and the job workers run
    (where JOB_WORKERS > 0); else 503 `not_ready`, naming each part that is not in `errors`."""
    try:
        database = (await asyncio.wait_for(c.database_status(), 2))["ok"]
    except TimeoutError:
        database = False
    checks = {"database": database, "models": _models_ok(c, c.ml.status()),
              "jobs": c.settings.job_workers == 0 or c.jobs.running}
    failing = [part for part, ok in checks.items() if not ok]
    if failing:
        return envelope(503, "not_ready", f"Not ready: {', '.join(failing)}.",
                        [{"loc": ["checks", part], "msg": f"{part} not ready", "type": "not_ready"} for part in failing])
    return {"status": "ready", "checks": checks}
