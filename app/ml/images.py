"""Decoding of untrusted uploads into BGR pixel arrays.

Everything here assumes the bytes are hostile: the real format is sniffed from
magic bytes (the filename and content type are the client's claim, not a fact),
pixel dimensions are checked from the header before any pixel is decoded
(decompression bombs), and every failure is a domain error with a sentence a
client can act on.
"""

from __future__ import annotations

import base64
import binascii
import io
import re
import threading
import warnings

import cv2
import numpy as np
from PIL import Image, ImageOps

from app.domain.errors import FileTooLarge, InvalidImage

MAX_BYTES = 10 * 1024 * 1024
MAX_PIXELS = 40_000_000
PDF_DPI = 200  # enough for OCR of an ID card, small enough to render fast
PDF_MAX_SIDE = 5000

_JPEG = b"\xff\xd8\xff"
_PNG = b"\x89PNG\r\n\x1a\n"
_PDF = b"%PDF-"
# PDF readers accept the header anywhere in the first 1024 bytes.
_PDF_SEARCH_WINDOW = 1024

# PDFium is not thread-safe; the ML pool runs decodes in several threads.
_pdfium_lock = threading.Lock()

_DATA_URL = re.compile(r"^data:(?P<mime>[\w.+-]+/[\w.+-]+)?(?P<params>(?:;[^;,]*)*?),(?P<payload>.*)$", re.S)


def sniff_format(data: bytes) -> str | None:
    """Return "jpeg", "png" or "pdf" from the magic bytes, or None."""
    if data.startswith(_JPEG):
        return "jpeg"
    if data.startswith(_PNG):
        return "png"
    if _PDF in data[:_PDF_SEARCH_WINDOW]:
        return "pdf"
    return None


def decode_image(
    data: bytes,
    *,
    max_bytes: int = MAX_BYTES,
    max_pixels: int = MAX_PIXELS,
    allow_pdf: bool = True,
) -> np.ndarray:
    """Decode JPEG, PNG or (first page of) PDF bytes into a BGR uint8 array."""
    if not data:
        raise InvalidImage("The file is empty.")
    if len(data) > max_bytes:
        raise FileTooLarge(
            f"The file is {len(data) / 1048576:.1f} MB; at most {max_bytes / 1048576:.0f} MB is accepted.",
            size=len(data),
            max_bytes=max_bytes,
        )
    fmt = sniff_format(data)
    if fmt is None or (fmt == "pdf" and not allow_pdf):
        accepted = "JPEG, PNG or PDF" if allow_pdf else "JPEG or PNG"
        raise InvalidImage(f"The file is not a {accepted} image.")
    if fmt == "pdf":
        return _render_pdf(data, max_pixels)
    return _decode_raster(data, fmt, max_pixels)


def decode_frame(
    value: str,
    *,
    max_bytes: int = MAX_BYTES,
    max_pixels: int = MAX_PIXELS,
) -> np.ndarray:
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
        raise FileTooLarge(
            f"The frame is larger than {max_bytes / 1048576:.0f} MB.", max_bytes=max_bytes
        )
    try:
        raw = base64.b64decode(text + "=" * (-len(text) % 4), validate=True)
    except (binascii.Error, ValueError) as exc:
        raise InvalidImage("The frame is not valid base64.") from exc
    return decode_image(raw, max_bytes=max_bytes, max_pixels=max_pixels, allow_pdf=False)


def _too_many_pixels(width: int, height: int, max_pixels: int) -> FileTooLarge:
    return FileTooLarge(
        f"The image is {width}x{height} pixels; at most {max_pixels / 1e6:.0f} megapixels are accepted.",
        width=width,
        height=height,
        max_pixels=max_pixels,
    )


def _decode_raster(data: bytes, fmt: str, max_pixels: int) -> np.ndarray:
    pil_format = "JPEG" if fmt == "jpeg" else "PNG"
    name = pil_format
    try:
        with warnings.catch_warnings():
            # Our own pixel limit applies; Pillow's bomb warning would only be noise.
            warnings.simplefilter("ignore", Image.DecompressionBombWarning)
            image = Image.open(io.BytesIO(data), formats=[pil_format])
            # Image.open reads only the header: the size is known, no pixel decoded yet.
            width, height = image.size
            if width <= 0 or height <= 0:
                raise InvalidImage(f"The {name} image has no pixels.")
            if width * height > max_pixels:
                raise _too_many_pixels(width, height, max_pixels)
            image.load()  # raises on truncated or corrupt data
            image = ImageOps.exif_transpose(image)
    except Image.DecompressionBombError as exc:
        raise FileTooLarge(
            f"The image's dimensions exceed the {max_pixels / 1e6:.0f}-megapixel limit.",
            max_pixels=max_pixels,
        ) from exc
    except (InvalidImage, FileTooLarge):
        raise
    except (OSError, SyntaxError, ValueError, Image.UnidentifiedImageError) as exc:
        # Truncated files, bad chunks and CRC errors all land here.
        raise InvalidImage(f"The {name} image is corrupt or truncated and cannot be read.") from exc
    return _to_bgr(image)


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
            if width_pt <= 0 or height_pt <= 0:
                raise InvalidImage("The PDF's first page is empty.")
            # Scale to PDF_DPI, then shrink so the bitmap respects both pixel limits.
            scale = PDF_DPI / 72.0
            scale = min(scale, PDF_MAX_SIDE / max(width_pt, height_pt))
            scale = min(scale, (max_pixels / (width_pt * height_pt)) ** 0.5)
            bitmap = page.render(scale=scale)
            rgb = np.asarray(bitmap.to_pil().convert("RGB"), dtype=np.uint8)
        except pdfium.PdfiumError as exc:
            raise InvalidImage("The PDF's first page cannot be rendered.") from exc
        finally:
            document.close()
    return cv2.cvtColor(rgb, cv2.COLOR_RGB2BGR)
