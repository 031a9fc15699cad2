"""Stateless verification: document + selfie, OCR, and liveness challenges.

Every pixel operation runs as a task in the ML gateway's pool; this class only
decides what to run, in which order, and what the results mean.
"""

from __future__ import annotations

import asyncio
import time
from dataclasses import dataclass
from datetime import timedelta
from typing import Any, Literal

from app.config import Settings
from app.domain.errors import InvalidInput
from app.domain.liveness_challenges import INSTRUCTIONS, QUESTIONS, Challenge, new_challenge, signature_valid
from app.ml import tasks
from app.ml.gateway import MlGateway
from app.ml.liveness_pool import analyze_liveness
from app.repositories.liveness_challenges import LivenessChallengeRepository
from app.services.clock import Clock

FACE_WEIGHT, OCR_WEIGHT = 0.6, 0.4  # as the ML service documented: 60% face + 40% OCR


@dataclass
class KycVerification:
    verification_status: Literal["approved", "rejected", "pending", "error"]
    confidence_score: float
    face_match_score: float
    ocr_data: dict[str, Any]
    face: Any  # FaceMatch
    processing_time_ms: int


@dataclass
class LivenessOutcome:
    challenge_id: str
    status: str
    message: str
    detection_results: dict[str, Any]
    processing_time_ms: int


def _ms(start: float) -> int:
    return int((time.perf_counter() - start) * 1000)


class VerificationService:
    def __init__(self, settings: Settings, ml: MlGateway, challenges: LivenessChallengeRepository,
                 clock: Clock) -> None:
        self.s, self.ml, self.challenges, self.clock = settings, ml, challenges, clock
        self._key = settings.resolve_jwt_secret()
        self.limits = tasks.Limits(settings.max_upload_bytes, settings.max_image_pixels, settings.max_frame_bytes)

    # --- document + selfie ----------------------------------------------------------------

    async def verify(self, document: bytes, selfie: bytes) -> KycVerification:
        start = time.perf_counter()
        # OCR and face matching are independent: run them side by side in the pool.
        reading, face = await asyncio.gather(
            self.ml.run(tasks.read_document, document, None, self.limits),
            self.ml.run(tasks.match_faces, document, selfie, self.limits),
        )
        confidence = round(FACE_WEIGHT * face.confidence + OCR_WEIGHT * reading.confidence, 4)
        status: Literal["approved", "rejected", "pending", "error"]
        if not face.verified or confidence < self.s.verify_reject_threshold:
            status = "rejected"
        elif confidence >= self.s.verify_approve_threshold:
            status = "approved"
        else:
            status = "pending"  # plausible but not confident: a person should look
        return KycVerification(verification_status=status, confidence_score=confidence,
                               face_match_score=round(face.confidence, 4), ocr_data=reading.ocr_data(), face=face,
                               processing_time_ms=_ms(start))

    async def extract(self, document: bytes, document_type: str | None) -> tuple[dict[str, Any], int]:
        start = time.perf_counter()
        reading = await self.ml.run(tasks.read_document, document, document_type, self.limits)
        return reading.ocr_data(), _ms(start)

    # --- liveness -------------------------------------------------------------------------

    def _check_frame_count(self, frames: list[str]) -> None:
        if len(frames) > self.s.max_frames:
            raise InvalidInput(f"At most {self.s.max_frames} frames are accepted.", code="too_many_frames")

    async def new_challenge(self, caller: str) -> Challenge:
        """A challenge only `caller` (as `scoped_caller` names it) may answer."""
        ttl = timedelta(seconds=self.s.liveness_challenge_ttl_seconds)
        challenge = new_challenge(self._key, self.clock.now(), ttl, caller)
        await self.challenges.add(challenge)
        return challenge

    @staticmethod
    def describe(challenge: Challenge) -> dict[str, Any]:
        return {"questions": [QUESTIONS[a] for a in challenge.actions],
                "instructions": [INSTRUCTIONS[a] for a in challenge.actions]}

    async def verify_liveness(self, challenge_id: str, frames: list[str], caller: str) -> LivenessOutcome:
        start = time.perf_counter()
        now = self.clock.now()
        challenge = await self.challenges.get(challenge_id)
        empty: dict[str, Any] = {"blinks": 0, "orientation": None, "orientations": [], "face_detected": False}
        # Another caller's challenge reads exactly as an unknown one: it says nothing about it.
        if challenge is None or not signature_valid(self._key, challenge) or not challenge.issued_to(caller):
            return LivenessOutcome(challenge_id, "invalid", "Challenge not found. Please generate a new challenge.",
                                   empty, _ms(start))
        if challenge.used_at is not None:
            return LivenessOutcome(challenge_id, "invalid", "This challenge was already used.", empty, _ms(start))
        if challenge.expired(now):
            return LivenessOutcome(challenge_id, "expired", "This challenge has expired. Please generate a new one.",
                                   empty, _ms(start))
        if len(frames) < 10:
            raise InvalidInput("At least 10 frames are needed.", code="not_enough_frames")
        self._check_frame_count(frames)
        analysis, verdict = await analyze_liveness(self.ml, frames, self.limits, actions=challenge.actions)
        assert verdict is not None  # asked with actions: there is always a verdict
        passed, message = verdict
        # Claimed only once there is a verdict: a bad frame, ml_busy or a timeout leaves it usable
        # for the retry; of two parallel attempts, only the first to claim gets an answer.
        if not await self.challenges.mark_used(challenge_id, caller, self.clock.now(), passed=passed):
            return LivenessOutcome(challenge_id, "invalid", "This challenge was already used.", empty, _ms(start))
        results = {"blinks": analysis.blinks, "orientation": analysis.orientation,
                   "orientations": analysis.orientations, "face_detected": analysis.face_detected}
        return LivenessOutcome(challenge_id, "pass" if passed else "fail", message, results, _ms(start))

    async def detect_liveness(self, frames: list[str], initial_blink_count: int) -> dict[str, Any]:
        """Blinks and head turns in a batch, continuing a running blink count."""
        start = time.perf_counter()
        self._check_frame_count(frames)
        analysis, _ = await analyze_liveness(self.ml, frames, self.limits, initial_blink_count=initial_blink_count,
                                           min_frames=1)
        return {"total_blinks": analysis.blinks, "final_blink_count": analysis.total_blinks,
                "orientations": analysis.orientations, "face_detection_ratio": analysis.face_detection_ratio,
                "results": [frame.as_dict() for frame in analysis.frames], "frame_count": analysis.frame_count,
                "processing_time_ms": _ms(start)}
