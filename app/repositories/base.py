"""Shared plumbing for the one-collection repositories."""

from __future__ import annotations

import copy
import functools
import logging
from collections.abc import Awaitable, Callable
from typing import Any, Generic, Self, TypeVar

from bson import ObjectId
from bson.errors import InvalidId
from pymongo import ReturnDocument
from pymongo.errors import AutoReconnect, DocumentTooLarge, OperationFailure, ServerSelectionTimeoutError

from app.domain.errors import RecordTooLarge, ServiceUnavailable
from app.domain.pages import Page, PageRequest
from app.repositories.codecs import with_money

log = logging.getLogger("kycflow.db")
R = TypeVar("R")
E = TypeVar("E")

# Collection methods that only read (safe to send twice) and those that change data.
_READS = frozenset({"find_one", "count_documents", "estimated_document_count", "distinct"})
_WRITES = frozenset({
    "insert_one", "insert_many", "update_one", "update_many", "replace_one", "delete_one", "delete_many",
    "find_one_and_update", "find_one_and_replace", "find_one_and_delete", "bulk_write", "create_index",
    "create_indexes", "drop_index", "drop",
})
_CURSORS = frozenset({"find", "aggregate"})


# Server codes for a record over the size limit: BSONObjectTooLarge, and an update whose result is.
_TOO_LARGE_CODES = frozenset({10334, 17419, 17420})


def unavailable(exc: Exception) -> ServiceUnavailable:
    return ServiceUnavailable("The database is not reachable right now; try again shortly.",
                              code="database_unavailable", retry_after=1, reason=type(exc).__name__)


async def guarded(op: Callable[[], Awaitable[R]], *, read: bool) -> R:
    """Run one database operation. A connection dropped under it (idle timeout of a firewall, a load
    balancer or the embedded server, a failover; AutoReconnect covers NetworkTimeout) retries a read
    once on a fresh connection; a write is not resent (it may have been applied) and, like a
    server that cannot be reached at all, becomes 503 `database_unavailable`, never a 500."""
    try:
        return await op()
    except ServerSelectionTimeoutError as exc:  # no server for serverSelectionTimeoutMS: retrying waits again
        raise unavailable(exc) from exc
    except DocumentTooLarge as exc:  # what the caller sent is too large to store: theirs to fix (413)
        raise RecordTooLarge() from exc
    except OperationFailure as exc:
        if exc.code in _TOO_LARGE_CODES:
            raise RecordTooLarge() from exc
        raise
    except AutoReconnect as exc:
        if not read:
            raise unavailable(exc) from exc
        log.warning("database connection dropped; retrying the read once", extra={"error": type(exc).__name__})
    try:
        return await op()
    except AutoReconnect as exc:
        raise unavailable(exc) from exc


class GuardedCollection:
    """The driver's collection, with every read and write going through `guarded`; with `session`,
    every call carries it (a repository bound to a transaction, see `RepositoryBase.bound`)."""

    def __init__(self, collection: Any, session: Any = None) -> None:
        self._collection, self._session = collection, session

    def __getattr__(self, name: str) -> Any:
        attr = getattr(self._collection, name)
        if self._session is not None and name in _CURSORS:
            return functools.partial(attr, session=self._session)
        if name not in _READS and name not in _WRITES:
            return attr  # find/aggregate cursors are guarded where they are consumed (RepositoryBase)
        session = self._session

        async def call(*args: Any, **kwargs: Any) -> Any:
            if session is not None:
                kwargs["session"] = session
            # Inside a transaction a lost connection aborts the whole transaction: no lone retry there.
            return await guarded(lambda: attr(*args, **kwargs), read=name in _READS and session is None)

        return call


def to_object_id(value: str) -> ObjectId | None:
    """Ids arrive as strings from URLs; a malformed one simply matches nothing."""
    try:
        return ObjectId(value)
    except (InvalidId, TypeError):
        return None


def given(fields: dict[str, Any]) -> dict[str, Any]:
    """A filter of the conditions given (None: no condition on that field)."""
    return {name: value for name, value in fields.items() if value is not None}


class RepositoryBase:
    collection_name: str

    def __init__(self, db: Any) -> None:
        self.db = with_money(db)  # Decimal <-> Decimal128 by one codec, in every repository
        self.collection: Any = GuardedCollection(self.db[self.collection_name])

    async def ensure_indexes(self) -> None:  # overridden where a collection needs them
        return None

    async def drop_old_indexes(self, names: tuple[str, ...]) -> None:
        """Indexes an earlier version created and no query uses now: each write would still maintain them."""
        for name in names:
            try:
                await self.collection.drop_index(name)
            except OperationFailure:
                pass  # never created here (a new database), or dropped at an earlier start

    def bound(self, session: Any) -> Self:
        """This repository inside a transaction: every call on its collection carries `session`."""
        clone = copy.copy(self)
        clone.collection = GuardedCollection(self.collection._collection, session)
        return clone

    async def aggregate(self, pipeline: list[dict[str, Any]]) -> list[dict[str, Any]]:
        async def run() -> list[dict[str, Any]]:
            return [doc async for doc in await self.collection.aggregate(pipeline)]

        return await guarded(run, read=True)

    async def find_many(
        self, query: dict[str, Any], *, sort: list[tuple[str, int]] | None = None, skip: int = 0, limit: int = 0
    ) -> list[dict[str, Any]]:
        async def run() -> list[dict[str, Any]]:
            return [doc async for doc in self.collection.find(query, sort=sort or None, skip=skip, limit=limit)]

        return await guarded(run, read=True)

    async def count(self, query: dict[str, Any] | None = None) -> int:
        """Unfiltered: the collection's own count (`count_documents({})` reads every document on MongoDB)."""
        if not query:
            return int(await self.collection.estimated_document_count())
        return int(await self.collection.count_documents(query))

    async def count_by(self, *fields: str, match: dict[str, Any] | None = None) -> dict[tuple[str, ...], int]:
        """Documents per value of `fields` (metrics). Sorted on them first, so MongoDB can answer from an
        index that starts with them without reading a document: the cost is index keys, not records."""
        grouped = await self.aggregate([
            *([{"$match": match}] if match else []), {"$sort": {f: 1 for f in fields}},
            {"$group": {"_id": {f: f"${f}" for f in fields}, "n": {"$sum": 1}}}])
        return {tuple(str(doc["_id"].get(f)) for f in fields): int(doc["n"]) for doc in grouped}


class EntityRepository(RepositoryBase, Generic[E]):
    """A collection of one kind of entity: document <-> entity mapping, `get` and `paginate` in one
    place (polar's `RepositoryBase` shape). Subclasses implement `to_entity`."""

    def to_entity(self, doc: dict[str, Any]) -> E:
        raise NotImplementedError

    async def get(self, entity_id: str, *, user_id: str | None = None) -> E | None:
        """By its ObjectId string; a malformed id is simply not found. With `user_id`, only that
        customer's record: anyone else's id reads as not found (no probing of ids)."""
        oid = to_object_id(entity_id)
        if oid is None:
            return None
        return await self.find_entity({"_id": oid} if user_id is None else {"_id": oid, "user_id": user_id})

    async def get_many(self, entity_ids: list[str]) -> dict[str, E]:
        """Several by id in one read (`$in` on `_id`), keyed by id; malformed or unknown ids are absent."""
        ids = [oid for oid in map(to_object_id, set(entity_ids)) if oid is not None]
        return {str(d["_id"]): self.to_entity(d) for d in await self.find_many({"_id": {"$in": ids}})} if ids else {}

    async def find_entity(self, query: dict[str, Any], **options: Any) -> E | None:
        doc = await self.collection.find_one(query, **options)
        return self.to_entity(doc) if doc else None

    async def update_entity(self, query: dict[str, Any], update: Any, **options: Any) -> E | None:
        """The entity after `update`, or None when nothing matched `query` (the expected state)."""
        doc = await self.collection.find_one_and_update(query, update, return_document=ReturnDocument.AFTER, **options)
        return self.to_entity(doc) if doc else None

    async def paginate(self, query: dict[str, Any], *, sort: list[tuple[str, int]],
                       page: PageRequest) -> Page[E]:
        """One page, newest or oldest first as `sort` says (end it with `_id` for a stable order)."""
        docs = await self.find_many(query, sort=sort, skip=page.skip, limit=page.page_size)
        return Page([self.to_entity(d) for d in docs], await self.count(query), page.page, page.page_size)
