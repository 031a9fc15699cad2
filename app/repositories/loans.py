"""`loans` collection: one document per loan, its schedule inside.

The schedule is not stored row by row: it is a pure function of the terms the loan keeps (amount,
rate, tenure, frequency: `build_schedule`), and 360 rows of amounts cost ~40 ms to write and as
much to read back (mostly `Decimal128` decoding and the embedded server's handling of large
documents), which made an application 20x slower than `GET /users/me`. What is agreed is stored:
the product's terms and the KFS (EMI, total interest, APR...); every read rebuilds the schedule
and checks it against that KFS, so a change in the rounding rules could never silently move a
signed loan (it fails loudly instead). Due dates follow from the disbursal day
(`RepaymentFrequency.due_date`), and what is paid is `schedule_paid`, the sum of the instalment
repayments, allocated again with the domain's `allocate_repayment` (it fills instalments in order,
interest then principal, so one allocation of the sum leaves every row as the payments did).

Every transition is one `find_one_and_update` filtered on the state it expects (and, for a
repayment or a pre-closure request, on the revision it was computed from), so of two racing
requests exactly one wins and the other gets None: the service turns that into 409.
At most one open loan (not rejected, not closed) per customer and product: a unique partial
index on `open`, so two applications at once end in one loan.
"""

from __future__ import annotations

from dataclasses import asdict, replace
from datetime import date, datetime
from decimal import Decimal
from functools import lru_cache
from typing import Any

from bson import ObjectId
from pymongo import ASCENDING, DESCENDING, ReturnDocument
from pymongo.errors import DuplicateKeyError

from app.domain.lending import (
    Closure,
    DuplicateApplication,
    Loan,
    LoanFigures,
    LoanOrigin,
    NextDue,
    OpenInstalment,
    StatusChange,
)
from app.domain.loan_schedule import Instalment, KeyFactStatement, RepaymentFrequency, Schedule, build_schedule
from app.domain.loans import (
    LoanProduct,
    LoanStatus,
    allocate_repayment,
    next_due,
    outstanding,
    outstanding_principal,
)
from app.domain.money import ZERO
from app.domain.pages import Page, PageRequest
from app.repositories.base import EntityRepository, guarded, to_object_id
from app.repositories.catalogue import product_from_doc, product_to_doc
from app.repositories.codecs import date_from_db, date_to_db, from_db

# Disbursed and not yet settled: what is still owed on them counts as outstanding.
_REPAYING = [LoanStatus.DISBURSED.value, LoanStatus.PRE_CLOSURE_REQUESTED.value]
# Every open application and loan: their EMIs count in a new (or approved) loan's FOIR.
_OPEN = [LoanStatus.APPLIED.value, LoanStatus.APPROVED.value, *_REPAYING]


@lru_cache(maxsize=1024)
def _schedule(amount: Decimal, rate: Decimal, tenure_months: int, frequency: RepaymentFrequency) -> Schedule:
    return build_schedule(amount, rate, tenure_months, frequency)  # immutable: safe to share between reads


def _instalments(amount: Decimal, product: LoanProduct, tenure_months: int, kfs: KeyFactStatement,
                 disbursed_on: date | None, paid: Decimal) -> tuple[Instalment, ...]:
    schedule = _schedule(amount, product.annual_interest_rate, tenure_months, product.repayment_frequency)
    if (schedule.emi, schedule.total_interest, len(schedule.instalments)) != (kfs.emi, kfs.total_interest,
                                                                             kfs.instalments):
        raise RuntimeError("the schedule rules no longer give the loan's agreed KFS")  # a defect, never a guess
    rows = schedule.with_due_dates(disbursed_on).instalments if disbursed_on else schedule.instalments
    return allocate_repayment(rows, paid).instalments if paid > 0 else rows


def kfs_to_doc(kfs: KeyFactStatement) -> dict[str, Any]:
    doc = asdict(kfs)
    doc["repayment_frequency"] = kfs.repayment_frequency.value
    return doc


def _kfs(d: dict[str, Any]) -> KeyFactStatement:
    money = {k: d[k] for k in ("principal", "annual_interest_rate", "processing_fee_pct", "processing_fee",
                                     "net_disbursed", "emi", "total_interest", "total_payable", "apr",
                                     "effective_annual_rate")}
    return KeyFactStatement(repayment_frequency=RepaymentFrequency(d["repayment_frequency"]),
                            tenure_months=d["tenure_months"], instalments=d["instalments"], **money)


def _history(d: dict[str, Any]) -> StatusChange:
    return StatusChange(LoanStatus(d["status"]), d["at"], d.get("by"), d.get("note"))


def _change(status: LoanStatus, at: datetime, by: str | None, note: str | None = None) -> dict[str, Any]:
    return {"status": status.value, "at": at, "by": by, "note": note}


def _from_doc(doc: dict[str, Any], *, full: bool = True) -> Loan:
    product = product_from_doc(doc["product"], doc["product_id"])
    disbursed_on = date_from_db(doc.get("disbursed_on"))
    paid = doc.get("schedule_paid", ZERO)
    kfs = _kfs(doc["kfs"])
    summary = None
    if not full:  # for a list: the figures kept beside the loan stand in for its schedule
        due = doc.get("next_due")
        summary = LoanFigures(doc.get("outstanding", ZERO), doc.get("outstanding_principal", ZERO),
                              NextDue(due["number"], date_from_db(due["due_date"]), due["amount"]) if due else None)
    amount = doc["amount"]
    return Loan(
        id=str(doc["_id"]), user_id=doc["user_id"], product_id=doc["product_id"],
        product=product, amount=amount,
        tenure_months=doc["tenure_months"], purpose=doc["purpose"], status=LoanStatus(doc["status"]),
        origin=LoanOrigin(doc.get("origin", LoanOrigin.APPLICATION)), emi=doc["emi"], kfs=kfs,
        instalments=_instalments(amount, product, doc["tenure_months"], kfs, disbursed_on, paid) if full else (),
        summary=summary, schedule_paid=paid, created_at=doc["created_at"],
        updated_at=doc["updated_at"], history=tuple(_history(h) for h in doc.get("history", [])),
        rev=doc.get("rev", 0), paid_total=doc.get("paid_total", ZERO), decided_by=doc.get("decided_by"),
        rejection_reason=doc.get("rejection_reason"), disbursed_on=disbursed_on,
        net_disbursed=doc.get("net_disbursed"), payout_reference=doc.get("payout_reference"),
        preclosure_quote=doc.get("preclosure_quote"),
        closure=Closure(doc["closure"]) if doc.get("closure") else None, closed_at=doc.get("closed_at"),
    )


def _figures(rows: tuple[Instalment, ...], *, owing: bool = True) -> dict[str, Any]:
    """What lists show without reading the schedule: outstanding, and the next instalment due.
    Nothing is owed before the disbursal nor once closed."""
    if not owing:
        return {"outstanding": ZERO, "outstanding_principal": ZERO, "next_due": None}
    due = next_due(rows)
    return {"outstanding": outstanding(rows), "outstanding_principal": outstanding_principal(rows),
            "next_due": {"number": due.number, "due_date": date_to_db(due.due_date), "amount": due.amount_left}
            if due else None}


def _quote_doc(quote: dict[str, Any]) -> dict[str, Any]:
    return {k: v.isoformat() if isinstance(v, date) else v for k, v in quote.items()}


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

    async def _transition(self, query: dict[str, Any], update: dict[str, Any], session: Any = None) -> Loan | None:
        update.setdefault("$inc", {})["rev"] = 1
        doc = await self.collection.find_one_and_update(query, update, return_document=ReturnDocument.AFTER,
                                                        session=session)
        return _from_doc(doc) if doc else None

    @staticmethod
    def _in(loan_id: str, status: LoanStatus, **extra: Any) -> dict[str, Any]:
        return {"_id": to_object_id(loan_id), "status": status.value, **extra}

    # --- writing ---------------------------------------------------------------------------

    async def add(self, loan: Loan, *, session: Any = None) -> Loan:
        """Stores a new loan; `DuplicateApplication` when the customer has this product open already."""
        oid = ObjectId()
        first = loan.history[0] if loan.history else StatusChange(loan.status, loan.created_at, None)
        doc = {
            "_id": oid, "user_id": loan.user_id, "product_id": loan.product_id, "bank_id": loan.product.bank_id,
            "product": product_to_doc(loan.product), "amount": loan.amount,
            "tenure_months": loan.tenure_months, "purpose": loan.purpose, "status": loan.status.value, "open": True,
            "origin": loan.origin.value, "emi": loan.emi, "kfs": kfs_to_doc(loan.kfs),
            **_figures(loan.instalments, owing=False),
            "schedule_paid": ZERO, "paid_total": ZERO, "created_at": loan.created_at, "updated_at": loan.updated_at,
            "history": [_change(first.status, first.at, first.by, first.note)], "rev": 0,
            "decided_by": loan.decided_by,
        }
        try:
            await self.collection.insert_one(doc, session=session)
        except DuplicateKeyError:
            raise DuplicateApplication() from None
        return replace(loan, id=str(oid))  # as stored; reading 360 rows back would cost more than the insert

    async def approve(self, loan_id: str, *, by: str, now: datetime, session: Any = None) -> Loan | None:
        return await self._transition(self._in(loan_id, LoanStatus.APPLIED), {
            "$set": {"status": LoanStatus.APPROVED.value, "decided_by": by, "approved_at": now, "updated_at": now},
            "$push": {"history": _change(LoanStatus.APPROVED, now, by)}}, session)

    async def reject(self, loan_id: str, *, by: str, reason: str, now: datetime, session: Any = None) -> Loan | None:
        return await self._transition(self._in(loan_id, LoanStatus.APPLIED), {
            "$set": {"status": LoanStatus.REJECTED.value, "open": False, "decided_by": by, "rejection_reason": reason,
                     "rejected_at": now, "updated_at": now},
            "$push": {"history": _change(LoanStatus.REJECTED, now, by, reason)}}, session)

    async def disburse(self, loan_id: str, *, by: str, now: datetime, on: date, schedule: tuple[Instalment, ...],
                       net: Decimal, reference: str, session: Any = None) -> Loan | None:
        """Dates the schedule from the disbursal day (`schedule`: the rows so dated, for the figures
        lists show) and records what was paid out, and where."""
        return await self._transition(self._in(loan_id, LoanStatus.APPROVED), {
            "$set": {"status": LoanStatus.DISBURSED.value, "disbursed_at": now, "disbursed_on": date_to_db(on),
                     "net_disbursed": net, "payout_reference": reference, **_figures(schedule),
                     "updated_at": now},
            "$push": {"history": _change(LoanStatus.DISBURSED, now, by, reference)}}, session)

    async def repay(self, loan: Loan, *, schedule: tuple[Instalment, ...], amount: Decimal, owed: Decimal,
                    now: datetime, by: str, session: Any = None) -> Loan | None:
        """Applies a payment computed from `loan` as read; None if it changed since. The last
        instalment paid closes the loan."""
        update: dict[str, Any] = {
            "$set": {"schedule_paid": loan.schedule_paid + amount, **_figures(schedule, owing=owed != 0),
                     "paid_total": loan.paid_total + amount, "updated_at": now}}
        if owed == 0:
            update["$set"].update(status=LoanStatus.CLOSED.value, open=False, closure=Closure.REPAID.value,
                                  closed_at=now)
            update["$push"] = {"history": _change(LoanStatus.CLOSED, now, by, Closure.REPAID.value)}
        return await self._transition(self._in(loan.id, LoanStatus.DISBURSED, rev=loan.rev), update, session)

    async def request_preclosure(self, loan: Loan, *, quote: dict[str, Any], by: str, now: datetime) -> Loan | None:
        return await self._transition(self._in(loan.id, LoanStatus.DISBURSED, rev=loan.rev, user_id=loan.user_id), {
            "$set": {"status": LoanStatus.PRE_CLOSURE_REQUESTED.value, "preclosure_quote": _quote_doc(quote),
                     "preclosure_requested_at": now, "updated_at": now},
            "$push": {"history": _change(LoanStatus.PRE_CLOSURE_REQUESTED, now, by)}})

    async def close_preclosed(self, loan: Loan, *, quote: dict[str, Any], amount: Decimal, by: str, now: datetime,
                              session: Any = None) -> Loan | None:
        return await self._transition(self._in(loan.id, LoanStatus.PRE_CLOSURE_REQUESTED, rev=loan.rev), {
            "$set": {"status": LoanStatus.CLOSED.value, "open": False, "closure": Closure.PRE_CLOSED.value,
                     "closed_at": now, "preclosure_quote": _quote_doc(quote), **_figures((), owing=False),
                     "paid_total": loan.paid_total + amount, "updated_at": now},
            "$push": {"history": _change(LoanStatus.CLOSED, now, by, Closure.PRE_CLOSED.value)}}, session)

    async def claim_notice(self, loan_id: str, key: str) -> bool:
        """True once per notice key: the caller may send it. The last 20 keys are kept, far more than
        the notices a retried job could overlap."""
        result = await self.collection.update_one({"_id": to_object_id(loan_id), "notices": {"$ne": key}},
                                                  {"$push": {"notices": {"$each": [key], "$slice": -20}}})
        return bool(result.modified_count)

    # --- reading ---------------------------------------------------------------------------

    async def search(self, *, status: str | None = None, product_id: str | None = None, user_id: str | None = None,
                     page: PageRequest = PageRequest(), full: bool = False) -> Page[Loan]:
        """Newest first; `full` rebuilds each loan's schedule (lists show the stored figures)."""
        query: dict[str, Any] = {}
        for name, value in (("status", status), ("product_id", product_id), ("user_id", user_id)):
            if value:
                query[name] = value

        async def run() -> list[dict[str, Any]]:
            cursor = self.collection.find(query).sort([("created_at", DESCENDING), ("_id", DESCENDING)])
            cursor = cursor.skip(page.skip).limit(page.page_size)
            return [doc async for doc in cursor]

        docs = await guarded(run, read=True)
        return Page([_from_doc(d, full=full) for d in docs], await self.count(query), page.page, page.page_size)

    async def open_loans(self, user_id: str) -> list[OpenInstalment]:
        """The customer's open applications and loans (applied, approved or running): each may end in
        instalments to pay, so each counts in eligibility. Only their EMIs are read."""
        async def run() -> list[dict[str, Any]]:
            cursor = self.collection.find({"user_id": user_id, "status": {"$in": _OPEN}},
                                          {"emi": 1, "product.repayment_frequency": 1})
            return [doc async for doc in cursor]

        return [OpenInstalment(str(d["_id"]), d["emi"], RepaymentFrequency(d["product"]["repayment_frequency"]))
                for d in await guarded(run, read=True)]

    # --- figures ---------------------------------------------------------------------------

    async def stats(self) -> dict[str, Any]:
        """`{total, status_counts, disbursed_amount}` for `GET /admin/stats`."""
        rows = await self.aggregate([{"$facet": {
            "status": [{"$group": {"_id": "$status", "n": {"$sum": 1}}}],
            "disbursed": [{"$match": {"disbursed_at": {"$ne": None}}},
                          {"$group": {"_id": None, "amount": {"$sum": "$amount"}}}],
        }}])
        facet = rows[0] if rows else {"status": [], "disbursed": []}
        counts = {s.value: 0 for s in LoanStatus}
        counts.update({r["_id"]: r["n"] for r in facet["status"]})
        disbursed = from_db(facet["disbursed"][0]["amount"]) if facet["disbursed"] else ZERO
        return {"total": sum(counts.values()), "status_counts": counts, "disbursed_amount": disbursed}

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

        def total(name: str) -> dict[str, Any]:
            found = facet.get(name) or []
            return {"count": found[0]["count"], "amount": from_db(found[0]["amount"])} if found else \
                {"count": 0, "amount": ZERO}

        by_status = {s.value: {"count": 0, "amount": ZERO} for s in LoanStatus}
        by_status.update({r["_id"]: {"count": r["count"], "amount": from_db(r["amount"])} for r in facet.get("status", [])})
        disbursed = total("disbursed")
        disbursed["net_amount"] = from_db(facet["disbursed"][0]["net"]) if facet.get("disbursed") else ZERO
        return {
            "by_status": by_status, "disbursed": disbursed, "outstanding": total("outstanding"),
            "by_product": [{"product_id": r["_id"], "name": r["name"], "type": r["type"], "count": r["count"],
                            "amount": from_db(r["amount"])} for r in facet.get("product", [])],
            "applied_by_day": {r["_id"]: {"count": r["count"], "amount": from_db(r["amount"])}
                               for r in facet.get("applied", [])},
            "disbursed_by_day": {r["_id"]: {"count": r["count"], "amount": from_db(r["amount"])}
                                 for r in facet.get("paid_out", [])},
        }
