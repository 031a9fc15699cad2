"""`liveness_challenges` collection: issued challenges and whether they were used."""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Any

from app.domain.liveness_challenges import Challenge
from app.repositories.base import RepositoryBase


def _from_doc(doc: dict[str, Any]) -> Challenge:
    return Challenge(id=doc["_id"], actions=doc["actions"], nonce=doc["nonce"], created_at=doc["created_at"],
                     expires_at=doc["expires_at"], signature=doc["signature"], caller=doc.get("caller", ""),
                     used_at=doc.get("used_at"))


class LivenessChallengeRepository(RepositoryBase):
    collection_name = "liveness_challenges"

    async def ensure_indexes(self) -> None:
        await self.collection.create_index("purge_at", expireAfterSeconds=0)  # cleanup only

    async def add(self, c: Challenge) -> None:
        await self.collection.insert_one({
            "_id": c.id, "actions": c.actions, "nonce": c.nonce, "created_at": c.created_at,
            "expires_at": c.expires_at, "signature": c.signature, "caller": c.caller,
            "purge_at": c.expires_at + timedelta(days=1),
        })

    async def get(self, challenge_id: str) -> Challenge | None:
        doc = await self.collection.find_one({"_id": challenge_id})
        return _from_doc(doc) if doc else None

    async def mark_used(self, challenge_id: str, caller: str, now: datetime, *, passed: bool) -> bool:
        """Claim the challenge for its own caller with its verdict; False if it was already used
        (one use, even under races)."""
        result = await self.collection.update_one({"_id": challenge_id, "caller": caller, "used_at": None},
                                                  {"$set": {"used_at": now, "passed": passed}})
        return result.modified_count == 1

    async def passed_by(self, challenge_id: str, caller: str, now: datetime) -> bool:
        """Whether `caller` took this challenge and passed it, for one KYC selfie: a later one (a liveness
        redo an auditor asked for) cannot point at it again."""
        result = await self.collection.update_one({"_id": challenge_id, "caller": caller, "passed": True,
                                                   "selfie_at": None}, {"$set": {"selfie_at": now}})
        return result.modified_count == 1
