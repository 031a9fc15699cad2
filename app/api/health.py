"""Liveness and readiness in one answer."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any, Literal

from fastapi import APIRouter
from fastapi.responses import JSONResponse
from pydantic import BaseModel, ConfigDict

from app import __version__
from app.api.deps import ContainerDep
from app.api.routing import ExactJsonRoute


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
    models = c.model_status()
    # Degraded when a model failed to load, or is still loading at start-up (ML_PRELOAD).
    models_ok = all(m["loaded"] or (m["error"] is None and not c.settings.ml_preload) for m in models.values())
    ok = database["ok"] and models_ok
    body = HealthOut(
        status="healthy" if ok else "degraded", version=__version__, database=database,
        models={k: ModelStatus(**v) for k, v in models.items()},
        timestamp=datetime.now(UTC).isoformat(timespec="seconds").replace("+00:00", "Z"),
    )
    return JSONResponse(body.model_dump(), status_code=200 if ok else 503)
