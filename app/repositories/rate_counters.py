"""`rate_counters` collection: one fixed-window request counter per (subject, group, window start),
shared by every instance; expired windows are removed by a TTL index."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from pymongo import ReturnDocument
from pymongo.errors import DuplicateKeyError

from app.repositories.base import RepositoryBase


class RateCounterRepository(RepositoryBase):
    collection_name = "rate_counters"

    async def ensure_indexes(self) -> None:
        await self.collection.create_index("expires_at", expireAfterSeconds=0)  # cleanup only

    async def hit(self, subject: str, group: str, window_start: int, window_seconds: int, amount: int = 1) -> int:
        """Count `amount` requests in the window; return the count, these included. One atomic
        `$inc` upsert on a composite `_id` (unique by nature, so no extra index is needed)."""
        key = f"{subject}|{group}|{window_start}"
        # Kept a window past its end so a slow clock on another instance still finds it.
        expires = datetime.fromtimestamp(window_start + 2 * window_seconds, UTC)
        update = {"$inc": {"n": amount}, "$setOnInsert": {"expires_at": expires + timedelta(seconds=1)}}
        try:
            doc = await self.collection.find_one_and_update(
                {"_id": key}, update, upsert=True, return_document=ReturnDocument.AFTER, projection={"n": 1})
        except DuplicateKeyError:  # two first hits raced to insert: the loser's update now finds the document
            doc = await self.collection.find_one_and_update(
                {"_id": key}, update, return_document=ReturnDocument.AFTER, projection={"n": 1})
        return int(doc["n"]) if doc else amount
