"""`sessions` collection: one document per sign-in, with the live refresh token id."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from pymongo import ReturnDocument

from app.domain.sessions import Session
from app.repositories.base import RepositoryBase


def _from_doc(doc: dict[str, Any]) -> Session:
    return Session(
        id=doc["_id"], user_id=doc["user_id"], refresh_jti=doc["refresh_jti"], created_at=doc["created_at"],
        expires_at=doc["expires_at"], revoked_at=doc.get("revoked_at"), revoked_reason=doc.get("revoked_reason"),
        ip_address=doc.get("ip_address"), user_agent=doc.get("user_agent"),
    )


class SessionRepository(RepositoryBase):
    collection_name = "sessions"

    async def ensure_indexes(self) -> None:
        await self.collection.create_index("user_id")
        # Housekeeping only: expiry is enforced in code (Session.is_active).
        await self.collection.create_index("expires_at", expireAfterSeconds=0)

    async def add(self, session: Session) -> None:
        await self.collection.insert_one({
            "_id": session.id, "user_id": session.user_id, "refresh_jti": session.refresh_jti,
            "created_at": session.created_at, "expires_at": session.expires_at,
            "ip_address": session.ip_address, "user_agent": session.user_agent,
        })

    async def get(self, session_id: str) -> Session | None:
        doc = await self.collection.find_one({"_id": session_id})
        return _from_doc(doc) if doc else None

    async def rotate(self, session_id: str, old_jti: str, new_jti: str, expires_at: datetime) -> Session | None:
        """Swap the refresh token id only if `old_jti` is still the live one."""
        doc = await self.collection.find_one_and_update(
            {"_id": session_id, "refresh_jti": old_jti, "revoked_at": None},
            {"$set": {"refresh_jti": new_jti, "expires_at": expires_at}},
            return_document=ReturnDocument.AFTER,
        )
        return _from_doc(doc) if doc else None

    async def revoke(self, session_id: str, reason: str, now: datetime) -> None:
        await self.collection.update_one(
            {"_id": session_id, "revoked_at": None}, {"$set": {"revoked_at": now, "revoked_reason": reason}}
        )

    async def revoke_all(self, user_id: str, reason: str, now: datetime, *, keep: str | None = None) -> int:
        query: dict[str, Any] = {"user_id": user_id, "revoked_at": None}
        if keep:
            query["_id"] = {"$ne": keep}
        result = await self.collection.update_many(query, {"$set": {"revoked_at": now, "revoked_reason": reason}})
        return int(result.modified_count)
