"""`kyc_queue` collection: the review queue's sequence, its lower bound and its counts.

`{_id: "seq"}` holds `next_seq`, the next `queue_seq` a submitted case gets; it is only ever
written outside transactions (an atomic `$inc`), so submissions never conflict on it. The counts
of waiting cases per bucket the queue can be filtered by (all, per risk rank, per document type,
per rank and type) are spread over `SHARDS` documents `{_id: "counts.<n>"}`: each transition adds
its deltas to a random one inside its own transaction, so two transitions conflict (and one
retries) only when they pick the same shard, and the sum over the shards is always exact.
`{_id: "head"}` holds a lower bound of the seqs still waiting (see `advance_head`).
The queue then reads a page and its total without counting or sorting the whole queue (the
embedded server decodes every candidate of a query: see `KycCaseRepository.pending`).
"""

from __future__ import annotations

import random
from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

from pymongo import ReturnDocument
from pymongo.errors import DuplicateKeyError

from app.domain.kyc import RiskLevel
from app.repositories.base import RepositoryBase

# Rank order of the by-risk sort; a case whose checks still run sorts after every level.
RISK_RANK = {RiskLevel.HIGH.value: 0, RiskLevel.MEDIUM.value: 1, RiskLevel.LOW.value: 2}
UNASSESSED = len(RISK_RANK)
RANKS = (*RISK_RANK.values(), UNASSESSED)

SHARDS = 16
_SEQ, _HEAD = "seq", "head"
_SHARD_IDS = [f"counts.{n}" for n in range(SHARDS)]
# A seq is taken inside the submitting transaction, which commits or is aborted within the server's
# transaction lifetime (60 s in MongoDB and SecantusDB); a seq taken this long ago is settled.
SETTLE = timedelta(seconds=120)


def rank_of(risk_level: str | None) -> int:
    return RISK_RANK[risk_level] if risk_level else UNASSESSED


def bucket(rank: int | None, document_type: str | None) -> str:
    """The counter of the cases of one risk rank and/or document type (None: any)."""
    if rank is None:
        return f"t_{document_type}" if document_type else "all"
    return f"r{rank}_t_{document_type}" if document_type else f"r{rank}"


def _buckets(rank: int, document_types: Iterable[str]) -> list[str]:
    """Every counter a case of this rank and these document types is counted in (a type once,
    however many sides or copies of it the case holds)."""
    types = sorted(set(document_types))
    return ["all", bucket(rank, None)] + [bucket(None, t) for t in types] + [bucket(rank, t) for t in types]


@dataclass(frozen=True)
class QueueState:
    """The counter as read at the start of one queue request."""

    next_seq: int = 0
    head: int = 0
    counts: dict[str, int] = field(default_factory=dict)
    mark_seq: int | None = None  # a `next_seq` read at `mark_at` (see `advance_head`)
    mark_at: datetime | None = None

    def count(self, rank: int | None, document_type: str | None) -> int:
        return max(0, int(self.counts.get(bucket(rank, document_type), 0)))


# Counts of the waiting cases, rebuilt from `kyc_doc` (start-up migration, bench seeding): per rank,
# and per (rank, type) with each type counted once per case.
RANK_COUNTS_PIPELINE: list[dict[str, Any]] = [
    {"$match": {"status": "SUBMITTED"}},
    {"$group": {"_id": "$risk_rank", "n": {"$sum": 1}}},
]
TYPE_COUNTS_PIPELINE: list[dict[str, Any]] = [
    {"$match": {"status": "SUBMITTED"}},
    {"$unwind": "$documents"},
    {"$group": {"_id": {"case": "$_id", "r": "$risk_rank", "t": "$documents.type"}}},
    {"$group": {"_id": {"r": "$_id.r", "t": "$_id.t"}, "n": {"$sum": 1}}},
]


def counts_from_rows(rank_rows: list[dict[str, Any]], type_rows: list[dict[str, Any]]) -> dict[str, int]:
    """The `counts` document from the two pipelines' rows."""
    counts: dict[str, int] = {"all": 0}
    for row in rank_rows:
        rank = row["_id"] if row["_id"] in RANKS else UNASSESSED
        counts["all"] += row["n"]
        counts[bucket(rank, None)] = counts.get(bucket(rank, None), 0) + row["n"]
    for row in type_rows:
        rank, doc_type = row["_id"].get("r"), row["_id"].get("t")
        if not isinstance(doc_type, str):
            continue
        rank = rank if rank in RANKS else UNASSESSED
        for key in (bucket(None, doc_type), bucket(rank, doc_type)):
            counts[key] = counts.get(key, 0) + row["n"]
    return counts


class KycQueueRepository(RepositoryBase):
    collection_name = "kyc_queue"

    async def state(self) -> QueueState:
        docs = {d["_id"]: d for d in await self.find_many({"_id": {"$in": [_SEQ, _HEAD, *_SHARD_IDS]}})}
        counts: dict[str, int] = {}
        for shard in _SHARD_IDS:
            for key, n in (docs.get(shard) or {}).get("counts", {}).items():
                counts[key] = counts.get(key, 0) + int(n)
        head = docs.get(_HEAD) or {}
        return QueueState(next_seq=int((docs.get(_SEQ) or {}).get("next_seq", 0)), head=int(head.get("seq", 0)),
                          counts=counts, mark_seq=head.get("mark_seq"), mark_at=head.get("mark_at"))

    async def take_seqs(self, count: int = 1) -> int:
        """`count` consecutive seqs; the first. Outside any transaction: an atomic `$inc` that never
        conflicts, taken again (leaving a gap, which costs nothing) when a transaction retries."""
        doc = await self.collection.find_one_and_update(
            {"_id": _SEQ}, {"$inc": {"next_seq": count}}, upsert=True, return_document=ReturnDocument.AFTER)
        assert doc is not None  # an upsert returning the document after it always finds one
        return int(doc["next_seq"]) - count

    async def _add(self, deltas: dict[str, int], session: Any) -> None:
        inc = {f"counts.{key}": n for key, n in deltas.items() if n}
        if inc:
            await self.collection.update_one({"_id": random.choice(_SHARD_IDS)}, {"$inc": inc}, upsert=True,
                                             session=session)

    async def entered(self, document_types: Iterable[str], session: Any = None) -> None:
        """A case was submitted: counted as not yet assessed."""
        await self._add({b: 1 for b in _buckets(UNASSESSED, document_types)}, session)

    async def assessed(self, rank: int, document_types: Iterable[str], session: Any = None) -> None:
        """A waiting case's checks finished: it moves from the unassessed counts to its rank's."""
        deltas: dict[str, int] = {}
        for b in _buckets(UNASSESSED, document_types):
            deltas[b] = deltas.get(b, 0) - 1
        for b in _buckets(rank, document_types):
            deltas[b] = deltas.get(b, 0) + 1
        await self._add(deltas, session)  # "all" and the per-type counts do not move

    async def left(self, rank: int, document_types: Iterable[str], session: Any = None) -> None:
        """A waiting case was decided."""
        await self._add({b: -1 for b in _buckets(rank, document_types)}, session)

    async def set_counts(self, counts: dict[str, int]) -> None:
        """Replaces the counts (the start-up rebuild; not atomic with transitions running meanwhile)."""
        for n, shard in enumerate(_SHARD_IDS):
            await self.collection.update_one({"_id": shard}, {"$set": {"counts": counts if n == 0 else {}}},
                                             upsert=True)

    async def has_counts(self) -> bool:
        return await self.collection.find_one({"_id": _SHARD_IDS[0]}) is not None

    async def advance_head(self, first_waiting: int, state: QueueState, now: datetime) -> None:
        """Raise the lower bound of the waiting seqs after a scan from `state.head` (read in
        `state`, before `now`) found no waiting case below `first_waiting`.

        Seqs below `first_waiting` can never wait again, with one exception: a decided case never
        waits again and a new submission takes a new, higher seq, but a seq is taken before its
        case is written (outside the submitting transaction, so submissions never conflict on it),
        so a lower seq may still be on its way in. A seq taken before a mark (a `next_seq` read at
        `mark_at`) is settled once `SETTLE` has passed: its transaction committed or was aborted.
        So the head moves to `min(first_waiting, mark_seq)` when the mark is that old, and the mark
        moves on to this read's `next_seq`. The head lags about `SETTLE` of submissions behind;
        decided cases below it cost nothing (the queue's indexes start with the status)."""
        if state.mark_at is not None and now - _aware(state.mark_at, now) < SETTLE:
            return
        update: dict[str, Any] = {"$set": {"mark_seq": state.next_seq, "mark_at": now}}
        if state.mark_seq is not None:
            update["$max"] = {"seq": min(first_waiting, state.mark_seq)}
        try:  # one reader per period moves it: the filter holds the mark this read saw
            await self.collection.update_one({"_id": _HEAD, "mark_at": state.mark_at}, update, upsert=True)
        except DuplicateKeyError:
            pass  # another reader moved it first


def _aware(at: datetime, like: datetime) -> datetime:
    """Drivers return naive UTC datetimes unless asked for aware ones."""
    return at.replace(tzinfo=like.tzinfo) if at.tzinfo is None and like.tzinfo is not None else at
