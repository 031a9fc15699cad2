"""ICAO 9303 machine-readable zones: TD1 (3x30), TD2 (2x36), TD3 (2x44) and the
machine-readable visas MRV-A (2x44) and MRV-B (2x36), each with its own layout.

Every check digit is verified and reported. Characters are changed in two cases only:
a field whose alphabet leaves no choice (a date holds digits, so an `O` there is a
`0`; a country code or name holds letters), and an alphanumeric field that fails its
check digit where exactly one undoing of the usual OCR confusions in digit positions
(a letter between digits read for `0` `1` `8` `5` `2`: `O`/`Q`/`D`, `I`, `B`, `S`, `Z`)
satisfies it, and the composite check too where the format has one. Anything else stays as read and is reported invalid.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from datetime import date
from itertools import combinations

from app.domain.documents import resolve_yymmdd
from app.domain.errors import InvalidInput

_TO_DIGIT = str.maketrans({"O": "0", "Q": "0", "D": "0", "I": "1", "L": "1", "Z": "2", "S": "5",
                           "B": "8", "G": "6"})
_TO_ALPHA = str.maketrans({"0": "O", "1": "I", "2": "Z", "5": "S", "8": "B", "6": "G"})
# The digit a letter in a digit position may really be, tried only where a check digit decides.
_TO_NUMBER = {"O": "0", "Q": "0", "D": "0", "I": "1", "B": "8", "S": "5", "Z": "2"}
# Both ways, for optional data a second check (the composite) also covers.
_EITHER = {**_TO_NUMBER, "0": "O", "1": "I", "8": "B", "5": "S", "2": "Z"}
_MAX_SPOTS = 10  # confusable positions considered in one field (2 changes: at most 55 tries)
FORMATS = ("TD1", "TD2", "TD3", "MRV-A", "MRV-B")


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


def _repair_optional(composite: str, spans: list[tuple[int, int]], digit: str) -> str:
    """Optional data that only the composite covers (TD1, TD2): one confusion undone,
    either way, when exactly one such change makes the composite pass. The document
    number is not in `spans`: it must still pass its own digit to be reported valid."""
    d = _numeric(digit)
    if not d.isdigit() or check_digit(composite) == int(d):
        return composite
    hits = {
        composite[:i] + _EITHER[composite[i]] + composite[i + 1 :]
        for a, b in spans for i in range(a, b) if composite[i] in _EITHER
    }  # fmt: skip
    hits = {h for h in hits if check_digit(h) == int(d)}
    return hits.pop() if len(hits) == 1 else composite


def _letter_among_digits(value: str, i: int) -> bool:
    """Only a letter printed between two digits is a plausible confusion (a digit
    position). Trying every confusable character would let a plain misread plus one
    compensating swap pass the check digit (1 in 10 per swap tried)."""
    return 0 < i < len(value) - 1 and value[i - 1].isdigit() and value[i + 1].isdigit()


def repair_by_check_digit(value: str, digit: str, max_changes: int = 2, *, either_way: bool = False) -> str | None:
    """`value` made to satisfy `digit` by undoing OCR confusions, or None. The fewest
    changes win; two different repairs with as few changes is a tie nobody can break,
    so None (the value is then reported as failing its check)."""
    if not digit.isdigit():
        return None
    want = int(digit)
    if check_digit(value) == want:
        return value
    swap = _EITHER if either_way else _TO_NUMBER
    spots = [i for i, ch in enumerate(value) if ch in swap and (either_way or _letter_among_digits(value, i))]
    spots = spots[:_MAX_SPOTS]
    for k in range(1, max_changes + 1):
        hits = set()
        for combo in combinations(spots, k):
            chars = list(value)
            for i in combo:
                chars[i] = swap[chars[i]]
            candidate = "".join(chars)
            if check_digit(candidate) == want:
                hits.add(candidate)
        if hits:
            return hits.pop() if len(hits) == 1 else None
    return None


# Characters a multilingual recogniser returns for the filler `<`: the hiragana `く`
# (PP-OCR's charset includes Japanese), angle brackets and guillemets.
_FILLER_LOOKALIKES = str.maketrans({"く": "<", "〈": "<", "‹": "<", "＜": "<", "ㄑ": "<", "«": "<<"})


def to_mrz_alphabet(text: str) -> str:
    """Filler lookalikes as `<`, upper case; spaces and other characters kept."""
    return text.translate(_FILLER_LOOKALIKES).upper()


def clean_line(text: str) -> str:
    """OCR output to MRZ alphabet: uppercase, no spaces, filler lookalikes as `<`."""
    t = to_mrz_alphabet(text).replace(" ", "")
    return re.sub(r"[^A-Z0-9<]", "<", t)


def _fit(line: str, length: int, head: int, tail: int) -> str:
    """Make `line` exactly `length` long by padding or trimming `<` in the filler region
    between the fixed `head` and `tail` parts: OCR often drops or adds one `<` in a run."""
    if len(line) == length:
        return line
    if len(line) < head + tail:  # too little left to place the tail: a line cut short
        return line.ljust(length, "<")[:length]
    body = line[head : len(line) - tail] if tail else line[head:]
    end = line[len(line) - tail :] if tail else ""
    want = length - head - tail
    if len(body) > want:  # drop surplus fillers from the longest `<` run, else from the end
        surplus = len(body) - want
        run = max(re.finditer(r"<+", body), key=lambda m: len(m[0]), default=None)
        if run and len(run[0]) > surplus:
            body = body[: run.start()] + run[0][surplus:] + body[run.end() :]
        elif set(body[want:]) <= {"<"}:
            body = body[:want]
    body = body.ljust(want, "<")
    return line[:head] + body + end


@dataclass(frozen=True)
class CheckDigit:
    """One check digit: the field it covers, the digit printed, the digit computed."""

    field: str
    printed: str
    computed: int
    valid: bool
    repaired: bool = False  # OCR confusions undone, confirmed by this digit (and the composite)


@dataclass
class MrzData:
    format: str  # TD1 / TD2 / TD3 / MRV-A / MRV-B
    document_code: str  # "P", "I", "ID", "AC", "V", ...
    issuing_country: str
    document_number: str
    nationality: str
    date_of_birth: str | None  # ISO
    expiry_date: str | None  # ISO
    sex: str | None  # M / F / X (ICAO `<` = unspecified -> None)
    surname: str
    given_names: str
    optional_data: str
    check_digits: list[CheckDigit] = field(default_factory=list)
    lines: list[str] = field(default_factory=list)

    @property
    def checks(self) -> dict[str, bool]:
        return {c.field: c.valid for c in self.check_digits}

    @property
    def valid(self) -> bool:
        return bool(self.check_digits) and all(c.valid for c in self.check_digits)

    @property
    def number_confirmed(self) -> bool:
        """The document number passed its own check digit and the composite (if any)."""
        checks = self.checks
        return bool(self.document_number) and checks.get("document_number", False) and checks.get("composite", True)

    @property
    def full_name(self) -> str:
        return " ".join(p for p in (self.given_names, self.surname) if p)


class _Checks:
    """Collects check-digit results while a format is parsed."""

    def __init__(self, repair: bool, max_changes: int) -> None:
        self.repair, self.max_changes = repair, max_changes
        self.results: list[CheckDigit] = []

    def field(self, name: str, data: str, digit: str, *, alphanumeric: bool = True, repair: bool = True,
              either_way: bool = False) -> str:
        """`data` as checked: digits only for dates, repaired when its check digit allows
        (never the composite: it is the second opinion on the repairs)."""
        printed = _numeric(digit)
        if not alphanumeric:
            data = _numeric(data)
        if printed == "<" and data.strip("<") == "":  # an empty optional field may print `<`
            self.results.append(CheckDigit(name, printed, 0, True))
            return data
        can = self.repair and repair and alphanumeric
        fixed = repair_by_check_digit(data, printed, self.max_changes, either_way=either_way) if can else None
        value = fixed or data
        computed = check_digit(value)
        ok = printed.isdigit() and computed == int(printed)
        self.results.append(CheckDigit(name, printed, computed, ok, repaired=value != data))
        return value


def _date(yymmdd: str, *, expiry: bool, today: date | None) -> str | None:
    return resolve_yymmdd(_numeric(yymmdd), expiry=expiry, today=today)


def _names(field_text: str) -> tuple[str, str]:
    surname, _, given = _alpha(field_text).partition("<<")
    # an OCR speck in the filler run (`<<<K<<`) must not become a name; a lone letter
    # between double fillers is one (a filler read twice between names is not)
    given = re.sub(r"<<+[A-Z](?=<<|<*$)", "<<", given)
    tidy = lambda s: re.sub(r"\s+", " ", s.replace("<", " ")).strip()  # noqa: E731
    return tidy(surname), tidy(given)


def _sex(ch: str) -> str | None:
    return ch if ch in "MFX" else None


def _overflow(number: str, check: str, optional: str) -> tuple[str, str, str] | None:
    """TD1/TD2 numbers longer than 9: a `<` check digit means the number continues in the
    optional data, whose last non-filler character is then the real check digit.
    Returns the whole number, its check digit and the optional data after it."""
    if check == "<" and optional.strip("<"):
        extra, _, rest = optional.partition("<")
        if len(extra) >= 2:
            return number + extra[:-1], extra[-1], rest
    return None


def _candidates(lines: list[str]) -> list[str]:
    """Formats these rows may be. OCR drops `<` from long filler runs, so a row's length
    is a hint, not a verdict: both widths are tried and the check digits choose."""
    n = len(lines)
    longest = max((len(x) for x in lines), default=0)
    if n == 3 and 24 <= longest <= 34:
        return ["TD1"]
    if n != 2 or not 26 <= longest <= 48:
        raise InvalidInput("Not a machine-readable zone", code="mrz_unreadable")
    wide, narrow = ("MRV-A", "MRV-B") if lines[0].startswith("V") else ("TD3", "TD2")
    if longest > 40:
        return [wide]
    # a passport is TD3 whatever OCR left of its fillers; other codes go by length
    return [wide, narrow] if lines[0].startswith("P") or longest > 36 else [narrow, wide]


def parse_mrz(raw_lines: list[str], today: date | None = None) -> MrzData:
    """Parse 2 or 3 MRZ lines (already split by row). Raises InvalidInput (`mrz_unreadable`)
    for a shape that is no ICAO format; check-digit failures are reported in `check_digits`.
    Where two formats fit the shape, the one whose check digits pass wins (ties: the
    likelier one, listed first by `_candidates`)."""
    lines = [clean_line(x) for x in raw_lines if x.strip()]
    results = [_parse_as(fmt, lines, today) for fmt in _candidates(lines)]
    ranked = [(m.valid, sum(c.valid for c in m.check_digits) / len(m.check_digits), -i) for i, m in enumerate(results)]
    return results[ranked.index(max(ranked))]


def _parse_as(fmt: str, lines: list[str], today: date | None) -> MrzData:
    parse = _td1 if fmt == "TD1" else _two_line
    mrz = parse(fmt, lines, today, True)
    if not mrz.valid and any(c.repaired for c in mrz.check_digits):
        # a repair the composite does not confirm is no repair: report the fields as read
        mrz = parse(fmt, lines, today, False)
    return mrz


_DIGITISH = "[0-9OQDISBZ]"
_DATES = re.compile(rf"{_DIGITISH}{{7}}[MFX<]{_DIGITISH}{{7}}")


def _align(l2: str) -> str:
    """Second rows: birth date, sex and expiry sit at 13-27. When OCR dropped or added
    fillers in a short document number, move them back by fixing the number's filler run."""
    m = _DATES.search(l2, 10)
    if not m or m.start() == 13:
        return l2
    shift = 13 - m.start()
    head = l2[: m.start() - 4]  # the number field, without check digit and nationality
    if shift > 0 and "<" in head:
        i = head.index("<")
        head = head[:i] + "<" * shift + head[i:]
    elif shift < 0 and "<" * -shift in head:
        i = head.index("<" * -shift)
        head = head[:i] + head[i - shift :]
    else:
        return l2
    return head + l2[m.start() - 4 :]


# Second-line layout shared by TD2, TD3 and both visas: number 0-9 + check, nationality
# 10-13, birth 13-19 + check, sex 20, expiry 21-27 + check, then the format's own tail.
_WIDTH = {"TD3": 44, "MRV-A": 44, "TD2": 36, "MRV-B": 36}
_TAIL = {"TD3": 2, "TD2": 1, "MRV-A": 0, "MRV-B": 0}  # personal-number check + composite


def _align_td1(l1: str) -> str:
    """TD1 first rows: a short number's filler run ends right before its check digit at 14."""
    m = re.match(r"(.{5}[A-Z0-9]{1,8})(<+)([0-9OQDISBZ])", l1)
    if not m or m.end(2) == 14:
        return l1
    return m[1] + "<" * (14 - len(m[1])) + l1[m.end(2) :]


def _two_line(fmt: str, lines: list[str], today: date | None, repair: bool) -> MrzData:
    width, tail = _WIDTH[fmt], _TAIL[fmt]
    l1 = _fit(lines[0], width, 5, 0)
    l2 = _fit(_align(lines[1]), width, 28, tail)
    # visas have no composite check, so a repair must stand on one digit: allow one change
    checks = _Checks(repair, 2 if fmt in ("TD3", "TD2") else 1)
    optional = l2[28 : width - tail]
    long_number = _overflow(l2[0:9], l2[9], optional) if fmt == "TD2" else None
    if long_number:
        number = checks.field("document_number", *long_number[:2])
        number_field = l2[0:9]
    else:
        number_field = checks.field("document_number", l2[0:9], l2[9])
        number = number_field
    dob = checks.field("date_of_birth", l2[13:19], l2[19], alphanumeric=False)
    expiry = checks.field("expiry_date", l2[21:27], l2[27], alphanumeric=False)
    if fmt == "TD3":
        # the personal number has its own digit and the composite: either way, one change
        optional = checks.field("personal_number", optional, l2[42], either_way=True)
    if tail:
        head = number_field + _numeric(l2[9]) + dob + _numeric(l2[19]) + expiry + _numeric(l2[27])
        composite = head + optional + (_numeric(l2[42]) if fmt == "TD3" else "")
        if fmt == "TD2" and repair:
            composite = _repair_optional(composite, [(len(head), len(composite))], l2[width - 1])
            optional = composite[len(head) :]
        checks.field("composite", composite, l2[width - 1], repair=False)
    surname, given = _names(l1[5:width])
    return MrzData(
        fmt, l1[0:2].strip("<"), _alpha(l1[2:5]), number.replace("<", ""), _alpha(l2[10:13]),
        _date(dob, expiry=False, today=today), _date(expiry, expiry=True, today=today),
        _sex(l2[20]), surname, given, (long_number[2] if long_number else optional).strip("<"),
        checks.results, [l1, l2],
    )


def _td1(fmt: str, lines: list[str], today: date | None, repair: bool) -> MrzData:
    l1 = _fit(_align_td1(lines[0]), 30, 15, 0)
    l2 = _fit(lines[1], 30, 18, 1)
    l3 = _fit(lines[2], 30, 0, 0)
    checks = _Checks(repair, 2)
    long_number = _overflow(l1[5:14], l1[14], l1[15:30])
    if long_number:
        number = checks.field("document_number", *long_number[:2])
        number_field = l1[5:14]
    else:
        number = number_field = checks.field("document_number", l1[5:14], l1[14])
    dob = checks.field("date_of_birth", l2[0:6], l2[6], alphanumeric=False)
    expiry = checks.field("expiry_date", l2[8:14], l2[14], alphanumeric=False)
    composite = number_field + l1[14:30] + dob + _numeric(l2[6]) + expiry + _numeric(l2[14]) + l2[18:29]
    if repair and not long_number:
        composite = _repair_optional(composite, [(10, 25), (len(composite) - 11, len(composite))], l2[29])
        l1, l2 = l1[:15] + composite[10:25] + l1[30:], l2[:18] + composite[-11:] + l2[29:]
    checks.field("composite", composite, l2[29], repair=False)
    surname, given = _names(l3)
    return MrzData(
        "TD1", l1[0:2].strip("<"), _alpha(l1[2:5]), number.replace("<", ""), _alpha(l2[15:18]),
        _date(dob, expiry=False, today=today), _date(expiry, expiry=True, today=today),
        _sex(l2[7]), surname, given, ((long_number[2] if long_number else l1[15:30]) + l2[18:29]).strip("<"),
        checks.results, [l1, l2, l3],
    )


def split_merged(text: str) -> list[str]:
    """One OCR row holding two MRZ lines (tight spacing, skew) as its lines: the second
    row of TD2/TD3/visas is found by its dates (13 characters in), a TD1's second row
    starts with them; otherwise a row of twice a line's length is cut in half."""
    if len(text) < 52:
        return [text]
    m = _DATES.search(text, 26)
    if m:
        cut = m.start() - 13 if m.start() - 13 >= 26 else m.start()
        if 26 <= cut <= len(text) - 20:
            return [text[:cut], *split_merged(text[cut:])]
    for width in (30, 36, 44):
        if abs(len(text) - 2 * width) <= 3:
            return [text[: len(text) // 2], text[len(text) // 2 :]]
    return [text]


def looks_like_mrz(text: str) -> bool:
    """A candidate MRZ row: long, MRZ alphabet, with fillers."""
    raw = text.upper().replace(" ", "")
    foreign = len(re.sub(r"[A-Z0-9<«]", "", raw))
    return len(raw) >= 26 and ("<" in raw or "«" in raw) and foreign <= 2
