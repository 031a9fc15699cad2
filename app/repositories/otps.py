"""`otp` collection: hashed one-time passwords, one live code per user and purpose."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from pymongo import ReturnDocument

from app.domain.otp import Otp, OtpPurpose
from app.repositories.base import RepositoryBase, to_object_id


def _from_doc(doc: dict[str, Any]) -> Otp:
    return Otp(
        id=str(doc["_id"]), user_id=doc["user_id"], purpose=OtpPurpose(doc["purpose"]), code_hash=doc["code_hash"],
        expires_at=doc["expires_at"], attempts=doc["attempts"], max_attempts=doc["max_attempts"],
    )


class OtpRepository(RepositoryBase):
    collection_name = "otp"

    async def ensure_indexes(self) -> None:
        await self.collection.create_index([("user_id", 1), ("purpose", 1)])
        await self.collection.create_index("token_hash", sparse=True)
        await self.collection.create_index("expires_at", expireAfterSeconds=0)  # cleanup only

    async def replace(
        self, *, user_id: str, purpose: OtpPurpose, code_hash: str, expires_at: datetime, max_attempts: int,
        now: datetime, token_hash: str | None = None,
    ) -> None:
        """A new code supersedes any earlier one for the same user and purpose."""
        await self.collection.delete_many({"user_id": user_id, "purpose": purpose.value})
        doc = {
            "user_id": user_id, "purpose": purpose.value, "code_hash": code_hash, "expires_at": expires_at,
            "attempts": 0, "max_attempts": max_attempts, "created_at": now,
        }
        if token_hash:
            doc["token_hash"] = token_hash
        await self.collection.insert_one(doc)

    async def find(self, user_id: str, purpose: OtpPurpose) -> Otp | None:
        doc = await self.collection.find_one({"user_id": user_id, "purpose": purpose.value})
        return _from_doc(doc) if doc else None

    async def find_by_token(self, token_hash: str) -> Otp | None:
        doc = await self.collection.find_one({"token_hash": token_hash, "purpose": OtpPurpose.LOGIN.value})
        return _from_doc(doc) if doc else None

    async def claim_attempt(self, otp_id: str, max_attempts: int) -> Otp | None:
        """Take one try atomically (None when none are left), so parallel guesses can't
        all be compared against the code."""
        doc = await self.collection.find_one_and_update(
            {"_id": to_object_id(otp_id), "attempts": {"$lt": max_attempts}},
            {"$inc": {"attempts": 1}}, return_document=ReturnDocument.AFTER,
        )
        return _from_doc(doc) if doc else None

    async def consume(self, otp_id: str) -> bool:
        """Delete the code; False when another request used it first."""
        result = await self.collection.delete_one({"_id": to_object_id(otp_id)})
        return result.deleted_count == 1
