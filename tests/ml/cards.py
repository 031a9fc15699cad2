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


# --- bilingual and masked Aadhaar, driving licence, voter ID --------------------------------

DEVANAGARI_FONT = Path(__file__).resolve().parents[2].parent / "shared" / "fonts" / "Lohit-Devanagari.ttf"


def devanagari_present() -> bool:
    return DEVANAGARI_FONT.is_file()


@lru_cache(maxsize=8)
def _deva(size: int):
    return ImageFont.truetype(str(DEVANAGARI_FONT), size)


def _hindi(c: _Canvas, x: int, y: int, s: str, size: int) -> None:
    c.draw.text((x, y), s, font=_deva(size), fill=(20, 20, 20))


def aadhaar_front_bilingual(p: Person = Person(), hindi_name: str = "राहुल कुमार शर्मा", masked: bool = False,
                            font: str = "dejavu-sans") -> np.ndarray:
    """As UIDAI prints it: Devanagari beside English for the header, name, date of birth
    and gender; `masked` prints the number as e-Aadhaar does (`XXXX XXXX 1234`)."""
    c = _Canvas(font)
    c.band(0, 90, (255, 153, 51))
    _hindi(c, 60, 22, "भारत सरकार", 38)
    c.text(400, 28, "GOVERNMENT OF INDIA", 38, bold=True)
    c.photo(50, 130, 220, 290)
    _hindi(c, 310, 125, hindi_name, 34)
    c.text(310, 185, p.name, 34)
    _hindi(c, 310, 240, "जन्म तिथि", 30)
    c.text(460, 245, f"/ DOB : {p.dob}", 32)
    _hindi(c, 310, 300, "पुरुष" if p.gender == "Male" else "महिला", 30)
    c.text(400, 305, f"/ {p.gender.upper()}", 32)
    number = f"XXXX XXXX {p.aadhaar[-4:]}" if masked else _grouped(p.aadhaar)
    c.text(250, 470, number, 56, bold=True)
    c.band(570, 630, (200, 40, 40))
    _hindi(c, 300, 580, "मेरा आधार, मेरी पहचान", 32)
    return c.bgr()


def aadhaar_back_bilingual(p: Person = Person(), font: str = "dejavu-sans") -> np.ndarray:
    """Back side: the Devanagari address on the left, the English one on the right."""
    c = _Canvas(font)
    c.band(0, 90, (255, 153, 51))
    c.text(120, 25, "UNIQUE IDENTIFICATION AUTHORITY OF INDIA", 34, bold=True)
    _hindi(c, 30, 130, "पता:", 30)
    for i, line in enumerate(("एस/ओ सुरेश कुमार शर्मा, 12 एमजी रोड,", "शिवाजी नगर, पुणे,", "महाराष्ट्र - 411005")):
        _hindi(c, 30, 175 + 50 * i, line, 24)
    c.text(500, 130, "Address:", 28, bold=True)
    for i, line in enumerate(p.address):
        c.text(500, 175 + 50 * i, line, 23)
    c.text(250, 470, _grouped(p.aadhaar), 56, bold=True)
    c.band(570, 630, (200, 40, 40))
    c.text(330, 582, "help@uidai.gov.in", 30, color=(255, 255, 255))
    return c.bgr()


def driving_licence(p: Person = Person(), number: str = "MH12 20110012345", valid_till: str = "14/08/2031",
                    font: str = "dejavu-sans") -> np.ndarray:
    c = _Canvas(font, bg=(236, 244, 236))
    c.band(0, 80, (40, 110, 60))
    c.text(40, 20, "INDIAN UNION DRIVING LICENCE", 36, bold=True, color=(255, 255, 255))
    c.text(40, 100, "Issued by Government of Maharashtra", 26)
    c.photo(40, 160, 190, 240)
    c.text(260, 160, "DL No.", 26)
    c.text(400, 155, number, 36, bold=True)
    c.text(260, 220, "Name", 26)
    c.text(260, 255, p.name.upper(), 32)
    c.text(260, 310, "S/D/W of", 26)
    c.text(260, 345, p.father.upper(), 32)
    c.text(260, 400, f"DOB : {p.dob}", 30)
    c.text(260, 450, f"Valid Till : {valid_till}", 30)
    c.text(40, 540, "Authorisation to drive: LMV, MCWG", 26)
    return c.bgr()


def voter_id(p: Person = Person(), epic: str = "ABC1234567", font: str = "dejavu-sans") -> np.ndarray:
    c = _Canvas(font, bg=(240, 240, 250))
    c.text(120, 20, "ELECTION COMMISSION OF INDIA", 40, bold=True)
    c.text(300, 80, "ELECTOR PHOTO IDENTITY CARD", 28)
    c.text(340, 130, epic, 44, bold=True)
    c.photo(40, 200, 190, 240)
    c.text(260, 210, "Elector's Name", 26)
    c.text(260, 245, p.name.upper(), 32)
    c.text(260, 300, "Father's Name", 26)
    c.text(260, 335, p.father.upper(), 32)
    c.text(260, 390, f"Gender : {p.gender.upper()}", 30)
    c.text(260, 440, f"Date of Birth : {p.dob}", 30)
    return c.bgr()


def perspective(img: np.ndarray, amount: float = 0.08) -> np.ndarray:
    """As photographed a little off-axis: the far edge shorter than the near one."""
    h, w = img.shape[:2]
    dx = amount * w
    src = np.float32([[0, 0], [w, 0], [w, h], [0, h]])
    dst = np.float32([[dx, dx * 0.5], [w - dx * 0.6, 0], [w, h], [0, h - dx * 0.3]])
    return cv2.warpPerspective(img, cv2.getPerspectiveTransform(src, dst), (w, h), borderValue=(255, 255, 255))


def rotate_full(img: np.ndarray, degrees: float, background=(120, 120, 120)) -> np.ndarray:
    """Rotated without cropping the corners, on a plain background (a card on a table)."""
    h, w = img.shape[:2]
    m = cv2.getRotationMatrix2D((w / 2, h / 2), degrees, 1.0)
    cos, sin = abs(m[0, 0]), abs(m[0, 1])
    nw, nh = int(h * sin + w * cos), int(h * cos + w * sin)
    m[0, 2] += nw / 2 - w / 2
    m[1, 2] += nh / 2 - h / 2
    return cv2.warpAffine(img, m, (nw, nh), flags=cv2.INTER_LINEAR, borderValue=background)
