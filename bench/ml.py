"""Verification-engine scenarios: HTTP latency beside the bare model time for the same input.

"Bare" is the task from `app/ml/tasks.py` run in this process with the same models, no HTTP,
database or pool. For /kyc/verify it is the model work for that input: OCR and face match one
after the other (the service runs them side by side in two workers, so it can beat "bare").
The ratio HTTP p50 / bare p50 is the pipeline's overhead.
"""

from __future__ import annotations

import base64
import statistics
import time
from pathlib import Path
from typing import Any

import cv2
import httpx
import numpy as np

from app.config import Settings
from app.ml import models, tasks
from app.ml.registry import ModelRegistry
from bench.load import Result, Scenario

API = "/api/v1"
FIXTURE_CLIP = Path(__file__).resolve().parents[1].parent / "shared" / "fixtures" / "liveness" / "videos" / "d12.mp4"


def _jpeg(img: np.ndarray) -> bytes:
    return cv2.imencode(".jpg", img, [cv2.IMWRITE_JPEG_QUALITY, 90])[1].tobytes()


class Inputs:
    """One ID card (rendered), one selfie and 30 frames, as a client would send them."""

    def __init__(self) -> None:
        from skimage import data

        from tests.ml import cards

        self.card = _jpeg(cards.aadhaar_front())  # 1000x630, the reference size
        # A passport: the ICAO specimen when the shared fixtures are there, else one rendered in OCR-B.
        self.passport = self._passport()
        self.selfie = _jpeg(cv2.cvtColor(data.astronaut(), cv2.COLOR_RGB2BGR))
        self.frames = [base64.b64encode(_jpeg(f)).decode() for f in self._frames()]
        self.frames_source = str(FIXTURE_CLIP) if FIXTURE_CLIP.exists() else "astronaut, moved (generated)"

    @staticmethod
    def _passport() -> bytes | None:
        specimen = FIXTURE_CLIP.parents[2] / "documents" / "passport-td3.jpg"
        if specimen.exists():
            return specimen.read_bytes()
        from tests.ml import mrz_cards

        if not mrz_cards.fonts_present():
            return None
        return _jpeg(mrz_cards.render(mrz_cards.person_for("TD3")))

    @staticmethod
    def _frames() -> list[np.ndarray]:
        if FIXTURE_CLIP.exists():  # a real face clip when the shared fixtures are there
            capture = cv2.VideoCapture(str(FIXTURE_CLIP))
            frames = []
            while len(frames) < 90:
                ok, frame = capture.read()
                if not ok:
                    break
                frames.append(frame)
            return frames[0:90:3][:30]
        from skimage import data

        face = cv2.resize(cv2.cvtColor(data.astronaut(), cv2.COLOR_RGB2BGR), (640, 640))[80:560]
        return [np.roll(face, i * 3, axis=1) for i in range(30)]


def bare_p50(fn: Any, runs: int = 7) -> float:
    fn()  # warm
    times = []
    for _ in range(runs):
        start = time.perf_counter()
        fn()
        times.append((time.perf_counter() - start) * 1000)
    return round(statistics.median(times), 1)


class BareModels:
    def __init__(self, inputs: Inputs) -> None:
        self.models = ModelRegistry(models.loaders(Settings(_env_file=None)))
        self.models.load_all()
        self.inputs, self.limits = inputs, tasks.Limits()

    def ocr(self) -> float:
        return bare_p50(lambda: tasks.read_document(self.models, self.inputs.card, None, self.limits))

    def passport_ocr(self) -> float:
        return bare_p50(lambda: tasks.read_document(self.models, self.inputs.passport, None, self.limits))

    def face(self) -> float:
        return bare_p50(lambda: tasks.match_faces(self.models, self.inputs.card, self.inputs.selfie, self.limits))

    def verify(self) -> float:
        face, ocr = self.face(), self.ocr()
        print(f"  bare: face match {face} ms + OCR {ocr} ms", flush=True)
        return round(face + ocr, 1)

    def liveness(self) -> float:
        return bare_p50(lambda: tasks.analyze_frames(self.models, self.inputs.frames, self.limits,
                                                     actions=["blink", "turn_left"]))


def scenarios(base: str, token: str, inputs: Inputs, bare: BareModels) -> list[Scenario]:
    auth = {"Authorization": f"Bearer {token}"}
    verify = httpx.Request("POST", f"{base}{API}/kyc/verify", headers=auth,
                           files={"id_document": ("card.jpg", inputs.card, "image/jpeg"),
                                  "selfie_image": ("selfie.jpg", inputs.selfie, "image/jpeg")})
    ocr = httpx.Request("POST", f"{base}{API}/ocr/extract", headers=auth,
                        files={"document": ("card.jpg", inputs.card, "image/jpeg")})
    health = httpx.Request("GET", f"{base}{API}/health")
    one_at_a_time = {"concurrency": 1, "count": 25, "max_s": 30.0, "warmup_s": 2.0}
    return [
        Scenario("kyc_verify", verify, bare_ms=bare.verify, **one_at_a_time),
        Scenario("ocr_extract", ocr, bare_ms=bare.ocr, **one_at_a_time),
        *([Scenario("ocr_extract_passport", httpx.Request(
            "POST", f"{base}{API}/ocr/extract", headers=auth,
            files={"document": ("passport.jpg", inputs.passport, "image/jpeg")}), bare_ms=bare.passport_ocr,
            **one_at_a_time)] if inputs.passport else []),
        # The unloaded baseline for the next row: the same pace with no model work running.
        Scenario("health_paced", health, concurrency=4, rate=50, count=400, max_s=10.0),
        # Does model work starve the API? /health at a steady 50 req/s while 4 verifications run.
        Scenario("health+4_verifications", health, concurrency=4, rate=50, count=400, max_s=10.0,
                 background=Scenario("  (background verify)", verify, concurrency=4, count=10**6)),
    ]


def liveness_verify(base: str, token: str, inputs: Inputs, bare: BareModels, runs: int = 15) -> Result:
    """Each /liveness/verify spends a challenge, so this one is driven request by request."""
    result = Result("liveness_verify_30", 1, None)
    auth = {"Authorization": f"Bearer {token}"}
    with httpx.Client(base_url=f"{base}{API}", headers=auth, timeout=60) as client:
        for i in range(runs + 2):
            challenge = client.get("/liveness/challenge").json()["challenge_id"]
            start = time.perf_counter()
            r = client.post("/liveness/verify", json={"challenge_id": challenge, "frames": inputs.frames})
            took = time.perf_counter() - start
            if i < 2:  # warm-up
                continue
            result.latencies_ms.append(took * 1000)
            result.requests += 1
            result.errors += r.status_code != 200 or r.json()["status"] not in ("pass", "fail")
            result.seconds += took
    result.bare_ms = bare.liveness()
    return result
