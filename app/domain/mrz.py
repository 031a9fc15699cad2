"""ICAO 9303 machine-readable zones: TD1 (3x30), TD2 (2x36), TD3 (2x44).

Every check digit is verified and reported; nothing is "corrected" beyond the
character confusions that are unambiguous for a field's alphabet (a `0` inside
a country code must be an `O`, an `O` inside a date must be a `0`). A wrong
check digit is reported, never guessed away.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from datetime import date

from app.domain.documents import iso_date, resolve_two_digit_year
from app.domain.errors import InvalidInput

_TO_DIGIT = str.maketrans({"O": "0", "Q": "0", "D": "0", "I": "1", "L": "1", "Z": "2", "S": "5",
                           "B": "8", "G": "6"})
_TO_ALPHA = str.maketrans({"0": "O", "1": "I", "2": "Z", "5": "S", "8": "B", "6": "G"})
_SHAPES = {(3, 30): "TD1", (2, 36): "TD2", (2, 44): "TD3"}


def check_digit(data: str) -> int:
    """ICAO 9303 part 3 §4.9: weights 7,3,1; A-Z = 10..35; `<` = 0."""
    total = 0
    for i, ch in enumerate(data):
        if ch.isdigit():
            v = int(ch)
        elif "A" <= ch <= "Z":
            v = ord(ch) - 55
        else:
            v = 0
        total += v * (7, 3, 1)[i % 3]
    return total % 10


def _numeric(s: str) -> str:
    return s.translate(_TO_DIGIT)


def _alpha(s: str) -> str:
    return s.translate(_TO_ALPHA)


def _check(data: str, digit: str) -> bool:
    d = _numeric(digit)
    if d == "<":  # an empty optional field may carry `<` as its check digit
        return data.strip("<") == ""
    return d.isdigit() and check_digit(data) == int(d)


def clean_line(text: str) -> str:
    """OCR output to MRZ alphabet: uppercase, no spaces, `«` as `<<`."""
    t = text.upper().replace("«", "<<").replace(" ", "")
    return re.sub(r"[^A-Z0-9<]", "<", t)


def _fit(line: str, length: int, head: int, tail: int) -> str:
    """Make `line` exactly `length` long by padding or trimming `<` in the filler region
    between the fixed `head` and `tail` parts: OCR often drops or adds one `<` in a run."""
    if len(line) == length:
        return line
    body = line[head : len(line) - tail] if tail else line[head:]
    end = line[len(line) - tail :] if tail else ""
    want = length - head - tail
    body = body[:want] if len(body) > want and set(body[want:]) <= {"<"} else body
    body = body.ljust(want, "<")
    return line[:head] + body + end


@dataclass
class MrzData:
    format: str  # TD1 / TD2 / TD3
    document_code: str  # "P", "I", "ID", "AC", ...
    issuing_country: str
    document_number: str
    nationality: str
    date_of_birth: str | None  # ISO
    expiry_date: str | None  # ISO
    sex: str | None  # M / F / X (ICAO `<` = unspecified -> None)
    surname: str
    given_names: str
    optional_data: str
    checks: dict[str, bool] = field(default_factory=dict)
    lines: list[str] = field(default_factory=list)

    @property
    def valid(self) -> bool:
        return bool(self.checks) and all(self.checks.values())

    @property
    def full_name(self) -> str:
        return " ".join(p for p in (self.given_names, self.surname) if p)


def _date(yymmdd: str, *, future: bool, today: date | None) -> str | None:
    d = _numeric(yymmdd)
    if not d.isdigit():
        return None
    year = resolve_two_digit_year(int(d[:2]), future=future, today=today)
    return iso_date(year, int(d[2:4]), int(d[4:6]))


def _names(field_text: str) -> tuple[str, str]:
    surname, _, given = _alpha(field_text).partition("<<")
    tidy = lambda s: re.sub(r"\s+", " ", s.replace("<", " ")).strip()  # noqa: E731
    return tidy(surname), tidy(given)


def _number(number: str, check: str, overflow: str) -> tuple[str, str, str]:
    """Long document numbers (TD1/TD2): a `<` check digit means the number continues in the
    optional data, whose last non-filler character is then the real check digit."""
    if check == "<" and overflow.strip("<"):
        extra = overflow.split("<", 1)[0]
        return number + extra[:-1], extra[-1], number + extra[:-1]
    return number.rstrip("<"), check, number


def _sex(ch: str) -> str | None:
    return ch if ch in "MFX" else None


def parse_mrz(raw_lines: list[str], today: date | None = None) -> MrzData:
    """Parse 2 or 3 MRZ lines (already split by row). Raises InvalidInput for a shape
    that is no ICAO format; check-digit failures are reported in `checks`."""
    lines = [clean_line(x) for x in raw_lines if x.strip()]
    n = len(lines)
    longest = max((len(x) for x in lines), default=0)
    shape = min(_SHAPES, key=lambda s: (s[0] != n, abs(s[1] - longest)))
    if shape[0] != n or abs(shape[1] - longest) > 3:
        raise InvalidInput("Not a machine-readable zone", code="mrz_unreadable")
    fmt = _SHAPES[shape]
    return {"TD1": _td1, "TD2": _td2, "TD3": _td3}[fmt](lines, today)


def _td3(lines: list[str], today: date | None) -> MrzData:
    l1 = _fit(lines[0], 44, 5, 0)
    l2 = _fit(lines[1], 44, 28, 2)
    personal = l2[28:42]
    checks = {
        "document_number": _check(l2[0:9], l2[9]),
        "date_of_birth": _check(_numeric(l2[13:19]), l2[19]),
        "expiry_date": _check(_numeric(l2[21:27]), l2[27]),
        "personal_number": _check(personal, l2[42]),
        "composite": _check(
            l2[0:9] + _numeric(l2[9]) + _numeric(l2[13:20]) + _numeric(l2[21:28]) + l2[28:42] + _numeric(l2[42]),
            l2[43],
        ),
    }
    surname, given = _names(l1[5:44])
    return MrzData(
        "TD3", l1[0:2].rstrip("<"), _alpha(l1[2:5]), l2[0:9].rstrip("<"), _alpha(l2[10:13]),
        _date(l2[13:19], future=False, today=today), _date(l2[21:27], future=True, today=today),
        _sex(l2[20]), surname, given, personal.rstrip("<"), checks, [l1, l2],
    )


def _td2(lines: list[str], today: date | None) -> MrzData:
    l1 = _fit(lines[0], 36, 5, 0)
    l2 = _fit(lines[1], 36, 28, 1)
    number, num_check, num_field = _number(l2[0:9], l2[9], l2[28:35])
    checks = {
        "document_number": _check(num_field, num_check),
        "date_of_birth": _check(_numeric(l2[13:19]), l2[19]),
        "expiry_date": _check(_numeric(l2[21:27]), l2[27]),
        "composite": _check(l2[0:9] + _numeric(l2[9]) + _numeric(l2[13:20]) + _numeric(l2[21:28]) + l2[28:35], l2[35]),
    }
    surname, given = _names(l1[5:36])
    return MrzData(
        "TD2", l1[0:2].rstrip("<"), _alpha(l1[2:5]), number, _alpha(l2[10:13]),
        _date(l2[13:19], future=False, today=today), _date(l2[21:27], future=True, today=today),
        _sex(l2[20]), surname, given, l2[28:35].rstrip("<"), checks, [l1, l2],
    )


def _td1(lines: list[str], today: date | None) -> MrzData:
    l1 = _fit(lines[0], 30, 15, 0)
    l2 = _fit(lines[1], 30, 18, 1)
    l3 = _fit(lines[2], 30, 0, 0)
    number, num_check, num_field = _number(l1[5:14], l1[14], l1[15:30])
    checks = {
        "document_number": _check(num_field, num_check),
        "date_of_birth": _check(_numeric(l2[0:6]), l2[6]),
        "expiry_date": _check(_numeric(l2[8:14]), l2[14]),
        "composite": _check(l1[5:30] + _numeric(l2[0:7]) + _numeric(l2[8:15]) + l2[18:29], l2[29]),
    }
    surname, given = _names(l3)
    return MrzData(
        "TD1", l1[0:2].rstrip("<"), _alpha(l1[2:5]), number, _alpha(l2[15:18]),
        _date(l2[0:6], future=False, today=today), _date(l2[8:14], future=True, today=today),
        _sex(l2[7]), surname, given, (l1[15:30] + l2[18:29]).strip("<"), checks, [l1, l2, l3],
    )


def looks_like_mrz(text: str) -> bool:
    """A candidate MRZ row: long, MRZ alphabet, with fillers."""
    raw = text.upper().replace(" ", "")
    foreign = len(re.sub(r"[A-Z0-9<«]", "", raw))
    return len(raw) >= 26 and ("<" in raw or "«" in raw) and foreign <= 2
