"""`user_log` collection: the audit trail of security and review events."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from app.domain.audit import AuditEntry
from app.domain.pages import Page, PageRequest
from app.repositories.base import EntityRepository, given


def _from_doc(doc: dict[str, Any]) -> AuditEntry:
    return AuditEntry(
        id=str(doc["_id"]), action=doc["action"], timestamp=doc["timestamp"], user_id=doc.get("user_id"),
        actor_id=doc.get("actor_id"), actor_role=doc.get("actor_role"), ip_address=doc.get("ip_address"),
        user_agent=doc.get("user_agent"), details=doc.get("details") or {},
    )


class UserLogRepository(EntityRepository[AuditEntry]):
    """Append-only: entries are added and read, never updated or deleted."""

    collection_name = "user_log"
    to_entity = staticmethod(_from_doc)

    async def ensure_indexes(self) -> None:
        # Pages sort by `timestamp`, then `_id` (a stable order): both keys, or MongoDB sorts in memory.
        await self.collection.create_index([("timestamp", -1), ("_id", -1)])
        await self.collection.create_index([("user_id", 1), ("timestamp", -1), ("_id", -1)])
        await self.collection.create_index([("actor_id", 1), ("timestamp", -1), ("_id", -1)])
        await self.collection.create_index([("action", 1), ("timestamp", -1), ("_id", -1)])

    async def add(self, entry: AuditEntry) -> None:
        await self.collection.insert_one({
            "action": entry.action, "timestamp": entry.timestamp, "user_id": entry.user_id,
            "actor_id": entry.actor_id, "actor_role": entry.actor_role, "ip_address": entry.ip_address,
            "user_agent": entry.user_agent, "details": entry.details,
        })

    async def search(
        self, *, user_id: str | None = None, actor_id: str | None = None, action: str | None = None,
        since: datetime | None = None, until: datetime | None = None, page: PageRequest = PageRequest(),
    ) -> Page[AuditEntry]:
        # `or None`: an empty `?action=` filters nothing
        query = given({"user_id": user_id or None, "actor_id": actor_id or None, "action": action or None})
        if since or until:
            query["timestamp"] = {**({"$gte": since} if since else {}), **({"$lte": until} if until else {})}
        return await self.paginate(query, sort=[("timestamp", -1), ("_id", -1)], page=page)
