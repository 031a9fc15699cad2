"""Kill rate per module of the last `mutmut run` (`make mutation`), from mutants/*.meta.

A mutant that makes the tests time out counts as killed: a suite that hangs fails.
Exits 1 when a module's rate is below `--min` percent (default 90), so `make mutation`
fails; `--survivors` lists the mutants that lived (`mutmut show NAME` prints one)."""

from __future__ import annotations

import argparse
import json
import sys
from collections import Counter
from pathlib import Path

KILLED = {1, 3}  # a failing test, or pytest's own error while the mutant is active
TIMEOUT = {36, 24, -24, 152, 255}
SURVIVED = {0}
NO_TESTS = {5, 33}


def _status(code: int | None) -> str:
    if code in KILLED:
        return "killed"
    if code in TIMEOUT:
        return "timeout"
    if code in SURVIVED:
        return "survived"
    if code in NO_TESTS:
        return "no tests"
    return "not run" if code is None else f"other ({code})"


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--min", type=float, default=90.0, help="lowest acceptable kill rate, percent")
    parser.add_argument("--survivors", action="store_true", help="list the mutants that were not killed")
    parser.add_argument("--root", type=Path, default=Path("mutants"))
    args = parser.parse_args()
    metas = sorted(args.root.glob("app/**/*.py.meta"))
    if not metas:
        print("No mutation results: run `make mutation` first.", file=sys.stderr)
        return 2
    failed = False
    print(f"{'module':<32}{'mutants':>8}{'killed':>8}{'timeout':>8}{'lived':>7}{'no test':>8}{'kill rate':>11}")
    for meta in metas:
        codes: dict[str, int | None] = json.loads(meta.read_text())["exit_code_by_key"]
        counts = Counter(_status(code) for code in codes.values())
        tried = len(codes) - counts["not run"]
        if not tried:
            continue  # not part of this run (`make mutation MUTANTS=...`)
        rate = 100 * (counts["killed"] + counts["timeout"]) / tried
        failed |= rate < args.min
        module = str(meta.relative_to(args.root)).removesuffix(".meta")
        print(f"{module:<32}{tried:>8}{counts['killed']:>8}{counts['timeout']:>8}{counts['survived']:>7}"
              f"{counts['no tests']:>8}{rate:>10.1f}%")
        if args.survivors:
            for name, code in sorted(codes.items()):
                if _status(code) not in ("killed", "timeout", "not run"):
                    print(f"    {_status(code):<9} {name}")
    if failed:
        print(f"A module is below {args.min:g} % killed.", file=sys.stderr)
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
