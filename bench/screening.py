"""Screening one case against 100,000 watchlist entries.

The list is generated (tests/screening_lists.py: 400 given names, 5,000 surnames, one in twenty a
Mohammed) and loaded with `kycflow screening load`, the operator's path (its time is shown). Then one
customer at a time is screened as the checks job screens a case (`ScreeningService.screen`): the lists
in force, the entries sharing a blocking key, the fuzzy match of those in Python. Half the customers
are on the list, half are not. Gate: p99 under one second (the issue's target, absolute); its ratio
to one bare face match (the checks job's model work) is shown beside it."""

from __future__ import annotations

import random
import subprocess
import time
from datetime import date
from typing import Any

from app.domain.screening import Subject
from app.repositories.database import close_client, make_client
from app.repositories.jobs import JobRepository
from app.repositories.screening import WatchlistEntryRepository, WatchlistRepository
from app.services.clock import Clock
from app.services.jobs import JobService, JobSettings
from app.services.screening import ScreeningService
from bench.load import SELECTION, Result
from bench.server import BenchServer, _kycflow
from tests.screening_lists import filler, write_csv

ENTRIES, RUNS = 100_000, 400
NAMES = ("screening_load_100k", "screening_100k")


def _subjects(listed: list[Any], runs: int) -> list[Subject]:
    rnd = random.Random(11)
    people = []
    for i in range(runs):
        name = rnd.choice(listed).name if i % 2 else f"Anand {rnd.choice(listed).name.split()[-1]}a Verma"
        people.append(Subject((name, name.upper()), date(1980 + i % 20, 1 + i % 12, 1 + i % 28), ("IN",)))
    return people


async def run_all(server: BenchServer, bare: Any) -> list[Result]:
    listed = filler(SELECTION.count(ENTRIES))
    path = write_csv(server.data_dir / "watchlist.csv", listed)
    print(f"running screening_load_100k ({len(listed)} generated entries, kycflow screening load) ...", flush=True)
    start = time.perf_counter()
    out = subprocess.run([*_kycflow(), "screening", "load", str(path), "--list", "bench"], env=server.env,
                         capture_output=True, text=True)
    load = Result("screening_load_100k", 1, None, requests=1, errors=int(out.returncode != 0),
                  seconds=time.perf_counter() - start)
    load.latencies_ms.append(load.seconds * 1000)
    client = make_client(server.db_uri)
    try:
        db = client["kycflow"]
        service = ScreeningService(lists=WatchlistRepository(db), entries=WatchlistEntryRepository(db), users=None,
                                   cases=None, transactions=None, jobs=JobService(JobRepository(db), Clock(),
                                                                                  JobSettings()),
                                   audit=None, events=None, clock=Clock())  # type: ignore[arg-type]  # screen() only
        print(f"running screening_100k ({RUNS} customers, one at a time) ...", flush=True)
        result = Result("screening_100k", 1, None)
        for i, who in enumerate(_subjects(listed, RUNS + 10)):
            start = time.perf_counter()
            hits, lists = await service.screen(who)
            took = time.perf_counter() - start
            if i < 10:  # warm-up: connections, caches
                continue
            result.latencies_ms.append(took * 1000)
            result.requests += 1
            result.errors += not lists
            result.seconds += took
    finally:
        await close_client(client)
    result.bare_ms = bare.face() if bare is not None else None
    return [load, result]


def face_ratio(results: dict[str, Result], pct: int = 50) -> float:
    row = results["screening_100k"]
    if row.bare_ms is None:
        raise KeyError("bare face match (run with the ML scenarios)")
    return row.pct(pct) / row.bare_ms
