"""Face detectors and the dlib landmark model: thin, synchronous wrappers over models that
ship inside installed wheels (dlib + face_recognition_models, MediaPipe, OpenCV), so
nothing is ever downloaded at run time.

None of the underlying objects is documented as thread-safe, so every wrapper holds a
lock around its model call; the ML pool can share one instance between threads.
"""

from __future__ import annotations

import math
import os
import threading
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Protocol

import cv2
import numpy as np

os.environ.setdefault("GLOG_minloglevel", "2")  # MediaPipe's C++ log noise, before import


@dataclass(frozen=True)
class FaceBox:
    """A face in image pixels; ``score`` is the detector's own confidence scale."""

    x: int
    y: int
    w: int
    h: int
    score: float = 1.0

    def scaled(self, factor: float) -> FaceBox:
        return replace(self, x=round(self.x * factor), y=round(self.y * factor), w=round(self.w * factor),
                       h=round(self.h * factor))

    def clipped(self, width: int, height: int) -> FaceBox:
        x0, y0 = max(0, self.x), max(0, self.y)
        x1, y1 = min(width, self.x + self.w), min(height, self.y + self.h)
        return replace(self, x=x0, y=y0, w=max(0, x1 - x0), h=max(0, y1 - y0))


class FaceDetector(Protocol):
    name: str

    def detect(self, image_bgr: np.ndarray) -> list[FaceBox]: ...


def models_dir() -> Path:
    """The dlib model files shipped in the face-recognition-models(-ng) wheel."""
    import face_recognition_models

    return Path(face_recognition_models.__file__).parent / "models"


# Images are resized before detection: small ones (ID-card crops, thumbnails) are upscaled so
# 60-px faces reach the detectors' minimum size; huge scans are downscaled for speed.
# `images.face_work_size` bounds uploads by the same numbers.
UPSCALE_BELOW, MAX_UPSCALE, MAX_SIDE = 800, 3.0, 1600


def resize_factor(width: int, height: int) -> float:
    longest = max(width, height)
    return min(MAX_UPSCALE, UPSCALE_BELOW / longest) if longest < UPSCALE_BELOW else min(1.0, MAX_SIDE / longest)


class _ResizingDetector:
    name = "base"

    def __init__(self) -> None:
        self._lock = threading.Lock()

    def detect(self, image_bgr: np.ndarray) -> list[FaceBox]:
        height, width = image_bgr.shape[:2]
        factor = resize_factor(width, height)
        work = image_bgr
        if factor != 1.0:
            interpolation = cv2.INTER_CUBIC if factor > 1 else cv2.INTER_AREA
            work = cv2.resize(image_bgr, None, fx=factor, fy=factor, interpolation=interpolation)
        with self._lock:
            boxes = self._detect(np.ascontiguousarray(work))
        boxes = [b.scaled(1.0 / factor).clipped(width, height) for b in boxes]
        # Best score first, not largest: HOG's rare false positives (clothing, badges) can be
        # bigger than the real face but score ~0.1 against ~1.5 for it.
        return sorted((b for b in boxes if b.w > 0 and b.h > 0), key=lambda b: b.score, reverse=True)

    def _detect(self, image_bgr: np.ndarray) -> list[FaceBox]:
        raise NotImplementedError


class DlibHogDetector(_ResizingDetector):
    """dlib's HOG + linear SVM frontal detector: robust, ~20 ms at 640 px on one core."""

    name = "dlib-hog"

    def __init__(self, *, upsample: int = 0) -> None:
        super().__init__()
        import dlib

        self._detector = dlib.get_frontal_face_detector()
        self.upsample = upsample

    def _detect(self, image_bgr: np.ndarray) -> list[FaceBox]:
        rgb = np.ascontiguousarray(image_bgr[:, :, ::-1])
        rects, scores, _ = self._detector.run(rgb, self.upsample, 0.0)
        return [FaceBox(r.left(), r.top(), r.width(), r.height(), float(s)) for r, s in zip(rects, scores)]


class MediaPipeFaceDetector(_ResizingDetector):
    """MediaPipe BlazeFace; model_selection=1 is the full-range model (faces up to ~5 m)."""

    name = "mediapipe"

    def __init__(self) -> None:
        super().__init__()
        from mediapipe.python.solutions import face_detection

        self._model = face_detection.FaceDetection(model_selection=1, min_detection_confidence=0.5)

    def _detect(self, image_bgr: np.ndarray) -> list[FaceBox]:
        height, width = image_bgr.shape[:2]
        result = self._model.process(np.ascontiguousarray(image_bgr[:, :, ::-1]))
        rels = [(d.location_data.relative_bounding_box, d.score[0]) for d in result.detections or []]
        return [FaceBox(int(r.xmin * width), int(r.ymin * height), int(r.width * width), int(r.height * height),
                        float(score)) for r, score in rels]


class FallbackDetector:
    """Tries detectors in order and returns the first non-empty answer."""

    def __init__(self, *detectors: FaceDetector) -> None:
        self.detectors = detectors
        self.name = "+".join(d.name for d in detectors)

    def detect(self, image_bgr: np.ndarray) -> list[FaceBox]:
        return next((boxes for detector in self.detectors if (boxes := detector.detect(image_bgr))), [])


class DlibLandmarker:
    """dlib shape predictors: 5 points for dlib's own alignment, 68 for ArcFace's 5."""

    def __init__(self, *, with_68: bool = False) -> None:
        import dlib

        self._dlib = dlib
        self.sp5 = dlib.shape_predictor(str(models_dir() / "shape_predictor_5_face_landmarks.dat"))
        self.sp68 = dlib.shape_predictor(str(models_dir() / "shape_predictor_68_face_landmarks.dat")) if with_68 else None
        self._lock = threading.Lock()

    def _rect(self, box: FaceBox):
        return self._dlib.rectangle(box.x, box.y, box.x + box.w, box.y + box.h)

    def shape5(self, image_rgb: np.ndarray, box: FaceBox):
        with self._lock:
            return self.sp5(image_rgb, self._rect(box))

    def arcface_points(self, image_rgb: np.ndarray, box: FaceBox) -> np.ndarray:
        """Eye centres, nose tip and mouth corners (image left to right), shape (5, 2)."""
        if self.sp68 is None:
            raise RuntimeError("DlibLandmarker(with_68=True) is needed for ArcFace alignment")
        with self._lock:
            shape = self.sp68(image_rgb, self._rect(box))
        pts = np.array([(p.x, p.y) for p in shape.parts()], dtype=np.float32)
        return np.stack([pts[36:42].mean(axis=0), pts[42:48].mean(axis=0), pts[30], pts[48], pts[54]]).astype(np.float32)


def default_detector() -> FallbackDetector:
    """Chosen by measured recall (faces.py's docstring): HOG with one upsample finds faces down to ~40 px,
    MediaPipe full-range tilted or partly profile ones; the slower stages only run on misses."""
    return FallbackDetector(DlibHogDetector(upsample=0), DlibHogDetector(upsample=1), MediaPipeFaceDetector())


# --- MediaPipe Face Mesh (468 landmarks + 10 iris points) --------------------------------

_MESH_GRAPH = "mediapipe/modules/face_landmark/face_landmark_front_cpu.binarypb"
# Eye contour points p1..p6 of the EAR formula (Soukupova & Cech), subject's right then left.
_EYES = ((33, 160, 158, 133, 153, 144), (362, 385, 387, 263, 373, 380))
_NOSE_TIP, _CHEEK_IMAGE_LEFT, _CHEEK_IMAGE_RIGHT = 1, 234, 454
# Half face width over nose protrusion for an average head: turns the nose's offset
# between the cheeks into an approximate yaw angle.
_HALF_WIDTH_OVER_NOSE_DEPTH = 0.75


class FaceMeshRunner:
    """Runs Face Mesh (with iris refinement) over a burst of frames, each frame on its own.

    The graph is built per call (~5 ms): a graph is not thread-safe and its state must not
    leak between requests. Built from SolutionBase directly instead of
    ``solutions.face_mesh.FaceMesh``, whose option-patching code reads
    ``FieldDescriptor.label``, gone in protobuf >= 6.
    """

    max_side = 640

    def __init__(self) -> None:
        from mediapipe.python.solution_base import SolutionBase

        self._solution_base = SolutionBase

    def run(self, frames_bgr: list[np.ndarray]) -> list[np.ndarray | None]:
        """Per frame, landmarks as an (N, 3) array in the frame's pixels (z scaled like x), or None."""
        graph = self._solution_base(
            binary_graph_path=_MESH_GRAPH,
            side_inputs={"num_faces": 1, "with_attention": True, "use_prev_landmarks": False},
            outputs=["multi_face_landmarks"],
        )
        out: list[np.ndarray | None] = []
        try:
            for frame in frames_bgr:
                height, width = frame.shape[:2]
                factor = min(1.0, self.max_side / max(height, width))
                work = frame if factor == 1.0 else cv2.resize(frame, None, fx=factor, fy=factor, interpolation=cv2.INTER_AREA)
                result = graph.process(np.ascontiguousarray(work[:, :, ::-1]))
                if not result.multi_face_landmarks:
                    out.append(None)
                    continue
                marks = result.multi_face_landmarks[0].landmark
                # Normalised coordinates are resolution-free: map back to original pixels.
                out.append(np.array([(m.x * width, m.y * height, m.z * width) for m in marks], dtype=np.float32))
        finally:
            graph.close()
        return out


def eye_aspect_ratios(points: np.ndarray) -> tuple[float, float]:
    ratios = []
    for p1, p2, p3, p4, p5, p6 in _EYES:
        pts = points[:, :2]
        vertical = np.linalg.norm(pts[p2] - pts[p6]) + np.linalg.norm(pts[p3] - pts[p5])
        horizontal = 2.0 * np.linalg.norm(pts[p1] - pts[p4])
        ratios.append(float(vertical / horizontal) if horizontal > 0 else 0.0)
    return ratios[0], ratios[1]


def yaw_degrees(points: np.ndarray) -> float:
    """Approximate head yaw; positive when the nose moves towards the image's right edge."""
    left, right, nose = points[_CHEEK_IMAGE_LEFT, 0], points[_CHEEK_IMAGE_RIGHT, 0], points[_NOSE_TIP, 0]
    span = right - left
    if span <= 0:
        return 0.0
    offset = (nose - left) / span - 0.5  # -0.5..0.5, 0 when frontal
    return math.degrees(math.atan(2.0 * offset * _HALF_WIDTH_OVER_NOSE_DEPTH))
