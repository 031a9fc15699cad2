"""`loans` collection: one document per loan.

The schedule is not stored row by row: it is a pure function of the terms the loan keeps, and 360
rows cost ~40 ms to write and read back. What is agreed is stored (the product's terms, the KFS,
`schedule_paid`); a full read rebuilds the schedule (`Loan.with_schedule`, checked against the KFS).
The figures lists show (outstanding, next due) are the loan's own, stored beside it.

Every change is one `update_one` filtered on the state and revision the new state was
computed from (`save`), so of two racing requests exactly one wins and the other gets None: the
service turns that into 409. At most one open loan (not rejected, not closed) per customer and
product: a unique partial index on `open`, so two applications at once end in one loan.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from dataclasses import asdict, replace
from datetime import date, datetime
from typing import Any

from bson import ObjectId
from pymongo import ASCENDING, DESCENDING
from pymongo.errors import DuplicateKeyError

from app.domain.delinquency import Arrears, Charge, ClassChange, LoanClass
from app.domain.loan_schedule import KeepTerm, KeyFactStatement, RepaymentFrequency, ScheduleVersion
from app.domain.loans import (
    Closure,
    DuplicateApplication,
    KfsAcceptance,
    Loan,
    LoanFigures,
    LoanOrigin,
    LoanStatus,
    NextDue,
    OpenInstalment,
    StatusChange,
)
from app.domain.money import ZERO
from app.domain.pages import Page, PageRequest
from app.repositories.base import EntityRepository, given, guarded, to_object_id
from app.repositories.catalogue import product_from_doc, product_to_doc, third_party
from app.repositories.codecs import date_from_db, date_to_db, from_db

# Disbursed and not yet settled: what is still owed on them counts as outstanding.
_REPAYING = [status.value for status in LoanStatus if status.is_running]
# Every open application and loan: their EMIs count in a new (or approved) loan's FOIR.
_OPEN = [LoanStatus.APPLIED.value, LoanStatus.APPROVED.value, *_REPAYING]
# When a loan entered a state, beside its history (`disbursed_at` serves the statistics).
_ENTERED = {LoanStatus.APPROVED: "approved_at", LoanStatus.REJECTED: "rejected_at",
            LoanStatus.DISBURSED: "disbursed_at", LoanStatus.PRE_CLOSURE_REQUESTED: "preclosure_requested_at"}


def _kfs(d: dict[str, Any]) -> KeyFactStatement:
    return KeyFactStatement(**{**d, "repayment_frequency": RepaymentFrequency(d["repayment_frequency"]),
                               "third_party_charges": third_party(d.get("third_party_charges"))})


def _acceptance(d: dict[str, Any] | None) -> KfsAcceptance | None:
    if not d:
        return None
    return KfsAcceptance(**{**d, "issued_on": date_from_db(d["issued_on"]), "valid_until": date_from_db(d["valid_until"])})


def _history(d: dict[str, Any]) -> StatusChange:
    return StatusChange(LoanStatus(d["status"]), d["at"], d.get("by"), d.get("note"))


def _change(change: StatusChange) -> dict[str, Any]:
    return {"status": change.status.value, "at": change.at, "by": change.by, "note": change.note}


def _arrears_to_doc(a: Arrears) -> dict[str, Any]:
    return {"loan_class": a.loan_class.value, "overdue": a.overdue, "reminded": a.reminded, "charges_due": a.charges_due,
            "charges": [{**asdict(c), "charged_on": date_to_db(c.charged_on)} for c in a.charges],
            "history": [{"loan_class": h.loan_class.value, "on": date_to_db(h.on), "days_past_due": h.days_past_due}
                        for h in a.history]}


def _arrears(d: dict[str, Any] | None) -> Arrears:
    if not d:
        return Arrears()
    return Arrears(LoanClass(d["loan_class"]), d["overdue"], tuple(
        Charge(c["instalment"], date_from_db(c["charged_on"]), c["amount"], c["paid"],  # type: ignore[arg-type]
               c.get("waived", ZERO))
        for c in d["charges"]), tuple(ClassChange(LoanClass(h["loan_class"]), date_from_db(h["on"]), h["days_past_due"])  # type: ignore[arg-type]
                                      for h in d["history"]), d.get("reminded"))


def _version(d: dict[str, Any]) -> ScheduleVersion:
    return ScheduleVersion(**{**d, "on": date_from_db(d["on"]), "keep": KeepTerm(d["keep"])})


def _from_doc(doc: dict[str, Any], *, full: bool = True) -> Loan:
    """`full` asks the loan to rebuild its schedule; a list reads the figures stored beside it instead."""
    due = doc.get("next_due")
    loan = Loan(
        id=str(doc["_id"]), user_id=doc["user_id"], product_id=doc["product_id"],
        product=product_from_doc(doc["product"], doc["product_id"]), amount=doc["amount"],
        tenure_months=doc["tenure_months"], purpose=doc["purpose"], status=LoanStatus(doc["status"]),
        origin=LoanOrigin(doc.get("origin", LoanOrigin.APPLICATION)), emi=doc["emi"], kfs=_kfs(doc["kfs"]),
        instalments=(), created_at=doc["created_at"], updated_at=doc["updated_at"],
        history=tuple(_history(h) for h in doc.get("history", [])), rev=doc.get("rev", 0),
        paid_total=doc.get("paid_total", ZERO), schedule_paid=doc.get("schedule_paid", ZERO),
        listed=LoanFigures(doc.get("outstanding", ZERO), doc.get("outstanding_principal", ZERO),
                           NextDue(due["number"], date_from_db(due["due_date"]), due["amount"]) if due else None),
        decided_by=doc.get("decided_by"), rejection_reason=doc.get("rejection_reason"),
        disbursed_on=date_from_db(doc.get("disbursed_on")), net_disbursed=doc.get("net_disbursed"),
        payout_reference=doc.get("payout_reference"), preclosure_quote=doc.get("preclosure_quote"),
        closure=Closure(doc["closure"]) if doc.get("closure") else None, closed_at=doc.get("closed_at"),
        arrears=_arrears(doc.get("arrears")), kfs_acceptance=_acceptance(doc.get("kfs_acceptance")), schedule_versions=tuple(_version(v) for v in doc.get("schedule_versions", [])),
    )
    return loan.with_schedule() if full else loan


def _figures(loan: Loan) -> dict[str, Any]:
    figures = loan.figures
    due = figures.next_due
    return {"outstanding": figures.outstanding, "outstanding_principal": figures.outstanding_principal,
            "next_due": {"number": due.number, "due_date": date_to_db(due.due_date), "amount": due.amount}
            if due else None}


def _state(loan: Loan) -> dict[str, Any]:
    """What a change may move, as stored."""
    return {
        "status": loan.status.value, "open": not loan.status.is_final, "decided_by": loan.decided_by,
        "rejection_reason": loan.rejection_reason, "disbursed_on": date_to_db(loan.disbursed_on),
        "net_disbursed": loan.net_disbursed, "payout_reference": loan.payout_reference,
        "preclosure_quote": loan.preclosure_quote,
        "closure": loan.closure.value if loan.closure else None, "closed_at": loan.closed_at,
        "schedule_paid": loan.schedule_paid, "paid_total": loan.paid_total, "updated_at": loan.updated_at,
        "arrears": _arrears_to_doc(loan.arrears), **_figures(loan), "emi": loan.emi,
        "kfs_acceptance": {**asdict(a), "issued_on": date_to_db(a.issued_on), "valid_until": date_to_db(a.valid_until)}
        if (a := loan.kfs_acceptance) else None,
        "schedule_versions": [{**asdict(v), "on": date_to_db(v.on), "keep": v.keep.value} for v in loan.schedule_versions],
    }


class LoanRepository(EntityRepository[Loan]):
    collection_name = "loans"

    def to_entity(self, doc: dict[str, Any]) -> Loan:
        return _from_doc(doc)

    async def ensure_indexes(self) -> None:
        await self.collection.create_index([("user_id", ASCENDING), ("product_id", ASCENDING)],
                                           name="one_open_loan_per_product", unique=True,
                                           partialFilterExpression={"open": True})
        # Pages sort by `created_at`, then `_id` (a stable order): both keys, or MongoDB sorts in memory.
        await self.collection.create_index([("user_id", ASCENDING), ("created_at", DESCENDING), ("_id", DESCENDING)])
        await self.collection.create_index([("status", ASCENDING), ("created_at", DESCENDING), ("_id", DESCENDING)])
        await self.collection.create_index([("product_id", ASCENDING), ("created_at", DESCENDING),
                                            ("_id", DESCENDING)])
        await self.collection.create_index([("created_at", DESCENDING), ("_id", DESCENDING)])  # the whole book
        await self.collection.create_index([("user_id", ASCENDING), ("status", ASCENDING)])  # `open_loans`
        await self.collection.create_index("disbursed_at", sparse=True)
        await self.collection.create_index([("status", ASCENDING), ("_id", ASCENDING), ("next_due.due_date", ASCENDING)])
        await self.collection.create_index([("arrears.loan_class", ASCENDING), ("status", ASCENDING),
                                            ("created_at", DESCENDING), ("_id", DESCENDING)])
        # A class lists running loans (`status` $in) since this version: the index without `status` goes.
        await self.drop_old_indexes(("arrears.loan_class_1_created_at_-1__id_-1",))

    # --- writing ---------------------------------------------------------------------------

    async def add(self, loan: Loan) -> Loan:
        """Stores a new loan; `DuplicateApplication` when the customer has this product open already."""
        oid = ObjectId()
        first = loan.history[0] if loan.history else StatusChange(loan.status, loan.created_at, None)
        doc = {
            "_id": oid, "user_id": loan.user_id, "product_id": loan.product_id, "bank_id": loan.product.bank_id,
            "product": product_to_doc(loan.product), "amount": loan.amount, "tenure_months": loan.tenure_months,
            "purpose": loan.purpose, "origin": loan.origin.value, "emi": loan.emi,
            "kfs": {**asdict(loan.kfs), "repayment_frequency": loan.kfs.repayment_frequency.value},
            "created_at": loan.created_at, "history": [_change(first)], "rev": 0, **_state(loan),
        }
        try:
            await self.collection.insert_one(doc)
        except DuplicateKeyError:
            raise DuplicateApplication() from None
        return replace(loan, id=str(oid))  # as stored; reading 360 rows back would cost more than the insert

    async def save(self, before: Loan, after: Loan) -> Loan | None:
        """Writes `after`, a change the domain computed from `before`, if the stored loan is still
        `before` (same state and revision); None if it changed since. Only what moved is set."""
        old, new = _state(before), _state(after)
        update: dict[str, Any] = {"$set": {k: v for k, v in new.items() if old[k] != v}, "$inc": {"rev": 1}}
        added = after.history[len(before.history):]
        if added:
            update["$push"] = {"history": {"$each": [_change(h) for h in added]}}
            update["$set"].update({_ENTERED[h.status]: h.at for h in added if h.status in _ENTERED})
        # The stored loan is now `after` at the next revision: nothing to read back (a findAndModify would
        # return, and `_from_doc` rebuild, the loan the domain just computed).
        result = await self.collection.update_one(
            {"_id": to_object_id(before.id), "status": before.status.value, "rev": before.rev}, update)
        return replace(after, rev=before.rev + 1) if result.matched_count else None

    # --- reading ---------------------------------------------------------------------------

    async def search(self, *, status: str | None = None, product_id: str | None = None, user_id: str | None = None,
                     loan_class: str | None = None, page: PageRequest = PageRequest()) -> Page[Loan]:
        """Newest first, each loan with the figures stored beside it: a list rebuilds no schedule."""
        query = given({"status": status, "product_id": product_id, "user_id": user_id,
                       "arrears.loan_class": loan_class})
        if loan_class and not status:  # a class is a running loan's: not an application's, nor a closed loan's
            query["status"] = {"$in": _REPAYING}
        docs = await self.find_many(query, sort=[("created_at", DESCENDING), ("_id", DESCENDING)], skip=page.skip,
                                    limit=page.page_size)
        return Page([_from_doc(d, full=False) for d in docs], await self.count(query), page.page, page.page_size)

    async def open_loans(self, user_id: str) -> list[OpenInstalment]:
        """The customer's open applications and loans (applied, approved or running): each may end in
        instalments to pay, so each counts in eligibility. Only their EMIs are read."""
        async def run() -> list[dict[str, Any]]:
            cursor = self.collection.find({"user_id": user_id, "status": {"$in": _OPEN}},
                                          {"emi": 1, "product.repayment_frequency": 1})
            return [doc async for doc in cursor]

        return [OpenInstalment(str(d["_id"]), d["emi"], RepaymentFrequency(d["product"]["repayment_frequency"]))
                for d in await guarded(run, read=True)]

    async def due_for_review(self, until: date, batch: int) -> AsyncIterator[list[Loan]]:
        """Running loans whose oldest unpaid instalment is due by `until` (the late ones too), by id, `batch` at
        a time from one cursor (one query and its getMores, not a query a page)."""
        query = {"status": {"$in": _REPAYING}, "next_due.due_date": {"$lte": date_to_db(until)}}
        loans: list[Loan] = []
        cursor = self.collection.find(query, sort=[("_id", ASCENDING)], batch_size=batch)
        try:
            async for doc in cursor:
                loans.append(_from_doc(doc))
                if len(loans) == batch:
                    yield loans
                    loans = []
            if loans:
                yield loans
        finally:  # a run that fails midway frees its server cursor now, not after the server's idle timeout
            await cursor.close()

    # --- figures ---------------------------------------------------------------------------

    async def statistics(self, since: datetime) -> dict[str, Any]:
        """By status (count, amount), disbursed and outstanding totals, by product, and per day
        since `since` (applications opened and amounts disbursed), in one pipeline."""
        day = {"$dateToString": {"format": "%Y-%m-%d", "date": "$created_at"}}
        paid_day = {"$dateToString": {"format": "%Y-%m-%d", "date": "$disbursed_at"}}
        rows = await self.aggregate([{"$facet": {
            "status": [{"$group": {"_id": "$status", "count": {"$sum": 1}, "amount": {"$sum": "$amount"}}}],
            "disbursed": [{"$match": {"disbursed_at": {"$ne": None}}},
                          {"$group": {"_id": None, "count": {"$sum": 1}, "amount": {"$sum": "$amount"},
                                      "net": {"$sum": "$net_disbursed"}}}],
            "outstanding": [{"$match": {"status": {"$in": _REPAYING}}},
                            {"$group": {"_id": None, "count": {"$sum": 1}, "amount": {"$sum": "$outstanding"}}}],
            "arrears": [{"$match": {"status": {"$in": _REPAYING}}},
                        {"$group": {"_id": "$arrears.loan_class", "count": {"$sum": 1}, "amount": {"$sum": "$outstanding"},
                                    "overdue": {"$sum": "$arrears.overdue"},
                                    "charges_due": {"$sum": "$arrears.charges_due"}}}],
            "product": [{"$group": {"_id": "$product_id", "name": {"$first": "$product.name"},
                                    "type": {"$first": "$product.type"}, "count": {"$sum": 1},
                                    "amount": {"$sum": "$amount"}}},
                        {"$sort": {"count": -1, "_id": 1}}],
            "applied": [{"$match": {"created_at": {"$gte": since}}},
                        {"$group": {"_id": day, "count": {"$sum": 1}, "amount": {"$sum": "$amount"}}}],
            "paid_out": [{"$match": {"disbursed_at": {"$gte": since}}},
                         {"$group": {"_id": paid_day, "count": {"$sum": 1}, "amount": {"$sum": "$amount"}}}],
        }}])
        facet = rows[0] if rows else {}

        def per(name: str) -> dict[Any, dict[str, Any]]:  # {_id: {count, amount}} of one facet's groups
            return {r["_id"]: {"count": r["count"], "amount": from_db(r["amount"])} for r in facet.get(name, [])}

        nothing = {"count": 0, "amount": ZERO}
        # The book by class (app/domain/delinquency.py): count, outstanding, overdue and penal charges due.
        by_class: dict[str, dict[str, Any]] = {c.value: {**nothing, "overdue": ZERO, "charges_due": ZERO}
                                               for c in LoanClass}
        for r in facet.get("arrears", []):
            row = by_class[r["_id"] or LoanClass.CURRENT.value]
            for key in ("count", "amount", "overdue", "charges_due"):
                row[key] += r[key] if key == "count" else from_db(r[key]) or ZERO
        net = from_db(facet["disbursed"][0]["net"]) if facet.get("disbursed") else ZERO
        return {
            "by_status": {s.value: nothing for s in LoanStatus} | per("status"),
            "disbursed": {**per("disbursed").get(None, nothing), "net_amount": net},
            "outstanding": per("outstanding").get(None, nothing),
            "by_product": [{"product_id": r["_id"], "name": r["name"], "type": r["type"], "count": r["count"],
                            "amount": from_db(r["amount"])} for r in facet.get("product", [])],
            "applied_by_day": per("applied"), "disbursed_by_day": per("paid_out"), "by_class": by_class,
        }
