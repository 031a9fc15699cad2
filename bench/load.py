"""A light load generator: N asyncio workers, each on its own keep-alive HTTP/1.1 connection.

Requests are built once with httpx (headers, JSON, multipart all handled there) and their bytes
replayed over raw sockets; answers are parsed with httptools (C, shipped by uvicorn[standard]).
Why not httpx.AsyncClient.send: it cost ~2 ms of CPU per request here, four times what the server
spends on /health, so on a 2-core machine it capped every scenario near the same rate (the client's).
"""

from __future__ import annotations

import asyncio
import fnmatch
import itertools
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import httptools
import httpx


@dataclass
class Selection:
    """`python -m bench.run --only 'loan_*' --scale 0.1`: some scenarios, fewer requests (while
    developing; a gate is only meant at full size)."""

    only: tuple[str, ...] = ()  # shell-style patterns of scenario names; none: all
    scale: float = 1.0  # of each scenario's request count and time bound, and of the seeded records

    def wanted(self, *names: str) -> bool:
        return not self.only or any(fnmatch.fnmatch(n, p) for n in names for p in self.only)

    def count(self, n: int, least: int = 1) -> int:
        return max(least, round(n * self.scale))

    def seconds(self, s: float, least: float = 10.0) -> float:  # slow scenarios still get a few requests
        return max(min(s, least), s * self.scale)


SELECTION = Selection()


@dataclass
class Scenario:
    """One row of the report. Add scenarios to the list in bench/run.py."""

    name: str
    request: httpx.Request                # built once, replayed as-is
    concurrency: int = 16                 # workers = connections
    count: int = 5000                     # stop measuring after this many requests ...
    max_s: float = 10.0                   # ... or after this long, whichever comes first
    warmup_s: float = 3.0                 # connections, caches, lazy imports: not measured
    rate: float | None = None             # None: closed loop (throughput); else paced req/s (latency at a load)
    expect: int = 200                     # any other status counts as an error
    background: Scenario | None = None    # load run alongside (e.g. logins), reported as its own row
    bare_ms: Callable[[], float] | None = None  # e.g. the model alone, in-process, shown beside HTTP time


@dataclass
class Result:
    name: str
    concurrency: int
    rate: float | None
    requests: int = 0
    errors: int = 0
    seconds: float = 0.0
    latencies_ms: list[float] = field(default_factory=list, repr=False)
    bare_ms: float | None = None

    @property
    def rps(self) -> float:
        return self.requests / self.seconds if self.seconds else 0.0

    def pct(self, q: float) -> float:
        if not self.latencies_ms:
            return float("nan")
        ordered = sorted(self.latencies_ms)
        return ordered[min(len(ordered) - 1, int(q / 100 * len(ordered)))]  # nearest rank

    def as_dict(self) -> dict[str, Any]:
        return {"name": self.name.strip(), "concurrency": self.concurrency, "rate": self.rate,
                "requests": self.requests, "errors": self.errors, "seconds": round(self.seconds, 2),
                "rps": round(self.rps, 1), "p50_ms": round(self.pct(50), 2), "p99_ms": round(self.pct(99), 2),
                "bare_ms": self.bare_ms}


def _wire(req: httpx.Request) -> bytes:
    body = req.read()
    head = [f"{req.method} {req.url.raw_path.decode()} HTTP/1.1", *(f"{k}: {v}" for k, v in req.headers.items())]
    return ("\r\n".join(head) + "\r\n\r\n").encode() + body


class _Reply:
    """httptools callback target: only 'is the answer complete' matters."""

    done = False

    def on_message_complete(self) -> None:
        self.done = True


async def send(conn: tuple[asyncio.StreamReader, asyncio.StreamWriter], data: bytes) -> int:
    """One request on a kept-alive connection; its status once the whole answer is read."""
    reply = _Reply()
    parser = httptools.HttpResponseParser(reply)
    conn[1].write(data)
    while not reply.done:
        chunk = await conn[0].read(65536)
        if not chunk:
            raise ConnectionError("server closed the connection")
        parser.feed_data(chunk)
    return int(parser.get_status_code())


async def _drive(sc: Scenario, t0: float, stop: asyncio.Event, out: Result) -> None:
    """Run sc's workers until `stop`; record into `out` only requests started after t0 (warm-up end)."""
    data, url = _wire(sc.request), sc.request.url
    slots = itertools.count()
    begin = time.perf_counter()

    async def worker() -> None:
        conn: tuple[asyncio.StreamReader, asyncio.StreamWriter] | None = None
        while not stop.is_set():
            start = time.perf_counter()
            if sc.rate:  # open loop: latency counts from the planned send time, so stalls aren't hidden
                start = begin + next(slots) / sc.rate
                await asyncio.sleep(max(0.0, start - time.perf_counter()))
            try:
                async with asyncio.timeout(30):
                    conn = conn or await asyncio.open_connection(url.host, url.port)
                    status = await send(conn, data)
                ok = status == sc.expect
            except (OSError, httptools.HttpParserError):  # TimeoutError is an OSError
                ok, conn = False, None
            end = time.perf_counter()
            if start >= t0:
                out.latencies_ms.append((end - start) * 1000)
                out.requests += 1
                out.errors += not ok
                out.seconds = max(out.seconds, end - t0)
        if conn:
            conn[1].close()

    await asyncio.gather(*(worker() for _ in range(sc.concurrency)))


async def run_scenario(sc: Scenario) -> list[Result]:
    """The scenario's result, then its background load's (if any)."""
    stop = asyncio.Event()
    t0 = time.perf_counter() + sc.warmup_s
    count, max_s = SELECTION.count(sc.count), SELECTION.seconds(sc.max_s)
    runs = [sc] + ([sc.background] if sc.background else [])
    results = [Result(s.name, s.concurrency, s.rate) for s in runs]
    tasks = [asyncio.create_task(_drive(s, t0, stop, r)) for s, r in zip(runs, results)]
    try:
        # Bounded by the foreground's count or time; the background only stops with it.
        deadline = t0 + max_s
        while time.perf_counter() < deadline and results[0].requests < count:
            if any(t.done() for t in tasks):  # a worker crashed: surface its error below
                break
            await asyncio.sleep(0.02)
    finally:
        stop.set()
        await asyncio.gather(*tasks)
    if sc.bare_ms:
        results[0].bare_ms = round(sc.bare_ms(), 2)
    return results
