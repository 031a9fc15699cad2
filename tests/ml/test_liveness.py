"""Liveness with the real Face Mesh: generated frames for the core rules, the public clips
(read in place) for blinks, turns, stills and swapped faces."""

from __future__ import annotations

import cv2
import numpy as np
import pytest

from app.domain.errors import InvalidInput
from app.ml.liveness import FrameResult, LivenessAnalysis
from tests.ml.face_fixtures import (  # noqa: F401 - pytest fixture
    astronaut_bgr,
    fixtures_dir,
    read_image,
    read_video,
    require_fixtures,
    rotate,
)


def _astronaut_moved(count: int) -> list[np.ndarray]:
    """A photo slid, scaled and tilted in front of the camera: motion, but no live face."""
    rng = np.random.default_rng(3)
    image = astronaut_bgr()
    return [
        rotate(image, rng.uniform(-4, 4), rng.uniform(0.85, 1.1), rng.uniform(-30, 30, 2), size=(640, 480))
        for _ in range(count)
    ]


def _letterbox(image: np.ndarray, width: int, height: int) -> np.ndarray:
    scale = min(width / image.shape[1], height / image.shape[0])
    small = cv2.resize(image, None, fx=scale, fy=scale, interpolation=cv2.INTER_AREA)
    pad_y, pad_x = height - small.shape[0], width - small.shape[1]
    return cv2.copyMakeBorder(small, pad_y // 2, pad_y - pad_y // 2, pad_x // 2, pad_x - pad_x // 2, cv2.BORDER_REPLICATE)


# --- core: generated frames ---------------------------------------------------------------------


def test_fewer_than_ten_frames_is_refused(liveness_analyzer) -> None:
    with pytest.raises(InvalidInput, match="At least 10 frames"):
        liveness_analyzer.analyze([astronaut_bgr()] * 9)


def test_more_than_sixty_frames_is_refused(liveness_analyzer) -> None:
    with pytest.raises(InvalidInput, match="At most 60 frames"):
        liveness_analyzer.analyze([astronaut_bgr()] * 61)


def test_moved_photo_is_static_and_fails(liveness_analyzer) -> None:
    analysis = liveness_analyzer.analyze(_astronaut_moved(15))
    assert analysis.face_detection_ratio >= 0.9
    assert analysis.blinks == 0
    assert analysis.is_static, analysis.motion_score
    assert analysis.same_person is True
    passed, message = liveness_analyzer.evaluate_challenge(analysis, ["blink"])
    assert not passed and "still image" in message


def test_repeated_identical_frames_are_static(liveness_analyzer) -> None:
    analysis = liveness_analyzer.analyze([astronaut_bgr()] * 12)
    assert analysis.is_static and analysis.motion_score == 0.0


def test_noise_frames_have_no_face(liveness_analyzer) -> None:
    rng = np.random.default_rng(5)
    frames = [rng.integers(0, 256, (480, 640, 3), dtype=np.uint8) for _ in range(10)]
    analysis = liveness_analyzer.analyze(frames, initial_blink_count=3)
    assert analysis.face_detection_ratio == 0 and not analysis.face_detected
    assert analysis.total_blinks == 3 and analysis.same_person is None
    assert analysis.orientations == [None] * 10
    passed, message = liveness_analyzer.evaluate_challenge(analysis, ["blink"])
    assert not passed and message == "No face detected in the frames"


def _synthetic(events: dict[int, str], blinks: list[int]) -> LivenessAnalysis:
    frames = [FrameResult(i, True, 0.3, 0.0, events.get(i)) for i in range(20)]
    return LivenessAnalysis(
        frame_count=20, frames=frames, blinks=len(blinks), total_blinks=len(blinks), blink_frames=blinks,
        orientations=[f.orientation for f in frames], face_detection_ratio=1.0, is_static=False,
        motion_score=0.1, same_person=True, identity_similarity=0.97,
    )


def test_challenge_actions_must_happen_in_the_order_asked(liveness_analyzer) -> None:
    analysis = _synthetic({12: "left", 13: "left"}, blinks=[5])
    assert liveness_analyzer.evaluate_challenge(analysis, ["blink", "turn_left"]) == (
        True, "All challenges completed: blink, turn left",
    )
    passed, message = liveness_analyzer.evaluate_challenge(analysis, ["turn_left", "blink"])
    assert not passed and message == "Challenge not completed: no blink detected after turn left"
    passed, message = liveness_analyzer.evaluate_challenge(analysis, ["turn_right"])
    assert not passed and "turn right" in message
    with pytest.raises(InvalidInput):
        liveness_analyzer.evaluate_challenge(analysis, ["smile"])


def test_a_different_person_fails_even_with_actions(liveness_analyzer) -> None:
    analysis = _synthetic({12: "left"}, blinks=[5])
    swapped = LivenessAnalysis(**{**analysis.__dict__, "same_person": False})
    passed, message = liveness_analyzer.evaluate_challenge(swapped, ["blink", "turn_left"])
    assert not passed and "same person" in message


# --- public clips -------------------------------------------------------------------------------


def test_d18_blinks_are_counted(liveness_analyzer) -> None:
    frames = read_video(require_fixtures("liveness", "videos", "d18.mp4"))
    # 52 frames at 10 fps covering both annotated blinks (~94-99 and ~186-189).
    analysis = liveness_analyzer.analyze(frames[60::3], initial_blink_count=1)
    assert analysis.blinks == 2, analysis.blink_frames
    assert analysis.total_blinks == 3
    assert not analysis.is_static and analysis.same_person is True
    assert liveness_analyzer.evaluate_challenge(analysis, ["blink"])[0]


def test_d12_head_turns_both_ways_in_order(liveness_analyzer) -> None:
    frames = read_video(require_fixtures("liveness", "videos", "d12.mp4"))
    # Frames 0-120: the user turns to their left (~35-50), then to their right (~79-91).
    analysis = liveness_analyzer.analyze(frames[0:120:3])
    assert "left" in analysis.orientations and "right" in analysis.orientations
    first_left = analysis.orientations.index("left")
    first_right = analysis.orientations.index("right")
    assert first_left < first_right
    assert liveness_analyzer.evaluate_challenge(analysis, ["turn_left", "turn_right"])[0]
    passed, _ = liveness_analyzer.evaluate_challenge(analysis, ["turn_right", "turn_left"])
    assert not passed


def test_still_photo_repeated_fails_as_static(liveness_analyzer) -> None:
    still = read_image(require_fixtures("liveness", "stills", "image_T1.jpg"))
    analysis = liveness_analyzer.analyze([still] * 15)
    assert analysis.face_detection_ratio == 1.0 and analysis.is_static and analysis.blinks == 0
    assert not liveness_analyzer.evaluate_challenge(analysis, ["blink"])[0]


def test_interleaved_different_person_fails_same_person(liveness_analyzer) -> None:
    still = read_image(require_fixtures("liveness", "stills", "image_T1.jpg"))
    other = _letterbox(read_image(fixtures_dir() / "faces" / "face_recognition" / "obama.jpg"), still.shape[1], still.shape[0])
    analysis = liveness_analyzer.analyze([still if i % 2 == 0 else other for i in range(16)])
    assert analysis.face_detection_ratio == 1.0
    assert analysis.same_person is False, analysis.identity_similarity
    passed, message = liveness_analyzer.evaluate_challenge(analysis, ["turn_left"])
    assert not passed


# --- one sequence measured in runs (how the service spreads it over worker processes) ------------


def _measured_in_runs(analyzer, frames: list[np.ndarray], parts: int, initial_blink_count: int = 0):
    from app.ml.tasks import split_frames

    runs = split_frames(len(frames), parts)
    assert len(runs) == parts
    batches = [analyzer.measure(frames[start:stop], start=start, first=start == 0, last=stop == len(frames))
               for start, stop in runs]
    return analyzer.merge(batches[::-1], initial_blink_count, frame_at=frames.__getitem__), batches


def test_runs_measured_apart_give_the_same_analysis(liveness_analyzer) -> None:
    frames = read_video(require_fixtures("liveness", "videos", "d12.mp4"))[0:120:3]
    whole = liveness_analyzer.analyze(frames, initial_blink_count=2)
    for parts in (2, 3):
        split, _ = _measured_in_runs(liveness_analyzer, frames, parts, initial_blink_count=2)
        # Runs may embed extra frames (each its own biggest jump): identity can only get stricter.
        assert {**split.__dict__, "identity_similarity": None} == {**whole.__dict__, "identity_similarity": None}
        assert split.identity_similarity <= whole.identity_similarity


def test_a_swap_on_the_frame_two_runs_share_is_caught(liveness_analyzer) -> None:
    frames = read_video(require_fixtures("liveness", "videos", "d12.mp4"))[0:90:3]
    other = _letterbox(read_image(fixtures_dir() / "faces" / "face_recognition" / "obama.jpg"),
                       frames[0].shape[1], frames[0].shape[0])
    for swap_at in (14, 15):  # runs [0, 15) and [14, 30): the swap on the shared frame, then just after it
        analysis, _ = _measured_in_runs(liveness_analyzer, frames[:swap_at] + [other] * (30 - swap_at), 2)
        assert analysis.same_person is False, (swap_at, analysis.identity_similarity)


def test_a_jump_across_runs_that_no_run_saw_is_still_embedded(liveness_analyzer) -> None:
    still = read_image(require_fixtures("liveness", "stills", "image_T1.jpg"))
    other = _letterbox(read_image(fixtures_dir() / "faces" / "face_recognition" / "obama.jpg"),
                       still.shape[1], still.shape[0])
    noise = np.random.default_rng(1).integers(0, 256, still.shape, dtype=np.uint8)
    # Runs [0, 7) and [6, 12): the shared frame 6 has no face, so the jump from frame 5 to frame
    # 7 lies in neither run, and frame 7 (the last run's first face) is embedded by neither.
    frames = [still] * 6 + [noise] + [other] * 5
    analysis, batches = _measured_in_runs(liveness_analyzer, frames, 2)
    assert 7 not in {i for b in batches for i in b.embeddings}
    assert analysis == liveness_analyzer.analyze(frames) and analysis.same_person is False
    with pytest.raises(ValueError, match="Frame 7 needs an embedding"):
        liveness_analyzer.merge(batches)


def test_runs_must_join_up(liveness_analyzer) -> None:
    frames = [astronaut_bgr()] * 12
    first = liveness_analyzer.measure(frames[:5], last=False)
    last = liveness_analyzer.measure(frames[6:], start=6, first=False)
    with pytest.raises(ValueError, match="do not join up at frame 5"):
        liveness_analyzer.merge([first, last])
