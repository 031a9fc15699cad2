"""Decoding of untrusted uploads into BGR pixel arrays.

Everything here assumes the bytes are hostile: the real format is sniffed from
magic bytes (the filename and content type are the client's claim, not a fact),
pixel dimensions are checked from the header before any pixel is decoded
(decompression bombs), and every failure is a domain error with a sentence a
client can act on.

The size that matters is the one the models work on, not the file's: RapidOCR
enlarges an image until its short side reaches the detector's 736 px, so a 1x100
PNG became a 736x73600 tensor (~6 GB, minutes of CPU). `check_geometry` therefore
bounds the short side, the aspect ratio, the decoded pixels and the pixels the OCR
detector and the face detectors will really process, on the header's size, on a
PDF page's planned bitmap and again on the final (rotated, rendered) array.
"""

from __future__ import annotations

import base64
import binascii
import io
import math
import re
import threading
import warnings

import cv2
import numpy as np
from PIL import Image, ImageOps

from app.domain.errors import FileTooLarge, InvalidImage
from app.ml.face_backends import resize_factor

MAX_BYTES = 10 * 1024 * 1024
MAX_PIXELS = 40_000_000
# An ID card or a face needs more than this to be read at all; below it the detectors'
# upscaling only manufactures pixels (and cost).
MIN_SIDE = 64
# ID cards are 1.59:1, passport pages 1.42:1, phone photos up to ~2.2:1. Beyond 4:1 the
# OCR's rescaling to a 736-px short side grows the work linearly with the aspect ratio.
MAX_ASPECT = 4.0
# Pixels one model pass may work on. The largest honest case is dlib HOG's upsampled
# pass over a square photo shrunk to 1600 px: 3200x3200 = 10.2 MP; OCR stays <= ~4 MP.
MAX_WORK_PIXELS = 12_000_000
PDF_DPI = 200  # enough for OCR of an ID card, small enough to render fast
PDF_MAX_SIDE = 3000  # beyond what any model uses (OCR 2000 px, faces 1600): a bigger bitmap only costs

_JPEG = b"\xff\xd8\xff"
_PNG = b"\x89PNG\r\n\x1a\n"
_PDF = b"%PDF-"
# PDF readers accept the header anywhere in the first 1024 bytes.
_PDF_SEARCH_WINDOW = 1024

# PDFium is not thread-safe; the ML pool runs decodes in several threads.
_pdfium_lock = threading.Lock()

_DATA_URL = re.compile(r"^data:(?P<mime>[\w.+-]+/[\w.+-]+)?(?P<params>(?:;[^;,]*)*?),(?P<payload>.*)$", re.S)


def sniff_format(data: bytes) -> str | None:
    if data.startswith(_JPEG):
        return "jpeg"
    if data.startswith(_PNG):
        return "png"
    if _PDF in data[:_PDF_SEARCH_WINDOW]:
        return "pdf"
    return None


def decode_image(data: bytes, *, max_bytes: int = MAX_BYTES, max_pixels: int = MAX_PIXELS,
                 allow_pdf: bool = True) -> np.ndarray:
    """Decode JPEG, PNG or (first page of) PDF bytes into a BGR uint8 array."""
    if not data:
        raise InvalidImage("The file is empty.")
    if len(data) > max_bytes:
        raise FileTooLarge(f"The file is {len(data) / 1048576:.1f} MB; at most {max_bytes / 1048576:.0f} MB is "
                           "accepted.", size=len(data), max_bytes=max_bytes)
    fmt = sniff_format(data)
    if fmt is None or (fmt == "pdf" and not allow_pdf):
        accepted = "JPEG, PNG or PDF" if allow_pdf else "JPEG or PNG"
        raise InvalidImage(f"The file is not a {accepted} image.")
    if fmt == "pdf":
        return _render_pdf(data, max_pixels)
    return _decode_raster(data, fmt, max_pixels)


def decode_frame(value: str, *, max_bytes: int = MAX_BYTES, max_pixels: int = MAX_PIXELS) -> np.ndarray:
    """Decode a base64 string or a ``data:image/...;base64,`` URL (JPEG or PNG)."""
    if not isinstance(value, str) or not value.strip():
        raise InvalidImage("The frame is empty.")
    text = value.strip()
    if text.startswith("data:"):
        match = _DATA_URL.match(text)
        if not match or ";base64" not in match.group("params").lower():
            raise InvalidImage("The frame is not a base64 data URL.")
        if match.group("mime") and not match.group("mime").lower().startswith("image/"):
            raise InvalidImage("The frame's data URL is not an image.")
        text = match.group("payload")
    if any(ws in text for ws in (" ", "\n", "\r", "\t")):  # wrapped base64; the scan is cheap, re.sub is not
        text = re.sub(r"\s+", "", text)
    # Refuse on the encoded length so a huge string is never decoded into memory.
    if len(text) * 3 // 4 > max_bytes + 2:
        raise FileTooLarge(f"The frame is larger than {max_bytes / 1048576:.0f} MB.", max_bytes=max_bytes)
    try:
        raw = base64.b64decode(text + "=" * (-len(text) % 4), validate=True)
    except (binascii.Error, ValueError) as exc:
        raise InvalidImage("The frame is not valid base64.") from exc
    return decode_image(raw, max_bytes=max_bytes, max_pixels=max_pixels, allow_pdf=False)


def _rescaled(width: int, height: int, ratio: float) -> tuple[int, int]:
    """Both sides scaled, then rounded to a multiple of 32."""
    return int(round(int(width * ratio) / 32) * 32), int(round(int(height * ratio) / 32) * 32)


def ocr_work_size(width: int, height: int) -> tuple[int, int]:
    """The (width, height) RapidOCR 3.10's text detector runs on for an image of this size,
    as its defaults compute it (checked against the installed package by the tests):
    longest side down to 2000, shortest up to 30, wide or low images padded to 4:1
    (`use_vertical_padding`), then shortest side up to 736 (`Det.limit_type: min`), each step rounding to 32."""
    w, h = width, height
    if max(w, h) > 2000:
        w, h = _rescaled(w, h, 2000 / max(w, h))
    if 0 < min(w, h) < 30:
        w, h = _rescaled(w, h, 30 / min(w, h))
    if h > 0 and (h <= 30 or w / h > 8):
        h += 2 * int(abs(max(int(w / 8), 30) * 2 - h) / 2)
    if min(w, h) > 0:  # the detector rounds both sides to 32 even when it does not enlarge
        w, h = _rescaled(w, h, max(1.0, 736 / min(w, h)))
    return w, h


def face_work_size(width: int, height: int) -> tuple[int, int]:
    """The largest image the face detectors process: resized as they resize it, then doubled
    by dlib HOG's one-level pyramid upsample."""
    factor = resize_factor(width, height)
    return int(2 * width * factor), int(2 * height * factor)


def check_geometry(width: int, height: int, max_pixels: int = MAX_PIXELS, *, what: str = "The image") -> None:
    """Refuse a size the models cannot use or would pay too much for, before they run."""
    size = f"{what} is {width}x{height} pixels"
    if min(width, height) < MIN_SIDE:
        raise InvalidImage(f"{size}; its shorter side must be at least {MIN_SIDE} pixels.", width=width,
                           height=height, min_side=MIN_SIDE)
    if max(width, height) > MAX_ASPECT * min(width, height):
        raise InvalidImage(f"{size}; its longer side may be at most {MAX_ASPECT:g} times its shorter side.",
                           width=width, height=height, max_aspect=MAX_ASPECT)
    if width * height > max_pixels:
        raise FileTooLarge(f"The image is {width}x{height} pixels; at most {max_pixels / 1e6:.0f} megapixels are "
                           "accepted.", width=width, height=height, max_pixels=max_pixels)
    work = max(math.prod(ocr_work_size(width, height)), math.prod(face_work_size(width, height)))
    if work > MAX_WORK_PIXELS:
        raise FileTooLarge(
            f"{size}; analysing it would take {work / 1e6:.1f} megapixels, at most "
            f"{MAX_WORK_PIXELS / 1e6:.0f} are allowed.", width=width, height=height, max_work_pixels=MAX_WORK_PIXELS)


def _decode_raster(data: bytes, fmt: str, max_pixels: int) -> np.ndarray:
    name = "JPEG" if fmt == "jpeg" else "PNG"
    try:
        with warnings.catch_warnings():
            # Our own pixel limit applies; Pillow's bomb warning would only be noise.
            warnings.simplefilter("ignore", Image.DecompressionBombWarning)
            image = Image.open(io.BytesIO(data), formats=[name])
            # Image.open reads only the header: the size is known, no pixel decoded yet.
            width, height = image.size
            if width <= 0 or height <= 0:
                raise InvalidImage(f"The {name} image has no pixels.")
            check_geometry(width, height, max_pixels)
            image.load()  # raises on truncated or corrupt data
            upright: Image.Image = ImageOps.exif_transpose(image)
            check_geometry(*upright.size, max_pixels)  # the OCR's padding depends on orientation
    except Image.DecompressionBombError as exc:
        raise FileTooLarge(f"The image's dimensions exceed the {max_pixels / 1e6:.0f}-megapixel limit.",
                           max_pixels=max_pixels) from exc
    except (InvalidImage, FileTooLarge):
        raise
    except (OSError, SyntaxError, ValueError, Image.UnidentifiedImageError) as exc:
        # Truncated files, bad chunks and CRC errors all land here.
        raise InvalidImage(f"The {name} image is corrupt or truncated and cannot be read.") from exc
    return _to_bgr(upright)


def _to_bgr(image: Image.Image) -> np.ndarray:
    if image.mode in ("I;16", "I;16B", "I;16L", "I"):
        # 16-bit greyscale: keep the high byte rather than letting convert() clip to white.
        grey = (np.asarray(image, dtype=np.uint32) >> 8).clip(0, 255).astype(np.uint8)
        return np.ascontiguousarray(np.repeat(grey[:, :, None], 3, axis=2))
    if image.mode in ("RGBA", "LA", "PA") or (image.mode == "P" and "transparency" in image.info):
        # Transparent pixels become white, as they look in a viewer, not black.
        rgba = image.convert("RGBA")
        background = Image.new("RGBA", rgba.size, (255, 255, 255, 255))
        image = Image.alpha_composite(background, rgba)
    rgb = np.asarray(image.convert("RGB"), dtype=np.uint8)
    return cv2.cvtColor(rgb, cv2.COLOR_RGB2BGR)  # ~3x faster than a reversed-channel copy


def _render_pdf(data: bytes, max_pixels: int) -> np.ndarray:
    import pypdfium2 as pdfium  # imported lazily: only PDF uploads pay for it

    with _pdfium_lock:
        try:
            document = pdfium.PdfDocument(data)
        except pdfium.PdfiumError as exc:
            raise InvalidImage("The PDF is corrupt, truncated or password-protected.") from exc
        try:
            if len(document) == 0:
                raise InvalidImage("The PDF has no pages.")
            page = document[0]
            width_pt, height_pt = page.get_size()
            if not (width_pt > 0 and height_pt > 0):  # also NaN
                raise InvalidImage("The PDF's first page is empty.")
            if max(width_pt, height_pt) > MAX_ASPECT * min(width_pt, height_pt):
                raise InvalidImage(
                    f"The PDF's first page is {width_pt:.0f}x{height_pt:.0f} points; its longer side may be at "
                    f"most {MAX_ASPECT:g} times its shorter side.", max_aspect=MAX_ASPECT)
            # Scale to PDF_DPI, then shrink so the bitmap respects both pixel limits.
            scale = min(PDF_DPI / 72.0, PDF_MAX_SIDE / max(width_pt, height_pt), (max_pixels / (width_pt * height_pt)) ** 0.5)
            # Judge the bitmap before rendering it, then the bitmap itself (page rotation).
            check_geometry(int(width_pt * scale), int(height_pt * scale), max_pixels,
                           what="The PDF's first page, rendered,")
            bitmap = page.render(scale=scale)
            rgb = np.asarray(bitmap.to_pil().convert("RGB"), dtype=np.uint8)
            check_geometry(rgb.shape[1], rgb.shape[0], max_pixels, what="The PDF's first page, rendered,")
        except pdfium.PdfiumError as exc:
            raise InvalidImage("The PDF's first page cannot be rendered.") from exc
        finally:
            document.close()
    return cv2.cvtColor(rgb, cv2.COLOR_RGB2BGR)
