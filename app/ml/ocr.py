"""Text detection + recognition engines (synchronous; the async gateway runs them in a pool).

Default: RapidOCR with the PP-OCRv6 "small" det/rec and the mobile angle classifier
that ship inside the `rapidocr` wheel, on ONNX Runtime CPU. Every model path is given
explicitly so RapidOCR never reaches its download code. Measured on 2 shared CPU cores,
2 ORT threads: 310-430 ms for one 1000x630 card on an idle machine, ~830 ms with the
cores busy; ~0.9 s for a 1334x880 passport page; engine load + warm-up ~1 s.
"""

from __future__ import annotations

import logging
import math
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Protocol, runtime_checkable

import numpy as np

from app.domain.errors import ModelsUnavailable

log = logging.getLogger(__name__)

Box = tuple[int, int, int, int]  # x0, y0, x1, y1 (axis-aligned, pixels of the input image)


@dataclass(frozen=True)
class OcrLine:
    text: str
    confidence: float
    box: Box
    # the detector's four corners (top-left, top-right, bottom-right, bottom-left): the
    # slope of rotated text, which the axis-aligned `box` loses
    quad: tuple[tuple[float, float], ...] | None = field(default=None, compare=False, repr=False)

    @property
    def cy(self) -> float:
        return (self.box[1] + self.box[3]) / 2

    @property
    def height(self) -> int:
        return self.box[3] - self.box[1]


@runtime_checkable
class OcrEngine(Protocol):
    name: str

    def read(self, image_bgr: np.ndarray) -> list[OcrLine]: ...


def _to_box(points) -> Box:
    pts = np.asarray(points, dtype=float).reshape(-1, 2)
    x0, y0 = pts.min(axis=0)
    x1, y1 = pts.max(axis=0)
    return int(x0), int(y0), int(x1), int(y1)


def group_rows(lines: list[OcrLine]) -> list[list[OcrLine]]:
    """Rows top-to-bottom, each left-to-right. A box joins the current row when its
    vertical centre is within half the smaller height of the row's mean centre, which
    tolerates the ±3° skew of a hand-held photo without merging neighbouring lines."""
    rows: list[list[OcrLine]] = []
    for ln in sorted(lines, key=lambda x: x.cy):
        row = rows[-1] if rows else None
        if row and abs(ln.cy - sum(r.cy for r in row) / len(row)) < 0.5 * min(ln.height, *(r.height for r in row)):
            row.append(ln)
        else:
            rows.append([ln])
    return [sorted(row, key=lambda x: x.box[0]) for row in rows]


def _quad(points) -> tuple[tuple[float, float], ...]:
    return tuple((float(x), float(y)) for x, y in np.asarray(points, dtype=float).reshape(-1, 2))


def text_angle(lines: list[OcrLine]) -> float:
    """The page's skew in degrees (clockwise positive, image y pointing down): the median
    slope of the long text lines' top edges. Short boxes (a date, a single word) are
    left out: their corners say little about their slope."""
    angles = []
    for ln in lines:
        if ln.quad is None or len(ln.quad) != 4:
            continue
        (x0, y0), (x1, y1), _, (x3, y3) = ln.quad
        length, height = math.hypot(x1 - x0, y1 - y0), math.hypot(x3 - x0, y3 - y0)
        if length >= 4 * max(height, 1.0):
            angles.append(math.degrees(math.atan2(y1 - y0, x1 - x0)))
    return float(np.median(angles)) if angles else 0.0


def deskew_lines(lines: list[OcrLine], angle: float, center: tuple[float, float]) -> list[OcrLine]:
    """Boxes as they would be on the image rotated by `-angle` about `center` (what
    `cv2.getRotationMatrix2D(center, angle, 1)` does to the image): rows of a card
    photographed at 15° line up again, without a second OCR pass."""
    import cv2

    m = cv2.getRotationMatrix2D(center, angle, 1.0)
    out = []
    for ln in lines:
        if ln.quad is None:
            out.append(ln)
            continue
        pts = np.asarray(ln.quad, dtype=float)
        turned = pts @ m[:, :2].T + m[:, 2]
        out.append(OcrLine(ln.text, ln.confidence, _to_box(turned), _quad(turned)))
    return reading_order(out)


def reading_order(lines: list[OcrLine]) -> list[OcrLine]:
    return [ln for row in group_rows(lines) for ln in row]


def _lines(found: Iterable[tuple[Any, Any, Any]]) -> list[OcrLine]:
    """An engine's (text, score, quad) triples as lines in reading order, blank texts dropped."""
    lines = [OcrLine(str(t).strip(), float(s), _to_box(quad), _quad(quad)) for t, s, quad in found]
    return reading_order([ln for ln in lines if ln.text])


def _check_image(image_bgr: np.ndarray) -> None:
    if not isinstance(image_bgr, np.ndarray) or image_bgr.ndim != 3 or image_bgr.shape[2] != 3:
        raise ValueError("expected an HxWx3 BGR uint8 image")


class RapidOcrEngine:
    """PP-OCR through RapidOCR + ONNX Runtime, CPU, models from the wheel (or `model_dir`)."""

    DET = "PP-OCRv6_det_small.onnx"
    CLS = "ch_ppocr_mobile_v2.0_cls_mobile.onnx"
    REC = "PP-OCRv6_rec_small.onnx"

    def __init__(self, model_dir: str | Path | None = None, threads: int = 2, min_score: float = 0.5) -> None:
        try:
            import rapidocr
            from rapidocr import RapidOCR
        except ImportError as e:  # pragma: no cover - rapidocr is a hard dependency
            raise ModelsUnavailable("rapidocr is not installed", code="models_unavailable") from e
        root = Path(model_dir) if model_dir else Path(rapidocr.__file__).parent / "models"
        paths = {k: root / f for k, f in (("Det", self.DET), ("Cls", self.CLS), ("Rec", self.REC))}
        missing = [str(p) for p in paths.values() if not p.is_file()]
        if missing:
            # RapidOCR would try to download them; this service never fetches weights at run time.
            raise ModelsUnavailable(f"OCR model files missing: {', '.join(missing)}")
        params: dict[str, object] = {f"{k}.model_path": str(p) for k, p in paths.items()}
        params.update({
            "Global.log_level": "error",  # "no text found" is a normal answer here
            "Global.text_score": min_score,
            "EngineConfig.onnxruntime.intra_op_num_threads": threads,
            "EngineConfig.onnxruntime.inter_op_num_threads": 1,
        })
        self._ocr = RapidOCR(params=params)
        self.name = "rapidocr-ppocrv6-small"

    def read(self, image_bgr: np.ndarray) -> list[OcrLine]:
        return self._read(image_bgr, use_cls=True)

    def read_upright(self, image_bgr: np.ndarray) -> list[OcrLine]:
        """Without the angle classifier, for text known to be upright (an MRZ band after
        deskewing): the classifier turns some MRZ lines, long runs of `<`, upside down."""
        return self._read(image_bgr, use_cls=False)

    def _read(self, image_bgr: np.ndarray, use_cls: bool) -> list[OcrLine]:
        _check_image(image_bgr)
        out: Any = self._ocr(image_bgr, use_cls=use_cls)  # a RapidOCROutput (the stubs name every stage's type)
        if out.boxes is None or out.txts is None:
            return []
        return _lines(zip(out.txts, out.scores, out.boxes))


class PaddleOcrEngine:
    """Optional backend: the `paddleocr` package (3.x pipeline API, tested with 3.7.0 /
    paddlex 3.7.2) running local ONNX models on ONNX Runtime; paddlepaddle is not needed.

    `model_dir` is the folder `scripts/make_paddleocr_model_dir.py` writes from the
    rapidocr wheel's PP-OCRv6 small det/rec: `det/` and `rec/`, each holding
    `inference.onnx` + `inference.yml` (whose `Global.model_name` must be the names
    below). Both model names and folders are passed explicitly, so PaddleX never resolves
    an official model and never reaches its download code. Detection runs at the
    PP-OCRv6 release setting (shorter side scaled to 736, as RapidOCR does); textline
    orientation and document unwarping are off (they would need extra models). Not
    installed by default: `pip install paddleocr==3.7.0` (~600 MB with paddlex)."""

    DET_NAME = "PP-OCRv6_small_det"
    REC_NAME = "PP-OCRv6_small_rec"

    def __init__(self, model_dir: str | Path, threads: int = 2, min_score: float = 0.5) -> None:
        root = Path(model_dir) if model_dir else None
        if root is None or not root.is_dir():
            raise ModelsUnavailable(f"PaddleOCR model folder not found: {model_dir!r}")
        try:
            from paddleocr import PaddleOCR  # heavy: imported only when this backend is chosen
        except ImportError as e:
            raise ModelsUnavailable("the 'paddleocr' backend needs the paddleocr package (pip install "
                                    "paddleocr==3.7.0); use backend='rapidocr' otherwise") from e
        needed = [root / sub / f for sub in ("det", "rec") for f in ("inference.onnx", "inference.yml")]
        missing = [str(p) for p in needed if not p.is_file()]
        if missing:
            raise ModelsUnavailable(f"PaddleOCR model files missing: {', '.join(missing)} "
                                    "(build the folder with scripts/make_paddleocr_model_dir.py)")
        try:
            self._ocr = PaddleOCR(
                text_detection_model_name=self.DET_NAME, text_detection_model_dir=str(root / "det"),
                text_recognition_model_name=self.REC_NAME, text_recognition_model_dir=str(root / "rec"),
                use_doc_orientation_classify=False, use_doc_unwarping=False, use_textline_orientation=False,
                text_det_limit_side_len=736, text_det_limit_type="min", text_rec_score_thresh=min_score,
                engine="onnxruntime", engine_config={"intra_op_num_threads": threads, "inter_op_num_threads": 1},
                device="cpu",
            )
        except Exception as e:  # bad yml / model name mismatch / onnxruntime missing
            raise ModelsUnavailable(f"PaddleOCR could not load the models in {root}: {e}") from e
        self.name = "paddleocr-ppocrv6-small-onnx"

    def read(self, image_bgr: np.ndarray) -> list[OcrLine]:
        _check_image(image_bgr)
        # A numpy input is taken as BGR (cv2 order), like RapidOCR's. rec_polys: one 4x2 int16 quad per
        # recognised line (after the score filter), rec_texts/rec_scores aligned with it.
        results = self._ocr.predict(image_bgr)
        return _lines(item for r in results for item in zip(r["rec_texts"], r["rec_scores"], r["rec_polys"]))


def load_ocr_engine(backend: str = "rapidocr", model_dir: str | None = None) -> OcrEngine:
    """Build the configured engine; raises ModelsUnavailable with a readable reason."""
    if backend == "rapidocr":
        return RapidOcrEngine(model_dir=model_dir)
    if backend == "paddleocr":
        if not model_dir:
            raise ModelsUnavailable("the 'paddleocr' backend needs model_dir (a folder built by "
                                    "scripts/make_paddleocr_model_dir.py)")
        return PaddleOcrEngine(model_dir)
    raise ModelsUnavailable(f"unknown OCR backend {backend!r} (rapidocr, paddleocr)")
