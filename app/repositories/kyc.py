"""`kyc_doc` collection: KYC cases, their documents, selfie, checks and decision.

Every transition is one `find_one_and_update` filtered on the state it expects, so of two
racing requests exactly one wins and the other gets None (the service turns that into 409).
Files live in GridFS (`app/repositories/files.py`); document numbers appear here only masked,
fingerprinted and encrypted.

The review queue reads submitted cases by `queue_seq` windows (see `pending`); the sequence and
the counts live in `kyc_queue` (`app/repositories/kyc_queue.py`).
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass
from datetime import datetime
from typing import Any

from bson import ObjectId
from pymongo import ASCENDING, DESCENDING, ReturnDocument, UpdateOne
from pymongo.errors import DuplicateKeyError, OperationFailure

from app.domain.kyc import (
    Assessment,
    CaseDocument,
    CaseStatus,
    Check,
    ChecksState,
    CheckStatus,
    Decision,
    KycCase,
    RiskLevel,
    Selfie,
)
from app.domain.pages import Page, PageRequest
from app.repositories.base import EntityRepository, to_object_id
from app.repositories.kyc_queue import (
    RANK_COUNTS_PIPELINE,
    RANKS,
    RISK_RANK,
    TYPE_COUNTS_PIPELINE,
    UNASSESSED,
    KycQueueRepository,
    QueueState,
    counts_from_rows,
)

# Review-queue indexes of earlier versions (by submitted_at): dropped, the queue reads by queue_seq.
_OLD_QUEUE_INDEXES = ("status_1_submitted_at_1__id_1", "status_1_risk_rank_1_submitted_at_1__id_1",
                      "status_1_documents.type_1_submitted_at_1")
# Earlier versions matched duplicates on the kept number, typed or read: a typed number the image did not
# show could make another customer's case a duplicate.
_OLD_FINGERPRINT_INDEXES = ("documents.number_fingerprint_1",)


def _document(d: dict[str, Any]) -> CaseDocument:
    return CaseDocument(
        id=d["id"], type=d["type"], side=d.get("side"), file_id=str(d["file_id"]), content_type=d["content_type"],
        uploaded_at=d["uploaded_at"], fields=d.get("fields") or {}, confidence=d.get("confidence", 0.0),
        validation=d.get("validation") or {}, number_masked=d.get("number_masked"),
        number_fingerprint=d.get("number_fingerprint"), corrections=d.get("corrections") or {},
        shown_fingerprint=d.get("shown_fingerprint"),
    )


def _decision(d: dict[str, Any]) -> Decision:
    """Earlier versions stored one `reason` and `notes` (mailed to the customer); read as reasons and
    as the case file's note."""
    reasons = d.get("reasons")
    if reasons is None:
        reasons = [d["reason"]] if d.get("reason") else []
    return Decision(by=d["by"], role=d["role"], at=d["at"], approved=d["approved"], reasons=list(reasons),
                    internal_note=d.get("internal_note", d.get("notes")), customer_message=d.get("customer_message"))


def _from_doc(doc: dict[str, Any]) -> KycCase:
    selfie = doc.get("selfie")
    decision = doc.get("decision")
    return KycCase(
        id=str(doc["_id"]), user_id=doc["user_id"], status=CaseStatus(doc["status"]),
        checks_state=ChecksState(doc.get("checks_state", ChecksState.NOT_STARTED)),
        created_at=doc["created_at"], updated_at=doc["updated_at"],
        documents=[_document(d) for d in doc.get("documents", [])],
        selfie=Selfie(**{**selfie, "file_id": str(selfie["file_id"])}) if selfie else None,
        checks=[Check(c["name"], CheckStatus(c["status"]), c["score"], c["detail"], c.get("document_id"))
                for c in doc.get("checks", [])],
        overall_score=doc.get("overall_score"),
        risk_level=RiskLevel(doc["risk_level"]) if doc.get("risk_level") else None,
        breakdown=doc.get("breakdown") or {}, submitted_at=doc.get("submitted_at"),
        checks_completed_at=doc.get("checks_completed_at"),
        decision=_decision(decision) if decision else None, applicant=doc.get("applicant") or {},
    )


def _document_doc(d: CaseDocument) -> dict[str, Any]:
    return asdict(d)


@dataclass(frozen=True)
class PendingPage:
    page: Page[KycCase]
    head: int | None  # a new lower bound of the waiting seqs, when this read found one


class KycCaseRepository(EntityRepository[KycCase]):
    collection_name = "kyc_doc"

    def __init__(self, db: Any, queue: KycQueueRepository) -> None:
        super().__init__(db)
        self.queue = queue  # for the start-up numbering of cases submitted before `queue_seq`

    def to_entity(self, doc: dict[str, Any]) -> KycCase:
        return _from_doc(doc)

    async def ensure_indexes(self) -> None:
        # At most one open case per customer: two first uploads at once end in one case.
        await self.collection.create_index("user_id", name="one_open_case", unique=True,
                                           partialFilterExpression={"status": CaseStatus.OPEN.value})
        await self.collection.create_index([("user_id", ASCENDING), ("created_at", DESCENDING)])
        # The review queue: equalities, then `queue_seq` last, for every filter `pending` sends (the
        # embedded server serves "equalities + one range on the next field" from the range alone).
        for equal in ([], ["risk_rank"], ["documents.type"], ["risk_rank", "documents.type"]):
            await self.collection.create_index([("status", ASCENDING), *[(f, ASCENDING) for f in equal],
                                                ("queue_seq", ASCENDING)])
        for name in _OLD_QUEUE_INDEXES:
            try:
                await self.collection.drop_index(name)
            except OperationFailure:
                pass  # never created here (a new database), or dropped at an earlier start
        # The duplicate check compares only numbers the documents show (`shown_fingerprint`).
        await self.collection.create_index([("documents.shown_fingerprint", ASCENDING), ("status", ASCENDING)])
        for name in _OLD_FINGERPRINT_INDEXES:
            try:
                await self.collection.drop_index(name)
            except OperationFailure:
                pass
        await self._number_legacy_cases()

    async def _number_legacy_cases(self) -> None:
        """Cases submitted before the queue had seqs get them, oldest first, and the counts are
        rebuilt from the cases. Idempotent; with nothing to number (every start after the first)
        it costs one index lookup and one read of the counter."""
        legacy = await self.find_many({"status": CaseStatus.SUBMITTED.value, "queue_seq": None},
                                      sort=[("submitted_at", ASCENDING), ("_id", ASCENDING)])
        if not legacy and await self.queue.has_counts():
            return
        if legacy:
            first = await self.queue.take_seqs(len(legacy))
            for start in range(0, len(legacy), 1000):
                await self.collection.bulk_write([
                    UpdateOne({"_id": doc["_id"], "queue_seq": None}, {"$set": {"queue_seq": first + start + n}})
                    for n, doc in enumerate(legacy[start:start + 1000])])
        await self.queue.set_counts(await self.queue_counts())

    async def queue_counts(self) -> dict[str, int]:
        """The queue's counts as the cases say (for the counter's rebuild)."""
        return counts_from_rows(await self.aggregate(RANK_COUNTS_PIPELINE), await self.aggregate(TYPE_COUNTS_PIPELINE))

    async def _update(self, query: dict[str, Any], update: dict[str, Any], session: Any = None) -> KycCase | None:
        doc = await self.collection.find_one_and_update(query, update, return_document=ReturnDocument.AFTER,
                                                        session=session)
        return _from_doc(doc) if doc else None

    # --- reading ---------------------------------------------------------------------------

    async def latest_for_user(self, user_id: str) -> KycCase | None:
        docs = await self.find_many({"user_id": user_id}, sort=[("created_at", DESCENDING)], limit=1)
        return _from_doc(docs[0]) if docs else None

    async def list_for_user(self, user_id: str) -> list[KycCase]:
        return [_from_doc(d) for d in await self.find_many({"user_id": user_id}, sort=[("created_at", DESCENDING)])]

    async def pending(self, *, risk_level: str | None, document_type: str | None, by_risk: bool,
                      page: PageRequest, queue: QueueState) -> PendingPage:
        """Submitted cases waiting for a decision (oldest first: in `queue_seq` order, which is
        submission order; by risk: High, Medium, Low, then those whose checks still run), with the
        applicant as they were at submission; `total` is the counter's.

        The embedded server decodes every document a query's index lookup returns before it sorts
        and skips, so a page is never one query over the queue: it is read in `queue_seq` windows
        `[lo, lo + width)` from `queue.head`, the width doubling until the page is full, the
        bucket's count is reached or `next_seq` is passed. Each window is equalities then one range
        on the index's next field, which the server answers from that range alone. Deep pages cost
        O(skip), like MongoDB's skip; by risk, whole levels before the page are skipped by count."""
        rank = RISK_RANK[risk_level] if risk_level else None
        total = queue.count(rank, document_type)
        skip, head = page.skip, None
        items: list[dict[str, Any]] = []
        for level in (RANKS if by_risk and rank is None else (rank,)):
            expect = queue.count(level, document_type)
            if expect <= skip:  # nothing of this level (or bucket) is on the page
                skip -= expect
                continue
            docs, seen, first, reached_end = await self._scan(level, document_type, queue, skip,
                                                             page.page_size - len(items), expect)
            items += docs
            skip = max(0, skip - seen)
            if level is None and document_type is None and not by_risk:
                # The first waiting seq of the whole queue, or (none found up to next_seq) next_seq.
                head = first if first is not None else (queue.next_seq if reached_end else None)
            if len(items) >= page.page_size:
                break
        return PendingPage(Page([_from_doc(d) for d in items], total, page.page, page.page_size), head)

    async def _scan(self, rank: int | None, document_type: str | None, queue: QueueState, skip: int, want: int,
                    expect: int) -> tuple[list[dict[str, Any]], int, int | None, bool]:
        """The `want` waiting cases after the first `skip` of one bucket, in seq order. Returns them,
        how many matches were seen (skipped ones included), the first seq seen, and whether the
        scan reached `next_seq`."""
        query: dict[str, Any] = {"status": CaseStatus.SUBMITTED.value}
        if rank is not None:
            query["risk_rank"] = rank
        if document_type:
            query["documents.type"] = document_type
        lo, end = queue.head, queue.next_seq
        # First window: the bucket's density over [head, next_seq) says how wide `skip + want`
        # matches should be; a margin for cases decided since, then doubling for the rest.
        density = min(1.0, max(1, expect) / max(1, end - lo))
        width = max(want, math.ceil((skip + want) / density * 1.25))
        out: list[dict[str, Any]] = []
        seen, first = 0, None
        while lo < end and len(out) < want and seen < expect:
            hi = min(end, lo + width)
            docs = await self.find_many({**query, "queue_seq": {"$gte": lo, "$lt": hi}},
                                        sort=[("queue_seq", ASCENDING)], limit=skip + want - seen)
            if docs and first is None:
                first = int(docs[0]["queue_seq"])
            for doc in docs:
                if seen >= skip:
                    out.append(doc)
                seen += 1
            lo, width = hi, width * 2
        return out, seen, first, lo >= end

    async def duplicate_owners(self, shown_fingerprint: str, user_id: str) -> list[str]:
        """Other customers whose submitted or approved case has a document showing the same number
        (found by its keyed hash). Open cases (nothing vouched for yet) and typed numbers never count."""
        owners = await self.collection.distinct("user_id", {
            "documents.shown_fingerprint": shown_fingerprint, "user_id": {"$ne": user_id},
            "status": {"$in": [CaseStatus.SUBMITTED.value, CaseStatus.APPROVED.value]}})
        return [str(o) for o in owners]

    async def stats(self) -> dict[str, Any]:
        rows = await self.aggregate([{"$facet": {
            "status": [{"$group": {"_id": "$status", "n": {"$sum": 1}}}],
            "risk": [{"$match": {"risk_level": {"$ne": None}}}, {"$group": {"_id": "$risk_level", "n": {"$sum": 1}}}],
        }}])
        facet = rows[0] if rows else {"status": [], "risk": []}
        status_counts = {s.value: 0 for s in CaseStatus}
        status_counts.update({r["_id"]: r["n"] for r in facet["status"]})
        risk_levels = {r.value: 0 for r in RiskLevel}
        risk_levels.update({r["_id"]: r["n"] for r in facet["risk"]})
        return {"total": sum(status_counts.values()), "status_counts": status_counts, "risk_levels": risk_levels}

    # --- the customer's open case ------------------------------------------------------------

    async def open_case(self, user_id: str, now: datetime) -> KycCase:
        """The customer's open case, created on first use (one per customer, even under a race)."""
        existing = await self.collection.find_one({"user_id": user_id, "status": CaseStatus.OPEN.value})
        if existing:
            return _from_doc(existing)
        doc = {"_id": ObjectId(), "user_id": user_id, "status": CaseStatus.OPEN.value,
               "checks_state": ChecksState.NOT_STARTED.value, "created_at": now, "updated_at": now,
               "documents": [], "selfie": None, "checks": []}
        try:
            await self.collection.insert_one(doc)
            return _from_doc(doc)
        except DuplicateKeyError:
            again = await self.collection.find_one({"user_id": user_id, "status": CaseStatus.OPEN.value})
            assert again is not None
            return _from_doc(again)

    def _open(self, case_id: str, user_id: str) -> dict[str, Any]:
        return {"_id": to_object_id(case_id), "user_id": user_id, "status": CaseStatus.OPEN.value}

    async def add_document(self, case_id: str, user_id: str, document: CaseDocument, now: datetime) -> KycCase | None:
        """Adds the document; one of the same type and side is replaced (a better photo)."""
        await self.collection.update_one(self._open(case_id, user_id),
                                         {"$pull": {"documents": {"type": document.type, "side": document.side}}})
        return await self._update(self._open(case_id, user_id),
                                  {"$push": {"documents": _document_doc(document)}, "$set": {"updated_at": now}})

    async def set_selfie(self, case_id: str, user_id: str, selfie: Selfie, now: datetime) -> KycCase | None:
        return await self._update(self._open(case_id, user_id), {"$set": {"selfie": asdict(selfie), "updated_at": now}})

    async def set_corrections(self, case_id: str, user_id: str, document_id: str, corrections: dict[str, Any],
                              now: datetime) -> KycCase | None:
        query = {**self._open(case_id, user_id), "documents.id": document_id}
        doc = await self.collection.find_one_and_update(
            query, {"$set": {"documents.$[d].corrections": corrections, "updated_at": now}},
            array_filters=[{"d.id": document_id}], return_document=ReturnDocument.AFTER)
        return _from_doc(doc) if doc else None

    # --- transitions -----------------------------------------------------------------------

    async def submit(self, case_id: str, user_id: str, applicant: dict[str, Any], now: datetime, queue_seq: int,
                     session: Any = None) -> KycCase | None:
        """`queue_seq`: the case's place in the review queue (`KycQueueRepository.take_seqs`)."""
        return await self._update(self._open(case_id, user_id), {"$set": {
            "status": CaseStatus.SUBMITTED.value, "checks_state": ChecksState.RUNNING.value, "submitted_at": now,
            "updated_at": now, "applicant": applicant, "risk_rank": UNASSESSED, "queue_seq": queue_seq,
        }}, session=session)

    async def record_checks(self, case_id: str, checks: list[Check], assessment: Assessment,
                            now: datetime, session: Any = None) -> KycCase | None:
        """Written once: a retried job finds the checks already DONE and changes nothing."""
        return await self._update(
            {"_id": to_object_id(case_id), "status": CaseStatus.SUBMITTED.value,
             "checks_state": ChecksState.RUNNING.value},
            {"$set": {"checks": [c.as_dict() for c in checks], "overall_score": assessment.overall_score,
                      "risk_level": assessment.risk_level.value, "breakdown": assessment.breakdown,
                      "risk_rank": RISK_RANK[assessment.risk_level.value],
                      "checks_completed_at": now,
                      "checks_state": ChecksState.DONE.value, "updated_at": now}}, session=session)

    async def decide(self, case_id: str, decision: Decision, now: datetime, session: Any = None) -> KycCase | None:
        """Only a submitted case whose checks finished, and never by its own customer."""
        status = CaseStatus.APPROVED if decision.approved else CaseStatus.REJECTED
        return await self._update(
            {"_id": to_object_id(case_id), "status": CaseStatus.SUBMITTED.value,
             "checks_state": ChecksState.DONE.value, "user_id": {"$ne": decision.by}},
            {"$set": {"status": status.value, "decision": asdict(decision), "updated_at": now}}, session=session)
