"""Shared plumbing for the one-collection repositories."""

from __future__ import annotations

import inspect
from typing import Any

from bson import ObjectId
from bson.errors import InvalidId


def to_object_id(value: str) -> ObjectId | None:
    """Ids arrive as strings from URLs; a malformed one simply matches nothing."""
    try:
        return ObjectId(value)
    except (InvalidId, TypeError):
        return None


class RepositoryBase:
    collection_name: str

    def __init__(self, db: Any) -> None:
        self.db = db
        self.collection = db[self.collection_name]

    async def ensure_indexes(self) -> None:  # overridden where a collection needs them
        return None

    async def aggregate(self, pipeline: list[dict[str, Any]]) -> list[dict[str, Any]]:
        cursor = self.collection.aggregate(pipeline)
        if inspect.isawaitable(cursor):  # PyMongo async returns a coroutine, Motor a cursor
            cursor = await cursor
        return [doc async for doc in cursor]

    async def find_many(
        self, query: dict[str, Any], *, sort: list[tuple[str, int]] | None = None, skip: int = 0, limit: int = 0
    ) -> list[dict[str, Any]]:
        cursor = self.collection.find(query)
        if sort:
            cursor = cursor.sort(sort)
        if skip:
            cursor = cursor.skip(skip)
        if limit:
            cursor = cursor.limit(limit)
        return [doc async for doc in cursor]

    async def count(self, query: dict[str, Any] | None = None) -> int:
        return int(await self.collection.count_documents(query or {}))
