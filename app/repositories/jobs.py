"""`jobs` collection: durable work claimed by workers under a lease.

Every change that moves a job is one atomic update filtered on the state it expects
(`status`, and `lease_owner` for the holder), so a worker whose lease lapsed and was
taken over can no longer complete or fail the job it lost.
"""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Any

from bson import ObjectId
from pymongo import ASCENDING, DESCENDING

from app.domain.jobs import Job, JobStatus
from app.domain.pages import Page, PageRequest
from app.repositories.base import EntityRepository, to_object_id

MAX_ERROR_CHARS = 500


def _from_doc(doc: dict[str, Any]) -> Job:
    return Job(
        id=str(doc["_id"]), key=doc["key"], kind=doc["kind"], payload=doc.get("payload") or {},
        status=JobStatus(doc["status"]), attempts=doc.get("attempts", 0), max_attempts=doc["max_attempts"],
        run_at=doc["run_at"], created_at=doc["created_at"], updated_at=doc["updated_at"],
        lease_owner=doc.get("lease_owner"), lease_until=doc.get("lease_until"), last_error=doc.get("last_error"),
        finished_at=doc.get("finished_at"),
    )


class JobRepository(EntityRepository[Job]):
    collection_name = "jobs"
    to_entity = staticmethod(_from_doc)

    async def ensure_indexes(self) -> None:
        await self.collection.create_index("key", unique=True)
        # The claim query: due queued jobs, and running ones whose lease lapsed.
        # Workers claim and expire leases of the kinds they run (`kind` $in), oldest first: equality
        # fields, then the sort, then the range (ESR), so neither scans jobs of other kinds or states.
        await self.collection.create_index([("status", ASCENDING), ("kind", ASCENDING), ("run_at", ASCENDING),
                                            ("_id", ASCENDING)])
        await self.collection.create_index([("status", ASCENDING), ("kind", ASCENDING), ("lease_until", ASCENDING)])
        await self.collection.create_index([("lease_owner", ASCENDING), ("status", ASCENDING)])
        await self.collection.create_index([("status", ASCENDING), ("updated_at", DESCENDING), ("_id", DESCENDING)])
        await self.collection.create_index([("updated_at", DESCENDING), ("_id", DESCENDING)])  # the admin list
        # Done jobs only (nothing else has `purge_at`): their key no longer guards anything once the change
        # that queued them is weeks old; failed ones stay for an admin's retry.
        await self.collection.create_index("purge_at", expireAfterSeconds=0)

    # --- writing a job beside the change that needs it -------------------------------

    async def enqueue(self, *, key: str, kind: str, payload: dict[str, Any], max_attempts: int, run_at: datetime,
                      now: datetime) -> tuple[Job, bool]:
        """Queue a job unless one with `key` exists; returns it and whether it is new. An upsert rather
        than an insert: a duplicate key error would abort the caller's transaction. One round trip:
        the job comes back with the `_id` chosen here only when this call created it."""
        oid = ObjectId()
        job = await self.update_entity({"key": key}, {"$setOnInsert": {
            "_id": oid, "key": key, "kind": kind, "payload": payload, "status": JobStatus.QUEUED.value,
            "attempts": 0, "max_attempts": max_attempts, "run_at": run_at, "created_at": now, "updated_at": now,
            "lease_owner": None, "lease_until": None, "last_error": None, "finished_at": None,
        }}, upsert=True)
        assert job is not None
        return job, job.id == str(oid)

    # --- the worker's side --------------------------------------------------------------

    async def claim(self, *, owner: str, kinds: list[str], now: datetime, lease_seconds: float) -> Job | None:
        """Take the next due queued job atomically: one update, so of N claimers exactly one gets it."""
        if not kinds:
            return None
        return await self.update_entity(
            {"status": JobStatus.QUEUED.value, "run_at": {"$lte": now}, "kind": {"$in": kinds}},
            {"$set": {"status": JobStatus.RUNNING.value, "lease_owner": owner,
                      "lease_until": now + timedelta(seconds=lease_seconds), "updated_at": now},
             "$inc": {"attempts": 1}},
            sort=[("run_at", ASCENDING), ("_id", ASCENDING)])

    async def lapsed(self, *, kinds: list[str], now: datetime, limit: int = 20) -> list[Job]:
        """Running jobs whose holder stopped renewing (crashed, hung, cut off from the database)."""
        docs = await self.find_many(
            {"status": JobStatus.RUNNING.value, "lease_until": {"$lte": now}, "kind": {"$in": kinds}},
            sort=[("lease_until", ASCENDING)], limit=limit)
        return [_from_doc(d) for d in docs]

    def _held(self, job_id: str, owner: str) -> dict[str, Any]:
        return {"_id": to_object_id(job_id), "status": JobStatus.RUNNING.value, "lease_owner": owner}

    async def renew(self, job_id: str, *, owner: str, now: datetime, lease_seconds: float) -> bool:
        """Extend the lease; False when it was lost (lapsed and taken, or released)."""
        result = await self.collection.update_one(
            self._held(job_id, owner),
            {"$set": {"lease_until": now + timedelta(seconds=lease_seconds), "updated_at": now}},
        )
        return result.matched_count == 1

    async def complete(self, job_id: str, *, owner: str, now: datetime, purge_at: datetime) -> bool:
        result = await self.collection.update_one(self._held(job_id, owner), {"$set": {
            "status": JobStatus.DONE.value, "lease_owner": None, "lease_until": None, "finished_at": now,
            "updated_at": now, "last_error": None, "purge_at": purge_at,
        }})
        return result.modified_count == 1

    async def fail(self, job: Job, *, owner: str, error: str, now: datetime, retry_at: datetime,
                   lapsed: bool = False) -> Job | None:
        """Record a failed attempt: queued again at `retry_at`, or `failed` once attempts are used up.
        `lapsed`: another worker expires the lease, only if the holder did not renew it meanwhile."""
        final = job.attempts_exhausted
        fields: dict[str, Any] = {
            "status": (JobStatus.FAILED if final else JobStatus.QUEUED).value, "lease_owner": None,
            "lease_until": None, "last_error": error[:MAX_ERROR_CHARS], "updated_at": now,
            **({"finished_at": now} if final else {"run_at": retry_at}),
        }
        query = self._held(job.id, owner)
        if lapsed:
            query["lease_until"] = job.lease_until
        return await self.update_entity(query, {"$set": fields})

    async def claim_effect(self, job_id: str) -> bool:
        """True once per job (until `release_effect`): its outside effect may happen now."""
        result = await self.collection.update_one({"_id": to_object_id(job_id), "effect_claimed": {"$ne": True}},
                                                  {"$set": {"effect_claimed": True}})
        return result.modified_count == 1

    async def release_effect(self, job_id: str) -> None:
        await self.collection.update_one({"_id": to_object_id(job_id)}, {"$set": {"effect_claimed": False}})

    async def release(self, owner: str, *, now: datetime) -> int:
        """Give back every job `owner` holds (shutdown): due at once, and the interrupted attempt
        is not counted against the job."""
        result = await self.collection.update_many(
            {"lease_owner": owner, "status": JobStatus.RUNNING.value},
            {"$set": {"status": JobStatus.QUEUED.value, "lease_owner": None, "lease_until": None, "run_at": now,
                      "updated_at": now}, "$inc": {"attempts": -1}},
        )
        return int(result.modified_count)

    # --- reading and admin --------------------------------------------------------------

    async def search(self, *, status: JobStatus | None = None, page: PageRequest = PageRequest()) -> Page[Job]:
        query: dict[str, Any] = {"status": status.value} if status else {}
        return await self.paginate(query, sort=[("updated_at", DESCENDING), ("_id", DESCENDING)], page=page)

    async def retry(self, job_id: str, *, now: datetime) -> Job | None:
        """A failed job back to the queue with a fresh set of attempts; None unless it was failed."""
        return await self.update_entity(
            {"_id": to_object_id(job_id), "status": JobStatus.FAILED.value},
            {"$set": {"status": JobStatus.QUEUED.value, "attempts": 0, "run_at": now, "finished_at": None,
                      "updated_at": now}})
