"""`events` collection: the outbox of domain events (webhooks and the live stream read it).

Ids are ObjectIds built here with millisecond time: 4 bytes of seconds (so `generation_time`
and `ObjectId.from_datetime` still work), 2 bytes of milliseconds, 3 random bytes per process
and a 3-byte counter. Sorting by `_id` is then creation order to the millisecond across
instances (a stock ObjectId orders by second, then by process), which is what SSE
`Last-Event-ID` resumes from.
"""

from __future__ import annotations

import itertools
import os
import time
from datetime import datetime, timedelta
from typing import Any

from bson import ObjectId
from pymongo import ASCENDING

from app.domain.events import Event, EventType
from app.repositories.base import RepositoryBase, to_object_id

_PROCESS = os.urandom(3)
_COUNTER = itertools.count(int.from_bytes(os.urandom(3), "big"))


def new_event_id(now_ns: int | None = None) -> str:
    ns = time.time_ns() if now_ns is None else now_ns
    seconds, ms = divmod(ns // 1_000_000, 1000)
    counter = next(_COUNTER) & 0xFFFFFF
    return str(ObjectId(seconds.to_bytes(4, "big") + ms.to_bytes(2, "big") + _PROCESS + counter.to_bytes(3, "big")))


def floor_id(at: datetime) -> ObjectId:
    """The smallest id an event created at `at` (to the second) can have."""
    return ObjectId.from_datetime(at)


def id_time(event_id: str) -> datetime:
    return ObjectId(event_id).generation_time


def _from_doc(doc: dict[str, Any]) -> Event:
    return Event(id=str(doc["_id"]), type=EventType(doc["type"]), user_id=doc["user_id"], data=doc.get("data") or {},
                 created_at=doc["created_at"], audiences=tuple(doc.get("audiences") or ()))


class EventRepository(RepositoryBase):
    collection_name = "events"

    def __init__(self, db: Any, *, retention: timedelta = timedelta(days=30)) -> None:
        super().__init__(db)
        self.retention = retention  # then the database drops the event (replays reach back this far)

    async def ensure_indexes(self) -> None:
        # Replaying one viewer's missed events (`_id` itself serves the shared poll).
        await self.collection.create_index([("audiences", ASCENDING), ("_id", ASCENDING)])
        await self.collection.create_index("expires_at", expireAfterSeconds=0)

    async def add(self, event: Event) -> None:
        await self.collection.insert_one({
            "_id": ObjectId(event.id), "type": event.type.value, "user_id": event.user_id, "data": event.data,
            "created_at": event.created_at, "audiences": list(event.audiences),
            "expires_at": event.created_at + self.retention,
        })

    async def get(self, event_id: str) -> Event | None:
        oid = to_object_id(event_id)
        doc = await self.collection.find_one({"_id": oid}) if oid else None
        return _from_doc(doc) if doc else None

    async def after(self, after_id: str, *, audiences: frozenset[str], limit: int) -> list[Event]:
        """A viewer's events with an id above `after_id`, oldest first (SSE replay)."""
        docs = await self.find_many({"_id": {"$gt": ObjectId(after_id)}, "audiences": {"$in": sorted(audiences)}},
                                    sort=[("_id", ASCENDING)], limit=limit)
        return [_from_doc(d) for d in docs]

    async def since(self, floor: datetime, *, after_id: str | None = None, limit: int) -> list[Event]:
        """Every event created at or after `floor` (to the second; above `after_id` when paging),
        oldest first: the shared poll's one query."""
        bound: dict[str, Any] = {"$gte": floor_id(floor)}
        if after_id:
            bound["$gt"] = ObjectId(after_id)
        docs = await self.find_many({"_id": bound}, sort=[("_id", ASCENDING)], limit=limit)
        return [_from_doc(d) for d in docs]
