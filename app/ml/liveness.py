"""Challenge-response liveness on a short burst of frames, with MediaPipe Face Mesh.

Per frame: is there a face, the eye aspect ratio (EAR) and the head yaw. Across frames:
blinks (EAR below a threshold for >= 1 frame, then back above it), head turns, whether
the "video" is really one still picture moved around (no shape change once translation,
scale and in-plane rotation are removed), and whether the same person is in it from start
to end (face embeddings of the first, last and most discontinuous frames).

Orientation convention: "left"/"right" are the USER's own left/right, for frames as the
camera captured them (not mirrored). Turning one's head to one's own left moves the nose
towards the image's right edge. Pass ``mirrored=True`` if the client sends selfie-preview
(mirrored) frames.

Calibration on fixtures/liveness (d3, d12, d18 at 30 fps, windows of 30 frames at
strides 2-5): open-eye EAR 0.22-0.38, closed 0.05-0.12, so closed < 0.19 and reopened
> 0.21 finds d18's two annotated blinks and d12's three visible ones. Frontal yaw stays
within +-9 deg, deliberate turns reach 13-26 deg: turn threshold 12 deg. Shape motion is
>= 0.052 on every live window and <= 0.027 for a photo slid/scaled/tilted: static below
0.04. Identity cosine (dlib) is >= 0.93 within a clip and <= 0.83 across people: 0.90.
"""

from __future__ import annotations

import threading
from dataclasses import asdict, dataclass

import cv2
import numpy as np

from app.domain.errors import InvalidInput
from app.ml.face_backends import FaceBox, FaceMeshRunner, eye_aspect_ratios, yaw_degrees
from app.ml.faces import DlibFaceEmbedder, FaceEmbedder

ACTIONS = ("blink", "turn_left", "turn_right")
_ACTION_WORDS = {"blink": "blink", "turn_left": "turn left", "turn_right": "turn right"}


@dataclass(frozen=True)
class FrameResult:
    index: int
    face_detected: bool
    ear: float | None = None
    yaw: float | None = None  # degrees, positive = towards the user's left
    orientation: str | None = None
    eyes_closed: bool = False

    def as_dict(self) -> dict:
        return asdict(self)


@dataclass(frozen=True)
class LivenessAnalysis:
    frame_count: int
    frames: list[FrameResult]
    blinks: int  # new blinks in this batch
    total_blinks: int  # initial_blink_count + blinks
    blink_frames: list[int]  # frame where each blink's eyes reopened
    orientations: list[str | None]
    face_detection_ratio: float
    is_static: bool
    motion_score: float
    same_person: bool | None  # None when fewer than two frames had a face
    identity_similarity: float | None

    @property
    def face_detected(self) -> bool:
        return self.face_detection_ratio > 0

    @property
    def orientation(self) -> str | None:
        """The most frequent non-frontal orientation, for the API's single field."""
        turned = [o for o in self.orientations if o]
        return max(set(turned), key=turned.count) if turned else None


class LivenessAnalyzer:
    """Stateless between calls (a fresh mesh graph per call, ~5 ms), so thread-safe."""

    name = "mediapipe-facemesh"

    def __init__(
        self,
        *,
        ear_threshold: float = 0.19,
        ear_reopen_margin: float = 0.02,
        yaw_threshold_deg: float = 12.0,
        min_frames: int = 10,
        max_frames: int = 60,
        min_face_ratio: float = 0.8,
        static_threshold: float = 0.04,
        mesh_max_side: int = 640,
        mirrored: bool = False,
        identity: IdentityChecker | None = None,
    ) -> None:
        self.ear_threshold = ear_threshold
        self.ear_reopen = ear_threshold + ear_reopen_margin
        self.yaw_threshold = yaw_threshold_deg
        self.min_frames = min_frames
        self.max_frames = max_frames
        self.min_face_ratio = min_face_ratio
        self.static_threshold = static_threshold
        self.mirrored = mirrored
        self.mesh = FaceMeshRunner(max_side=mesh_max_side)
        self.identity = identity if identity is not None else IdentityChecker()

    def _orientation(self, yaw: float) -> str | None:
        if yaw >= self.yaw_threshold:
            return "right" if self.mirrored else "left"
        if yaw <= -self.yaw_threshold:
            return "left" if self.mirrored else "right"
        return None

    def analyze(
        self, frames_bgr: list[np.ndarray], initial_blink_count: int = 0, *, min_frames: int | None = None
    ) -> LivenessAnalysis:
        """`min_frames` lowers the floor for batch detection; challenges keep the default."""
        floor = self.min_frames if min_frames is None else min_frames
        if len(frames_bgr) < floor:
            raise InvalidInput(f"At least {floor} frames are required; {len(frames_bgr)} were sent.")
        if len(frames_bgr) > self.max_frames:
            raise InvalidInput(f"At most {self.max_frames} frames are accepted; {len(frames_bgr)} were sent.")
        landmarks = self.mesh.run(frames_bgr)
        results: list[FrameResult] = []
        blink_frames: list[int] = []
        closed = False
        for index, points in enumerate(landmarks):
            if points is None:
                results.append(FrameResult(index, False))
                continue
            ear = float(np.mean(eye_aspect_ratios(points)))
            yaw = yaw_degrees(points)
            # Hysteresis: a blink is counted when the eyes reopen clearly, so EAR noise
            # around one threshold cannot count one blink twice.
            if not closed and ear < self.ear_threshold:
                closed = True
            elif closed and ear > self.ear_reopen:
                closed = False
                blink_frames.append(index)
            results.append(FrameResult(index, True, round(ear, 4), round(yaw, 1), self._orientation(yaw), closed))

        found = [i for i, points in enumerate(landmarks) if points is not None]
        ratio = len(found) / len(frames_bgr)
        motion = shape_motion([landmarks[i] for i in found])
        is_static = motion < self.static_threshold or _pixels_static(frames_bgr)
        same, similarity = None, None
        if len(found) >= 2 and self.identity.enabled:
            jumps = jump_scores([landmarks[i] for i in found])
            picks = self.identity.pick_frames(found, jumps)
            boxes = {i: _box_from_points(landmarks[i]) for i in picks}
            same, similarity = self.identity.check(frames_bgr, boxes)
        return LivenessAnalysis(
            frame_count=len(frames_bgr),
            frames=results,
            blinks=len(blink_frames),
            total_blinks=initial_blink_count + len(blink_frames),
            blink_frames=blink_frames,
            orientations=[r.orientation for r in results],
            face_detection_ratio=round(ratio, 4),
            is_static=is_static,
            motion_score=round(motion, 5),
            same_person=same,
            identity_similarity=similarity,
        )

    def evaluate_challenge(self, analysis: LivenessAnalysis, actions: list[str]) -> tuple[bool, str]:
        """Pass only if every asked action happened, in the order asked, by one live person."""
        unknown = [a for a in actions if a not in ACTIONS]
        if unknown or not actions:
            raise InvalidInput(f"Unknown liveness actions: {', '.join(unknown) or '(none)'}")
        if analysis.face_detection_ratio == 0:
            return False, "No face detected in the frames"
        if analysis.face_detection_ratio < self.min_face_ratio:
            return False, f"Face visible in only {analysis.face_detection_ratio:.0%} of the frames"
        if analysis.is_static:
            return False, "The frames show a still image, not a live person"
        if analysis.same_person is False:
            return False, "The frames do not show the same person throughout"
        events = [(i, "blink") for i in analysis.blink_frames]
        for result in analysis.frames:
            if result.orientation:
                events.append((result.index, f"turn_{result.orientation}"))
        events.sort()
        cursor = -1
        for action in actions:
            hit = next((i for i, kind in events if kind == action and i > cursor), None)
            if hit is None:
                done = [_ACTION_WORDS[a] for a in actions[: actions.index(action)]]
                after = f" after {', then '.join(done)}" if done else ""
                return False, f"Challenge not completed: no {_ACTION_WORDS[action]} detected{after}"
            cursor = hit
        return True, "All challenges completed: " + ", ".join(_ACTION_WORDS[a] for a in actions)


def _box_from_points(points: np.ndarray) -> FaceBox:
    x0, y0 = points[:, 0].min(), points[:, 1].min()
    x1, y1 = points[:, 0].max(), points[:, 1].max()
    return FaceBox(int(x0), int(y0), int(x1 - x0), int(y1 - y0), 1.0)


def _pixels_static(frames_bgr: list[np.ndarray], threshold: float = 0.5) -> bool:
    """True when consecutive frames differ by under `threshold` grey levels on average:
    the same picture re-sent, which the landmark test could miss on a noisy mesh."""
    small = [cv2.resize(cv2.cvtColor(f, cv2.COLOR_BGR2GRAY), (64, 64), interpolation=cv2.INTER_AREA) for f in frames_bgr]
    diffs = [float(np.mean(cv2.absdiff(a, b))) for a, b in zip(small, small[1:])]
    return max(diffs, default=0.0) < threshold


# --- motion and identity across frames ---------------------------------------------------


def _normalised(points: np.ndarray) -> np.ndarray:
    """2-D landmarks with translation and scale removed."""
    xy = points[:, :2] - points[:, :2].mean(axis=0)
    scale = float(np.sqrt((xy**2).sum(axis=1).mean()))
    return xy / scale if scale > 0 else xy


def _procrustes(a: np.ndarray, b: np.ndarray) -> float:
    """RMS distance between two normalised shapes after the best in-plane rotation."""
    u, _, vt = np.linalg.svd(b.T @ a)
    return float(np.sqrt(((b @ (u @ vt) - a) ** 2).sum(axis=1).mean()))


def shape_motion(points: list[np.ndarray]) -> float:
    """How much the face's SHAPE changes across frames (90th percentile of the Procrustes
    distance to the mean shape). Moving, scaling or tilting a photo leaves it near 0;
    a live face blinking, talking or turning does not."""
    if len(points) < 2:
        return 0.0
    shapes = [_normalised(p) for p in points]
    mean = _normalised(np.mean(shapes, axis=0))
    return float(np.percentile([_procrustes(mean, s) for s in shapes], 90))


def jump_scores(points: list[np.ndarray]) -> list[float]:
    """Discontinuity between consecutive face frames: shape change plus the centre's jump
    in face widths. A swap to another person's picture makes one of these spike."""
    scores = []
    for a, b in zip(points, points[1:]):
        width = max(float(np.ptp(a[:, 0])), 1.0)
        move = float(np.linalg.norm(a[:, :2].mean(axis=0) - b[:, :2].mean(axis=0))) / width
        scores.append(_procrustes(_normalised(a), _normalised(b)) * 10 + move)
    return scores


class IdentityChecker:
    """Embeds the face of the first and last frames, plus the frame after the biggest
    discontinuity when there is one, and requires them all to be one person."""

    def __init__(
        self,
        embedder: FaceEmbedder | None = None,
        *,
        threshold: float = 0.90,
        jump_threshold: float = 1.0,
        enabled: bool = True,
    ) -> None:
        self._embedder = embedder
        self.threshold = threshold
        self.jump_threshold = jump_threshold
        self.enabled = enabled
        self._lock = threading.Lock()

    @property
    def embedder(self) -> FaceEmbedder:
        with self._lock:  # loaded on first use: analyzers built for tests may never need it
            if self._embedder is None:
                self._embedder = DlibFaceEmbedder()
            return self._embedder

    def pick_frames(self, found: list[int], jumps: list[float]) -> list[int]:
        picks = [found[0], found[-1]]
        if jumps and max(jumps) > self.jump_threshold:
            picks.append(found[int(np.argmax(jumps)) + 1])
        return sorted(set(picks))

    def check(self, frames_bgr: list[np.ndarray], boxes: dict[int, FaceBox]) -> tuple[bool, float]:
        vectors = [self.embedder.embed(frames_bgr[i], box) for i, box in sorted(boxes.items())]
        similarity = min(float(a @ b) for k, a in enumerate(vectors) for b in vectors[k + 1 :])
        return similarity >= self.threshold, round(similarity, 4)


def load_liveness_analyzer() -> LivenessAnalyzer:
    """The analyzer with calibrated defaults; loads the identity embedder eagerly so the
    first request does not pay for it and /health reports a broken model at start-up."""
    analyzer = LivenessAnalyzer()
    analyzer.identity.embedder  # noqa: B018 - force the load
    return analyzer
