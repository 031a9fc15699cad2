"""`kyc_doc` collection: KYC cases, their documents, selfie, checks and decision.

Every transition is one `find_one_and_update` filtered on the state it expects, so of two
racing requests exactly one wins and the other gets None (the service turns that into 409).
Files live in GridFS (`app/repositories/files.py`); document numbers appear here only masked,
fingerprinted and encrypted.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from dataclasses import asdict
from datetime import datetime
from typing import Any

from bson import ObjectId
from pymongo import ASCENDING, DESCENDING, ReturnDocument
from pymongo.errors import DuplicateKeyError

from app.domain.kyc import (
    DEFAULT_LEVEL,
    Assessment,
    CaseDocument,
    CaseStatus,
    Check,
    ChecksState,
    CheckStatus,
    Claim,
    Decision,
    FirstApproval,
    KycCase,
    Redo,
    RiskLevel,
    Round,
    Selfie,
    StepUp,
)
from app.domain.pages import Page, PageRequest
from app.repositories.base import EntityRepository, given, to_object_id

# The by-risk sort's rank of each level; a case whose checks still run sorts after every level.
RISK_RANK = {RiskLevel.HIGH.value: 0, RiskLevel.MEDIUM.value: 1, RiskLevel.LOW.value: 2}
UNASSESSED = len(RISK_RANK)
# The review queue: each filter (level, document type, both, none) x sort (oldest; by risk), as
# ESR keys after `status`: equalities, then the sort, `_id` last as it ends each sort. A level is
# an equality on `risk_rank`, so one key serves it under either sort.
_QUEUE_KEYS = (("submitted_at",), ("risk_rank", "submitted_at"), ("documents.type", "submitted_at"),
               ("documents.type", "risk_rank", "submitted_at"))
# Indexes of earlier versions, dropped at start: the queue's `queue_seq` keys (a page was read in
# seq windows steered by counters in `kyc_queue`), a type key without `_id`, and duplicates matched
# on the kept number, typed or read (a typed number the image did not show could make another
# customer's case a duplicate).
_OLD_INDEXES = ("status_1_queue_seq_1", "status_1_risk_rank_1_queue_seq_1", "status_1_documents.type_1_queue_seq_1",
                "status_1_risk_rank_1_documents.type_1_queue_seq_1", "status_1_documents.type_1_submitted_at_1",
                "documents.number_fingerprint_1")


def _document(d: dict[str, Any]) -> CaseDocument:
    return CaseDocument(
        id=d["id"], type=d["type"], side=d.get("side"), file_id=str(d["file_id"]), content_type=d["content_type"],
        uploaded_at=d["uploaded_at"], fields=d.get("fields") or {}, confidence=d.get("confidence", 0.0),
        validation=d.get("validation") or {}, number_masked=d.get("number_masked"),
        number_fingerprint=d.get("number_fingerprint"), number_encrypted=d.get("number_encrypted"),
        corrections=d.get("corrections") or {},
        shown_fingerprint=d.get("shown_fingerprint"),
    )


def _decision(d: dict[str, Any]) -> Decision:
    """Earlier versions stored one `reason` and `notes` (mailed to the customer); read as reasons and
    as the case file's note."""
    reasons = d.get("reasons")
    if reasons is None:
        reasons = [d["reason"]] if d.get("reason") else []
    return Decision(by=d["by"], role=d["role"], at=d["at"], approved=d["approved"], reasons=list(reasons),
                    internal_note=d.get("internal_note", d.get("notes")), customer_message=d.get("customer_message"),
                    final=d.get("final", False), valid_until=d.get("valid_until"))


def _check(c: dict[str, Any]) -> Check:
    return Check(c["name"], CheckStatus(c["status"]), c["score"], c["detail"], c.get("document_id"),
                 tuple(c.get("other_cases", ())))


def _selfie(s: dict[str, Any] | None) -> Selfie | None:
    return Selfie(**{**s, "file_id": str(s["file_id"])}) if s else None


def _round(r: dict[str, Any]) -> Round:
    return Round(**{**r, "documents": [_document(d) for d in r["documents"]], "selfie": _selfie(r["selfie"]),
                    "checks": [_check(c) for c in r["checks"]], "items": [Redo(**i) for i in r["items"]],
                    "risk_level": RiskLevel(r["risk_level"]) if r.get("risk_level") else None})


def round_doc(r: Round) -> dict[str, Any]:
    return {**asdict(r), "checks": [c.as_dict() for c in r.checks],
            "risk_level": r.risk_level.value if r.risk_level else None}


def _from_doc(doc: dict[str, Any]) -> KycCase:
    selfie = doc.get("selfie")
    decision = doc.get("decision")
    return KycCase(
        id=str(doc["_id"]), user_id=doc["user_id"], status=CaseStatus(doc["status"]),
        checks_state=ChecksState(doc.get("checks_state", ChecksState.NOT_STARTED)),
        created_at=doc["created_at"], updated_at=doc["updated_at"],
        documents=[_document(d) for d in doc.get("documents", [])],
        selfie=_selfie(selfie), checks=[_check(c) for c in doc.get("checks", [])],
        overall_score=doc.get("overall_score"),
        risk_level=RiskLevel(doc["risk_level"]) if doc.get("risk_level") else None,
        breakdown=doc.get("breakdown") or {}, submitted_at=doc.get("submitted_at"),
        checks_completed_at=doc.get("checks_completed_at"),
        decision=_decision(decision) if decision else None, applicant=doc.get("applicant") or {},
        claim=Claim(**doc["claim"]) if doc.get("claim") else None,
        first_approval=FirstApproval(**doc["first_approval"]) if doc.get("first_approval") else None,
        rounds=[_round(r) for r in doc.get("rounds", [])], level=doc.get("level", DEFAULT_LEVEL),
        step_up=StepUp(**{**up, "document_ids": set(up["document_ids"]), "checks": [_check(c) for c in up["checks"]]})
        if (up := doc.get("step_up")) else None,
    )


def _unclaimed_or_held_by(auditor_id: str, now: datetime) -> list[dict[str, Any]]:
    return [{"claim": None}, {"claim.by": auditor_id}, {"claim.until": {"$lte": now}}]


class KycCaseRepository(EntityRepository[KycCase]):
    collection_name = "kyc_doc"
    to_entity = staticmethod(_from_doc)

    async def ensure_indexes(self) -> None:
        # At most one open case per customer: two first uploads at once end in one case.
        await self.collection.create_index("user_id", name="one_open_case", unique=True,
                                           partialFilterExpression={"status": CaseStatus.OPEN.value})
        await self.collection.create_index([("user_id", ASCENDING), ("created_at", DESCENDING)])
        for keys in _QUEUE_KEYS:
            await self.collection.create_index([("status", ASCENDING), *[(k, ASCENDING) for k in keys],
                                                ("_id", ASCENDING)])
        # The face_duplicate index's catch-up: the cases approved since it last looked.
        await self.collection.create_index([("status", ASCENDING), ("decision.at", ASCENDING)])
        # The duplicate check compares only numbers the documents show (`shown_fingerprint`).
        await self.collection.create_index([("documents.shown_fingerprint", ASCENDING), ("status", ASCENDING)])
        await self.drop_old_indexes(_OLD_INDEXES)
        await self.db.drop_collection("kyc_queue")  # the old queue's counters; nothing when already gone

    # --- reading ---------------------------------------------------------------------------

    async def latest_for_user(self, user_id: str) -> KycCase | None:
        return await self.find_entity({"user_id": user_id}, sort=[("created_at", DESCENDING)])

    async def list_for_user(self, user_id: str) -> list[KycCase]:
        return [_from_doc(d) for d in await self.find_many({"user_id": user_id}, sort=[("created_at", DESCENDING)])]

    async def pending(self, *, risk_level: str | None, document_type: str | None, by_risk: bool,
                      page: PageRequest) -> Page[KycCase]:
        """Submitted cases waiting for a decision (oldest first; by risk: High, Medium, Low, then
        those whose checks still run, oldest first within each), with the applicant as they were at
        submission. One page off one of `_QUEUE_KEYS`, and its total."""
        query = given({"status": CaseStatus.SUBMITTED.value, "risk_rank": RISK_RANK[risk_level] if risk_level else None,
                       "documents.type": document_type})
        sort = [("risk_rank", ASCENDING)] if by_risk and not risk_level else []  # one level: nothing to rank
        sort += [("submitted_at", ASCENDING), ("_id", ASCENDING)]
        return await self.paginate(query, sort=sort, page=page)

    async def duplicate_owners(self, shown_fingerprint: str, user_id: str) -> list[str]:
        """Other customers whose submitted or approved case has a document showing the same number
        (found by its keyed hash). Open cases (nothing vouched for yet) and typed numbers never count."""
        owners = await self.collection.distinct("user_id", {
            "documents.shown_fingerprint": shown_fingerprint, "user_id": {"$ne": user_id},
            "status": {"$in": [CaseStatus.SUBMITTED.value, CaseStatus.APPROVED.value]}})
        return [str(o) for o in owners]

    async def approved_faces(self, since: datetime | None, batch: int = 1000) -> AsyncIterator[list[dict[str, Any]]]:
        """Approved cases (decided at or after `since`) with their sealed face embedding if any, oldest
        decision first, in batches of raw records (`_id`, `user_id`, `face`, `decision.at`)."""
        # No `face: {$exists}` here: the embedded engine then scans the collection instead of using the index.
        query: dict[str, Any] = {"status": CaseStatus.APPROVED.value, **({"decision.at": {"$gte": since}} if since else {})}
        chunk: list[dict[str, Any]] = []
        async for doc in self.collection.find(query, {"user_id": 1, "face": 1, "decision.at": 1},
                                              sort=[("decision.at", ASCENDING)], batch_size=batch):
            chunk.append(doc)
            if len(chunk) == batch:
                yield chunk
                chunk = []
        if chunk:
            yield chunk

    async def approved_ids(self, case_ids: list[str]) -> set[str]:
        """Which of these cases are approved and still there (a face match is confirmed before it is named)."""
        ids = [oid for c in case_ids if (oid := to_object_id(c)) is not None]
        return {str(i) for i in await self.collection.distinct("_id", {"_id": {"$in": ids},
                                                                       "status": CaseStatus.APPROVED.value})}

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

    async def open_case(self, user_id: str, now: datetime, level: str = DEFAULT_LEVEL) -> KycCase:
        """The customer's open case, created on first use (one per customer, even under a race)."""
        mine = {"user_id": user_id, "status": CaseStatus.OPEN.value}
        if existing := await self.find_entity(mine):
            return existing
        doc = {"_id": ObjectId(), "user_id": user_id, "status": CaseStatus.OPEN.value,
               "checks_state": ChecksState.NOT_STARTED.value, "created_at": now, "updated_at": now,
               "documents": [], "selfie": None, "checks": [], "level": level}
        try:
            await self.collection.insert_one(doc)
            return _from_doc(doc)
        except DuplicateKeyError:  # another request created it a moment ago
            again = await self.find_entity(mine)
            assert again is not None
            return again

    async def set_level(self, case_id: str, user_id: str, level: str, now: datetime) -> KycCase | None:
        return await self.update_entity({"_id": to_object_id(case_id), "user_id": user_id, "status": CaseStatus.OPEN.value},
                                        {"$set": {"level": level, "updated_at": now}})

    async def carry_over(self, case_id: str, user_id: str, documents: list[CaseDocument], selfie: Selfie | None,
                         step_up: StepUp, now: datetime) -> KycCase | None:
        """A new step-up case takes what it keeps of the approved case, in one write."""
        return await self.update_entity(
            {"_id": to_object_id(case_id), "user_id": user_id, "status": CaseStatus.OPEN.value, "documents": []},
            {"$set": {"documents": [asdict(d) for d in documents], "selfie": asdict(selfie) if selfie else None,
                      "step_up": {**asdict(step_up), "document_ids": sorted(step_up.document_ids),
                                  "checks": [c.as_dict() for c in step_up.checks]}, "updated_at": now}})

    def _open(self, case_id: str, user_id: str) -> dict[str, Any]:
        """Open, or sent back to its customer (the service says what may change then)."""
        return {"_id": to_object_id(case_id), "user_id": user_id,
                "status": {"$in": [CaseStatus.OPEN.value, CaseStatus.RESUBMISSION_REQUESTED.value]}}

    async def replace_document(self, case_id: str, user_id: str, document: CaseDocument,
                               now: datetime) -> tuple[KycCase, list[CaseDocument]] | None:
        """Adds the document in place of any of the same type and side (a better photo), in one update:
        no moment shows the case without either, and the documents it replaced (whose files the
        caller deletes) are exactly those this update removed, read from the case as it was."""
        same_side = {"$and": [{"$eq": ["$$d.type", document.type]},
                              {"$eq": [{"$ifNull": ["$$d.side", None]}, document.side]}]}
        kept = {"$filter": {"input": "$documents", "as": "d", "cond": {"$not": [same_side]}}}
        before = await self.collection.find_one_and_update(
            self._open(case_id, user_id),
            # $literal: what OCR read is data, never an expression (a field value may start with "$").
            [{"$set": {"documents": {"$concatArrays": [kept, [{"$literal": asdict(document)}]]},
                       "updated_at": now}}],
            return_document=ReturnDocument.BEFORE)
        if before is None:
            return None
        case = _from_doc(before)
        replaced = [d for d in case.documents if d.type == document.type and d.side == document.side]
        case.documents = [d for d in case.documents if d not in replaced] + [document]  # as the update did
        case.updated_at = now
        return case, replaced

    async def set_selfie(self, case_id: str, user_id: str, selfie: Selfie, now: datetime) -> KycCase | None:
        return await self.update_entity(self._open(case_id, user_id), {"$set": {"selfie": asdict(selfie), "updated_at": now}})

    async def set_corrections(self, case_id: str, user_id: str, document_id: str, corrections: dict[str, Any],
                              now: datetime) -> KycCase | None:
        query = {**self._open(case_id, user_id), "documents.id": document_id}
        return await self.update_entity(
            query, {"$set": {"documents.$[d].corrections": corrections, "updated_at": now}},
            array_filters=[{"d.id": document_id}])

    # --- transitions -----------------------------------------------------------------------

    async def submit(self, case_id: str, user_id: str, applicant: dict[str, Any], now: datetime,
                     replaced: list[str] | None = None) -> KycCase | None:
        """Submits an open case, or (`replaced` given) a case sent back, recording on its round what was redone."""
        query, changes = self._open(case_id, user_id), {}
        if replaced is not None:
            query["status"] = CaseStatus.RESUBMISSION_REQUESTED.value
            changes = {"rounds.$[last].replaced": replaced, "rounds.$[last].resubmitted_at": now}
        return await self.update_entity(query, {"$set": {
            "status": CaseStatus.SUBMITTED.value, "checks_state": ChecksState.RUNNING.value, "submitted_at": now,
            "updated_at": now, "applicant": applicant, "risk_rank": UNASSESSED, **changes,
        }}, array_filters=[{"last.resubmitted_at": None}] if changes else None)

    async def send_back(self, case_id: str, sent: Round, most: int) -> KycCase | None:
        """A decidable case goes back to its customer with the round kept whole, at most `most` times."""
        return await self.update_entity(
            {"_id": to_object_id(case_id), "status": CaseStatus.SUBMITTED.value, "checks_state": ChecksState.DONE.value,
             "user_id": {"$ne": sent.requested_by}, f"rounds.{most - 1}": {"$exists": False},
             "$or": _unclaimed_or_held_by(sent.requested_by, sent.requested_at)},
            {"$set": {"status": CaseStatus.RESUBMISSION_REQUESTED.value, "claim": None, "first_approval": None,
                      "updated_at": sent.requested_at}, "$push": {"rounds": round_doc(sent)}})

    async def set_valid_until(self, case_id: str, until: datetime) -> None:
        """An approval older than periodic re-KYC given its validity (app/services/kyc/renewals.py)."""
        await self.collection.update_one({"_id": to_object_id(case_id), "status": CaseStatus.APPROVED.value},
                                         {"$set": {"decision.valid_until": until}})

    async def renew(self, case_id: str, sent: Round) -> KycCase | None:
        """An approval that ran out (periodic re-KYC) back to its customer with a round of what to renew; once."""
        return await self.update_entity(
            {"_id": to_object_id(case_id), "status": CaseStatus.APPROVED.value},
            {"$set": {"status": CaseStatus.RESUBMISSION_REQUESTED.value, "updated_at": sent.requested_at},
             "$push": {"rounds": round_doc(sent)}})

    async def record_checks(self, case_id: str, checks: list[Check], assessment: Assessment,
                            now: datetime) -> KycCase | None:
        """Written once: a retried job finds the checks already DONE and changes nothing."""
        return await self.update_entity(
            {"_id": to_object_id(case_id), "status": CaseStatus.SUBMITTED.value,
             "checks_state": ChecksState.RUNNING.value},
            {"$set": {"checks": [c.as_dict() for c in checks], "overall_score": assessment.overall_score,
                      "risk_level": assessment.risk_level.value, "breakdown": assessment.breakdown,
                      "risk_rank": RISK_RANK[assessment.risk_level.value],
                      "checks_completed_at": now,
                      "checks_state": ChecksState.DONE.value, "updated_at": now}})

    async def set_face(self, case_id: str, sealed: dict[str, Any]) -> None:
        """The submitted selfie's face embedding, sealed (app/services/face_duplicates.py)."""
        await self.collection.update_one({"_id": to_object_id(case_id), "status": CaseStatus.SUBMITTED.value},
                                         {"$set": {"face": sealed}})

    async def reopen(self, case_id: str, checks: list[Check], assessment: Assessment, now: datetime) -> KycCase | None:
        """An approved case back in the review queue with `checks` (a watchlist reload found the customer):
        decided again as any case. Only from APPROVED, so a retried job changes nothing."""
        return await self.update_entity(
            {"_id": to_object_id(case_id), "status": CaseStatus.APPROVED.value},
            {"$set": {"status": CaseStatus.SUBMITTED.value, "checks": [c.as_dict() for c in checks],
                      "overall_score": assessment.overall_score, "risk_level": assessment.risk_level.value,
                      "breakdown": assessment.breakdown, "risk_rank": RISK_RANK[assessment.risk_level.value],
                      "checks_completed_at": now, "checks_state": ChecksState.DONE.value, "decision": None,
                      "first_approval": None, "claim": None, "updated_at": now}})

    async def claim(self, case_id: str, claim: Claim) -> KycCase | None:
        """Take (or extend) a submitted case for `claim.by`, unless another auditor's claim is live."""
        return await self.update_entity(
            {"_id": to_object_id(case_id), "status": CaseStatus.SUBMITTED.value,
             "$or": _unclaimed_or_held_by(claim.by, claim.at)},
            {"$set": {"claim": asdict(claim)}})

    async def release(self, case_id: str, auditor_id: str) -> KycCase | None:
        return await self.update_entity({"_id": to_object_id(case_id), "claim.by": auditor_id}, {"$set": {"claim": None}})

    async def approve_first(self, case_id: str, approval: FirstApproval, now: datetime) -> KycCase | None:
        """Four eyes: the first approval, once, on a case its approver may decide; their claim ends with
        it, so that another auditor can take the case for the second."""
        return await self.update_entity(
            {"_id": to_object_id(case_id), "status": CaseStatus.SUBMITTED.value, "checks_state": ChecksState.DONE.value,
             "first_approval": None, "$or": _unclaimed_or_held_by(approval.by, now)},
            {"$set": {"first_approval": asdict(approval), "claim": None, "updated_at": now}})

    async def decide(self, case_id: str, decision: Decision, now: datetime) -> KycCase | None:
        """Only a submitted case whose checks finished, and never by its own customer."""
        status = CaseStatus.APPROVED if decision.approved else CaseStatus.REJECTED
        query: dict[str, Any] = {"_id": to_object_id(case_id), "status": CaseStatus.SUBMITTED.value,
                                 "checks_state": ChecksState.DONE.value, "user_id": {"$ne": decision.by}}
        if decision.role != "system":  # a person decides only a case no other auditor holds
            query["$or"] = _unclaimed_or_held_by(decision.by, now)
        if decision.approved:  # four eyes: never the second approval by the first approver
            query["first_approval.by"] = {"$ne": decision.by}
        return await self.update_entity(query, {"$set": {"status": status.value, "decision": asdict(decision),
                                                          "updated_at": now}})
