"""Verification service bodies, field for field as the ML API document describes them."""

from __future__ import annotations

from typing import Annotated, Literal

from pydantic import BaseModel, ConfigDict, Field

from app.api.schemas.common import Input, UtcDatetime


class OcrFields(BaseModel):
    """All optional; document numbers are always masked."""

    full_name: str | None = None
    date_of_birth: str | None = Field(None, description="ISO date, or a year when only the year is printed")
    document_number: str | None = Field(None, examples=["XXXX XXXX 1234"])
    nationality: str | None = None
    issue_date: str | None = None
    expiry_date: str | None = None
    place_of_birth: str | None = None
    address: str | None = None
    gender: str | None = Field(None, examples=["M", "F"])
    father_name: str | None = None


class OcrData(BaseModel):
    document_type: str = Field(examples=["aadhaar", "pan", "passport", "national_id", "generic"])
    confidence: float = Field(ge=0, le=1)
    extracted_text: str = Field(description="Raw text with document numbers masked")
    fields: OcrFields


class SimilarityMetrics(BaseModel):
    cosine_similarity: float
    euclidean_distance: float


class FaceVerificationDetails(BaseModel):
    verified: bool
    confidence: float
    similarity_metrics: SimilarityMetrics
    threshold_used: float
    message: str


class KycVerifyResponse(BaseModel):
    model_config = ConfigDict(json_schema_extra={"example": {
        "verification_status": "approved", "confidence_score": 0.89, "face_match_score": 0.87,
        "ocr_data": {"document_type": "passport", "confidence": 0.92, "extracted_text": "P<UTOERIKSSON<<ANNA...",
                     "fields": {"full_name": "ANNA MARIA ERIKSSON", "date_of_birth": "1974-08-12",
                                "document_number": "XXXXX902C", "nationality": "UTO"}},
        "processing_time_ms": 640, "timestamp": "2026-11-22T12:00:00Z",
        "face_verification_details": {"verified": True, "confidence": 0.87,
                                      "similarity_metrics": {"cosine_similarity": 0.95, "euclidean_distance": 0.31},
                                      "threshold_used": 0.93, "message": "Faces match (95.0% similarity)"}}})

    verification_status: Literal["approved", "rejected", "pending", "error"]
    confidence_score: float = Field(ge=0, le=1, description="60% face + 40% OCR")
    face_match_score: float = Field(ge=0, le=1)
    ocr_data: OcrData
    processing_time_ms: int
    timestamp: str
    face_verification_details: FaceVerificationDetails


class OcrExtractResponse(BaseModel):
    model_config = ConfigDict(json_schema_extra={"example": {
        "ocr_data": {"document_type": "pan", "confidence": 0.93, "extracted_text": "INCOME TAX DEPARTMENT ...",
                     "fields": {"full_name": "RAHUL KUMAR SHARMA", "date_of_birth": "1990-08-15",
                                "document_number": "XXXXXX234K", "father_name": "SURESH KUMAR SHARMA"}},
        "processing_time_ms": 352, "timestamp": "2026-11-22T12:00:00Z"}})

    ocr_data: OcrData
    processing_time_ms: int
    timestamp: str


class ChallengeResponse(BaseModel):
    model_config = ConfigDict(json_schema_extra={"example": {
        "challenge_id": "84e2b558de1c6c144e5c0e40ce669787", "multi_challenge": True,
        "challenge_types": ["turn_left", "blink"], "questions": ["turn face left", "blink eyes"],
        "instructions": ["Turn your face to the left", "Blink your eyes once"], "timestamp": "2026-11-22T12:00:00.000Z",
        "expires_at": "2026-11-22T12:02:00.000Z", "nonce": "fec5c336d8d2ff50",
        "signature": "3603016c7660b28937af34d8f54a1b949afecc735e4b3083d29950ae44b9131a"}})

    challenge_id: str
    multi_challenge: bool = True
    challenge_types: list[Literal["blink", "turn_left", "turn_right"]]
    questions: list[str]
    instructions: list[str]
    timestamp: UtcDatetime = Field(description="When it was issued (ISO 8601 UTC, as every time in the API)")
    expires_at: UtcDatetime = Field(description="120 s later; after that verify answers `expired`")
    nonce: str
    signature: str = Field(description="HMAC-SHA256 over id, actions, nonce and expiry")


# Base64 JPEG/PNG or a data URL; the decoded size is checked against MAX_FRAME_BYTES as well.
Frame = Annotated[str, Field(min_length=1, max_length=4 * 1024 * 1024, description="Base64 JPEG/PNG or a data URL")]


class LivenessVerifyRequest(Input):
    model_config = ConfigDict(json_schema_extra={"example": {"challenge_id": "84e2b558de1c6c144e5c0e40ce669787",
                                          "frames": ["data:image/jpeg;base64,/9j/4AAQ..."]}})

    challenge_id: str = Field(min_length=1, max_length=64)
    frames: list[Frame] = Field(description="At least 10 frames, at most 60", max_length=60)


class DetectionResults(BaseModel):
    blinks: int
    orientation: str | None
    orientations: list[str | None]
    face_detected: bool


class LivenessVerifyResponse(BaseModel):
    model_config = ConfigDict(json_schema_extra={"example": {
        "challenge_id": "84e2b558de1c6c144e5c0e40ce669787", "status": "pass",
        "message": "All challenges completed: turn face left, blink eyes",
        "detection_results": {"blinks": 1, "orientation": "left", "orientations": [None, "left", "left", None],
                              "face_detected": True},
        "processing_time_ms": 258, "timestamp": "2026-11-22T12:00:00Z"}})

    challenge_id: str
    status: Literal["pass", "fail", "expired", "invalid"]
    message: str
    detection_results: DetectionResults
    processing_time_ms: int
    timestamp: str


class LivenessDetectRequest(Input):
    model_config = ConfigDict(json_schema_extra={"example": {"frames": ["data:image/jpeg;base64,/9j/4AAQ..."], "initial_blink_count": 0}})

    frames: list[Frame] = Field(min_length=1, max_length=60)
    initial_blink_count: int = Field(0, ge=0, le=10_000)


class LivenessDetectResponse(BaseModel):
    model_config = ConfigDict(json_schema_extra={"example": {
        "total_blinks": 2, "final_blink_count": 2, "orientations": [None, None, "left", "left", None],
        "face_detection_ratio": 1.0, "results": [{"index": 0, "face_detected": True, "ear": 0.31, "yaw": 2.5,
                                                  "orientation": None, "eyes_closed": False}],
        "frame_count": 30, "processing_time_ms": 240, "timestamp": "2026-11-22T12:00:00Z"}})

    total_blinks: int
    final_blink_count: int
    orientations: list[str | None]
    face_detection_ratio: float
    results: list[dict]
    frame_count: int
    processing_time_ms: int
    timestamp: str
