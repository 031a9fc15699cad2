"""Watchlist files as entries: OpenSanctions' `targets.simple.csv` and the UN Security Council
consolidated list (XML). Both are read as a stream (a list of a million rows is never held whole),
and anything malformed raises `WatchlistInvalid` naming the row, before the caller writes anything.

The XML goes through expat with every DTD refused: no entity can expand (billion laughs) and none
can point outside (XXE); defusedxml is not a dependency, and this is the part of it needed here."""

from __future__ import annotations

import csv
import io
import re
from collections.abc import Iterator
from pathlib import Path
from typing import IO, Any
from xml.parsers import expat

from app.domain.screening import Entry, WatchlistInvalid, country

CSV_COLUMNS = ("id", "schema", "name", "aliases", "birth_date", "countries", "dataset")
MAX_FIELD = 100_000  # characters in one CSV field or XML text: a name is never near it
_DATE = re.compile(r"\d{4}(-\d{2}(-\d{2})?)?")


def entries(path: Path) -> Iterator[Entry]:
    """The file's entries, by its first character: `<` for the UN XML, anything else CSV."""
    with path.open("rb") as raw:
        head = raw.read(64).lstrip(b"\xef\xbb\xbf \t\r\n")
        raw.seek(0)
        yield from (_un_xml(raw) if head.startswith(b"<") else _csv(raw))


def _dates(values: list[str]) -> tuple[str, ...]:
    return tuple(dict.fromkeys(v[:10] for v in values if _DATE.fullmatch(v[:10])))


def _countries(values: list[str]) -> tuple[str, ...]:
    return tuple(dict.fromkeys(c for v in values if v and (c := country(v))))


def _split(value: str | None) -> list[str]:
    return [v.strip() for v in (value or "").split(";") if v.strip()]


def _csv(raw: IO[bytes]) -> Iterator[Entry]:
    text = io.TextIOWrapper(raw, encoding="utf-8-sig", errors="strict", newline="")
    csv.field_size_limit(MAX_FIELD)
    reader = csv.DictReader(text)
    try:
        missing = [c for c in ("id", "name") if c not in (reader.fieldnames or [])]
        if missing:
            raise WatchlistInvalid(f"Not an OpenSanctions targets.simple.csv: no column {', '.join(missing)}.")
        for row in reader:
            if None in row or None in row.values():
                raise WatchlistInvalid(f"Line {reader.line_num}: {len(reader.fieldnames or [])} columns expected.")
            if not row["id"].strip() or not row["name"].strip():
                raise WatchlistInvalid(f"Line {reader.line_num}: no id or no name.")
            yield Entry(row["id"].strip(), tuple(dict.fromkeys([row["name"].strip(), *_split(row.get("aliases"))])),
                        row.get("schema") or "Person", _dates(_split(row.get("birth_date"))),
                        _countries(_split(row.get("countries"))), row.get("dataset") or "")
    except csv.Error as exc:
        raise WatchlistInvalid(f"Line {reader.line_num + 1}: {exc}.") from exc
    except UnicodeDecodeError as exc:  # decoded by the block, so no line number to give
        raise WatchlistInvalid(f"Not UTF-8 text (byte {exc.start} of a block).") from exc


class _UnList:
    """Builds one INDIVIDUAL or ENTITY at a time from expat's callbacks."""

    NAME_PARTS = ("FIRST_NAME", "SECOND_NAME", "THIRD_NAME", "FOURTH_NAME")

    def __init__(self) -> None:
        self.path: list[str] = []
        self.text: list[str] = []
        self.item: dict[str, Any] | None = None
        self.done: list[Entry] = []

    def start(self, tag: str, _attrs: dict[str, str]) -> None:
        self.path.append(tag)
        self.text = []
        if tag in ("INDIVIDUAL", "ENTITY"):
            self.item = {"schema": "Person" if tag == "INDIVIDUAL" else "Organization", "parts": [], "aliases": [],
                         "dates": [], "nationalities": [], "id": "", "program": ""}

    def data(self, chunk: str) -> None:
        if sum(map(len, self.text)) + len(chunk) > MAX_FIELD:
            raise WatchlistInvalid(f"A {self.path[-1]} text is over {MAX_FIELD} characters.")
        self.text.append(chunk)

    def end(self, tag: str) -> None:
        value, parent, item = "".join(self.text).strip(), self.path[-2] if len(self.path) > 1 else "", self.item
        self.path.pop()
        self.text = []
        if item is None:
            return
        if tag in self.NAME_PARTS and parent in ("INDIVIDUAL", "ENTITY") and value:
            item["parts"].append(value)
        elif tag == "ALIAS_NAME" and value:
            item["aliases"].append(value)
        elif tag in ("DATE", "YEAR") and parent == "INDIVIDUAL_DATE_OF_BIRTH":
            item["dates"].append(value)
        elif tag in ("FROM_YEAR", "TO_YEAR") and value.isdigit():
            item.setdefault(tag, int(value))
        elif tag == "VALUE" and parent == "NATIONALITY":
            item["nationalities"].append(value)
        elif tag == "REFERENCE_NUMBER" or (tag == "DATAID" and not item["id"]):
            item["id"] = value or item["id"]
        elif tag == "UN_LIST_TYPE":
            item["program"] = value
        elif tag in ("INDIVIDUAL", "ENTITY"):
            self._finish(item)

    def _finish(self, item: dict[str, Any]) -> None:
        self.item = None
        name = " ".join(item["parts"])
        if not item["id"] or not name:
            raise WatchlistInvalid(f"An entry near entry {len(self.done) + 1} has no REFERENCE_NUMBER or no name.")
        start, stop = item.get("FROM_YEAR"), item.get("TO_YEAR")
        years = [str(y) for y in range(start, stop + 1)] if start and stop and 0 <= stop - start <= 20 else []
        self.done.append(Entry(item["id"], tuple(dict.fromkeys([name, *item["aliases"]])), item["schema"],
                               _dates(item["dates"] + years), _countries(item["nationalities"]), item["program"]))


def _refuse(*_: Any) -> int:
    raise WatchlistInvalid("The XML declares a DTD or entities; the UN list has none, and they are refused.")


def _un_xml(raw: IO[bytes]) -> Iterator[Entry]:
    parser, built = expat.ParserCreate(), _UnList()
    parser.StartDoctypeDeclHandler = _refuse
    parser.EntityDeclHandler = _refuse
    parser.ExternalEntityRefHandler = _refuse
    parser.StartElementHandler, parser.EndElementHandler = built.start, built.end
    parser.CharacterDataHandler = built.data
    try:
        while chunk := raw.read(1 << 16):
            parser.Parse(chunk, False)
            yield from built.done
            built.done.clear()
        parser.Parse(b"", True)
    except expat.ExpatError as exc:
        raise WatchlistInvalid(f"Not well-formed XML: {exc}.") from exc
    yield from built.done
