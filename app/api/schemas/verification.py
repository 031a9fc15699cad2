"""Verification service bodies, field for field as the ML API document describes them."""

from __future__ import annotations

from typing import Annotated, Literal

from pydantic import AfterValidator, AliasChoices, BaseModel, ConfigDict, Field

from app.api.schemas.common import Input, Out, UtcDatetime

# Face figures as the ML API documented them: 4 decimal places.
Rounded = Annotated[float, AfterValidator(lambda value: round(value, 4))]


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


class CheckDigitResult(BaseModel):
    """One ICAO 9303 check digit as printed on the document and as computed."""

    field: Literal["document_number", "date_of_birth", "expiry_date", "personal_number", "composite"]
    printed: str = Field(description="The digit on the document; `<` for an empty optional field")
    computed: int = Field(ge=0, le=9)
    valid: bool
    repaired: bool = Field(
        False, description="OCR confusions in digit positions (O/0, I/1, B/8, S/5, Z/2, Q/0, D/0) were undone "
        "and this digit (and the composite, where the format has one) confirms the result")


class PanStructure(BaseModel):
    """A PAN's structure: five letters, four digits, a letter; the 4th letter is the holder type."""

    valid: bool
    holder_type_code: str | None = Field(None, examples=["P"])
    holder_type: str | None = Field(None, examples=["individual", "company"])


class DocumentValidation(BaseModel):
    """What the service verified on a document, so integrators need not re-derive it.

    Shared by `POST /ocr/extract` and the KYC document upload. `number_valid` is true only
    when every check covering the number passed (MRZ: its own check digit, the composite
    and every other digit; Aadhaar: Verhoeff; PAN, licence, voter ID: format); it is null
    when no number could be checked (none read, or printed masked as on e-Aadhaar)."""

    model_config = ConfigDict(json_schema_extra={"example": {
        "document_type": "passport", "detected_type": "passport", "type_mismatch": False, "format": "TD3",
        "number_found": True, "number_valid": True, "number_masked": False, "checksum": "mrz",
        "check_digits": [
            {"field": "document_number", "printed": "6", "computed": 6, "valid": True, "repaired": False},
            {"field": "date_of_birth", "printed": "2", "computed": 2, "valid": True, "repaired": False},
            {"field": "expiry_date", "printed": "9", "computed": 9, "valid": True, "repaired": False},
            {"field": "personal_number", "printed": "1", "computed": 1, "valid": True, "repaired": False},
            {"field": "composite", "printed": "0", "computed": 0, "valid": True, "repaired": False}],
        "verhoeff": None, "pan": None, "issuing_country": "UTO", "expiry_date": "2032-04-15",
        "expiry_status": "valid", "mrz_reread": False}})

    document_type: str = Field(description="The type the document was parsed as (declared, else detected)")
    detected_type: str = Field(description="The type the text alone suggests")
    type_mismatch: bool = Field(description="A type was declared and the text says another")
    format: Literal["TD1", "TD2", "TD3", "MRV-A", "MRV-B"] | None = Field(
        None, description="ICAO 9303 machine-readable zone format (null when the document has no MRZ)")
    number_found: bool
    number_valid: bool | None
    number_masked: bool = Field(False, description="The document prints its number masked (e-Aadhaar `XXXX XXXX 1234`)")
    checksum: Literal["mrz", "verhoeff", "format", "none"] = Field(description="The rule that checked the number")
    check_digits: list[CheckDigitResult] = Field(default_factory=list, description="MRZ documents: every check digit")
    verhoeff: bool | None = Field(None, description="Aadhaar: the Verhoeff check digit passed")
    pan: PanStructure | None = None
    issuing_country: str | None = Field(None, description="MRZ issuing state or organisation (ICAO 3-letter code)")
    expiry_date: str | None = None
    expiry_status: Literal["valid", "expired", "unknown", "not_applicable"] = Field(
        description="`not_applicable` for documents that carry no expiry (Aadhaar, PAN, voter ID)")
    mrz_reread: bool = Field(False, description="The MRZ band was read a second time, enlarged")


class SimilarityMetrics(Out):
    cosine_similarity: Rounded
    euclidean_distance: Rounded


class FaceVerificationDetails(Out):
    verified: bool
    confidence: Rounded
    similarity_metrics: SimilarityMetrics
    threshold_used: float
    message: str


class KycVerifyResponse(Out):
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
        "validation": {"document_type": "pan", "detected_type": "pan", "type_mismatch": False, "format": None,
                       "number_found": True, "number_valid": True, "number_masked": False, "checksum": "format",
                       "check_digits": [], "verhoeff": None,
                       "pan": {"valid": True, "holder_type_code": "P", "holder_type": "individual"},
                       "issuing_country": None, "expiry_date": None, "expiry_status": "not_applicable",
                       "mrz_reread": False},
        "processing_time_ms": 352, "timestamp": "2026-11-22T12:00:00Z"}})

    ocr_data: OcrData
    validation: DocumentValidation
    processing_time_ms: int
    timestamp: str


class ChallengeResponse(Out):
    model_config = ConfigDict(json_schema_extra={"example": {
        "challenge_id": "84e2b558de1c6c144e5c0e40ce669787", "multi_challenge": True,
        "challenge_types": ["turn_left", "blink"], "questions": ["turn face left", "blink eyes"],
        "instructions": ["Turn your face to the left", "Blink your eyes once"], "timestamp": "2026-11-22T12:00:00.000Z",
        "expires_at": "2026-11-22T12:02:00.000Z", "nonce": "fec5c336d8d2ff50",
        "signature": "3603016c7660b28937af34d8f54a1b949afecc735e4b3083d29950ae44b9131a"}})

    challenge_id: str = Field(validation_alias=AliasChoices("challenge_id", "id"))
    multi_challenge: bool = True
    challenge_types: list[Literal["blink", "turn_left", "turn_right"]] = Field(
        validation_alias=AliasChoices("challenge_types", "actions"))
    questions: list[str]
    instructions: list[str]
    timestamp: UtcDatetime = Field(validation_alias=AliasChoices("timestamp", "created_at"),
                                   description="When it was issued (ISO 8601 UTC, as every time in the API)")
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


class LivenessVerifyResponse(Out):
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
