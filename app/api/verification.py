"""Stateless verification routes: document + selfie, OCR, liveness. Bearer or API key."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Annotated

from fastapi import APIRouter, File, Form, UploadFile

from app.api.deps import LivenessCaller, OcrCaller, SettingsDep, VerificationServiceDep, VerifyCaller
from app.api.middleware import body_limit
from app.api.model_routes import RUNS_MODELS
from app.api.routing import ExactJsonRoute
from app.api.schemas.common import Overlay, error_responses
from app.api.schemas.verification import (
    ChallengeResponse,
    DocumentValidation,
    KycVerifyResponse,
    LivenessDetectRequest,
    LivenessDetectResponse,
    LivenessVerifyRequest,
    LivenessVerifyResponse,
    OcrData,
    OcrExtractResponse,
)
from app.domain import errors as e
from app.domain.errors import FileTooLarge

router = APIRouter(tags=["Verification"], route_class=ExactJsonRoute)
CALLER = (401, "not_authenticated", "Send a bearer access token or an X-API-Key.")
BAD_KEY = (401, "invalid_api_key", "The API key is invalid or revoked.")
ML_DOWN = (e.ModelsUnavailable, (503, "ml_busy", "The verification engine is busy; retry shortly."))
# An API key without this route's scope; too many requests in the window, or in flight at once.
SCOPE = (403, "insufficient_scope", "This API key lacks the scope this route needs.")
RATE_LIMITED = (429, "rate_limited", "Too many requests; try again later.")
LIMITS = (RATE_LIMITED, (429, "too_many_concurrent", "At most 4 of your requests that run a model may run at once."))
ML_ERRORS = error_responses(e.InvalidImage, e.NoFaceDetected, CALLER, BAD_KEY, e.AccountSuspended, SCOPE,
                            (413, "file_too_large", "The file is larger than 10 MB."), 422, *LIMITS, *ML_DOWN)
FRAME_ERRORS = error_responses((400, "not_enough_frames", "At least 10 frames are needed."), e.InvalidImage, CALLER,
                               BAD_KEY, e.AccountSuspended, SCOPE, 413, 422, *LIMITS, *ML_DOWN)


def _now() -> str:
    return datetime.now(UTC).isoformat(timespec="seconds").replace("+00:00", "Z")


async def read_upload(upload: UploadFile, limit: int) -> bytes:
    """Read at most `limit` bytes: a larger upload is refused without holding it all."""
    data = await upload.read(limit + 1)
    if len(data) > limit:
        raise FileTooLarge(f"The file is larger than {limit / 1048576:.0f} MB.", max_bytes=limit)
    return data


@router.post("/kyc/verify", response_model=KycVerifyResponse, summary="Verify an ID document against a selfie",
             responses=ML_ERRORS, dependencies=[RUNS_MODELS])
async def verify(
    _: VerifyCaller, settings: SettingsDep, service: VerificationServiceDep,
    id_document: Annotated[UploadFile, File(description="ID card or passport: JPG, PNG or PDF, at most 10 MB")],
    selfie_image: Annotated[UploadFile, File(description="Selfie: JPG or PNG")],
) -> KycVerifyResponse:
    """Face match plus OCR in one call; `verification_status` comes from configurable thresholds."""
    limit = settings.max_upload_bytes
    result = await service.verify(await read_upload(id_document, limit), await read_upload(selfie_image, limit))
    details = Overlay(result.face, {"similarity_metrics": result.face})  # the metrics nest the match's own figures
    return KycVerifyResponse.of(result, timestamp=_now(), face_verification_details=details)


@router.post("/ocr/extract", response_model=OcrExtractResponse, summary="Read a document's text and fields",
             responses=ML_ERRORS, dependencies=[RUNS_MODELS])
async def extract(
    _: OcrCaller, settings: SettingsDep, service: VerificationServiceDep,
    document: Annotated[UploadFile, File(description="JPG, PNG or PDF (first page), at most 10 MB")],
    document_type: Annotated[str | None, Form(
        max_length=16, pattern="^(aadhaar|pan|passport|driving_licence|voter_id|national_id|generic)$",
        examples=[""],  # else Swagger UI fills in a type from the pattern and skips classification
        description="Skip classification and parse as this type")] = None,
) -> OcrExtractResponse:
    """Classifies the document (unless told) and parses its fields; numbers come back masked."""
    data, took = await service.extract(await read_upload(document, settings.max_upload_bytes), document_type)
    validation = DocumentValidation(**data.pop("validation"))
    return OcrExtractResponse(ocr_data=OcrData(**data), validation=validation, processing_time_ms=took, timestamp=_now())


@router.get("/liveness/challenge", response_model=ChallengeResponse, summary="Get a liveness challenge",
            responses=error_responses(CALLER, BAD_KEY, e.AccountSuspended, SCOPE, RATE_LIMITED))
async def challenge(caller: LivenessCaller, service: VerificationServiceDep) -> ChallengeResponse:
    """Two random actions, HMAC-signed, valid 120 s, usable once, by the caller who asked for it."""
    ch = await service.new_challenge(caller)
    return ChallengeResponse.of(ch, **service.describe(ch))


@router.post("/liveness/verify", response_model=LivenessVerifyResponse, summary="Check frames against a challenge",
             responses=FRAME_ERRORS, dependencies=[RUNS_MODELS])
@body_limit("frames")
async def liveness_verify(body: LivenessVerifyRequest, caller: LivenessCaller,
                          service: VerificationServiceDep) -> LivenessVerifyResponse:
    """The actions must appear in the order asked, by the same live face; only the caller who asked
    for the challenge may answer it."""
    out = await service.verify_liveness(body.challenge_id, body.frames, caller)
    return LivenessVerifyResponse.of(out, timestamp=_now())


@router.post("/liveness/detect", response_model=LivenessDetectResponse, summary="Count blinks and head turns",
             responses=FRAME_ERRORS, dependencies=[RUNS_MODELS])
@body_limit("frames")
async def liveness_detect(body: LivenessDetectRequest, _: LivenessCaller,
                          service: VerificationServiceDep) -> LivenessDetectResponse:
    """Batch detection without a challenge, continuing from `initial_blink_count`."""
    summary = await service.detect_liveness(body.frames, body.initial_blink_count)
    return LivenessDetectResponse(**summary, timestamp=_now())
