"""`rate_events` collection: timestamped events counted in sliding windows
(OTP sends, failed logins) and lockouts."""

from __future__ import annotations

from datetime import datetime, timedelta

from app.repositories.base import RepositoryBase


class RateEventRepository(RepositoryBase):
    collection_name = "rate_events"

    async def ensure_indexes(self) -> None:
        await self.collection.create_index([("key", 1), ("at", -1)])
        await self.collection.create_index([("key", 1), ("expires_at", -1)])  # `latest_expiry`: a lock's end
        await self.collection.create_index("expires_at", expireAfterSeconds=0)  # cleanup only

    async def add(self, key: str, now: datetime, keep_for: timedelta) -> None:
        await self.collection.insert_one({"key": key, "at": now, "expires_at": now + keep_for})

    async def times_since(self, key: str, since: datetime) -> list[datetime]:
        """Event times for `key` after `since`, newest first."""
        docs = await self.find_many({"key": key, "at": {"$gt": since}}, sort=[("at", -1)])
        return [d["at"] for d in docs]

    async def latest_expiry(self, key: str, now: datetime) -> datetime | None:
        """When the last still-running event for `key` ends (a lock's end), if any."""
        docs = await self.find_many({"key": key, "expires_at": {"$gt": now}}, sort=[("expires_at", -1)], limit=1)
        return docs[0]["expires_at"] if docs else None

    async def clear(self, key: str) -> None:
        await self.collection.delete_many({"key": key})
