"""`kycflow eval faces|ocr|liveness PATH`: accuracy of the real models on labelled data.

Each evaluator reads a CSV (or a folder holding the usual one), resolves image paths
relative to the CSV's folder or its parent, runs the same model classes the service
uses, and returns a report dict that the CLI prints.
"""

from __future__ import annotations

import csv
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from app.domain.documents import iso_date
from app.ml.images import decode_image


def find_csv(path: Path, default_name: str) -> Path:
    if path.is_file():
        return path
    for candidate in (path / default_name, *path.rglob(default_name)):
        if candidate.is_file():
            return candidate
    raise FileNotFoundError(f"no {default_name} under {path}")


def resolve(csv_path: Path, name: str) -> Path:
    for base in (csv_path.parent, csv_path.parent.parent):
        if (base / name).exists():
            return base / name
    raise FileNotFoundError(name)


def rows(csv_path: Path) -> Iterator[dict[str, str]]:
    with csv_path.open(newline="") as handle:
        yield from csv.DictReader(handle)


def load(path: Path) -> Any:
    return decode_image(path.read_bytes())


# --- OCR --------------------------------------------------------------------------------

def _yymmdd(value: str, *, future: bool) -> str | None:
    from app.domain.documents import resolve_two_digit_year

    if len(value) != 6 or not value.isdigit():
        return None
    year = resolve_two_digit_year(int(value[:2]), future=future)
    return iso_date(year, int(value[2:4]), int(value[4:]))


def _expected_fields(row: dict[str, str]) -> dict[str, str]:
    """Expected values in the service's field names, from the columns a CSV has.

    Understands the service's own names (`full_name`, `date_of_birth`, ...) and the
    PassportEye-style MRZ columns (`number`, `surname`, `names`, `expiration_date`, ...).
    """
    out: dict[str, str] = {}
    if row.get("surname") or row.get("names"):
        out["full_name"] = f"{row.get('names', '')} {row.get('surname', '')}".strip()
    for ours, theirs in (("nationality", "nationality"), ("gender", "sex")):
        if row.get(theirs):
            out[ours] = row[theirs]
    if row.get("number"):
        out["document_number_raw"] = row["number"]
    for ours, theirs, future in (("date_of_birth", "date_of_birth", False), ("expiry_date", "expiration_date", True)):
        value = row.get(theirs, "")
        out_value = _yymmdd(value, future=future) if len(value) == 6 else value
        if out_value:
            out[ours] = out_value
    for name in ("full_name", "document_number", "father_name", "address", "issue_date", "expiry_date"):
        if row.get(name) and name not in out:
            out[name] = row[name]
    return out


def evaluate_ocr(path: Path, reader: Any) -> dict[str, Any]:
    csv_path = find_csv(path, "mrz_expected.csv")
    per_field: dict[str, list[int]] = {}
    documents, times = [], []
    for row in rows(csv_path):
        image = load(resolve(csv_path, row["file"]))
        start = time.perf_counter()
        reading = reader.read(image)
        times.append((time.perf_counter() - start) * 1000)
        got = {**reading.fields, "document_type": reading.document_type,
               "document_number_raw": reading.document_number_raw}
        misses = []
        for name, expected in _expected_fields(row).items():
            ok = str(got.get(name) or "").upper().split() == expected.upper().split()
            per_field.setdefault(name, [0, 0])[0] += ok
            per_field[name][1] += 1
            if not ok:
                misses.append(f"{name}: expected {expected!r}, got {got.get(name)!r}")
        documents.append({"file": row["file"], "all_fields_correct": not misses, "misses": misses,
                          "mrz_valid": reading.validation.get("number_valid")})
    correct = sum(d["all_fields_correct"] for d in documents)
    return {
        "kind": "ocr", "documents": len(documents), "documents_fully_correct": correct,
        "field_accuracy": {k: round(v[0] / v[1], 3) for k, v in sorted(per_field.items())},
        "ms_per_document_p50": round(sorted(times)[len(times) // 2], 1) if times else None,
        "details": documents,
    }
