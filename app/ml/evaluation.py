"""`kycflow eval faces|ocr|liveness PATH`: accuracy of the real models on labelled data.

Each evaluator reads a CSV (or a folder holding the usual one), resolves image paths
relative to the CSV's folder or its parent, runs the same model classes the service
uses, and returns a report dict that the CLI prints.
"""

from __future__ import annotations

import csv
import re
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from app.domain.documents import resolve_yymmdd
from app.ml.images import decode_image


def find_csv(path: Path, *names: str) -> Path:
    """`path` itself when it is a file, else the first of `names` found in or below it."""
    if path.is_file():
        return path
    for name in names:
        for candidate in (path / name, *path.rglob(name)):
            if candidate.is_file():
                return candidate
    raise FileNotFoundError(f"no {' or '.join(names)} under {path}")


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


def _expected_fields(row: dict[str, str]) -> dict[str, str]:
    """Expected values in the service's field names, from the columns a CSV has.

    Understands the service's own names (`full_name`, `date_of_birth`, ...,
    `document_number_raw`) and the PassportEye-style MRZ columns (`number`, `surname`,
    `names`, `expiration_date`, ...). Empty cells are not checked.
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
        out_value = resolve_yymmdd(value, expiry=future) if len(value) == 6 else value
        if out_value:
            out[ours] = out_value
    for name in ("full_name", "document_number", "document_number_raw", "father_name", "address", "issue_date",
                 "expiry_date"):
        if row.get(name) and name not in out:
            out[name] = row[name]
    return out


def _same(name: str, got: Any, expected: str) -> bool:
    norm = (lambda s: re.sub(r"[\s,\-]+", " ", s).strip()) if name == "address" else (lambda s: " ".join(s.split()))
    return norm(str(got or "").upper()) == norm(expected.upper())


def _share(part: int, whole: int) -> float | None:
    return round(part / whole, 3) if whole else None


def evaluate_ocr(path: Path, reader: Any) -> dict[str, Any]:
    """Field accuracy over a CSV of documents; with a `class` column (the generated set,
    `python -m tests.ml.generated_set`) also per class: documents fully right, the share
    whose number every check validates, and numbers reported valid that are wrong (the
    one figure that must stay 0)."""
    csv_path = find_csv(path, "mrz_expected.csv", "expected.csv")
    documents: list[dict[str, Any]] = []
    for row in rows(csv_path):
        image = load(resolve(csv_path, row["file"]))
        start = time.perf_counter()
        reading = reader.read(image)
        ms = (time.perf_counter() - start) * 1000
        got = {**reading.fields, "document_type": reading.document_type,
               "document_number_raw": reading.document_number_raw}
        misses, checked = [], {}
        for name, expected in _expected_fields(row).items():
            checked[name] = _same(name, got.get(name), expected)
            if not checked[name]:
                misses.append(f"{name}: expected {expected!r}, got {got.get(name)!r}")
        valid = reading.validation.get("number_valid")
        expected_number = row.get("document_number_raw") or row.get("number")
        documents.append({
            "file": row["file"], "class": row.get("class") or reading.document_type, "all_fields_correct": not misses,
            "misses": misses, "fields": checked, "mrz_valid": valid, "number_valid": valid,
            "wrong_number_reported_valid": bool(valid and expected_number
                                                and reading.document_number_raw != expected_number),
            "reread": bool(reading.validation.get("mrz_reread")), "ms": round(ms, 1),
        })  # fmt: skip
    total = _summary(documents)
    return {
        "kind": "ocr", "documents": len(documents),
        "documents_fully_correct": sum(d["all_fields_correct"] for d in documents),
        **{key: total[key] for key in ("field_accuracy", "numbers_valid", "wrong_numbers_reported_valid")},
        "ms_per_document_p50": total["ms_p50"],
        "per_class": {cls: _summary([d for d in documents if d["class"] == cls])
                      for cls in sorted({d["class"] for d in documents})},
        "details": documents,
    }


def _p50(values: list[float]) -> float | None:
    return round(sorted(values)[len(values) // 2], 1) if values else None


def _summary(docs: list[dict[str, Any]]) -> dict[str, Any]:
    """The figures of a set of documents (all of them, or one class's)."""
    fields = sorted({k for d in docs for k in d["fields"]})
    return {
        "documents": len(docs),
        "field_accuracy": {k: _share(sum(d["fields"].get(k, False) for d in docs),
                                     sum(k in d["fields"] for d in docs)) for k in fields},
        "fully_correct": _share(sum(d["all_fields_correct"] for d in docs), len(docs)),
        "numbers_valid": _share(sum(bool(d["number_valid"]) for d in docs), len(docs)),
        "wrong_numbers_reported_valid": sum(d["wrong_number_reported_valid"] for d in docs),
        "second_pass": sum(d["reread"] for d in docs),
        "ms_p50": _p50([d["ms"] for d in docs]),
    }


def evaluate_faces(path: Path, matcher: Any) -> dict[str, Any]:
    """Pairs CSV `img_a,img_b,same_person`: accuracy, false accepts and false rejects."""
    from app.domain.errors import NoFaceDetected

    csv_path = find_csv(path, "pairs.csv")
    embeddings: dict[str, Any] = {}
    no_face: set[str] = set()

    def embed(name: str) -> Any:
        if name not in embeddings and name not in no_face:
            try:
                embeddings[name] = matcher.embed_largest(load(resolve(csv_path, name)))
            except NoFaceDetected:
                no_face.add(name)
        return embeddings.get(name)

    tp = tn = fp = fn = skipped = 0
    start = time.perf_counter()
    for row in rows(csv_path):
        a, b = embed(row["img_a"]), embed(row["img_b"])
        if a is None or b is None:
            skipped += 1
            continue
        same = row["same_person"].strip() in ("1", "true", "True")
        match = matcher.compare_embeddings(a, b).verified
        tp += same and match
        fn += same and not match
        fp += match and not same
        tn += not same and not match
    pairs = tp + tn + fp + fn
    return {
        "kind": "faces", "embedder": matcher.name, "threshold": matcher.threshold, "pairs": pairs,
        "skipped_no_face": skipped, "images_without_face": sorted(no_face),
        "accuracy": round((tp + tn) / pairs, 4) if pairs else None,
        "false_accept_rate": round(fp / (fp + tn), 4) if fp + tn else None,
        "false_reject_rate": round(fn / (fn + tp), 4) if fn + tp else None,
        "confusion": {"true_accept": tp, "true_reject": tn, "false_accept": fp, "false_reject": fn},
        "ms_per_image": round((time.perf_counter() - start) * 1000 / max(len(embeddings) + len(no_face), 1), 1),
    }


def read_clip(path: Path) -> list[Any]:
    import cv2

    capture = cv2.VideoCapture(str(path))
    frames = []
    while True:
        ok, frame = capture.read()
        if not ok:
            break
        frames.append(frame)
    capture.release()
    return frames


def _expected_clip(row: dict[str, str]) -> tuple[int | None, set[str] | None]:
    """Expected blinks and turns from `blinks`/`turns` columns, or the fixture's annotation columns."""
    blinks: int | None = int(row["blinks"]) if row.get("blinks", "").isdigit() else None
    ranges = row.get("blink_frames_approx", "")
    if blinks is None and ranges and ranges[0].isdigit():
        blinks = len(ranges.split(";"))
    turns: set[str] | None = set(row["turns"].split(";")) if row.get("turns") else None
    motion = row.get("head_motion", "")
    if turns is None and motion:
        turns = {"turn"} if "yaw" in motion else set()
    return blinks, turns


def evaluate_liveness(path: Path, analyzer: Any, stride: int = 3, window: int = 60) -> dict[str, Any]:
    """Clips: blinks and turns found vs expected; stills: a repeated photo must be caught."""
    csv_path = find_csv(path, "annotations.csv")
    clips, stills = [], []
    for row in rows(csv_path):
        media = resolve(csv_path, row["file"])
        if row.get("duration_s") == "still" or media.suffix.lower() in (".jpg", ".jpeg", ".png"):
            analysis = analyzer.analyze([load(media)] * 15)
            passed, message = analyzer.evaluate_challenge(analysis, ["blink"])
            stills.append({"file": row["file"], "caught": not passed, "is_static": analysis.is_static,
                           "message": message})
            continue
        frames = read_clip(media)[::stride]
        blinks, turns, start = 0, set(), time.perf_counter()
        for i in range(0, len(frames), window):  # the API takes at most 60 frames a call
            chunk = frames[i:i + window]
            if len(chunk) < 10:
                break
            analysis = analyzer.analyze(chunk, blinks)
            blinks = analysis.total_blinks
            turns |= {o for o in analysis.orientations if o}
        expected_blinks, expected_turns = _expected_clip(row)
        turn_ok = None if expected_turns is None else (bool(turns) == bool(expected_turns))
        clips.append({"file": row["file"], "frames": len(frames), "blinks": blinks, "expected_blinks": expected_blinks,
                      "blinks_ok": None if expected_blinks is None else blinks == expected_blinks,
                      "turns": sorted(turns), "turns_ok": turn_ok,
                      "ms_per_30_frames": round((time.perf_counter() - start) * 1000 * 30 / max(len(frames), 1), 1)})
    checked = [c for c in clips if c["blinks_ok"] is not None]
    turned = [c for c in clips if c["turns_ok"] is not None]
    return {
        "kind": "liveness", "stride": stride, "clips": clips, "stills": stills,
        "blink_count_exact": f"{sum(bool(c['blinks_ok']) for c in checked)}/{len(checked)}",
        "head_turns_as_annotated": f"{sum(bool(c['turns_ok']) for c in turned)}/{len(turned)}",
        "stills_caught": f"{sum(s['caught'] for s in stills)}/{len(stills)}",
    }
