"""Field parsers, one per document type, over OCR lines grouped into rows.

Each parser returns a `Found`: fields (document number already masked), the
confidence of the OCR line each field came from, validation facts, and the raw
number. Values are looked up by their printed label first (the value sits to the
right of or below the label) and by layout position only as a fallback.
"""

from __future__ import annotations

import re
from dataclasses import asdict, dataclass, field

from app.domain import documents as rules
from app.domain.documents import DocumentType
from app.domain.errors import InvalidInput
from app.domain.mrz import MrzData, clean_line, parse_mrz, split_merged, to_mrz_alphabet
from app.ml.ocr import OcrLine, group_rows

_NAME_RE = re.compile(r"^[A-Za-z][A-Za-z .']{1,60}$")
# Printed labels and headers that are never somebody's name.
_NOT_NAME = re.compile(
    r"GOVERNMENT|GOVT|INDIA|AADHAA?R|INCOME|DEPARTMENT|PERMANENT|ACCOUNT|NUMBER|\bCARD\b|BIRTH|\bDOB\b|"
    r"\bNAME\b|FATHER|SIGNATURE|\bMALE\b|FEMALE|ADDRESS|ELECTION|COMMISSION|LICEN[CS]E|UNIQUE|AUTHORITY|\bVID\b",
    re.I,
)
_UID_RE = re.compile(r"(?<![\d])(\d{4})\s?(\d{4})\s?(\d{4})(?!\s?\d)")


@dataclass
class Page:
    lines: list[OcrLine]
    rows: list[list[OcrLine]]

    @classmethod
    def from_lines(cls, lines: list[OcrLine]) -> Page:
        return cls(lines, group_rows(lines))

    @property
    def row_texts(self) -> list[str]:
        return [" ".join(ln.text for ln in row) for row in self.rows]

    @property
    def text(self) -> str:
        return "\n".join(self.row_texts)

    @property
    def mean_confidence(self) -> float:
        return sum(ln.confidence for ln in self.lines) / len(self.lines) if self.lines else 0.0

    def row_conf(self, i: int) -> float:
        return min(ln.confidence for ln in self.rows[i])


@dataclass
class Found:
    fields: dict[str, str | None] = field(default_factory=dict)
    conf: dict[str, float] = field(default_factory=dict)
    validation: dict = field(default_factory=dict)
    number_raw: str | None = None

    def put(self, key: str, value: str | None, confidence: float) -> None:
        if value and self.fields.get(key) is None:
            self.fields[key] = value
            self.conf[key] = confidence


def is_name(text: str) -> bool:
    t = text.strip()
    return bool(_NAME_RE.match(t)) and not _NOT_NAME.search(t) and 1 <= len(t.split()) <= 5


def _tidy_name(text: str) -> str:
    return re.sub(r"\s+", " ", text.strip(" :.-")).strip()


def value_near(page: Page, label: OcrLine, pattern: str | None = None) -> OcrLine | None:
    """The value printed right of `label` on its row, else the nearest line below it
    that starts near the label's left edge (card layouts stack label over value)."""
    h = max(label.height, 8)
    for row in page.rows:
        if label in row:
            after = row[row.index(label) + 1 :]
            # only a box close to the label: a far one is the next column's label or value
            close = bool(after) and after[0].box[0] - label.box[2] < 3 * h
            if close and (pattern is None or re.search(pattern, after[0].text)):
                return after[0]
    below = [
        ln for ln in page.lines
        if ln.box[1] >= label.box[3] - 0.3 * h and ln.box[1] - label.box[3] < 2.5 * h
        and abs(ln.box[0] - label.box[0]) < 4 * h and ln is not label
    ]  # fmt: skip
    below = [ln for ln in below if pattern is None or re.search(pattern, ln.text)]
    return min(below, key=lambda ln: (ln.box[1], abs(ln.box[0] - label.box[0])), default=None)


def find_line(page: Page, pattern: str) -> OcrLine | None:
    rx = re.compile(pattern, re.I)
    return next((ln for ln in page.lines if rx.search(ln.text)), None)


def labelled(page: Page, label_pattern: str, value_pattern: str | None = None) -> tuple[str, float] | None:
    """Value of a label, whether printed on the same box (`Name: X`) or next to it."""
    label = find_line(page, label_pattern)
    if label is None:
        return None
    rest = re.sub(label_pattern, "", label.text, count=1, flags=re.I)
    # "Place of birth/ Lieu de naissance": a slash after the label starts its translation
    rest = "" if re.match(r"\s*/", rest) else rest.strip(" :-")
    if rest and (value_pattern is None or re.search(value_pattern, rest)):
        return rest, label.confidence
    value = value_near(page, label, value_pattern)
    return (value.text.strip(" :"), value.confidence) if value else None


def _find_dob(page: Page, out: Found) -> None:
    for i, text in enumerate(page.row_texts):
        if re.search(r"DOB|D\.O\.B|BIRTH|जन्म", text, re.I):
            dates = rules.find_dmy_dates(text)
            if dates:
                return out.put("date_of_birth", dates[0], page.row_conf(i))
            year = re.search(r"(?:YEAR|YOB)[^0-9]*((?:19|20)\d{2})", text, re.I)
            if year:
                return out.put("date_of_birth", year.group(1), page.row_conf(i))
    hit = labelled(page, r"date of birth|\bDOB\b", r"\d{1,2}[/.\-]\d{1,2}[/.\-]\d{4}")
    if hit and rules.find_dmy_dates(hit[0]):
        out.put("date_of_birth", rules.find_dmy_dates(hit[0])[0], hit[1])


def _find_gender(page: Page, out: Found) -> None:
    for i, text in enumerate(page.row_texts):
        m = re.search(r"\b(FEMALE|MALE|TRANSGENDER)\b", text.upper())
        if m:
            return out.put("gender", {"MALE": "M", "FEMALE": "F"}.get(m.group(1), "X"), page.row_conf(i))


# e-Aadhaar and masked Aadhaar print only the last four digits (`XXXX XXXX 1234`); OCR
# reads the X as x, × or K now and then.
_MASKED_UID_RE = re.compile(
    r"(?<![A-Z0-9])(?:[XxK×*]{4}\s?[XxK×*]{4}\s?(\d{4})(?!\s?\d)"
    r"|(?<!\d)(\d{4})\s?[XxK×*]{4}\s?[XxK×*]{4}(?![A-Z0-9]))"  # PP-OCR sometimes orders the groups last-first
)


def _aadhaar_number(page: Page, out: Found) -> None:
    candidates = []
    for i, text in enumerate(page.row_texts):
        if re.search(r"\bVID\b", text, re.I):
            continue  # the 16-digit virtual ID contains 12-digit runs too
        for m in _UID_RE.finditer(text):
            candidates.append(("".join(m.groups()), page.row_conf(i)))
    if not candidates:
        masked = next(((m, i) for i, t in enumerate(page.row_texts) if not re.search(r"\bVID\b", t, re.I)
                       for m in _MASKED_UID_RE.finditer(t)), None)
        if masked:  # read as masked: nothing to check, and not a Verhoeff failure
            last4 = masked[0].group(1) or masked[0].group(2)
            out.put("document_number", f"XXXX XXXX {last4}", page.row_conf(masked[1]))
            out.validation.update(number_valid=None, number_masked=True, checksum="verhoeff", verhoeff=None)
        return
    number, conf = next(((n, c) for n, c in candidates if rules.is_valid_aadhaar(n)), candidates[0])
    out.number_raw = number
    out.put("document_number", rules.mask_aadhaar(number), conf)
    valid = rules.is_valid_aadhaar(number)
    out.validation.update(number_valid=valid, checksum="verhoeff", verhoeff=rules.verhoeff_valid(number))


def parse_aadhaar(page: Page) -> Found:
    out = Found()
    _aadhaar_number(page, out)
    _find_dob(page, out)
    _find_gender(page, out)
    texts = page.row_texts
    dob_row = next((i for i, t in enumerate(texts) if re.search(r"DOB|BIRTH|जन्म", t, re.I)), None)
    if dob_row is not None:  # the name is printed just above the date of birth
        for i in range(dob_row - 1, -1, -1):
            names = [ln for ln in page.rows[i] if is_name(ln.text)]
            if names:
                out.put("full_name", _tidy_name(names[-1].text), names[-1].confidence)
                break
    _aadhaar_address(page, out)
    return out


def _aadhaar_address(page: Page, out: Found) -> None:
    """The English address: from the `Address` label down to the PIN code, in the label's
    column only (bilingual cards print the Devanagari address beside it, to the left)."""
    label = find_line(page, r"\bADDRESS\b|पता")
    if label is None:
        return
    h = max(label.height, 8)
    column = [ln for ln in page.lines if ln.box[0] >= label.box[0] - 1.5 * h and ln.box[1] >= label.box[1] - 0.5 * h]
    rows = group_rows(column)
    parts, confs = [], []
    for k, row in enumerate(rows):
        t = " ".join(ln.text for ln in row)
        if k == 0:
            t = re.sub(r"^.*?(ADDRESS|पता)\s*[:.]?", "", t, flags=re.I).strip()
        if _UID_RE.search(t) or _MASKED_UID_RE.search(t) or re.search(r"\bVID\b|help@|www\.|1947", t, re.I):
            break
        if t:
            parts.append(t)
            confs.append(min(ln.confidence for ln in row))
        if re.search(r"(?<!\d)\d{6}(?!\d)", t):  # the PIN code ends an Indian address
            break
    address = re.sub(r"\s+", " ", " ".join(parts)).strip(" ,")
    if address:
        out.put("address", address, sum(confs) / len(confs))
        rel = re.match(r"^(?:S/O|D/O|S/0|D/0)[:\s]*([A-Za-z .]+?)\s*,", address, re.I)
        if rel:
            out.put("father_name", _tidy_name(rel.group(1)), sum(confs) / len(confs))


_PAN_LETTER = str.maketrans({"0": "O", "1": "I", "2": "Z", "5": "S", "8": "B", "6": "G"})
_PAN_DIGIT = str.maketrans({"O": "0", "D": "0", "Q": "0", "I": "1", "L": "1", "Z": "2", "S": "5", "B": "8", "G": "6"})


def normalise_pan(token: str) -> str | None:
    """PAN positions have fixed alphabets, so confusions can be undone per position."""
    t = re.sub(r"[^A-Z0-9]", "", token.upper())
    if len(t) != 10:
        return None
    fixed = t[:5].translate(_PAN_LETTER) + t[5:9].translate(_PAN_DIGIT) + t[9].translate(_PAN_LETTER)
    return fixed if rules.PAN_RE.match(fixed) else None


def parse_pan(page: Page) -> Found:
    out = Found()
    for ln in page.lines:
        for tok in re.findall(r"[A-Z0-9]{10}", ln.text.upper().replace(" ", "")):
            pan = normalise_pan(tok)
            if pan and out.number_raw is None:
                out.number_raw = pan
                out.put("document_number", rules.mask_number(pan), ln.confidence)
                valid, holder = rules.is_valid_pan(pan), rules.pan_holder_type(pan)
                out.validation.update(number_valid=valid, checksum="format", holder_type=holder,
                                      pan={"valid": valid, "holder_type_code": pan[3], "holder_type": holder})
    _put_name(page, out, "father_name", r"father'?s?\s*name")
    _put_name(page, out, "full_name", r"^(?!.*father)\s*name\b")
    if "full_name" not in out.fields:  # older cards: name then father's name under the header
        names = [ln for ln in page.lines if is_name(ln.text) and ln.text.isupper()]
        if names:
            out.put("full_name", _tidy_name(names[0].text), names[0].confidence)
        if len(names) > 1:
            out.put("father_name", _tidy_name(names[1].text), names[1].confidence)
    _find_dob(page, out)
    return out


@dataclass
class MrzRow:
    """One MRZ line as OCR saw it: its text in MRZ alphabet and the boxes it came from."""

    text: str
    boxes: list[OcrLine]

    @property
    def top(self) -> int:
        return min(b.box[1] for b in self.boxes)

    @property
    def bottom(self) -> int:
        return max(b.box[3] for b in self.boxes)

    @property
    def height(self) -> float:
        return sum(b.height for b in self.boxes) / len(self.boxes)

    @property
    def confidence(self) -> float:
        return min(b.confidence for b in self.boxes)


def mrz_fragment(text: str) -> str | None:
    """The text of an OCR box in MRZ alphabet, or None when the box is print: MRZ is
    upper case without word spaces (a caption such as `MACHINE READABLE ZONE - DO NOT
    WRITE` between the lines is not, nor a name `KAVITA REDDY`), at most one character in
    ten outside the alphabet (a date `02/10/1954` is print too)."""
    if sum(c.islower() for c in text) > 1:  # MRZ is upper case (`く` for `<` is no letter)
        return None
    t = to_mrz_alphabet(text)
    compact = t.replace(" ", "")
    if len(compact) < 5 or t.count(" ") > len(compact) / 20:
        return None
    if len(re.sub(r"[A-Z0-9<]", "", compact)) > min(2, len(compact) // 10):  # `02/10/1954` is print
        return None
    return clean_line(compact)


def mrz_rows(page: Page) -> list[MrzRow]:
    """MRZ-looking boxes clustered into lines, top to bottom, each left to right. MRZ
    boxes are clustered on their own (not with `page.rows`), so text beside or between
    the lines never joins them; a row twice a line long (two lines OCR merged) is split."""
    frags = [(ln, t) for ln in page.lines if (t := mrz_fragment(ln.text))]
    clusters: list[list[tuple[OcrLine, str]]] = []
    for ln, t in sorted(frags, key=lambda f: f[0].cy):
        last = clusters[-1] if clusters else None
        if last and abs(ln.cy - sum(f[0].cy for f in last) / len(last)) < 0.5 * min(ln.height, last[0][0].height):
            last.append((ln, t))
        else:
            clusters.append([(ln, t)])
    rows = []
    for cluster in clusters:
        cluster.sort(key=lambda f: f[0].box[0])
        text = "".join(t for _, t in cluster)
        for part in split_merged(text):
            if len(part) >= 20:
                rows.append(MrzRow(part, [ln for ln, _ in cluster]))
    return rows


def read_mrz(page: Page, today=None) -> tuple[MrzData | None, list[MrzRow]]:
    """The best-validating MRZ among consecutive runs of 3 (TD1) or 2 MRZ rows, and the
    rows it came from. A run needs a filler `<` somewhere (a name or number row may have
    none) and rows of similar pitch; at equal validity the lowest run wins (the MRZ is
    printed at the bottom)."""
    rows = mrz_rows(page)
    best: tuple | None = None
    for size in (3, 2):
        for i in range(len(rows) - size + 1):
            run = rows[i : i + size]
            if not any("<" in r.text for r in run):
                continue
            if any(b.top - a.bottom > 3 * max(a.height, b.height) for a, b in zip(run, run[1:])):
                continue  # too far apart to be one zone
            try:
                mrz = parse_mrz([r.text for r in run], today)
            except InvalidInput:
                continue
            key = (mrz.valid, sum(c.valid for c in mrz.check_digits) / len(mrz.check_digits), i)
            if best is None or key > best[0]:
                best = (key, mrz, run)
    return (best[1], best[2]) if best else (None, rows)


def find_mrz_rows(page: Page) -> list[str]:
    """The MRZ lines the page holds (empty when it has none): used to classify."""
    mrz = read_mrz(page)[0]
    return mrz.lines if mrz else []


def _name_from_visual_zone(page: Page, name: str, rows: list[MrzRow]) -> str:
    """Names carry no check digit, but the visual zone prints them again. Where OCR read a
    letter of an MRZ name as a filler (`ARJ<N` -> "ARJ N"), two parts that one letter
    joins into a printed word are that word; a part not printed anywhere whose only
    printed neighbour is one edit away (`JOOHN` beside `JOHN`) is that neighbour."""
    parts = name.split()
    if len(parts) < 2:
        return name
    used = {id(b) for r in rows for b in r.boxes}
    printed = {w for ln in page.lines if id(ln) not in used for w in re.findall(r"[A-Z]{3,}", ln.text.upper())}
    out = [parts[0]]
    for part in parts[1:]:
        joined = next((w for w in printed if len(w) == len(out[-1]) + len(part) + 1
                       and w.startswith(out[-1]) and w.endswith(part)), None)
        if joined and out[-1] not in printed and part not in printed:
            out[-1] = joined
        else:
            out.append(part)
    # a letter doubled, dropped or changed (`JOOHN`): the one printed word a single edit away
    for k, part in enumerate(out):
        near = [w for w in printed if part not in printed and len(part) >= 2 and _one_edit(part, w)]
        if len(near) == 1:
            out[k] = near[0]
    return " ".join(out)


def _one_edit(a: str, b: str) -> bool:
    """Exactly one insertion, deletion or substitution turns `a` into `b`."""
    if a == b or abs(len(a) - len(b)) > 1:
        return False
    if len(a) == len(b):
        return sum(x != y for x, y in zip(a, b)) == 1
    short, long_ = sorted((a, b), key=len)
    return any(long_[:i] + long_[i + 1 :] == short for i in range(len(long_)))


def parse_mrz_document(page: Page) -> Found:
    out = Found()
    mrz, rows = read_mrz(page)
    if mrz is None:
        out.validation.update(number_valid=False, checksum="mrz", mrz_found=False)
        return out
    conf = min(r.confidence for r in rows)
    # a number no check digit confirms is reported as read but never as valid
    out.number_raw = mrz.document_number or None
    for key, value in (
        ("document_number", rules.mask_number(mrz.document_number) if mrz.document_number else None),
        ("full_name", _name_from_visual_zone(page, mrz.full_name, rows)), ("date_of_birth", mrz.date_of_birth), ("expiry_date", mrz.expiry_date),
        ("nationality", mrz.nationality), ("gender", mrz.sex),
    ):  # fmt: skip
        out.put(key, value, conf)
    issue = labelled(page, r"date of issue", r"\d")
    if issue:
        out.put("issue_date", rules.parse_day_month_name(issue[0], future=False), issue[1])
    place = labelled(page, r"place of birth", r"[A-Za-z]{2}")
    if place and is_name(place[0]):
        out.put("place_of_birth", _tidy_name(place[0]), place[1])
    out.validation.update(
        number_valid=mrz.valid and mrz.number_confirmed, checksum="mrz", mrz_format=mrz.format,
        mrz_check_digits=mrz.checks, mrz_checks=[asdict(c) for c in mrz.check_digits], issuing_country=mrz.issuing_country,
        document_code=mrz.document_code, expired=rules.is_expired(mrz.expiry_date),
    )  # fmt: skip
    return out


def _by_format(page: Page, pattern: str, normalise, out: Found) -> None:
    for i, text in enumerate(page.row_texts):
        for m in re.finditer(pattern, text.upper()):
            number = normalise(m.group(0))
            if number:
                out.number_raw = number
                out.put("document_number", rules.mask_number(number), page.row_conf(i))
                out.validation.update(number_valid=True, checksum="format")
                return
    out.validation.update(number_valid=False, checksum="format")


def _put_name(page: Page, out: Found, field: str, label_pattern: str) -> None:
    """A person's name printed under or beside a label, when it looks like a name."""
    found = labelled(page, label_pattern, r"[A-Za-z]")
    if found and is_name(found[0]):
        out.put(field, _tidy_name(found[0]), found[1])


def _common_person(page: Page, out: Found) -> None:
    _put_name(page, out, "full_name", r"^(?!.*(father|husband))\s*(elector'?s\s*)?name\b")
    _put_name(page, out, "father_name", r"father'?s?\s*name|S/?D/?W\s*of|son/daughter/wife of")
    _find_dob(page, out)
    _find_gender(page, out)


def parse_driving_licence(page: Page) -> Found:
    out = Found()
    _by_format(page, r"[A-Z]{2}[\s-]?\d{2}[\s-]?(?:19|20)\d{2}[\s-]?\d{7}", rules.normalise_driving_licence, out)
    _common_person(page, out)
    valid = labelled(page, r"valid\s*till|validity", r"\d")
    if valid and rules.find_dmy_dates(valid[0]):
        out.put("expiry_date", rules.find_dmy_dates(valid[0])[-1], valid[1])
        out.validation["expired"] = rules.is_expired(out.fields["expiry_date"])
    return out


def parse_voter_id(page: Page) -> Found:
    out = Found()
    _by_format(page, r"(?<![A-Z])[A-Z]{3}\d{7}(?!\d)", lambda s: s if rules.is_valid_voter_id(s) else None, out)
    _common_person(page, out)
    return out


def parse_generic(page: Page) -> Found:
    out = Found()
    _find_dob(page, out)
    return out


PARSERS = {
    DocumentType.AADHAAR: parse_aadhaar,
    DocumentType.PAN: parse_pan,
    DocumentType.PASSPORT: parse_mrz_document,
    DocumentType.NATIONAL_ID: parse_mrz_document,
    DocumentType.DRIVING_LICENCE: parse_driving_licence,
    DocumentType.VOTER_ID: parse_voter_id,
    DocumentType.GENERIC: parse_generic,
}
