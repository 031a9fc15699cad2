"""Does the name read off the document agree with the profile's, allowing for order, honorifics,
initials and small OCR slips."""

from __future__ import annotations

import re
import unicodedata

from rapidfuzz import fuzz

from app.domain.checks import Facts, document_rule
from app.domain.kyc import Check, CheckName, CheckStatus

NAME_PASS, NAME_REVIEW = 0.90, 0.75
# Honorifics and words Indian documents add or drop around a name.
_IGNORED = {"mr", "mrs", "ms", "miss", "dr", "shri", "sri", "shree", "smt", "shrimati", "kumari", "kum", "km",
            "kumar", "md", "mohd", "late", "s/o", "d/o", "w/o"}


def name_tokens(name: str) -> list[str]:
    text = unicodedata.normalize("NFKD", name).encode("ascii", "ignore").decode().lower()
    words = re.findall(r"[a-z]+", text)
    return [w for w in words if w not in _IGNORED]


def _initials_agree(a: list[str], b: list[str]) -> bool:
    """'A K Sharma' and 'Anil Kumar Sharma': same surname, each initial starts a word of the other."""
    if not a or not b or a[-1] != b[-1]:
        return False
    short, full = (a, b) if len(" ".join(a)) <= len(" ".join(b)) else (b, a)
    rest = list(full[:-1])
    for word in short[:-1]:
        match = next((w for w in rest if w == word or (len(word) == 1 and w.startswith(word))), None)
        if match is None:
            return False
        rest.remove(match)
    return True


def name_similarity(a: str, b: str) -> float:
    """0..1; tolerant of order, honorifics, initials and small OCR slips."""
    ta, tb = name_tokens(a), name_tokens(b)
    if not ta or not tb:
        return 0.0
    if _initials_agree(ta, tb):
        return 0.95
    return fuzz.token_sort_ratio(" ".join(ta), " ".join(tb)) / 100


@document_rule(CheckName.NAME_MATCH)
def name_match(facts: Facts) -> Check:
    doc, name = facts.document, CheckName.NAME_MATCH
    read = doc.fields.get("full_name")
    if not read:
        return Check(name, CheckStatus.REVIEW, 0.5, "No name was read from the document.", doc.id)
    score = name_similarity(read, facts.user.name)
    if score >= NAME_PASS:
        return Check(name, CheckStatus.PASS, score, "The name agrees with the profile.", doc.id)
    status = CheckStatus.REVIEW if score >= NAME_REVIEW else CheckStatus.FAIL
    return Check(name, status, score, f"The name on the document agrees {score:.0%} with the profile.", doc.id)
