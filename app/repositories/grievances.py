"""`grievances` collection: one document per grievance, its replies inside it. A reply or closing is
one `find_one_and_update` on the status and revision it was computed from (None: someone else first)."""

from __future__ import annotations

from dataclasses import asdict
from typing import Any

from bson import ObjectId
from pymongo import ASCENDING, DESCENDING

from app.domain.grievances import UNRESOLVED, Grievance, GrievanceCategory, GrievanceStatus, Reply
from app.domain.pages import Page, PageRequest
from app.repositories.base import EntityRepository, to_object_id

OLDEST_FIRST = [("opened_at", ASCENDING), ("_id", ASCENDING)]
NEWEST_FIRST = [("opened_at", DESCENDING), ("_id", DESCENDING)]


class GrievanceRepository(EntityRepository[Grievance]):
    collection_name = "grievances"

    def to_entity(self, doc: dict[str, Any]) -> Grievance:
        return Grievance(
            id=str(doc["_id"]), user_id=doc["user_id"], loan_id=doc["loan_id"],
            category=GrievanceCategory(doc["category"]), text=doc["text"], status=GrievanceStatus(doc["status"]),
            opened_at=doc["opened_at"], replies=tuple(Reply(**r) for r in doc.get("replies", [])),
            closed_at=doc.get("closed_at"), rev=doc.get("rev", 0))

    async def ensure_indexes(self) -> None:
        await self.collection.create_index([("status", ASCENDING), *OLDEST_FIRST])  # the staff queue
        await self.collection.create_index([("user_id", ASCENDING), ("loan_id", ASCENDING), *NEWEST_FIRST])

    async def add(self, grievance: Grievance) -> Grievance:
        doc = {**asdict(grievance), "_id": ObjectId(), "category": grievance.category.value,
               "status": grievance.status.value}
        del doc["id"]
        await self.collection.insert_one(doc)
        return self.to_entity(doc)

    async def save(self, before: Grievance, after: Grievance) -> Grievance | None:
        """`after` written if the stored grievance is still `before`; None if it changed since."""
        return await self.update_entity(
            {"_id": to_object_id(before.id), "status": before.status.value, "rev": before.rev},
            {"$set": {"status": after.status.value, "closed_at": after.closed_at},
             "$push": {"replies": {"$each": [asdict(r) for r in after.replies[len(before.replies):]]}},
             "$inc": {"rev": 1}})

    async def of_loan(self, user_id: str, loan_id: str, page: PageRequest) -> Page[Grievance]:
        return await self.paginate({"user_id": user_id, "loan_id": loan_id}, sort=NEWEST_FIRST, page=page)

    async def queue(self, status: GrievanceStatus | None, page: PageRequest) -> Page[Grievance]:
        """Oldest first: the nearest to its 30 days on top. No status: the unresolved ones."""
        wanted = [status.value] if status else [s.value for s in UNRESOLVED]
        return await self.paginate({"status": {"$in": wanted}}, sort=OLDEST_FIRST, page=page)
