"""`api_keys` collection: integrator keys, stored only as a hash."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from pymongo import ReturnDocument

from app.domain.api_keys import ApiKey
from app.repositories.base import RepositoryBase, to_object_id


def _from_doc(doc: dict[str, Any]) -> ApiKey:
    return ApiKey(id=str(doc["_id"]), name=doc["name"], prefix=doc["prefix"], created_at=doc["created_at"],
                  revoked_at=doc.get("revoked_at"), last_used_at=doc.get("last_used_at"))


class ApiKeyRepository(RepositoryBase):
    collection_name = "api_keys"

    async def ensure_indexes(self) -> None:
        await self.collection.create_index("key_hash", unique=True)

    async def add(self, *, name: str, prefix: str, key_hash: str, created_by: str, now: datetime) -> ApiKey:
        doc = {"name": name, "prefix": prefix, "key_hash": key_hash, "created_by": created_by, "created_at": now,
               "revoked_at": None, "last_used_at": None}
        doc["_id"] = (await self.collection.insert_one(doc)).inserted_id
        return _from_doc(doc)

    async def use_active(self, key_hash: str, now: datetime) -> ApiKey | None:
        """The live key with this hash, marked as used now; None if unknown or revoked."""
        doc = await self.collection.find_one_and_update(
            {"key_hash": key_hash, "revoked_at": None}, {"$set": {"last_used_at": now}},
            return_document=ReturnDocument.AFTER)
        return _from_doc(doc) if doc else None

    async def list(self, *, skip: int = 0, limit: int = 20) -> tuple[list[ApiKey], int]:
        """One page, newest first (ties by id, so pages never overlap), and the total."""
        docs = await self.find_many({}, sort=[("created_at", -1), ("_id", -1)], skip=skip, limit=limit)
        return [_from_doc(d) for d in docs], await self.count()

    async def revoke(self, key_id: str, now: datetime) -> ApiKey | None:
        oid = to_object_id(key_id)
        if oid is None:
            return None
        doc = await self.collection.find_one_and_update(
            {"_id": oid, "revoked_at": None}, {"$set": {"revoked_at": now}}, return_document=ReturnDocument.AFTER)
        return _from_doc(doc) if doc else None
