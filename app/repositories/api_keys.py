"""`api_keys` collection: integrator keys, stored only as a hash, with their scopes and expiry."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from pymongo import UpdateOne

from app.domain.api_keys import LEGACY_SCOPES, ApiKey, Scope
from app.domain.pages import Page, PageRequest
from app.repositories.base import EntityRepository, to_object_id


def _from_doc(doc: dict[str, Any]) -> ApiKey:
    # A key stored before scopes existed has no `scopes` field: it keeps the verification scopes.
    scopes = frozenset(Scope(s) for s in doc["scopes"]) if doc.get("scopes") is not None else LEGACY_SCOPES
    return ApiKey(id=str(doc["_id"]), name=doc["name"], prefix=doc["prefix"], created_at=doc["created_at"],
                  revoked_at=doc.get("revoked_at"), last_used_at=doc.get("last_used_at"), scopes=scopes,
                  expires_at=doc.get("expires_at"), rate_limit_per_minute=doc.get("rate_limit_per_minute"))


class ApiKeyRepository(EntityRepository[ApiKey]):
    collection_name = "api_keys"
    to_entity = staticmethod(_from_doc)

    async def ensure_indexes(self) -> None:
        await self.collection.create_index("key_hash", unique=True)

    async def add(self, *, name: str, prefix: str, key_hash: str, created_by: str, now: datetime,
                  scopes: frozenset[Scope] = LEGACY_SCOPES, expires_at: datetime | None = None,
                  rate_limit_per_minute: int | None = None) -> ApiKey:
        doc = {"name": name, "prefix": prefix, "key_hash": key_hash, "created_by": created_by, "created_at": now,
               "revoked_at": None, "last_used_at": None, "scopes": sorted(s.value for s in scopes),
               "expires_at": expires_at, "rate_limit_per_minute": rate_limit_per_minute}
        doc["_id"] = (await self.collection.insert_one(doc)).inserted_id
        return _from_doc(doc)

    async def by_hash(self, key_hash: str) -> ApiKey | None:
        """The key with this hash, whatever its state (a read: using a key writes nothing)."""
        return await self.find_entity({"key_hash": key_hash})

    async def record_use(self, used: dict[str, datetime]) -> None:
        """Set each key's `last_used_at` in one batch; `$max`, so an instance flushing late never
        moves a time back that another instance already wrote."""
        ops = [UpdateOne({"_id": oid}, {"$max": {"last_used_at": at}})
               for key_id, at in used.items() if (oid := to_object_id(key_id)) is not None]
        if ops:
            await self.collection.bulk_write(ops, ordered=False)

    async def search(self, *, page: PageRequest) -> Page[ApiKey]:
        """One page, newest first (ties by id, so pages never overlap), and the total."""
        return await self.paginate({}, sort=[("created_at", -1), ("_id", -1)], page=page)

    async def revoke(self, key_id: str, now: datetime) -> ApiKey | None:
        return await self.update_entity({"_id": to_object_id(key_id), "revoked_at": None},
                                        {"$set": {"revoked_at": now}})
