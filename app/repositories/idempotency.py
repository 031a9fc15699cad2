"""`idempotency` collection: the first answer to a request sent with an `Idempotency-Key`.

A record is claimed (inserted, unique per caller and key) before the work starts, so of two
identical requests at once only one does the work; the other waits for its answer.
Records expire after 24 h (TTL index), as `API.md` promises.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any

from pymongo.errors import DuplicateKeyError

from app.repositories.base import RepositoryBase


@dataclass(frozen=True)
class StoredResponse:
    request_hash: str
    status_code: int | None  # None while the first request is still working
    body: dict[str, Any] | None


class IdempotencyRepository(RepositoryBase):
    collection_name = "idempotency"

    async def ensure_indexes(self) -> None:
        await self.collection.create_index([("scope", 1), ("owner", 1), ("key", 1)], unique=True)
        await self.collection.create_index("expires_at", expireAfterSeconds=0)

    async def claim(self, scope: str, owner: str, key: str, request_hash: str, now: datetime,
                    expires_at: datetime) -> StoredResponse | None:
        """None: the caller owns the key now and does the work. Otherwise what is stored for it."""
        try:
            await self.collection.insert_one({"scope": scope, "owner": owner, "key": key,
                                              "request_hash": request_hash, "created_at": now,
                                              "expires_at": expires_at, "status_code": None, "body": None})
            return None
        except DuplicateKeyError:
            return await self.find(scope, owner, key)

    async def find(self, scope: str, owner: str, key: str) -> StoredResponse | None:
        doc = await self.collection.find_one({"scope": scope, "owner": owner, "key": key})
        if doc is None:
            return None
        return StoredResponse(doc["request_hash"], doc.get("status_code"), doc.get("body"))

    async def complete(self, scope: str, owner: str, key: str, status_code: int, body: dict[str, Any]) -> None:
        await self.collection.update_one({"scope": scope, "owner": owner, "key": key},
                                         {"$set": {"status_code": status_code, "body": body}})

    async def release(self, scope: str, owner: str, key: str) -> None:
        """The work failed: forget the claim so the client's retry runs again."""
        await self.collection.delete_one({"scope": scope, "owner": owner, "key": key, "status_code": None})
