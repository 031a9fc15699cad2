"""`api_keys` collection: integrator keys, stored only as a hash."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from pymongo import ReturnDocument

from app.repositories.base import RepositoryBase, to_object_id


class ApiKeyRepository(RepositoryBase):
    collection_name = "api_keys"

    async def ensure_indexes(self) -> None:
        await self.collection.create_index("key_hash", unique=True)

    async def add(self, *, name: str, prefix: str, key_hash: str, created_by: str, now: datetime) -> dict[str, Any]:
        doc = {"name": name, "prefix": prefix, "key_hash": key_hash, "created_by": created_by, "created_at": now,
               "revoked_at": None, "last_used_at": None}
        doc["_id"] = (await self.collection.insert_one(doc)).inserted_id
        return doc

    async def find_active(self, key_hash: str) -> dict[str, Any] | None:
        return await self.collection.find_one({"key_hash": key_hash, "revoked_at": None})

    async def touch(self, key_id: Any, now: datetime) -> None:
        await self.collection.update_one({"_id": key_id}, {"$set": {"last_used_at": now}})

    async def list(self) -> list[dict[str, Any]]:
        return await self.find_many({}, sort=[("created_at", -1)])

    async def revoke(self, key_id: str, now: datetime) -> dict[str, Any] | None:
        oid = to_object_id(key_id)
        if oid is None:
            return None
        return await self.collection.find_one_and_update(
            {"_id": oid, "revoked_at": None}, {"$set": {"revoked_at": now}}, return_document=ReturnDocument.AFTER)
