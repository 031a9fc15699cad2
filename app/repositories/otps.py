"""`otp` collection: hashed one-time passwords. One live code per identifier and purpose (per user too
for `confirm`); decoys (no `user_id`) stand in for identifiers without an account."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from app.domain.otp import Otp, OtpPurpose
from app.repositories.base import EntityRepository, to_object_id


def _from_doc(doc: dict[str, Any]) -> Otp:
    return Otp(
        id=str(doc["_id"]), user_id=doc.get("user_id"), purpose=OtpPurpose(doc["purpose"]),
        code_hash=doc["code_hash"], expires_at=doc["expires_at"], attempts=doc["attempts"],
        max_attempts=doc["max_attempts"], identifier=doc.get("identifier"),
    )


class OtpRepository(EntityRepository[Otp]):
    collection_name = "otp"
    to_entity = staticmethod(_from_doc)

    async def ensure_indexes(self) -> None:
        await self.collection.create_index([("user_id", 1), ("purpose", 1)])
        # The live code is the newest of its slot (`find_for` sorts by `created_at`, then `_id`).
        await self.collection.create_index([("identifier", 1), ("purpose", 1), ("created_at", -1), ("_id", -1)])
        await self.collection.create_index([("token_hash", 1), ("purpose", 1)], sparse=True)
        await self.collection.create_index("expires_at", expireAfterSeconds=0)  # cleanup only

    async def replace(
        self, *, user_id: str | None, purpose: OtpPurpose, code_hash: str, expires_at: datetime, max_attempts: int,
        now: datetime, token_hash: str | None = None, identifier: str | None = None,
    ) -> None:
        """A new code (or decoy) supersedes any earlier one for the same identifier and purpose (and
        user, for `confirm`); without an identifier, for the same user and purpose."""
        await self.collection.delete_many(self._slot(user_id, purpose, identifier))
        doc = {
            "user_id": user_id, "purpose": purpose.value, "code_hash": code_hash, "expires_at": expires_at,
            "attempts": 0, "max_attempts": max_attempts, "created_at": now,
        }
        if identifier:
            doc["identifier"] = identifier
        if token_hash:
            doc["token_hash"] = token_hash
        await self.collection.insert_one(doc)

    @staticmethod
    def _slot(user_id: str | None, purpose: OtpPurpose, identifier: str | None) -> dict[str, Any]:
        if identifier is None:
            return {"user_id": user_id, "purpose": purpose.value}
        if purpose == OtpPurpose.CONFIRM:
            return {"identifier": identifier, "purpose": purpose.value, "user_id": user_id}
        return {"identifier": identifier, "purpose": purpose.value}

    async def add_decoy_if_absent(self, *, identifier: str, purpose: OtpPurpose, code_hash: str,
                                  expires_at: datetime, max_attempts: int, now: datetime) -> None:
        """Insert a decoy only where no code lives: never displaces a real code sent meanwhile."""
        await self.collection.update_one(
            {"identifier": identifier, "purpose": purpose.value},
            {"$setOnInsert": {"user_id": None, "code_hash": code_hash, "expires_at": expires_at, "attempts": 0,
                              "max_attempts": max_attempts, "created_at": now}},
            upsert=True,
        )

    async def find_for(self, identifier: str, purpose: OtpPurpose, user_id: str | None = None) -> Otp | None:
        """The live code (or decoy) sent to `identifier`; `user_id` is required for `confirm`."""
        return await self.find_entity(self._slot(user_id, purpose, identifier),
                                      sort=[("created_at", -1), ("_id", -1)])

    async def find_by_token(self, token_hash: str) -> Otp | None:
        return await self.find_entity({"token_hash": token_hash, "purpose": OtpPurpose.LOGIN.value})

    async def claim_attempt(self, otp_id: str, max_attempts: int) -> Otp | None:
        """Take one try atomically (None when none are left), so parallel guesses can't
        all be compared against the code."""
        return await self.update_entity({"_id": to_object_id(otp_id), "attempts": {"$lt": max_attempts}},
                                        {"$inc": {"attempts": 1}})

    async def consume(self, otp_id: str) -> bool:
        """Delete the code; False when another request used it first."""
        result = await self.collection.delete_one({"_id": to_object_id(otp_id)})
        return result.deleted_count == 1
