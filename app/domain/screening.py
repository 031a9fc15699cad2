"""Sanctions and PEP screening: watchlist entries, names in a normal form, blocking keys, and how an
entry matches a person. No I/O (the files are read by app/domain/watchlist_files.py, the entries
stored by app/repositories/screening.py).

A name is compared twice: as spelt (honorifics dropped, word order ignored) and by its sounds, a
consonant skeleton that makes Mohammed, Muhammad and Mohamad one word; a match by sound alone counts
a little less (`TRANSLITERATED`). Dates of birth and nationalities, where the list gives them, make
a hit stronger or weaker: a strong name with nothing contradicting it fails the check, anything
weaker asks an auditor, and a weak name with another date of birth is no hit."""

from __future__ import annotations

import hashlib
import re
import unicodedata
from collections import Counter
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import date
from enum import StrEnum
from functools import cache
from itertools import combinations
from pathlib import Path

from rapidfuzz import fuzz

from app.domain.errors import InvalidInput

STRONG, WEAK = 0.95, 0.85
TRANSLITERATED, PART = 0.92, 0.90  # a match by sound only; the whole of one name inside the other
HONORIFICS = frozenset({"mr", "mrs", "ms", "miss", "mx", "dr", "prof", "sir", "shri", "sri", "shree", "smt",
                        "shrimati", "kumari", "kum", "late", "hon", "haji", "hajji"})
ABBREVIATIONS = {"md": "mohammed", "mohd": "mohammed", "muhd": "mohammed"}
_SOUNDS = (("ph", "f"), ("q", "k"), ("x", "ks"), ("ck", "k"), ("w", "v"), ("dj", "j"), ("z", "s"))


class WatchlistInvalid(InvalidInput):
    """The watchlist file cannot be read; the list in force is unchanged."""

    code = "watchlist_invalid"


class Agreement(StrEnum):
    AGREES = "agrees"
    DIFFERS = "differs"
    UNKNOWN = "not compared"


@dataclass(frozen=True)
class Entry:
    """One listed person or organisation; `names` is the primary name, then the aliases."""

    id: str
    names: tuple[str, ...]
    schema: str = "Person"
    birth_dates: tuple[str, ...] = ()  # ISO prefixes: 1970, 1970-05 or 1970-05-12
    countries: tuple[str, ...] = ()  # ISO 3166 alpha-2 where known
    program: str = ""

    def digest(self) -> str:
        """Changes when anything that screening reads changes: a reload re-screens only these."""
        text = "\x1f".join(["\x1e".join(v) if isinstance(v, tuple) else v for v in
                            (self.id, self.names, self.schema, self.birth_dates, self.countries)])
        return hashlib.sha256(text.encode()).hexdigest()[:24]


@dataclass(frozen=True)
class Subject:
    """Who is screened: the names a case gives (profile, documents), date of birth, nationalities."""

    names: tuple[str, ...]
    dob: date | None = None
    nationalities: tuple[str, ...] = ()


@dataclass(frozen=True)
class Hit:
    list: str
    version: int
    entry: Entry
    matched: str  # the entry's name (or alias) that matched
    subject_name: str
    score: float
    how: str
    dob: Agreement
    nationality: Agreement
    strong: bool

    def explain(self) -> str:
        return (f"list {self.list} v{self.version}, entry {self.entry.id} ({self.entry.names[0]}): "
                f"'{self.subject_name}' matched '{self.matched}' {self.score:.0%} by {self.how}; "
                f"date of birth {self.dob.value}, nationality {self.nationality.value}")


def words(name: str) -> tuple[str, ...]:
    """Lower-case ASCII words, honorifics dropped, Md/Mohd written out."""
    text = unicodedata.normalize("NFKD", name).encode("ascii", "ignore").decode().lower()
    found = (ABBREVIATIONS.get(w, w) for w in re.findall(r"[a-z]+", text))
    return tuple(w for w in found if w not in HONORIFICS)


@cache
def sound(word: str) -> str:
    """A consonant skeleton: the first letter (any vowel as `a`), then the consonants, doubles once."""
    for a, b in _SOUNDS:
        word = word.replace(a, b)
    head = "a" if word[0] in "aeiouy" else word[0]
    return re.sub(r"(.)\1+", r"\1", head + re.sub(r"[aeiouyh]", "", word[1:]))


def sounds(name: str) -> tuple[str, ...]:
    return tuple(sound(w) for w in words(name))


def _pairs(sounds: Iterable[str]) -> set[str]:
    return {f"{a}|{b}" for a, b in combinations(sorted(set(sounds)), 2)}


def subject_keys(subject: Subject) -> list[str]:
    """What a person is looked up by: each word's sound, and each pair of them."""
    keys: set[str] = set()
    for name in subject.names:
        keys |= set(sounds(name)) | _pairs(sounds(name))
    return sorted(keys)


def entry_sounds(entry: Entry) -> list[set[str]]:
    return [set(sounds(n)) for n in entry.names]


def entry_keys(entry: Entry, common: set[str]) -> list[str]:
    """Blocking keys: each word's sound, but a sound that `common` (found in many entries of the list)
    holds only as part of a pair, so that a lookup by Mohammed does not fetch thousands."""
    keys: set[str] = set()
    for heard in entry_sounds(entry):
        keys |= (heard - common) | (_pairs(heard) if len(heard) > 1 else heard)
    return sorted(keys)


def common_sounds(counts: Counter[str], entries: int) -> set[str]:
    limit = max(50, entries // 1000)
    return {key for key, n in counts.items() if n > limit}


def name_score(a: str, b: str) -> tuple[float, str]:
    """0..1 and how: spelling, transliteration, or one name inside the other (two words at least)."""
    x, y, sx, sy = words(a), words(b), set(sounds(a)), set(sounds(b))
    if not x or not y:
        return 0.0, "spelling"
    spelt = fuzz.token_sort_ratio(" ".join(x), " ".join(y)) / 100
    heard = TRANSLITERATED * fuzz.token_sort_ratio(" ".join(sounds(a)), " ".join(sounds(b))) / 100
    inside = PART if len(sx & sy) >= 2 and (sx <= sy or sy <= sx) else 0.0
    return max((spelt, "spelling"), (heard, "transliteration"), (inside, "part of the name"))


def dob_agreement(birth_dates: Iterable[str], dob: date | None) -> Agreement:
    """A listed year (or year and month) agrees with any date in it."""
    dates = list(birth_dates)
    if not dates or dob is None:
        return Agreement.UNKNOWN
    return Agreement.AGREES if any(dob.isoformat().startswith(d) for d in dates) else Agreement.DIFFERS


def country_agreement(listed: Iterable[str], own: Iterable[str]) -> Agreement:
    a, b = set(listed), set(own)
    if not a or not b:
        return Agreement.UNKNOWN
    return Agreement.AGREES if a & b else Agreement.DIFFERS


def match(subject: Subject, entry: Entry, list_name: str, version: int) -> Hit | None:
    """The best of the subject's names against the entry's, weighed with date of birth and nationality."""
    score, how, mine, theirs = max(((*name_score(s, e), s, e) for s in subject.names for e in entry.names),
                                   default=(0.0, "", "", ""))
    dob = dob_agreement(entry.birth_dates, subject.dob)
    nationality = country_agreement(entry.countries, subject.nationalities)
    if score < WEAK or (score < STRONG and dob is Agreement.DIFFERS):
        return None
    strong = score >= STRONG and Agreement.DIFFERS not in (dob, nationality)
    return Hit(list_name, version, entry, theirs, mine, round(score, 4), how, dob, nationality, strong)


def screen(subject: Subject, candidates: Iterable[tuple[str, int, Entry]]) -> list[Hit]:
    """Hits among the candidates (found by the keys), strongest first."""
    hits = [hit for name, version, entry in candidates if (hit := match(subject, entry, name, version))]
    return sorted(hits, key=lambda h: (h.strong, h.score), reverse=True)


# --- countries ------------------------------------------------------------------------------

@cache
def _countries() -> dict[str, str]:
    table: dict[str, str] = {}
    for line in (Path(__file__).with_name("countries.tsv")).read_text().splitlines():
        if line and not line.startswith("#"):
            alpha2, alpha3, names = line.split("\t")
            table.update({alpha2.lower(): alpha2, alpha3.lower(): alpha2, **dict.fromkeys(names.split("|"), alpha2)})
    return table


def country(value: str) -> str | None:
    """ISO alpha-2 of a code (IN, IND) or a name (India, Iran (Islamic Republic of)); a demonym
    ending in n or i (Indian, Pakistani) is tried without it."""
    key = re.sub(r"[^a-z]", "", value.lower())
    table = _countries()
    return table.get(key) or (table.get(key[:-1]) if key[-1:] in ("n", "i") else None)
