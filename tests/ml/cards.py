"""Synthetic Indian ID cards rendered with PIL (or OpenCV's Hershey fonts), plus the
degradations a phone photo adds. Every card is deterministic: same arguments, same pixels.

The people and numbers are invented; Aadhaar numbers are made Verhoeff-valid with the
project's own rule so a wrong checksum in the reader is caught, not masked.
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path

import cv2
import numpy as np
from PIL import Image, ImageDraw, ImageFont

from app.domain.documents import verhoeff_check_digit

W, H = 1000, 630  # ID-1 card aspect (85.6 x 54 mm) at ~300 dpi / 1.0
FONT_DIRS = [Path("/usr/share/fonts/truetype/dejavu"), Path("/usr/share/fonts/dejavu")]


def _dejavu(name: str) -> Path | None:
    return next((d / name for d in FONT_DIRS if (d / name).is_file()), None)


def available_fonts() -> list[str]:
    """Font families present on this machine: PIL's bundled default always, DejaVu when
    installed, and OpenCV's Hershey vector font always."""
    fonts = ["pil-default", "hershey"]
    if _dejavu("DejaVuSans.ttf"):
        fonts[1:1] = ["dejavu-sans", "dejavu-serif"]
    return fonts


@lru_cache(maxsize=64)
def _pil_font(family: str, size: int, bold: bool):
    if family == "dejavu-sans":
        return ImageFont.truetype(str(_dejavu("DejaVuSans-Bold.ttf" if bold else "DejaVuSans.ttf")), size)
    if family == "dejavu-serif":
        return ImageFont.truetype(str(_dejavu("DejaVuSerif-Bold.ttf" if bold else "DejaVuSerif.ttf")), size)
    return ImageFont.load_default(size=size)


def aadhaar_number(seed: str = "23456789012") -> str:
    """A Verhoeff-valid 12-digit number from 11 digits (first digit 2-9)."""
    return seed + verhoeff_check_digit(seed)


@dataclass(frozen=True)
class Person:
    name: str = "Rahul Kumar Sharma"
    father: str = "Suresh Kumar Sharma"
    dob: str = "15/08/1990"
    gender: str = "Male"
    aadhaar: str = aadhaar_number()
    pan: str = "ABCPS1234K"
    address: tuple[str, ...] = ("S/O Suresh Kumar Sharma, 12 MG Road,", "Shivaji Nagar, Pune,", "Maharashtra - 411005")


def _face(size: tuple[int, int]) -> np.ndarray:
    from skimage import data

    img = data.astronaut()[20:260, 150:330]  # RGB, the astronaut's head and shoulders
    return cv2.resize(img, size, interpolation=cv2.INTER_AREA)


class _Canvas:
    """Collects text and draws it with either PIL fonts or cv2 Hershey strokes."""

    def __init__(self, family: str, bg=(246, 243, 236)) -> None:
        self.family = family
        self.img = Image.new("RGB", (W, H), bg)
        self.draw = ImageDraw.Draw(self.img)

    def band(self, y0: int, y1: int, color) -> None:
        self.draw.rectangle([0, y0, W, y1], fill=color)

    def photo(self, x: int, y: int, w: int, h: int) -> None:
        self.img.paste(Image.fromarray(_face((w, h))), (x, y))

    def text(self, x: int, y: int, s: str, size: int, bold: bool = False, color=(20, 20, 20)) -> None:
        if self.family != "hershey":
            self.draw.text((x, y), s, font=_pil_font(self.family, size, bold), fill=color)
            return
        arr = np.asarray(self.img).copy()
        scale = size / 30.0  # FONT_HERSHEY_SIMPLEX cap height is ~22 px at scale 1
        origin = (x, y + int(size * 0.8))
        cv2.putText(arr, s, origin, cv2.FONT_HERSHEY_SIMPLEX, scale, color, 3 if bold else 2, cv2.LINE_AA)
        self.img = Image.fromarray(arr)
        self.draw = ImageDraw.Draw(self.img)

    def bgr(self) -> np.ndarray:
        return cv2.cvtColor(np.asarray(self.img), cv2.COLOR_RGB2BGR)


def _grouped(n: str) -> str:
    return f"{n[:4]} {n[4:8]} {n[8:]}"


def aadhaar_front(p: Person = Person(), font: str = "dejavu-sans", year_only: bool = False) -> np.ndarray:
    c = _Canvas(font)
    c.band(0, 90, (255, 153, 51))
    c.text(300, 25, "GOVERNMENT OF INDIA", 40, bold=True)
    c.photo(50, 130, 220, 290)
    c.text(310, 150, p.name, 36)
    c.text(310, 215, f"Year of Birth : {p.dob[-4:]}" if year_only else f"DOB : {p.dob}", 34)
    c.text(310, 280, p.gender.upper(), 34)
    c.text(250, 470, _grouped(p.aadhaar), 56, bold=True)
    c.band(570, 630, (200, 40, 40))
    c.text(260, 582, "Aadhaar - Aam Aadmi ka Adhikar", 30, color=(255, 255, 255))
    return c.bgr()


def aadhaar_back(p: Person = Person(), font: str = "dejavu-sans") -> np.ndarray:
    c = _Canvas(font)
    c.band(0, 90, (255, 153, 51))
    c.text(120, 25, "UNIQUE IDENTIFICATION AUTHORITY OF INDIA", 34, bold=True)
    c.text(50, 150, "Address:", 34, bold=True)
    for i, line in enumerate(p.address):
        c.text(50, 205 + 55 * i, line, 32)
    c.text(250, 470, _grouped(p.aadhaar), 56, bold=True)
    c.band(570, 630, (200, 40, 40))
    c.text(330, 582, "help@uidai.gov.in", 30, color=(255, 255, 255))
    return c.bgr()


def pan_card(p: Person = Person(), font: str = "dejavu-sans") -> np.ndarray:
    c = _Canvas(font, bg=(222, 236, 248))
    c.text(40, 30, "INCOME TAX DEPARTMENT", 38, bold=True)
    c.text(660, 30, "GOVT. OF INDIA", 34, bold=True)
    c.text(300, 105, "Permanent Account Number Card", 30)
    c.text(330, 150, p.pan, 48, bold=True)
    c.photo(40, 120, 190, 240)
    c.text(40, 390, "Name", 26)
    c.text(40, 425, p.name.upper(), 34)
    c.text(40, 480, "Father's Name", 26)
    c.text(40, 515, p.father.upper(), 34)
    c.text(620, 480, "Date of Birth", 26)
    c.text(620, 515, p.dob, 34)
    return c.bgr()


# --- photo degradations ---------------------------------------------------------------------


def rotate(img: np.ndarray, degrees: float) -> np.ndarray:
    h, w = img.shape[:2]
    m = cv2.getRotationMatrix2D((w / 2, h / 2), degrees, 1.0)
    return cv2.warpAffine(img, m, (w, h), flags=cv2.INTER_LINEAR, borderValue=(255, 255, 255))


def blur(img: np.ndarray, sigma: float) -> np.ndarray:
    return cv2.GaussianBlur(img, (0, 0), sigma)


def jpeg(img: np.ndarray, quality: int) -> np.ndarray:
    ok, buf = cv2.imencode(".jpg", img, [cv2.IMWRITE_JPEG_QUALITY, quality])
    assert ok
    return cv2.imdecode(buf, cv2.IMREAD_COLOR)


def scale(img: np.ndarray, factor: float) -> np.ndarray:
    h, w = img.shape[:2]
    return cv2.resize(img, (int(w * factor), int(h * factor)), interpolation=cv2.INTER_AREA)
