"""/kyc/verify and /liveness/* over HTTP with the real face and face-mesh models."""

from __future__ import annotations

import base64
from datetime import datetime

import cv2
import numpy as np
import pytest
from skimage import data

from tests.conftest import bearer
from tests.integration.test_verification_api import encode
from tests.ml import cards
from tests.ml.face_fixtures import read_video, require_fixtures


def astronaut() -> np.ndarray:
    return cv2.cvtColor(data.astronaut(), cv2.COLOR_RGB2BGR)


def data_url(img: np.ndarray) -> str:
    return "data:image/jpeg;base64," + base64.b64encode(encode(img)).decode()


@pytest.fixture
async def caller(api, email):
    return bearer(await api.customer(email))


async def test_verify_matches_the_card_photo_to_the_selfie(api, caller):
    card = encode(cards.aadhaar_front())
    r = await api.client.post("/kyc/verify", headers=caller,
                              files={"id_document": ("card.jpg", card, "image/jpeg"),
                                     "selfie_image": ("me.jpg", encode(astronaut()), "image/jpeg")})
    assert r.status_code == 200, r.text
    body = r.json()
    assert set(body) == {"verification_status", "confidence_score", "face_match_score", "ocr_data",
                         "processing_time_ms", "timestamp", "face_verification_details"}
    face = body["face_verification_details"]
    assert face["verified"] is True and face["threshold_used"] == 0.93
    assert face["similarity_metrics"]["cosine_similarity"] > 0.95
    assert body["ocr_data"]["document_type"] == "aadhaar"
    assert body["ocr_data"]["fields"]["document_number"].startswith("XXXX XXXX ")
    expected = round(0.6 * body["face_match_score"] + 0.4 * body["ocr_data"]["confidence"], 4)
    assert body["confidence_score"] == pytest.approx(expected, abs=1e-3)
    assert body["verification_status"] == "approved"


async def test_verify_rejects_a_different_person(api, caller):
    other = cv2.imread(str(require_fixtures("faces", "face_recognition", "obama.jpg")))
    r = await api.client.post("/kyc/verify", headers=caller,
                              files={"id_document": ("card.jpg", encode(cards.aadhaar_front()), "image/jpeg"),
                                     "selfie_image": ("me.jpg", encode(other), "image/jpeg")})
    assert r.status_code == 200
    assert r.json()["verification_status"] == "rejected"
    assert r.json()["face_verification_details"]["verified"] is False


async def test_verify_needs_a_face_on_both_sides(api, caller):
    coffee = encode(cv2.cvtColor(data.coffee(), cv2.COLOR_RGB2BGR))
    r = await api.client.post("/kyc/verify", headers=caller,
                              files={"id_document": ("card.jpg", encode(cards.aadhaar_front()), "image/jpeg"),
                                     "selfie_image": ("me.jpg", coffee, "image/jpeg")})
    assert r.status_code == 400 and r.json()["error_code"] == "no_face_detected"
    assert "selfie" in r.json()["detail"]
    r = await api.client.post("/kyc/verify", headers=caller,
                              files={"id_document": ("doc.jpg", coffee, "image/jpeg"),
                                     "selfie_image": ("me.jpg", encode(astronaut()), "image/jpeg")})
    assert r.status_code == 400 and "document" in r.json()["detail"].lower()
    r = await api.client.post("/kyc/verify", headers=caller,
                              files={"id_document": ("doc.jpg", b"%PDF-1.4 broken", "application/pdf"),
                                     "selfie_image": ("me.jpg", encode(astronaut()), "image/jpeg")})
    assert r.status_code == 400 and r.json()["error_code"] == "invalid_image"


async def _challenge(api, caller, wanted: list[str] | None = None) -> dict:
    """Challenges are random: ask until the wanted actions come up (6 orders exist)."""
    for _ in range(100):
        ch = (await api.client.get("/liveness/challenge", headers=caller)).json()
        if wanted is None or ch["challenge_types"] == wanted:
            return ch
    raise AssertionError(f"never got {wanted}")


async def test_challenge_shape(api, caller):
    ch = await _challenge(api, caller)
    assert len(set(ch["challenge_types"])) == 2 and set(ch["challenge_types"]) <= {"blink", "turn_left", "turn_right"}
    issued, expires = (datetime.fromisoformat(ch[k].replace("Z", "+00:00")) for k in ("timestamp", "expires_at"))
    assert ch["expires_at"].endswith("Z") and (expires - issued).total_seconds() == 120
    assert len(ch["signature"]) == 64 and len(ch["instructions"]) == 2 and ch["multi_challenge"] is True


async def test_liveness_passes_head_turns_in_the_order_asked_and_only_once(api, caller):
    frames = [data_url(f) for f in read_video(require_fixtures("liveness", "videos", "d12.mp4"))[0:120:3]]
    ch = await _challenge(api, caller, ["turn_left", "turn_right"])
    r = await api.client.post("/liveness/verify", headers=caller, json={"challenge_id": ch["challenge_id"],
                                                                       "frames": frames})
    body = r.json()
    assert r.status_code == 200 and body["status"] == "pass", body["message"]
    assert body["detection_results"]["face_detected"] is True and len(body["detection_results"]["orientations"]) == 40
    r = await api.client.post("/liveness/verify", headers=caller, json={"challenge_id": ch["challenge_id"],
                                                                       "frames": frames})
    assert r.json()["status"] == "invalid"
    reverse = await _challenge(api, caller, ["turn_right", "turn_left"])
    r = await api.client.post("/liveness/verify", headers=caller, json={"challenge_id": reverse["challenge_id"],
                                                                       "frames": frames})
    assert r.json()["status"] == "fail" and "turn" in r.json()["message"]


async def test_liveness_fails_a_photo_moved_in_front_of_the_camera(api, caller):
    rng = np.random.default_rng(3)
    base = astronaut()
    frames = []
    for _ in range(12):
        m = cv2.getRotationMatrix2D((256, 256), rng.uniform(-4, 4), rng.uniform(0.85, 1.1))
        m[:, 2] += rng.uniform(-30, 30, 2)
        frames.append(data_url(cv2.warpAffine(base, m, (512, 512), borderMode=cv2.BORDER_REPLICATE)))
    ch = await _challenge(api, caller)
    r = await api.client.post("/liveness/verify", headers=caller, json={"challenge_id": ch["challenge_id"],
                                                                       "frames": frames})
    assert r.status_code == 200 and r.json()["status"] == "fail"
    assert "still image" in r.json()["message"]


async def test_liveness_frames_with_no_face(api, caller):
    rng = np.random.default_rng(5)
    frames = [data_url(rng.integers(0, 256, (240, 320, 3), dtype=np.uint8)) for _ in range(10)]
    ch = await _challenge(api, caller)
    r = await api.client.post("/liveness/verify", headers=caller, json={"challenge_id": ch["challenge_id"],
                                                                       "frames": frames})
    assert r.json()["status"] == "fail" and r.json()["message"] == "No face detected in the frames"
    assert r.json()["detection_results"]["face_detected"] is False


async def test_liveness_input_rules(api, caller):
    frame = data_url(astronaut())
    ch = await _challenge(api, caller)
    r = await api.client.post("/liveness/verify", headers=caller, json={"challenge_id": ch["challenge_id"],
                                                                       "frames": [frame] * 9})
    assert r.status_code == 400 and r.json()["error_code"] == "not_enough_frames"
    r = await api.client.post("/liveness/verify", headers=caller, json={"challenge_id": ch["challenge_id"],
                                                                       "frames": [frame] * 61})
    assert r.status_code == 422
    r = await api.client.post("/liveness/verify", headers=caller, json={"challenge_id": ch["challenge_id"],
                                                                       "frames": ["%%%not base64%%%"] * 10})
    assert r.status_code == 400 and r.json()["error_code"] == "invalid_image" and "Frame 0" in r.json()["detail"]
    # A refused request does not spend the challenge: the retry is analysed.
    rng = np.random.default_rng(9)
    noise = [data_url(rng.integers(0, 256, (120, 160, 3), dtype=np.uint8)) for _ in range(10)]
    r = await api.client.post("/liveness/verify", headers=caller, json={"challenge_id": ch["challenge_id"],
                                                                       "frames": noise})
    assert r.json()["status"] == "fail"
    r = await api.client.post("/liveness/verify", headers=caller, json={"challenge_id": "nope", "frames": [frame] * 10})
    assert r.status_code == 200 and r.json()["status"] == "invalid"


async def test_expired_and_tampered_challenges(api, caller):
    frame = data_url(astronaut())
    ch = await _challenge(api, caller)
    api.container.clock.advance(seconds=121)
    r = await api.client.post("/liveness/verify", headers=caller, json={"challenge_id": ch["challenge_id"],
                                                                       "frames": [frame] * 10})
    assert r.json()["status"] == "expired"
    api.container.clock.advance(seconds=-121)
    ch = await _challenge(api, caller)
    # Someone edits the stored actions: the HMAC no longer matches.
    await api.container.db["liveness_challenges"].update_one({"_id": ch["challenge_id"]},
                                                              {"$set": {"actions": ["blink", "blink"]}})
    r = await api.client.post("/liveness/verify", headers=caller, json={"challenge_id": ch["challenge_id"],
                                                                       "frames": [frame] * 10})
    assert r.json()["status"] == "invalid"


async def test_liveness_detect_counts_blinks_from_a_running_total(api, caller):
    frames = [data_url(f) for f in read_video(require_fixtures("liveness", "videos", "d18.mp4"))[60::3]]
    r = await api.client.post("/liveness/detect", headers=caller, json={"frames": frames, "initial_blink_count": 1})
    body = r.json()
    assert r.status_code == 200
    assert body["total_blinks"] == 2 and body["final_blink_count"] == 3
    assert body["frame_count"] == len(frames) == len(body["results"]) and body["face_detection_ratio"] > 0.9


async def test_liveness_detect_accepts_short_batches(api, caller):
    r = await api.client.post("/liveness/detect", headers=caller, json={"frames": [data_url(astronaut())] * 3})
    assert r.status_code == 200 and r.json()["frame_count"] == 3 and r.json()["total_blinks"] == 0
    r = await api.client.post("/liveness/detect", headers=caller, json={"frames": []})
    assert r.status_code == 422


async def test_verification_through_worker_processes(api_factory, email):
    """The production set-up: models load in spawned workers, not in the API process."""
    api = await api_factory(own_models=True, ml_processes=True, ml_workers=1, ml_preload=True)
    await api.container.ml.preload()
    assert all(state["loaded"] for state in api.container.ml.status().values()), api.container.ml.status()
    caller = bearer(await api.customer(email))
    r = await api.client.post("/kyc/verify", headers=caller,
                              files={"id_document": ("card.jpg", encode(cards.aadhaar_front()), "image/jpeg"),
                                     "selfie_image": ("me.jpg", encode(astronaut()), "image/jpeg")})
    assert r.status_code == 200 and r.json()["verification_status"] == "approved"
    r = await api.client.post("/kyc/verify", headers=caller,
                              files={"id_document": ("card.jpg", b"not an image", "image/jpeg"),
                                     "selfie_image": ("me.jpg", encode(astronaut()), "image/jpeg")})
    assert r.status_code == 400 and r.json()["error_code"] == "invalid_image"
    assert (await api.client.get("/health")).json()["status"] == "healthy"
