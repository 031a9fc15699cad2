"""Shared fixtures for the face and liveness tests: models loaded once per session, the
public fixtures folder (read in place, never copied), and images built from
scikit-image's astronaut so the core tests need nothing outside installed packages."""

from __future__ import annotations

import os
from pathlib import Path

import cv2
import numpy as np
import pytest
from skimage import data

REPO = Path(__file__).resolve().parents[2]


def fixtures_dir() -> Path:
    return Path(os.environ.get("KYC_FIXTURES_DIR", REPO.parent / "shared" / "fixtures"))


def require_fixtures(*parts: str) -> Path:
    path = fixtures_dir().joinpath(*parts)
    if not path.exists():
        pytest.skip(f"public fixtures not found at {path} (set KYC_FIXTURES_DIR)")
    return path


def read_image(path: Path) -> np.ndarray:
    from app.ml.images import decode_image

    return decode_image(path.read_bytes())


def read_video(path: Path) -> list[np.ndarray]:
    capture = cv2.VideoCapture(str(path))
    frames = []
    try:
        while True:
            ok, frame = capture.read()
            if not ok:
                return frames
            frames.append(frame)
    finally:
        capture.release()


def astronaut_bgr() -> np.ndarray:
    return np.ascontiguousarray(data.astronaut()[:, :, ::-1])


def jpeg(image: np.ndarray, quality: int) -> np.ndarray:
    ok, encoded = cv2.imencode(".jpg", image, [cv2.IMWRITE_JPEG_QUALITY, quality])
    assert ok
    return cv2.imdecode(encoded, cv2.IMREAD_COLOR)


def rotate(image: np.ndarray, degrees: float, scale: float = 1.0, shift=(0, 0), size=None) -> np.ndarray:
    height, width = image.shape[:2]
    matrix = cv2.getRotationMatrix2D((width / 2, height / 2), degrees, scale)
    matrix[:, 2] += shift
    return cv2.warpAffine(image, matrix, size or (width, height), borderMode=cv2.BORDER_REPLICATE)


# The astronaut's face in skimage.data.astronaut(), measured with dlib HOG: x, y, w, h.
ASTRONAUT_FACE = (175, 76, 90, 90)


def id_card(face_width: int = 80, portrait: np.ndarray | None = None, face=ASTRONAUT_FACE) -> tuple[np.ndarray, tuple]:
    """A synthetic 1000x630 ID card with the portrait scaled so its face is `face_width`
    px wide; returns the card (JPEG-compressed like a phone photo) and the face box."""
    portrait = astronaut_bgr() if portrait is None else portrait
    x, y, w, h = face
    left, top = max(0, int(x - 0.4 * w)), max(0, int(y - 0.5 * h))
    crop = portrait[top : int(y + 1.8 * h), left : int(x + 1.4 * w)]
    scale = face_width / w
    crop = cv2.resize(crop, None, fx=scale, fy=scale, interpolation=cv2.INTER_AREA)
    card = np.full((630, 1000, 3), (215, 228, 238), np.uint8)
    cv2.rectangle(card, (0, 0), (1000, 90), (150, 90, 40), -1)
    cv2.putText(card, "REPUBLIC OF UTOPIA  IDENTITY CARD", (40, 60), cv2.FONT_HERSHEY_SIMPLEX, 1.1, (255, 255, 255), 2)
    for row, text in enumerate(["NAME  ASHA KUMARI", "DOB   01/01/1990", "NO    X1234567", "SEX   F"]):
        cv2.putText(card, text, (420, 190 + row * 70), cv2.FONT_HERSHEY_SIMPLEX, 1.0, (30, 30, 30), 2)
    oy, ox = 130, 60
    ch, cw = min(crop.shape[0], 470), min(crop.shape[1], 330)
    card[oy : oy + ch, ox : ox + cw] = crop[:ch, :cw]
    box = (int(ox + (x - left) * scale), int(oy + (y - top) * scale), int(w * scale), int(h * scale))
    return jpeg(card, 85), box


def iou(a, b) -> float:
    ax, ay, aw, ah = a
    bx, by, bw, bh = b
    ix = max(0, min(ax + aw, bx + bw) - max(ax, bx))
    iy = max(0, min(ay + ah, by + bh) - max(ay, by))
    inter = ix * iy
    return inter / float(aw * ah + bw * bh - inter)
