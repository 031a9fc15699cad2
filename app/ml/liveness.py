"""Challenge-response liveness on a short burst of frames, with MediaPipe Face Mesh.

Per frame: is there a face, the eye aspect ratio (EAR) and the head yaw. Across frames:
blinks (EAR below a threshold for >= 1 frame, then back above it), head turns, whether
the "video" is really one still picture moved around (no shape change once translation,
scale and in-plane rotation are removed), and whether the same person is in it from start
to end (face embeddings of the first, last and most discontinuous frames).

Orientation convention: "left"/"right" are the USER's own left/right, for frames as the
camera captured them (not mirrored). Turning one's head to one's own left moves the nose
towards the image's right edge.

Calibration on fixtures/liveness (d3, d12, d18 at 30 fps, windows of 30 frames at
strides 2-5): open-eye EAR 0.22-0.38, closed 0.05-0.12, so closed < 0.19 and reopened
> 0.21 finds d18's two annotated blinks and d12's three visible ones. Frontal yaw stays
within +-9 deg, deliberate turns reach 13-26 deg: turn threshold 12 deg. Shape motion is
>= 0.052 on every live window and <= 0.027 for a photo slid/scaled/tilted: static below
0.04. Identity cosine (dlib) is >= 0.93 within a clip and <= 0.83 across people: 0.90.

Work is in two steps so one request can use several worker processes: `measure` does the
pixel work for a run of consecutive frames (Face Mesh, thumbnails, the face embeddings that
run can tell it needs), `merge` applies every rule to the whole sequence from the runs'
results. `analyze` is the two in one thread; the service measures halves side by side.
"""

from __future__ import annotations

from collections.abc import Callable
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
class FrameBatch:
    """What `LivenessAnalyzer.measure` found in a run of consecutive frames: all the rules
    need, and small enough to cross a process boundary (no pixels beyond 64x64 thumbnails)."""

    start: int  # global index of the first frame
    landmarks: list[np.ndarray | None]  # per frame, (N, 3) in the frame's pixels, or None
    thumbnails: list[np.ndarray]  # per frame, 64x64 grey
    embeddings: dict[int, np.ndarray]  # global frame index -> face embedding


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
    # Calibrated on fixtures/liveness (module docstring).
    ear_threshold, ear_reopen = 0.19, 0.21  # closed below, reopened above: hysteresis
    yaw_threshold = 12.0  # degrees
    min_frames, max_frames = 10, 60
    min_face_ratio = 0.8
    static_threshold = 0.04

    def __init__(self) -> None:
        self.mesh = FaceMeshRunner()
        # Loaded now, not on the first request, so /health reports a broken model at start-up.
        self.identity = IdentityChecker(DlibFaceEmbedder())

    def _orientation(self, yaw: float) -> str | None:
        return "left" if yaw >= self.yaw_threshold else "right" if yaw <= -self.yaw_threshold else None

    def check_frame_count(self, count: int, min_frames: int | None = None) -> None:
        """`min_frames` lowers the floor for batch detection; challenges keep the default."""
        floor = self.min_frames if min_frames is None else min_frames
        if count < floor:
            raise InvalidInput(f"At least {floor} frames are required; {count} were sent.")
        if count > self.max_frames:
            raise InvalidInput(f"At most {self.max_frames} frames are accepted; {count} were sent.")

    def analyze(self, frames_bgr: list[np.ndarray], initial_blink_count: int = 0, *,
                min_frames: int | None = None) -> LivenessAnalysis:
        """All frames in this thread: `measure` them as one batch, then `merge`."""
        self.check_frame_count(len(frames_bgr), min_frames)
        batch = self.measure(frames_bgr)
        return self.merge([batch], initial_blink_count, min_frames=min_frames, frame_at=frames_bgr.__getitem__)

    def measure(self, frames_bgr: list[np.ndarray], *, start: int = 0, first: bool = True,
                last: bool = True) -> FrameBatch:
        """The pixel work for a run of consecutive frames (global indices from `start`); it embeds
        the run's first face frame if `first` (it opens the sequence), its last if `last`, and
        the frame after its biggest jump when over the threshold. Consecutive runs must share
        one frame, so every frame-to-frame jump lies inside a run."""
        # One cheap BGR->RGB conversion per frame; the mesh and dlib both want RGB and get it
        # back from these reversed views without another copy.
        rgb = [cv2.cvtColor(frame, cv2.COLOR_BGR2RGB) for frame in frames_bgr]
        views = [image[:, :, ::-1] for image in rgb]
        landmarks = self.mesh.run(views)
        thumbnails = [_thumbnail(image) for image in rgb]
        embeddings: dict[int, np.ndarray] = {}
        found = [i for i, points in enumerate(landmarks) if points is not None]
        whole = first and last  # the whole sequence: identity needs two face frames
        if found and (len(found) >= 2 or not whole):
            faces = [points for points in landmarks if points is not None]
            for i in self.identity.pick_frames(found, jump_scores(faces), first=first, last=last):
                embeddings[start + i] = self.identity.embed(views[i], _present(landmarks[i]))
        return FrameBatch(start, landmarks, thumbnails, embeddings)

    def merge(
        self, batches: list[FrameBatch], initial_blink_count: int = 0, *, min_frames: int | None = None,
        frame_at: Callable[[int], np.ndarray] | None = None,
    ) -> LivenessAnalysis:
        """The rules over the whole sequence, from measured batches (in any order, each
        overlapping the next by at most a few frames). `frame_at(i)` returns frame i (BGR) for
        the rare embedding no batch made: the biggest jump between two batches' frames, e.g.
        when the shared frame had no face."""
        landmarks: list[np.ndarray | None] = []
        thumbnails: list[np.ndarray] = []
        embeddings: dict[int, np.ndarray] = {}
        for batch in sorted(batches, key=lambda b: b.start):
            skip = len(landmarks) - batch.start
            if skip < 0 or skip > len(batch.landmarks):
                raise ValueError(f"Frame batches do not join up at frame {len(landmarks)}")
            landmarks += batch.landmarks[skip:]
            thumbnails += batch.thumbnails[skip:]
            for index, vector in batch.embeddings.items():
                embeddings.setdefault(index, vector)
        self.check_frame_count(len(landmarks), min_frames)

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
        faces = [points for points in landmarks if points is not None]
        ratio = len(found) / len(landmarks)
        motion = shape_motion(faces)
        is_static = motion < self.static_threshold or _thumbnails_static(thumbnails)
        same, similarity = None, None
        if len(found) >= 2:
            # The sequence's own picks (first, last, after the biggest jump) are always
            # compared; frames a batch embedded beyond those are compared too.
            picks = self.identity.pick_frames(found, jump_scores(faces))
            for index in picks:
                if index not in embeddings:
                    if frame_at is None:
                        raise ValueError(f"Frame {index} needs an embedding and no frame source was given")
                    embeddings[index] = self.identity.embed(frame_at(index), _present(landmarks[index]))
            same, similarity = self.identity.compare([embeddings[i] for i in sorted(embeddings)])
        return LivenessAnalysis(
            frame_count=len(landmarks), frames=results, blinks=len(blink_frames), blink_frames=blink_frames,
            total_blinks=initial_blink_count + len(blink_frames), orientations=[r.orientation for r in results],
            face_detection_ratio=round(ratio, 4), is_static=is_static, motion_score=round(motion, 5),
            same_person=same, identity_similarity=similarity,
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


def _thumbnail(image_rgb: np.ndarray) -> np.ndarray:
    return cv2.resize(cv2.cvtColor(image_rgb, cv2.COLOR_RGB2GRAY), (64, 64), interpolation=cv2.INTER_AREA)


def _thumbnails_static(thumbnails: list[np.ndarray], threshold: float = 0.5) -> bool:
    """True when consecutive frames differ by under `threshold` grey levels on average (on
    64x64 thumbnails): the same picture re-sent, which the landmark test could miss on a
    noisy mesh."""
    diffs = [float(np.mean(cv2.absdiff(a, b))) for a, b in zip(thumbnails, thumbnails[1:])]
    return max(diffs, default=0.0) < threshold


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

    threshold = 0.90  # cosine, calibrated (module docstring)
    jump_threshold = 1.0

    def __init__(self, embedder: FaceEmbedder) -> None:
        self.embedder = embedder

    def pick_frames(self, found: list[int], jumps: list[float], *, first: bool = True, last: bool = True) -> list[int]:
        """`found`: the face frames; `jumps`: between consecutive ones. Within one batch of
        a split sequence, `first`/`last` say whether the batch opens/closes the sequence."""
        picks = ([found[0]] if first and found else []) + ([found[-1]] if last and found else [])
        if jumps and max(jumps) > self.jump_threshold:
            picks.append(found[int(np.argmax(jumps)) + 1])
        return sorted(set(picks))

    def embed(self, frame_bgr: np.ndarray, points: np.ndarray) -> np.ndarray:
        """The face embedding, boxed by its mesh landmarks (no detector needed)."""
        return self.embedder.embed(frame_bgr, _box_from_points(points))

    def compare(self, vectors: list[np.ndarray]) -> tuple[bool, float]:
        """One person if every pair of embeddings is at least `threshold` alike."""
        similarity = min(float(a @ b) for k, a in enumerate(vectors) for b in vectors[k + 1 :])
        return similarity >= self.threshold, round(similarity, 4)


def _present(points: np.ndarray | None) -> np.ndarray:
    """Landmarks of a frame already known to show a face."""
    assert points is not None
    return points
