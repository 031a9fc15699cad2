"""Face embeddings, document-vs-selfie matching and selfie quality.

Measured on this project's fixtures (2-core CPU; see the ML report for the numbers):
- Detector: dlib HOG found 29/29 fixture faces and 86/87 faces of 60-100 px pasted on
  synthetic ID cards with no false positives; MediaPipe full-range 28/29 and 51/87;
  OpenCV Haar 29/29 but 14 false positives (so not used). ``default_detector()`` is HOG, then HOG upsampled,
  then MediaPipe (29/29, 87/87).
- Embedder: dlib's ResNet (128-d, ships in face_recognition_models). ArcFace (InsightFace
  ``buffalo_l``) is supported when its ONNX file is provisioned locally.
"""

from __future__ import annotations

import math
import threading
from dataclasses import dataclass, field
from pathlib import Path
from typing import Protocol

import cv2
import numpy as np

from app.domain.errors import NoFaceDetected
from app.ml.face_backends import DlibLandmarker, FaceBox, FaceDetector, models_dir

# dlib's documented rule is "same person if raw euclidean distance < 0.6". Raw dlib
# descriptors have norm ~1.4, so on L2-normalised vectors 0.6 is a distance of ~0.43,
# i.e. cos ~0.91. On fixtures/faces/pairs.csv (18 genuine, 102 impostor pairs) every
# genuine pair scored cos >= 0.950 and every impostor <= 0.917: any cut in between gives
# 100% accuracy, 0 FAR, 0 FRR; cos 0.91 would let the closest impostor through. 0.93 sits
# mid-gap, a little stricter than dlib's 0.6 (a KYC false accept costs more than a retake).
DLIB_COSINE_THRESHOLD = 0.93
# ArcFace's usual verification cut (InsightFace's own evaluation uses ~0.3 on cosine).
ARCFACE_COSINE_THRESHOLD = 0.30
# The face_duplicate search (one selfie against every approved customer's) is stricter: its false
# matches grow with the number of customers. On every pair of the 29 fixture faces (identities.csv:
# 22 genuine, 384 impostor pairs) genuine cos >= 0.950, impostor <= 0.929: 0.94 sits in that gap
# (tests/ml/test_face_duplicate_threshold.py prints the rates). ArcFace's 0.40 is not measured here
# (its model is not provisioned): set FACE_DUPLICATE_THRESHOLD after measuring it on your own pairs.
DUPLICATE_THRESHOLDS = {"dlib": 0.94, "insightface": 0.40}

# The standard ArcFace 112x112 template: eye centres, nose tip, mouth corners.
ARCFACE_TEMPLATE = np.array(
    [[38.2946, 51.6963], [73.5318, 51.5014], [56.0252, 71.7366], [41.5493, 92.3655], [70.7299, 92.2041]],
    dtype=np.float32,
)


class FaceEmbedder(Protocol):
    name: str
    threshold: float

    def embed(self, image_bgr: np.ndarray, box: FaceBox) -> np.ndarray: ...


def _l2_normalise(vector: np.ndarray) -> np.ndarray:
    vector = np.asarray(vector, dtype=np.float32).reshape(-1)
    norm = float(np.linalg.norm(vector))
    return vector / norm if norm > 0 else vector


class DlibFaceEmbedder:
    """dlib 5-point alignment + ``dlib_face_recognition_resnet_model_v1`` (128-d)."""

    name = "dlib-resnet"
    threshold = DLIB_COSINE_THRESHOLD

    def __init__(self) -> None:
        import dlib

        self.landmarker = DlibLandmarker()
        self._model = dlib.face_recognition_model_v1(str(models_dir() / "dlib_face_recognition_resnet_model_v1.dat"))
        self._lock = threading.Lock()  # the dnn keeps per-call buffers

    def embed(self, image_bgr: np.ndarray, box: FaceBox) -> np.ndarray:
        rgb = np.ascontiguousarray(image_bgr[:, :, ::-1])
        shape = self.landmarker.shape5(rgb, box)
        with self._lock:
            descriptor = self._model.compute_face_descriptor(rgb, shape)
        return _l2_normalise(np.array(descriptor))


class InsightFaceEmbedder:
    """ArcFace ONNX (InsightFace ``buffalo_l/w600k_r50.onnx``) read from a local folder.

    Input 1x3x112x112 RGB, (x - 127.5) / 127.5, after a similarity transform of the five
    dlib-68 points onto ARCFACE_TEMPLATE; output a 512-d vector. The model is never
    downloaded: the folder must be provisioned with the deployment.
    """

    name = "insightface-arcface"
    threshold = ARCFACE_COSINE_THRESHOLD

    def __init__(self, model_dir: str | Path) -> None:
        import onnxruntime as ort

        path = Path(model_dir) / "w600k_r50.onnx"
        if not path.is_file():
            raise FileNotFoundError(f"ArcFace model not found at {path}")
        options = ort.SessionOptions()
        options.intra_op_num_threads = 1
        self._session = ort.InferenceSession(str(path), options, providers=["CPUExecutionProvider"])
        model_input = self._session.get_inputs()[0]
        if list(model_input.shape[1:]) != [3, 112, 112]:
            raise ValueError(f"{path.name} takes {model_input.shape}, expected Nx3x112x112")
        self._input_name = model_input.name
        self.landmarker = DlibLandmarker(with_68=True)

    def align(self, image_bgr: np.ndarray, points: np.ndarray) -> np.ndarray:
        """Warp the face so its five points land on the ArcFace template (112x112 BGR)."""
        matrix, _ = cv2.estimateAffinePartial2D(points.astype(np.float32), ARCFACE_TEMPLATE, method=cv2.LMEDS)
        if matrix is None:
            raise NoFaceDetected("The face could not be aligned")
        return cv2.warpAffine(image_bgr, matrix, (112, 112), borderValue=0.0)

    @staticmethod
    def to_blob(aligned_bgr: np.ndarray) -> np.ndarray:
        rgb = aligned_bgr[:, :, ::-1].astype(np.float32)
        return ((rgb - 127.5) / 127.5).transpose(2, 0, 1)[None]

    def embed(self, image_bgr: np.ndarray, box: FaceBox) -> np.ndarray:
        rgb = np.ascontiguousarray(image_bgr[:, :, ::-1])
        aligned = self.align(image_bgr, self.landmarker.arcface_points(rgb, box))
        output = self._session.run(None, {self._input_name: self.to_blob(aligned)})[0]
        return _l2_normalise(output[0])


@dataclass(frozen=True)
class FaceMatch:
    verified: bool
    confidence: float  # 0..1, 0.5 exactly at the threshold
    cosine_similarity: float
    euclidean_distance: float  # between the L2-normalised embeddings, 0..2
    threshold_used: float
    message: str
    embedder: str = ""


def match_confidence(cosine: float, threshold: float, scale: float) -> float:
    """Logistic map of cosine onto 0..1 centred on the threshold, so the number shown to
    people means the same thing whatever the embedder's cosine range is."""
    return 1.0 / (1.0 + math.exp(-(cosine - threshold) / scale))


class FaceMatcher:
    """Compares the largest face of an ID document with the largest face of a selfie."""

    def __init__(self, detector: FaceDetector, embedder: FaceEmbedder, threshold: float | None = None) -> None:
        self.detector, self.embedder = detector, embedder
        self.threshold = threshold if threshold is not None else self.embedder.threshold
        self.name = f"{self.embedder.name} ({self.detector.name})"
        # Genuine and impostor cosines are ~0.05 apart for dlib, ~0.3 for ArcFace.
        self.confidence_scale = 0.02 if self.threshold > 0.6 else 0.08

    def embed_largest(self, image_bgr: np.ndarray, where: str = "image") -> np.ndarray:
        """The embedding of the detector's most confident face (the name is the usual "largest face" rule's)."""
        boxes = self.detector.detect(image_bgr)
        if not boxes:
            raise NoFaceDetected(f"No face detected in {where}")
        return self.embedder.embed(image_bgr, boxes[0])

    def compare_embeddings(self, a: np.ndarray, b: np.ndarray) -> FaceMatch:
        cosine = float(np.clip(np.dot(a, b), -1.0, 1.0))
        distance = float(math.sqrt(max(0.0, 2.0 - 2.0 * cosine)))
        confidence = match_confidence(cosine, self.threshold, self.confidence_scale)
        verified = cosine >= self.threshold
        verdict = "Faces match" if verified else "Faces do not match"
        return FaceMatch(
            verified=verified, confidence=round(confidence, 4), cosine_similarity=round(cosine, 4),
            euclidean_distance=round(distance, 4), threshold_used=self.threshold, embedder=self.embedder.name,
            message=f"{verdict} ({confidence * 100:.1f}% match confidence, cosine {cosine:.3f})",
        )

    def compare(self, document_bgr: np.ndarray, selfie_bgr: np.ndarray) -> FaceMatch:
        document = self.embed_largest(document_bgr, "ID document")
        selfie = self.embed_largest(selfie_bgr, "selfie")
        return self.compare_embeddings(document, selfie)


@dataclass(frozen=True)
class SelfieQuality:
    face_detected: bool
    face_count: int
    face_ratio: float  # face width / image width
    sharpness: float  # variance of the Laplacian on the face (at most 256 px wide)
    brightness: float  # mean grey level of the face, 0..255
    acceptable: bool
    issues: list[str] = field(default_factory=list)


# What a selfie needs to be matched later: face width in pixels, variance of the Laplacian, mean grey level.
MIN_FACE_PX, MIN_SHARPNESS, BRIGHTNESS_RANGE = 80, 40.0, (50.0, 210.0)


def assess_selfie(image_bgr: np.ndarray, detector: FaceDetector) -> SelfieQuality:
    """Face found, big enough, sharp and exposed well enough to be matched later."""
    boxes = detector.detect(image_bgr)
    if not boxes:
        return SelfieQuality(False, 0, 0.0, 0.0, 0.0, False, ["No face detected in selfie"])
    box = boxes[0]
    # Weak extra detections are usually false positives, not a second person.
    others = [b for b in boxes[1:] if b.score >= 0.5 * box.score]
    face = cv2.cvtColor(image_bgr[box.y : box.y + box.h, box.x : box.x + box.w], cv2.COLOR_BGR2GRAY)
    # Big faces are shrunk to 256 px so sharpness does not grow with resolution; small
    # ones are left alone, because upscaling would make every small face look blurred.
    if box.w > 256:
        face = cv2.resize(face, (256, 256), interpolation=cv2.INTER_AREA)
    sharpness = float(cv2.Laplacian(face, cv2.CV_64F).var())
    brightness = float(face.mean())
    issues = []
    if others:
        issues.append("More than one face is visible")
    if box.w < MIN_FACE_PX:
        issues.append("The face is too small; move closer to the camera")
    if sharpness < MIN_SHARPNESS:
        issues.append("The image is blurry")
    if not BRIGHTNESS_RANGE[0] <= brightness <= BRIGHTNESS_RANGE[1]:
        issues.append("The face is too dark" if brightness < BRIGHTNESS_RANGE[0] else "The face is overexposed")
    return SelfieQuality(
        face_detected=True, face_count=1 + len(others), face_ratio=round(box.w / image_bgr.shape[1], 4),
        sharpness=round(sharpness, 1), brightness=round(brightness, 1), acceptable=not issues, issues=issues,
    )


def load_face_matcher(backend: str, model_dir: str | Path | None, threshold: float | None,
                      detector: FaceDetector) -> FaceMatcher:
    """Build the matcher from settings. ``threshold=None`` takes the embedder's calibrated
    default (0.93 for dlib, 0.30 for ArcFace): the two cosine scales are not comparable."""
    if backend == "insightface":
        if model_dir is None:
            raise FileNotFoundError("face_model_dir must point at an InsightFace buffalo_l folder")
        embedder: FaceEmbedder = InsightFaceEmbedder(model_dir)
    elif backend == "dlib":
        embedder = DlibFaceEmbedder()
    else:
        raise ValueError(f"Unknown face backend {backend!r}")
    return FaceMatcher(detector, embedder, threshold)
