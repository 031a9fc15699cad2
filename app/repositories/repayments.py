"""`repayments` collection: one record per payment, with how it was allocated across instalments."""

from __future__ import annotations

from dataclasses import asdict
from typing import Any

from bson import ObjectId
from pymongo import ASCENDING

from app.domain.loans import Allocation, Repayment, RepaymentKind
from app.domain.money import ZERO
from app.repositories.base import RepositoryBase


def _from_doc(doc: dict[str, Any]) -> Repayment:
    return Repayment(
        id=str(doc["_id"]), loan_id=doc["loan_id"], user_id=doc["user_id"], kind=RepaymentKind(doc["kind"]),
        amount=doc["amount"],
        allocations=tuple(Allocation(a["instalment"], a["interest"], a["principal"]) for a in doc.get("allocations", [])),
        outstanding_after=doc["outstanding_after"], paid_at=doc["paid_at"], recorded_by=doc["recorded_by"],
        breakdown=doc.get("breakdown") or {}, charges_paid=doc.get("charges_paid", ZERO),
    )


class RepaymentRepository(RepositoryBase):
    collection_name = "repayments"

    async def ensure_indexes(self) -> None:
        await self.collection.create_index([("loan_id", ASCENDING), ("paid_at", ASCENDING), ("_id", ASCENDING)])

    async def add(self, repayment: Repayment) -> Repayment:
        # The record as it is, allocations as {instalment, interest, principal}; the id is the document's.
        doc = {"_id": ObjectId(), **asdict(repayment), "kind": repayment.kind.value}
        del doc["id"]
        await self.collection.insert_one(doc)
        return _from_doc(doc)

    async def for_loan(self, loan_id: str) -> list[Repayment]:
        docs = await self.find_many({"loan_id": loan_id}, sort=[("paid_at", ASCENDING), ("_id", ASCENDING)])
        return [_from_doc(d) for d in docs]
