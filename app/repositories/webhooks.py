"""`webhook_endpoints` (endpoints with their encrypted signing secrets) and `webhook_attempts`
(one record per delivery try: status code, duration, error; never a secret)."""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Any

from bson import ObjectId
from pymongo import ASCENDING, DESCENDING

from app.domain.pages import Page, PageRequest
from app.domain.webhooks import DeliveryAttempt, SigningSecret, WebhookEndpoint
from app.repositories.base import EntityRepository, to_object_id
from app.services.encryption import DocumentCipher


def _secret_aad(endpoint_id: str) -> str:
    return f"webhook-secret|{endpoint_id}"


class WebhookEndpointRepository(EntityRepository[WebhookEndpoint]):
    collection_name = "webhook_endpoints"

    def __init__(self, db: Any, cipher: DocumentCipher) -> None:
        super().__init__(db)
        self.cipher = cipher  # secrets at rest under the document key, bound to their endpoint

    async def ensure_indexes(self) -> None:
        await self.collection.create_index([("enabled", ASCENDING), ("events", ASCENDING)])
        await self.collection.create_index([("created_at", DESCENDING)])

    @staticmethod
    def new_id() -> str:
        return str(ObjectId())

    def _secrets_doc(self, endpoint_id: str, secrets: tuple[SigningSecret, ...]) -> list[dict[str, Any]]:
        return [{"secret": self.cipher.encrypt_text(s.secret, _secret_aad(endpoint_id)), "created_at": s.created_at,
                 "expires_at": s.expires_at} for s in secrets]

    def to_entity(self, doc: dict[str, Any]) -> WebhookEndpoint:
        endpoint_id = str(doc["_id"])
        secrets = tuple(SigningSecret(self.cipher.decrypt_text(s["secret"], _secret_aad(endpoint_id)),
                                      s["created_at"], s.get("expires_at")) for s in doc.get("secrets", []))
        return WebhookEndpoint(
            id=endpoint_id, url=doc["url"], events=tuple(doc.get("events", [])), description=doc.get("description", ""),
            enabled=doc.get("enabled", True), secrets=secrets, created_at=doc["created_at"],
            updated_at=doc["updated_at"], created_by=doc.get("created_by"), disabled_at=doc.get("disabled_at"),
            disabled_reason=doc.get("disabled_reason"), failing_since=doc.get("failing_since"), rev=doc.get("rev", 0),
        )

    async def add(self, endpoint: WebhookEndpoint) -> WebhookEndpoint:
        await self.collection.insert_one({
            "_id": ObjectId(endpoint.id), "url": endpoint.url, "events": list(endpoint.events),
            "description": endpoint.description, "enabled": endpoint.enabled,
            "secrets": self._secrets_doc(endpoint.id, endpoint.secrets), "created_at": endpoint.created_at,
            "updated_at": endpoint.updated_at, "created_by": endpoint.created_by, "disabled_at": None, "rev": 0,
        })
        return endpoint

    async def search(self, *, page: PageRequest) -> Page[WebhookEndpoint]:
        return await self.paginate({}, sort=[("created_at", DESCENDING), ("_id", DESCENDING)], page=page)

    async def subscribed(self, event_type: str, *, created_by: datetime) -> list[WebhookEndpoint]:
        """Enabled endpoints that want `event_type` and existed when the event happened."""
        docs = await self.find_many({"enabled": True, "events": event_type, "created_at": {"$lte": created_by}},
                                    sort=[("_id", ASCENDING)])
        return [self.to_entity(d) for d in docs]

    async def disable(self, endpoint_id: str, now: datetime, reason: str = "admin") -> WebhookEndpoint | None:
        """None unless it was enabled (an endpoint is disabled once: `disabled_at` stays the first time)."""
        return await self.update_entity(
            {"_id": to_object_id(endpoint_id), "enabled": True},
            {"$set": {"enabled": False, "disabled_at": now, "disabled_reason": reason, "updated_at": now}})

    async def enable(self, endpoint_id: str, now: datetime) -> WebhookEndpoint | None:
        """None unless it was disabled; its failure streak starts again."""
        return await self.update_entity({"_id": to_object_id(endpoint_id), "enabled": False}, {"$set": {
            "enabled": True, "disabled_at": None, "disabled_reason": None, "failing_since": None, "updated_at": now}})

    async def set_failing(self, endpoint_id: str, since: datetime | None) -> None:
        """Starts a failure streak (kept if one runs: the first failure counts) or ends it (None)."""
        kept = {"failing_since": None} if since else {"failing_since": {"$ne": None}}
        await self.collection.update_one({"_id": ObjectId(endpoint_id), **kept}, {"$set": {"failing_since": since}})

    async def replace_secrets(self, endpoint: WebhookEndpoint, secrets: tuple[SigningSecret, ...],
                              now: datetime) -> WebhookEndpoint | None:
        """Rotation, under the revision as read: of two racing rotations one wins, the other gets None."""
        return await self.update_entity(
            {"_id": ObjectId(endpoint.id), "rev": endpoint.rev},
            {"$set": {"secrets": self._secrets_doc(endpoint.id, secrets), "updated_at": now}, "$inc": {"rev": 1}})


def _attempt_from_doc(doc: dict[str, Any]) -> DeliveryAttempt:
    return DeliveryAttempt(
        id=str(doc["_id"]), endpoint_id=doc["endpoint_id"], event_id=doc["event_id"], event_type=doc["event_type"],
        delivery=doc["delivery"], attempt=doc["attempt"], at=doc["at"], url=doc["url"],
        status_code=doc.get("status_code"), duration_ms=doc.get("duration_ms"), error=doc.get("error"),
        next_retry_at=doc.get("next_retry_at"), success=doc.get("success", False),
    )


class WebhookAttemptRepository(EntityRepository[DeliveryAttempt]):
    collection_name = "webhook_attempts"

    def to_entity(self, doc: dict[str, Any]) -> DeliveryAttempt:
        return _attempt_from_doc(doc)

    def __init__(self, db: Any, *, retention: timedelta = timedelta(days=30)) -> None:
        super().__init__(db)
        self.retention = retention

    async def ensure_indexes(self) -> None:
        await self.collection.create_index("expires_at", expireAfterSeconds=0)
        await self.collection.create_index([("endpoint_id", ASCENDING), ("at", DESCENDING), ("_id", DESCENDING)])
        await self.collection.create_index([("event_id", ASCENDING), ("endpoint_id", ASCENDING),
                                            ("delivery", ASCENDING), ("success", ASCENDING)])

    async def add(self, attempt: DeliveryAttempt) -> DeliveryAttempt:
        oid = ObjectId()
        doc = {"_id": oid, "endpoint_id": attempt.endpoint_id, "event_id": attempt.event_id,
               "event_type": attempt.event_type, "delivery": attempt.delivery, "attempt": attempt.attempt,
               "at": attempt.at, "url": attempt.url, "status_code": attempt.status_code,
               "duration_ms": attempt.duration_ms, "error": attempt.error, "next_retry_at": attempt.next_retry_at,
               "success": attempt.success, "expires_at": attempt.at + self.retention}
        await self.collection.insert_one(doc)
        return _attempt_from_doc(doc)

    async def delivered(self, event_id: str, endpoint_id: str, delivery: str) -> bool:
        """Whether this delivery already succeeded (a job run twice sends once more at most)."""
        return await self.collection.find_one({"event_id": event_id, "endpoint_id": endpoint_id,
                                               "delivery": delivery, "success": True}) is not None

    async def no_retry(self, event_id: str, endpoint_id: str, delivery: str) -> None:
        """The delivery's next try will not be made (the endpoint was disabled): its attempts say so."""
        await self.collection.update_many({"event_id": event_id, "endpoint_id": endpoint_id, "delivery": delivery,
                                           "next_retry_at": {"$ne": None}}, {"$set": {"next_retry_at": None}})

    async def of_endpoint(self, endpoint_id: str, attempt_id: str) -> DeliveryAttempt | None:
        oid = to_object_id(attempt_id)
        return await self.find_entity({"_id": oid, "endpoint_id": endpoint_id}) if oid else None

    async def latest_since(self, endpoint_id: str, since: datetime, *, page: int = 10_000) -> list[DeliveryAttempt]:
        """Each event's latest try to the endpoint among those made at or after `since`, oldest event first;
        read in pages after (at, _id), so a long outage's tries are all seen, not only the first page's."""
        query: dict[str, Any] = {"endpoint_id": endpoint_id, "at": {"$gte": since}}
        latest: dict[str, DeliveryAttempt] = {}
        while docs := await self.find_many(query, sort=[("at", ASCENDING), ("_id", ASCENDING)], limit=page):
            latest.update((d["event_id"], _attempt_from_doc(d)) for d in docs)
            if len(docs) < page:
                break
            at, oid = docs[-1]["at"], docs[-1]["_id"]
            query["$or"] = [{"at": {"$gt": at}}, {"at": at, "_id": {"$gt": oid}}]
        return list(latest.values())

    async def for_endpoint(self, endpoint_id: str, *, page: PageRequest) -> Page[DeliveryAttempt]:
        return await self.paginate({"endpoint_id": endpoint_id}, sort=[("at", DESCENDING), ("_id", DESCENDING)],
                                   page=page)
