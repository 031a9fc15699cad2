"""Generated watchlists for the screening tests and the bench: OpenSanctions' targets.simple.csv and
the UN consolidated list XML, with named entries where a test needs them and filler around them."""

from __future__ import annotations

import csv
import random
from dataclasses import dataclass, field
from pathlib import Path
from xml.sax.saxutils import escape

COLUMNS = ("id", "schema", "name", "aliases", "birth_date", "countries", "addresses", "identifiers", "sanctions",
           "phones", "emails", "dataset", "first_seen", "last_seen", "last_change")
_SYLLABLES = ("ka", "ri", "mo", "ta", "ne", "lu", "sa", "vi", "do", "re", "pa", "zo", "ki", "be", "fa", "gu", "ho",
              "ja", "le", "mi", "no", "pu", "ro", "se", "tu", "ve", "wa", "yo")


@dataclass
class Listed:
    id: str
    name: str
    aliases: list[str] = field(default_factory=list)
    birth_date: str = ""
    countries: str = ""


def _word(rnd: random.Random) -> str:
    return "".join(rnd.choice(_SYLLABLES) for _ in range(rnd.randint(2, 4))).capitalize()


def filler(count: int, seed: int = 7) -> list[Listed]:
    """Made-up people: 400 given names and 5,000 surnames, so a name shares its words with a few
    hundred entries, as real lists do; one in twenty is a Mohammed (the commonest listed name)."""
    rnd = random.Random(seed)
    given, family = [_word(rnd) for _ in range(400)], [_word(rnd) for _ in range(5000)]
    people = []
    for i in range(count):
        first = "Mohammed" if i % 20 == 0 else rnd.choice(given)
        name = f"{first} {rnd.choice(family)}"
        aliases = [f"{rnd.choice(given)} {rnd.choice(family)}"] if i % 3 == 0 else []
        people.append(Listed(f"gen-{i}", name, aliases, f"{rnd.randint(1940, 2000)}-{rnd.randint(1, 12):02d}-"
                                                        f"{rnd.randint(1, 28):02d}" if i % 2 else "",
                             rnd.choice(["ru", "ir", "kp", "sy", "af"])))
    return people


def write_csv(path: Path, people: list[Listed]) -> Path:
    with path.open("w", newline="", encoding="utf-8") as f:
        out = csv.writer(f)
        out.writerow(COLUMNS)
        for p in people:
            out.writerow([p.id, "Person", p.name, ";".join(p.aliases), p.birth_date, p.countries, "", "",
                          "Sanctioned", "", "", "test_sanctions", "2024-01-01", "2026-01-01", "2025-06-01"])
    return path


def write_un_xml(path: Path, people: list[Listed]) -> Path:
    rows = []
    for p in people:
        parts = "".join(f"<{tag}>{escape(w)}</{tag}>" for tag, w in
                        zip(("FIRST_NAME", "SECOND_NAME", "THIRD_NAME", "FOURTH_NAME"), p.name.split(), strict=False))
        aliases = "".join(f"<INDIVIDUAL_ALIAS><QUALITY>Good</QUALITY><ALIAS_NAME>{escape(a)}</ALIAS_NAME>"
                          "</INDIVIDUAL_ALIAS>" for a in p.aliases)
        tag = "YEAR" if len(p.birth_date) == 4 else "DATE"
        dob = (f"<INDIVIDUAL_DATE_OF_BIRTH><TYPE_OF_DATE>EXACT</TYPE_OF_DATE><{tag}>{p.birth_date}</{tag}>"
               "</INDIVIDUAL_DATE_OF_BIRTH>" if p.birth_date else "")
        nationality = f"<NATIONALITY><VALUE>{escape(p.countries)}</VALUE></NATIONALITY>" if p.countries else ""
        rows.append(f"<INDIVIDUAL><DATAID>{len(rows) + 1}</DATAID>{parts}<UN_LIST_TYPE>Al-Qaida</UN_LIST_TYPE>"
                    f"<REFERENCE_NUMBER>{p.id}</REFERENCE_NUMBER>{nationality}{aliases}{dob}</INDIVIDUAL>")
    path.write_text('<?xml version="1.0" encoding="UTF-8"?>\n<CONSOLIDATED_LIST dateGenerated="2026-12-01T00:00:00">'
                    f"<INDIVIDUALS>{''.join(rows)}</INDIVIDUALS><ENTITIES><ENTITY><DATAID>9</DATAID>"
                    "<FIRST_NAME>Example Front Company</FIRST_NAME><REFERENCE_NUMBER>QDe.999</REFERENCE_NUMBER>"
                    "</ENTITY></ENTITIES></CONSOLIDATED_LIST>\n", encoding="utf-8")
    return path


BILLION_LAUGHS = """<?xml version="1.0"?>
<!DOCTYPE lolz [<!ENTITY lol "lol"><!ENTITY lol2 "&lol;&lol;&lol;&lol;&lol;&lol;&lol;&lol;&lol;&lol;">
<!ENTITY lol3 "&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;">
<!ENTITY lol4 "&lol3;&lol3;&lol3;&lol3;&lol3;&lol3;&lol3;&lol3;&lol3;&lol3;">]>
<CONSOLIDATED_LIST><INDIVIDUALS><INDIVIDUAL><FIRST_NAME>&lol4;</FIRST_NAME>
<REFERENCE_NUMBER>X</REFERENCE_NUMBER></INDIVIDUAL></INDIVIDUALS></CONSOLIDATED_LIST>
"""
