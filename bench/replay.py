"""The engine's floor under a route: the database commands its requests sent (recorded by
bench/serve.py), sent again through a bare `AsyncMongoClient` against the same server, with the
route's concurrency and the route's way of driving (closed loop by time, or a list sent once).
A replayed request's time is from its first command sent to its last answer; what a route takes
beyond it is the application's own work (validation, auth, schedules, serialisation, HTTP).

Sent as recorded: the same commands, filters, documents and order; commands that overlapped in
the request (an `asyncio.gather`) overlap again; a transaction is one again (a session, its
commands, its commit, with the commit's write concern: the service's `j: true` is an fsync on the
embedded engine). What differs, so that replays can repeat and leave nothing behind:
- the ids the request created (inserted `_id`s, `$setOnInsert` ids) are fresh in every replay,
  wherever they appear (references, job keys, texts), and the last field of a unique key still
  equal to the recorded one gets a fresh value (a loan's product: one open loan per product);
- a replayed job is due in 2100, so the service's workers never run it;
- what the replays inserted is deleted afterwards (`Replayer.close`).
The driver's own fields of a recorded command (lsid, txnNumber, $clusterTime...) are left out: the
bare client sets its own. The bare client carries the recording listener the service carries (unmarked,
it records nothing): a client with a command listener builds an event per command and decodes every
reply for it, about 0.1–0.2 ms a command on this machine, which is the bench's cost, not the route's.
"""

from __future__ import annotations

import asyncio
import re
import time
import uuid
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import httpx
from bson import ObjectId
from pymongo import AsyncMongoClient, MongoClient
from pymongo.read_concern import ReadConcern
from pymongo.write_concern import WriteConcern

from bench.load import SELECTION, Result, Scenario, run_scenario
from bench.serve import RECORD_PREFIX, CommandRecorder
from bench.server import BenchServer

# Set by the driver for each command it sends: the bare client sets its own.
DRIVER_FIELDS = frozenset({"lsid", "txnNumber", "startTransaction", "autocommit", "$clusterTime", "$db",
                           "$readPreference"})
NEVER = datetime(2100, 1, 1, tzinfo=UTC)


@dataclass
class Step:
    database: str
    name: str
    command: dict[str, Any]
    txn: tuple[bytes, int] | None  # the transaction it belongs to
    cursor_id: int  # the recorded cursor, which a later getMore names


@dataclass
class Plan:
    """One recorded request: its commands in waves (a wave's commands were in flight together)."""

    waves: list[list[Step]]
    created: dict[Any, str]  # recorded id -> the collection it was created in
    unique: dict[str, list[list[str]]]  # collection -> its unique keys' fields (besides _id)
    read_concern: dict[tuple[bytes, int], Any] = field(default_factory=dict)
    write_concern: dict[tuple[bytes, int], Any] = field(default_factory=dict)  # its commit's (j: true fsyncs)

    def fresh(self) -> tuple[list[list[tuple[Step, dict[str, Any]]]], list[tuple[str, Any]]]:
        """This replay's commands, with fresh ids, and the (collection, _id) of what it will insert."""
        mapping = {old: ObjectId() if isinstance(old, ObjectId) else _fresh_text(old) for old in self.created}
        texts = {str(old): str(new) for old, new in mapping.items()}

        def swap(value: Any) -> Any:
            if isinstance(value, dict):
                return {k: swap(v) for k, v in value.items()}
            if isinstance(value, list):
                return [swap(v) for v in value]
            if isinstance(value, ObjectId):
                return mapping.get(value, value)
            if isinstance(value, str):
                for old, new in texts.items():
                    if old in value:
                        value = value.replace(old, new)
            return value

        waves = []
        for wave in self.waves:
            # Reads are sent as recorded; a command that may insert gets its own copy to change.
            waves.append([(step, self._prepared(step, swap(step.command)) if mapping
                           or _new_documents(step.name, step.command) else step.command) for step in wave])
        created = [(collection, mapping[old]) for old, collection in self.created.items()]
        return waves, created

    def _prepared(self, step: Step, command: dict[str, Any]) -> dict[str, Any]:
        collection = command.get(step.name)
        for doc, recorded in zip(_new_documents(step.name, command), _new_documents(step.name, step.command)):
            if collection == "jobs" and "run_at" in doc:
                doc["run_at"] = NEVER
            for fields in self.unique.get(str(collection), ()):
                if fields[-1] in doc and all(doc.get(f) == recorded.get(f) for f in fields):
                    doc[fields[-1]] = _fresh_value(doc[fields[-1]])
        return command


def _fresh_text(old: str) -> str:
    return str(ObjectId()) if len(old) == 24 else uuid.uuid4().hex[:len(old)]


def _fresh_value(old: Any) -> Any:
    if isinstance(old, ObjectId):
        return ObjectId()
    if isinstance(old, str):
        return _fresh_text(old) if _is_id(old) else f"{old}-{uuid.uuid4().hex[:8]}"
    return old


def _is_id(value: Any) -> bool:
    if isinstance(value, ObjectId):
        return True
    return isinstance(value, str) and len(value) in (24, 32) and all(c in "0123456789abcdef" for c in value)


def _new_documents(name: str, command: dict[str, Any]) -> list[dict[str, Any]]:
    """The documents a command may insert: an insert's, an upsert's `$setOnInsert`."""
    if name == "insert":
        return list(command.get("documents", ()))
    updates = [command] if name == "findAndModify" else command.get("updates", []) if name == "update" else []
    found = []
    for u in updates:
        change = u.get("update", u.get("u"))
        if u.get("upsert") and isinstance(change, dict) and isinstance(change.get("$setOnInsert"), dict):
            found.append(change["$setOnInsert"])
    return found


def plan(entries: list[dict[str, Any]], unique: dict[str, list[list[str]]]) -> Plan:
    """Recorded commands (in the order they were sent) as a plan. A command joins the wave in flight
    when it was sent before any command of that wave had its answer; otherwise it waits for it."""
    result = Plan([], {}, unique)
    wave_end = float("-inf")
    for entry in entries:
        command, name = dict(entry["command"]), entry["name"]
        txn = (bytes(command["lsid"]["id"]), int(command["txnNumber"])) if "autocommit" in command else None
        if txn and command.get("startTransaction") and "readConcern" in command:
            result.read_concern[txn] = command["readConcern"]
        if txn and name == "commitTransaction" and "writeConcern" in command:
            result.write_concern[txn] = command["writeConcern"]
        stripped = {k: v for k, v in command.items()
                    if k not in DRIVER_FIELDS and not (txn and k in ("readConcern", "writeConcern"))}
        for doc in _new_documents(name, stripped):
            if _is_id(doc.get("_id")):
                result.created[doc["_id"]] = stripped[name]
        step = Step(entry["database"], name, stripped, txn, int(entry.get("cursor_id") or 0))
        if result.waves and entry["start"] < wave_end:
            result.waves[-1].append(step)
            wave_end = min(wave_end, entry["end"])
        else:
            result.waves.append([step])
            wave_end = entry["end"]
    return result


def unique_keys(uri: str, database: str) -> dict[str, list[list[str]]]:
    client: MongoClient[dict[str, Any]] = MongoClient(uri)
    try:
        db = client[database]
        keys: dict[str, list[list[str]]] = {}
        for name in db.list_collection_names():
            for index in db[name].list_indexes():
                if index.get("unique") and list(index["key"]) != ["_id"]:
                    keys.setdefault(name, []).append(list(index["key"]))
        return keys
    finally:
        client.close()


def record(server: BenchServer, name: str, requests: list[httpx.Request]) -> list[Plan]:
    """Sends each request once, marked for bench/serve.py, and returns the plans of what they sent."""
    unique = unique_keys(server.db_uri, "kycflow")
    plans = []
    with httpx.Client(timeout=300) as client:
        for n, request in enumerate(requests):
            # Only [A-Za-z0-9._-] is taken as a request id (else the service makes its own).
            request_id = re.sub(r"[^A-Za-z0-9._-]", ".", f"{RECORD_PREFIX}{name}-{n}")
            marked = httpx.Request(request.method, request.url, content=request.read(),
                                   headers={**request.headers, "X-Request-ID": request_id})
            client.send(marked)
            recorded = server.commands(request_id)
            if not recorded:
                raise RuntimeError(f"no database command recorded for {name} (request id {request_id})")
            plans.append(plan(recorded, unique))
    return plans


class Replayer:
    """Replays plans through one bare client (as the service has one), remembering what it inserted."""

    def __init__(self, uri: str, plans: list[Plan]) -> None:
        # The service's listener too (see the module's docstring); it writes nothing here.
        self.client: AsyncMongoClient[dict[str, Any]] = AsyncMongoClient(
            uri, event_listeners=[CommandRecorder(Path("/dev/null"))])
        self.plans = plans
        self.turn = 0
        self.inserted: list[tuple[str, Any]] = []

    def next(self) -> Callable[[], Awaitable[bool]]:
        """The next replay, prepared (fresh ids) but not sent: the returned call sends it."""
        plan = self.plans[self.turn % len(self.plans)]
        waves, created = plan.fresh()
        concerns = plan.read_concern, plan.write_concern
        self.turn += 1
        self.inserted += created

        async def send() -> bool:
            sessions: dict[tuple[bytes, int], Any] = {}
            cursors: dict[int, int] = {}
            try:
                for wave in waves:
                    if len(wave) == 1:
                        await self._send(*wave[0], sessions, cursors, concerns)
                    else:
                        await asyncio.gather(*(self._send(s, c, sessions, cursors, concerns) for s, c in wave))
                return True
            except Exception:  # a replay that fails counts as an error of the replay scenario
                return False
            finally:
                for session in sessions.values():
                    await session.end_session()

        return send

    async def _send(self, step: Step, command: dict[str, Any], sessions: dict[tuple[bytes, int], Any],
                    cursors: dict[int, int], concerns: tuple[dict[tuple[bytes, int], Any], ...]) -> None:
        if step.name in ("commitTransaction", "abortTransaction"):
            assert step.txn is not None
            session = sessions.pop(step.txn)
            try:
                await (session.commit_transaction() if step.name == "commitTransaction"
                       else session.abort_transaction())
            finally:
                await session.end_session()
            return
        session = None
        if step.txn is not None:
            session = sessions.get(step.txn)
            if session is None:
                session = sessions[step.txn] = self.client.start_session()
                read, write = (concern.get(step.txn) for concern in concerns)
                await session.start_transaction(read_concern=ReadConcern(read.get("level")) if read else None,
                                                write_concern=WriteConcern(**write) if write else None)
        command = dict(command)  # the driver adds its fields to the top level
        if step.name == "getMore":
            command["getMore"] = cursors.get(int(command["getMore"]), 0)
            if not command["getMore"]:
                return
        reply = await self.client[step.database].command(command, session=session)
        if step.cursor_id:
            cursors[step.cursor_id] = int(reply.get("cursor", {}).get("id", 0))

    async def close(self) -> None:
        """Deletes what the replays inserted, so later scenarios see the database as the routes left it."""
        by_collection: dict[str, list[Any]] = {}
        for collection, _id in self.inserted:
            by_collection.setdefault(collection, []).append(_id)
        for collection, ids in by_collection.items():
            for start in range(0, len(ids), 1000):
                await self.client["kycflow"][collection].delete_many({"_id": {"$in": ids[start:start + 1000]}})
        self.inserted.clear()
        await self.client.close()


async def closed_loop(name: str, replayer: Replayer, *, concurrency: int, count: int, max_s: float,
                      warmup_s: float) -> Result:
    """As bench/load.py drives a Scenario: `concurrency` workers flat out; after `warmup_s`, until
    `count` replays or `max_s` seconds."""
    result = Result(name, concurrency, None)
    t0 = time.perf_counter() + warmup_s
    deadline, count = t0 + SELECTION.seconds(max_s), SELECTION.count(count)

    async def worker() -> None:
        while time.perf_counter() < deadline and result.requests < count:
            send = replayer.next()
            start = time.perf_counter()
            ok = await send()
            end = time.perf_counter()
            if start >= t0:
                result.latencies_ms.append((end - start) * 1000)
                result.requests += 1
                result.errors += not ok
                result.seconds = max(result.seconds, end - t0)

    await asyncio.gather(*(worker() for _ in range(concurrency)))
    return result


async def each_once(name: str, replayer: Replayer, *, concurrency: int, total: int, warmup: int) -> Result:
    """As bench/loans.py drives a list: `total` replays shared by `concurrency` workers, the first
    `warmup` not counted."""
    result = Result(name, concurrency, None)
    left = iter(range(total))
    t0 = time.perf_counter()

    async def worker() -> None:
        for index in left:
            send = replayer.next()
            start = time.perf_counter()
            ok = await send()
            end = time.perf_counter()
            if index >= warmup:
                result.latencies_ms.append((end - start) * 1000)
                result.requests += 1
                result.errors += not ok
                result.seconds = end - t0

    await asyncio.gather(*(worker() for _ in range(concurrency)))
    return result


# A rate-limit claim is one write per 16 requests of a caller (RATE_LIMIT_BATCH): 16 recorded
# requests, replayed in turn, carry it as often as the route's do.
RECORDED = 16


async def beside(server: BenchServer, sc: Scenario, recorded: int = RECORDED) -> list[Result]:
    """`sc`'s engine floor (`<name>_replay`: its requests' commands, recorded, replayed as `sc` is
    driven), then `sc` itself. The floor goes first and removes what it inserted, so the route runs
    on the database it would have met without it."""
    print(f"running {sc.name}_replay ({sc.concurrency} workers, the commands of {recorded} recorded requests) ...",
          flush=True)
    replayer = Replayer(server.db_uri, record(server, sc.name, [sc.request] * recorded))
    try:
        floor = await closed_loop(f"{sc.name}_replay", replayer, concurrency=sc.concurrency, count=sc.count,
                                  max_s=sc.max_s, warmup_s=sc.warmup_s)
    finally:
        await replayer.close()
    print(f"running {sc.name} ({sc.concurrency} workers, <= {SELECTION.count(sc.count)} requests) ...", flush=True)
    return [floor, *await run_scenario(sc)]


def ratio(results: dict[str, Result], name: str, pct: int) -> float:
    """A route's time over its engine floor's, at one percentile."""
    return results[name].pct(pct) / results[f"{name}_replay"].pct(pct)
