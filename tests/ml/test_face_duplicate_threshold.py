"""The face_duplicate threshold (app/ml/faces.DUPLICATE_THRESHOLDS) measured on the public face pairs,
read in place (skipped without them). Run with `-s` to see the rates:
`.venv/bin/python -m pytest -s tests/ml/test_face_duplicate_threshold.py`."""

from __future__ import annotations

import csv
import itertools

from app.ml.faces import DUPLICATE_THRESHOLDS
from tests.ml.face_fixtures import fixtures_dir, read_image, require_fixtures


def _rates(scores: list[tuple[float, bool]], threshold: float) -> tuple[int, int, int, int]:
    """(false matches, impostor pairs, true matches, genuine pairs) at `threshold`."""
    impostors = [s for s, same in scores if not same]
    genuine = [s for s, same in scores if same]
    return sum(s >= threshold for s in impostors), len(impostors), sum(s >= threshold for s in genuine), len(genuine)


def test_false_and_true_match_rates_at_the_duplicate_threshold(face_matcher) -> None:
    pairs_file = require_fixtures("faces", "pairs.csv")
    rows = list(csv.DictReader(pairs_file.open()))
    identity = {r["file"]: r["identity"] for r in csv.DictReader((pairs_file.parent / "identities.csv").open())}
    names = sorted({r["img_a"] for r in rows} | {r["img_b"] for r in rows} | set(identity))
    vectors = {n: face_matcher.embed_largest(read_image(fixtures_dir() / n), n) for n in names}
    threshold = DUPLICATE_THRESHOLDS["dlib"]
    labelled = [(float(vectors[r["img_a"]] @ vectors[r["img_b"]]), r["same_person"] == "1") for r in rows]
    # Every pair of identities.csv: more impostors than the labelled pairs hold.
    every = [(float(vectors[a] @ vectors[b]), identity[a] == identity[b])
             for a, b in itertools.combinations(sorted(identity), 2)]
    for label, scores in (("pairs.csv", labelled), ("identities.csv, every pair", every)):
        fm, impostors, tm, genuine = _rates(scores, threshold)
        print(f"\nface_duplicate at cosine {threshold} on {label}: false-match rate {fm}/{impostors} = "
              f"{fm / impostors:.4f}, true-match rate {tm}/{genuine} = {tm / genuine:.4f}; closest impostor "
              f"{max(s for s, same in scores if not same):.3f}, farthest genuine {min(s for s, same in scores if same):.3f}")
        # Measured: 0/102 and 18/18 on pairs.csv; 0/384 and 22/22 on every pair.
        assert fm == 0 and tm == genuine, (label, fm, tm)
