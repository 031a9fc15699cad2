"""ICAO 9303 documents of every format, composed from fields and rendered in OCR-B.

`mrz_lines` writes the machine-readable zone exactly as ICAO 9303 parts 4-7 lay it out
(check digits computed, long TD1/TD2 numbers overflowing into the optional data), so
the parser is tested against the standard rather than against itself. `render` draws a
passport data page, ID card or visa with the MRZ in `../shared/fonts/OCRB.otf` (read in
place: tests skip with a reason when it is absent). Every person is invented.
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from functools import lru_cache
from pathlib import Path

import cv2
import numpy as np
from PIL import Image, ImageDraw, ImageFont

from app.domain.mrz import check_digit

FONTS_DIR = Path(__file__).resolve().parents[2].parent / "shared" / "fonts"
OCRB = FONTS_DIR / "OCRB.otf"
DEVANAGARI = FONTS_DIR / "Lohit-Devanagari.ttf"
WIDTH = {"TD1": 30, "TD2": 36, "TD3": 44, "MRV-A": 44, "MRV-B": 36}


@dataclass(frozen=True)
class MrzPerson:
    fmt: str = "TD3"
    code: str = "P<"
    country: str = "UTO"
    number: str = "L898902C3"
    nationality: str = "UTO"
    dob: str = "740812"
    sex: str = "F"
    expiry: str = "320415"
    surname: str = "ERIKSSON"
    given: str = "ANNA MARIA"
    optional: str = "ZE184226B"
    optional2: str = ""

    def but(self, **changes) -> MrzPerson:
        return replace(self, **changes)


def _pad(s: str, n: int) -> str:
    assert len(s) <= n, (s, n)
    return s.ljust(n, "<")


def _name(p: MrzPerson, n: int) -> str:
    return _pad(f"{p.surname.replace(' ', '<')}<<{p.given.replace(' ', '<')}"[:n], n)


def _cd(s: str) -> str:
    return str(check_digit(s))


def mrz_lines(p: MrzPerson) -> list[str]:
    """The zone's lines for `p.fmt`, every check digit computed per ICAO 9303."""
    dob, exp = p.dob + _cd(p.dob), p.expiry + _cd(p.expiry)
    if p.fmt == "TD1":
        if len(p.number) > 9:  # the number goes on in the optional data: rest, check digit, `<`
            number = p.number[:9] + "<" + p.number[9:] + _cd(p.number) + "<"
            l1 = p.code + p.country + _pad(number + p.optional, 25)
        else:
            l1 = p.code + p.country + _pad(p.number, 9) + _cd(_pad(p.number, 9)) + _pad(p.optional, 15)
        l2 = dob + p.sex + exp + p.nationality + _pad(p.optional2, 11)
        l2 += _cd(l1[5:30] + l2[0:7] + l2[8:15] + l2[18:29])
        return [l1, l2, _name(p, 30)]
    w = WIDTH[p.fmt]
    l1 = p.code + p.country + _name(p, w - 5)
    if p.fmt == "TD2" and len(p.number) > 9:
        head = p.number[:9] + "<"
        optional = _pad(p.number[9:] + _cd(p.number) + p.optional, 7)
    else:
        head = _pad(p.number, 9) + _cd(_pad(p.number, 9))
        optional = _pad(p.optional, {"TD3": 14, "TD2": 7, "MRV-A": 16, "MRV-B": 8}[p.fmt])
    l2 = head + p.nationality + dob + p.sex + exp + optional
    if p.fmt == "TD3":
        l2 += _cd(optional)
        l2 += _cd(l2[0:10] + l2[13:20] + l2[21:43])
    elif p.fmt == "TD2":
        l2 += _cd(l2[0:10] + l2[13:20] + l2[21:35])
    return [l1, l2]


def person_for(fmt: str, i: int = 0) -> MrzPerson:
    """A varied, valid person for `fmt` (index `i` picks names, numbers and dates)."""
    surnames = ["ERIKSSON", "MUELLER", "OKAFOR", "NGUYEN", "SILVA", "KOWALSKA", "TANAKA", "DUBOIS", "SHARMA"]
    givens = ["ANNA MARIA", "JOHN", "CHIDI EMEKA", "THI LAN", "JOAO PEDRO", "EWA", "HIROSHI", "CLAIRE ANNE", "ARJUN"]
    letters = "ABCDEFGHJKLMNPRTUVWXYZ"
    number = f"{letters[i % 22]}{letters[(i * 7) % 22]}{(i * 7919 + 123457) % 10_000_000:07d}"
    code = {"TD1": "I<", "TD2": "I<", "TD3": "P<", "MRV-A": "V<", "MRV-B": "V<"}[fmt]
    return MrzPerson(
        fmt=fmt, code=code, country=["UTO", "DEU", "IND", "FRA", "NGA"][i % 5], number=number,
        nationality=["UTO", "DEU", "IND", "FRA", "NGA"][(i + 1) % 5],
        dob=f"{(50 + i * 3) % 100:02d}{1 + i % 12:02d}{1 + (i * 5) % 28:02d}", sex="MFX"[i % 3],
        expiry=f"{28 + i % 8:02d}{1 + (i * 5) % 12:02d}{1 + (i * 3) % 28:02d}",
        surname=surnames[i % len(surnames)], given=givens[(i * 2) % len(givens)],
        optional="" if fmt in ("MRV-B", "TD2") else f"Z{i:05d}",
    )  # fmt: skip


# --- rendering ------------------------------------------------------------------------------


def fonts_present() -> bool:
    return OCRB.is_file()


@lru_cache(maxsize=16)
def _font(path: str, size: int):
    return ImageFont.truetype(path, size)


def _sans(size: int):
    from tests.ml.cards import _dejavu

    found = _dejavu("DejaVuSans.ttf")
    return _font(str(found), size) if found else ImageFont.load_default(size=size)


def render(p: MrzPerson, *, background: str = "plain", caption: bool = False, gap: float = 0.55) -> np.ndarray:
    """A document page with its visual zone and the MRZ at the bottom, BGR.
    `background`: plain, dark (light text panel on a dark card) or pattern (guilloche).
    `caption`: a printed line between the visual zone and the MRZ rows, as on visas."""
    lines = mrz_lines(p)
    ocrb = _font(str(OCRB), 40)
    line_h = int(40 * (1 + gap))
    width = int(max(ocrb.getlength(x) for x in lines)) + 120
    mrz_h = len(lines) * line_h
    height = max(int(width * 0.68), 470 + mrz_h)
    img = Image.new("RGB", (width, height), (244, 240, 226))
    d = ImageDraw.Draw(img)
    if background == "pattern":
        for k in range(0, width + height, 9):  # fine diagonal guilloche over the whole page
            d.line([(k, 0), (k - height, height)], fill=(205, 215, 232), width=2)
        for k in range(0, height, 23):
            d.arc([-width // 2, k - 300, width * 3 // 2, k + 300], 0, 180, fill=(220, 200, 210), width=1)
    elif background == "dark":
        d.rectangle([0, 0, width, height], fill=(52, 58, 88))
    ink = (235, 235, 235) if background == "dark" else (25, 25, 30)
    title = {"P<": "PASSPORT", "I<": "IDENTITY CARD", "V<": "VISA"}.get(p.code, "DOCUMENT")
    d.text((40, 20), f"{title}  UTOPIA", font=_sans(34), fill=ink)
    d.rectangle([40, 90, 40 + 200, 90 + 250], fill=(180, 170, 160))
    rows = [("Surname", p.surname), ("Given names", p.given), ("Nationality", p.nationality),
            ("Date of birth", f"{p.dob[4:]}.{p.dob[2:4]}.{p.dob[:2]}"), ("Sex", p.sex)]
    for k, (label, value) in enumerate(rows):
        x, y = (280, 85 + 62 * k) if k < 4 else (560, 85 + 62 * 3)
        d.text((x, y), label, font=_sans(18), fill=ink)
        d.text((x, y + 21), value, font=_sans(26), fill=ink)
    top = height - mrz_h - 20
    if background == "dark":  # the MRZ is printed on a light band on dark cards
        d.rectangle([0, top - 20, width, height], fill=(236, 236, 228))
    if caption:
        d.text((60, top - 40 if background != "dark" else top - 18), "MACHINE READABLE ZONE - DO NOT WRITE BELOW",
               font=_sans(18), fill=(25, 25, 30))
    mrz_ink = (20, 20, 25)
    for k, line in enumerate(lines):
        d.text((60, top + k * line_h), line, font=ocrb, fill=mrz_ink)
    return cv2.cvtColor(np.asarray(img), cv2.COLOR_RGB2BGR)

