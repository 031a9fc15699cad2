"""Identity-document rules: number formats, checksums, masking, dates.

Pure functions only (no I/O, no numpy): the OCR layer in `app/ml/documents.py`
finds text, this module decides whether that text is a valid document number.
MRZ parsing lives in `app/domain/mrz.py` (same rules, split for size).
"""

from __future__ import annotations

import re
from datetime import date
from enum import StrEnum


class DocumentType(StrEnum):
    AADHAAR = "aadhaar"
    PAN = "pan"
    PASSPORT = "passport"
    DRIVING_LICENCE = "driving_licence"
    VOTER_ID = "voter_id"
    NATIONAL_ID = "national_id"
    GENERIC = "generic"


# Dihedral group D5 multiplication, permutation and inverse tables (Verhoeff 1969).
_D = (
    (0, 1, 2, 3, 4, 5, 6, 7, 8, 9),
    (1, 2, 3, 4, 0, 6, 7, 8, 9, 5),
    (2, 3, 4, 0, 1, 7, 8, 9, 5, 6),
    (3, 4, 0, 1, 2, 8, 9, 5, 6, 7),
    (4, 0, 1, 2, 3, 9, 5, 6, 7, 8),
    (5, 9, 8, 7, 6, 0, 4, 3, 2, 1),
    (6, 5, 9, 8, 7, 1, 0, 4, 3, 2),
    (7, 6, 5, 9, 8, 2, 1, 0, 4, 3),
    (8, 7, 6, 5, 9, 3, 2, 1, 0, 4),
    (9, 8, 7, 6, 5, 4, 3, 2, 1, 0),
)
_P = (
    (0, 1, 2, 3, 4, 5, 6, 7, 8, 9),
    (1, 5, 7, 6, 2, 8, 3, 0, 9, 4),
    (5, 8, 0, 3, 7, 9, 6, 1, 4, 2),
    (8, 9, 1, 6, 0, 4, 3, 5, 2, 7),
    (9, 4, 5, 3, 1, 2, 6, 8, 7, 0),
    (4, 2, 8, 6, 5, 7, 3, 9, 0, 1),
    (2, 7, 9, 3, 8, 0, 6, 4, 1, 5),
    (7, 0, 4, 6, 9, 1, 3, 2, 5, 8),
)
_INV = (0, 4, 3, 2, 1, 5, 6, 7, 8, 9)


def verhoeff_check_digit(digits: str) -> str:
    """The digit to append to `digits` so that the whole passes `verhoeff_valid`."""
    c = 0
    for i, ch in enumerate(reversed(digits)):
        c = _D[c][_P[(i + 1) % 8][int(ch)]]
    return str(_INV[c])


def verhoeff_valid(number: str) -> bool:
    if not number.isdigit():
        return False
    c = 0
    for i, ch in enumerate(reversed(number)):
        c = _D[c][_P[i % 8][int(ch)]]
    return c == 0


def normalise_aadhaar(text: str) -> str:
    return re.sub(r"[\s-]", "", text)


def is_valid_aadhaar(number: str) -> bool:
    """12 digits, not starting with 0 or 1 (UIDAI reserves them), Verhoeff-valid."""
    n = normalise_aadhaar(number)
    return len(n) == 12 and n.isdigit() and n[0] not in "01" and verhoeff_valid(n)


PAN_RE = re.compile(r"^[A-Z]{5}[0-9]{4}[A-Z]$")
PAN_HOLDER_TYPES = {
    "P": "individual", "C": "company", "H": "huf", "F": "firm", "A": "association_of_persons", "T": "trust",
    "B": "body_of_individuals", "L": "local_authority", "J": "artificial_juridical_person", "G": "government",
}  # fmt: skip


def is_valid_pan(pan: str) -> bool:
    """Format plus a known holder-type letter in 4th position."""
    p = pan.strip().upper()
    return bool(PAN_RE.match(p)) and p[3] in PAN_HOLDER_TYPES


def pan_holder_type(pan: str) -> str | None:
    p = pan.strip().upper()
    return PAN_HOLDER_TYPES.get(p[3]) if PAN_RE.match(p) else None


# Sarathi format: state (2 letters) + RTO (2 digits) + issue year (4) + serial (7).
# OCR and people write it with spaces or dashes anywhere; they carry no meaning.
DL_RE = re.compile(r"^([A-Z]{2})(\d{2})((?:19|20)\d{2})(\d{7})$")
INDIAN_STATE_CODES = frozenset(
    "AN AP AR AS BR CH CG DD DL DN GA GJ HP HR JH JK KA KL LA LD MH ML MN MP MZ NL OD OR PB PY "
    "RJ SK TN TR TS UK UP WB".split()
)
EPIC_RE = re.compile(r"^[A-Z]{3}[0-9]{7}$")


def normalise_driving_licence(text: str) -> str | None:
    """Compact form `MH1220110012345`, or None when it is not a valid licence number."""
    compact = re.sub(r"[\s\-/]", "", text.upper())
    m = DL_RE.match(compact)
    if not m or m.group(1) not in INDIAN_STATE_CODES:
        return None
    if not 1900 < int(m.group(3)) <= date.today().year:
        return None
    return compact


def is_valid_voter_id(text: str) -> bool:
    return bool(EPIC_RE.match(text.strip().upper()))


def mask_aadhaar(number: str) -> str:
    """`123412341234` -> `XXXX XXXX 1234` (UIDAI's masked-Aadhaar style)."""
    n = normalise_aadhaar(number)
    return f"XXXX XXXX {n[-4:]}"


def mask_number(number: str, visible: int = 4) -> str:
    """All but the last `visible` characters become `X`: `ABCDE1234F` -> `XXXXXX234F`."""
    n = re.sub(r"\s", "", number)
    if len(n) <= visible:
        return "X" * len(n)
    return "X" * (len(n) - visible) + n[-visible:]


_DMY_RE = re.compile(r"(?<!\d)(\d{1,2})\s*[/.\-]\s*(\d{1,2})\s*[/.\-]\s*((?:19|20)\d{2})(?!\d)")
_MONTHS = {m: i + 1 for i, m in enumerate("JAN FEB MAR APR MAY JUN JUL AUG SEP OCT NOV DEC".split())}
_DMONY_RE = re.compile(r"(?<!\d)(\d{1,2})\s+([A-Z]{3})[A-Z]*(?:/[A-Z]+)?\s+(\d{2}|\d{4})(?!\d)")


def iso_date(year: int, month: int, day: int) -> str | None:
    try:
        return date(year, month, day).isoformat()
    except ValueError:
        return None


def find_dmy_dates(text: str) -> list[str]:
    """Every valid `DD/MM/YYYY` (or `.`/`-` separated) date in `text`, as ISO strings.
    Indian documents print day first, so `03/04/1990` is 3 April."""
    return [iso for d, m, y in _DMY_RE.findall(text) if (iso := iso_date(int(y), int(m), int(d)))]


def parse_day_month_name(text: str, *, future: bool) -> str | None:
    """`12 AUGUST/AOUT 74` style (passport visual zone). Two-digit years are resolved
    like MRZ years: `future` for expiry dates."""
    m = _DMONY_RE.search(text.upper())
    if not m or m.group(2) not in _MONTHS:
        return None
    year = int(m.group(3))
    if year < 100:
        year = resolve_two_digit_year(year, future=future)
    return iso_date(year, _MONTHS[m.group(2)], int(m.group(1)))


# An expiry date is at most this many years ahead of today: no ICAO or Indian identity
# document is issued for longer (passports 10 years, ID cards up to 15, licences 20).
# A two-digit expiry year resolves to the century nearest today within that window, so
# `961210` read in 2026 is 1996 (expired), not 2096; `461210` is still 2046.
EXPIRY_WINDOW_YEARS = 20


def resolve_two_digit_year(yy: int, *, future: bool, today: date | None = None) -> int:
    """Century for a two-digit year. Birth (`future=False`): never after this year.
    Expiry (`future=True`): the candidate nearest today that is at most
    `EXPIRY_WINDOW_YEARS` ahead."""
    year = (today or date.today()).year
    century = year // 100 * 100
    if not future:
        return century + yy if century + yy <= year else century - 100 + yy
    candidates = [c + yy for c in (century - 100, century, century + 100) if c + yy <= year + EXPIRY_WINDOW_YEARS]
    return min(candidates, key=lambda y: abs(y - year))


def resolve_yymmdd(yymmdd: str, *, expiry: bool, today: date | None = None) -> str | None:
    """A six-digit MRZ date as ISO, with the century rule above applied to the whole
    date: a birth date later than today (this year's December read in June) is a
    century earlier. None when it is no calendar date."""
    if len(yymmdd) != 6 or not yymmdd.isdigit():
        return None
    today = today or date.today()
    yy, mm, dd = int(yymmdd[:2]), int(yymmdd[2:4]), int(yymmdd[4:])
    year = resolve_two_digit_year(yy, future=expiry, today=today)
    iso = iso_date(year, mm, dd)
    if iso and not expiry and iso > today.isoformat():
        iso = iso_date(year - 100, mm, dd)
    return iso


def is_expired(expiry_iso: str | None, today: date | None = None) -> bool | None:
    """None (unknown) without a full expiry date, or when what was read is no real date."""
    if not expiry_iso or len(expiry_iso) != 10:
        return None
    try:
        expiry = date.fromisoformat(expiry_iso)
    except ValueError:  # "2031-02-30", or a customer's correction that is no date
        return None
    return expiry < (today or date.today())


def expiry_status(expiry_iso: str | None, today: date | None = None) -> str:
    """`valid`, `expired`, or `unknown` when no full expiry date was read."""
    expired = is_expired(expiry_iso, today)
    return "unknown" if expired is None else ("expired" if expired else "valid")
