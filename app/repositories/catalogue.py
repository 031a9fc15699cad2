"""The lending catalogue: `banks` and `loan_products` (one repository class each).

Money and rates are `Decimal` (stored as `Decimal128` by the repositories' codec; products written
as JSON numbers before read exactly); a product's terms are written and read by the two helpers
below, which loans reuse to keep a snapshot of the terms they were agreed on.
"""

from __future__ import annotations

from dataclasses import asdict
from datetime import datetime
from decimal import Decimal
from typing import Any

from bson import ObjectId
from pymongo import ASCENDING
from pymongo.errors import DuplicateKeyError

from app.domain.catalogue import Bank, BankExists, ProductExists
from app.domain.delinquency import PenalKind, PenalRule
from app.domain.loan_schedule import RepaymentFrequency, ThirdPartyCharge
from app.domain.loans import MIN_PREPAYMENT, LoanProduct, LoanType, RateType
from app.domain.pages import Page, PageRequest
from app.repositories.base import EntityRepository, given, to_object_id
from app.repositories.codecs import from_db

_MONEY_FIELDS = ("min_amount", "max_amount", "annual_interest_rate", "processing_fee_pct", "prepayment_charge_pct",
                 "min_monthly_income", "max_foir")


def product_to_doc(product: LoanProduct) -> dict[str, Any]:
    doc = asdict(product)
    doc.pop("id")
    doc["type"], doc["repayment_frequency"] = product.type.value, product.repayment_frequency.value
    doc["rate_type"] = product.rate_type.value
    if product.penal_charge:
        doc["penal_charge"]["kind"] = product.penal_charge.kind.value
    return doc


def third_party(docs: list[dict[str, Any]] | None) -> tuple[ThirdPartyCharge, ...]:
    return tuple(ThirdPartyCharge(d["name"], from_db(d["amount"])) for d in docs or ())  # type: ignore[arg-type]


def product_from_doc(doc: dict[str, Any], product_id: str | None = None) -> LoanProduct:
    numbers: dict[str, Decimal] = {name: from_db(doc[name]) for name in _MONEY_FIELDS}  # type: ignore[misc]
    return LoanProduct(
        bank_id=doc["bank_id"], name=doc["name"], type=LoanType(doc["type"]),
        min_tenure_months=int(doc["min_tenure_months"]), max_tenure_months=int(doc["max_tenure_months"]),
        repayment_frequency=RepaymentFrequency(doc["repayment_frequency"]), min_age=int(doc["min_age"]),
        max_age=int(doc["max_age"]), max_risk_level=doc.get("max_risk_level", "Medium"),
        active=bool(doc.get("active", True)), id=product_id if product_id is not None else str(doc["_id"]),
        required_kyc_level=doc.get("required_kyc_level"), full_kyc_above=from_db(doc.get("full_kyc_above")),
        rate_type=RateType(doc.get("rate_type", RateType.FIXED)), cooling_off_days=int(doc.get("cooling_off_days", 3)),
        min_prepayment=from_db(doc.get("min_prepayment")) or MIN_PREPAYMENT,
        penal_charge=PenalRule(PenalKind(penal["kind"]), from_db(penal["value"]), from_db(penal.get("cap")))  # type: ignore[arg-type]
        if (penal := doc.get("penal_charge")) else None, third_party_charges=third_party(doc.get("third_party_charges")),
        **numbers,
    )


def _bank(doc: dict[str, Any]) -> Bank:
    return Bank(id=str(doc["_id"]), name=doc["name"], code=doc["code"], active=bool(doc.get("active", True)),
                created_at=doc["created_at"])


class BankRepository(EntityRepository[Bank]):
    collection_name = "banks"
    to_entity = staticmethod(_bank)

    async def ensure_indexes(self) -> None:
        await self.collection.create_index("code", unique=True)

    async def add(self, *, name: str, code: str, active: bool, now: datetime) -> Bank:
        doc = {"_id": ObjectId(), "name": name, "code": code, "active": active, "created_at": now}
        try:
            await self.collection.insert_one(doc)
        except DuplicateKeyError:
            raise BankExists(f"A bank with code {code} already exists.") from None
        return _bank(doc)

    async def by_code(self, code: str) -> Bank | None:
        return await self.find_entity({"code": code})

    async def search(self, *, page: PageRequest) -> Page[Bank]:
        return await self.paginate({}, sort=[("name", ASCENDING), ("_id", ASCENDING)], page=page)

    async def names(self, bank_ids: list[str]) -> dict[str, str]:
        return {bank_id: bank.name for bank_id, bank in (await self.get_many(bank_ids)).items()}


class LoanProductRepository(EntityRepository[LoanProduct]):
    collection_name = "loan_products"
    to_entity = staticmethod(product_from_doc)

    async def ensure_indexes(self) -> None:
        await self.collection.create_index([("bank_id", ASCENDING), ("name", ASCENDING)], unique=True)
        await self.collection.create_index([("active", ASCENDING), ("type", ASCENDING)])

    async def add(self, product: LoanProduct, now: datetime) -> LoanProduct:
        oid = ObjectId()
        try:
            await self.collection.insert_one({"_id": oid, **product_to_doc(product), "created_at": now,
                                              "updated_at": now})
        except DuplicateKeyError:
            raise ProductExists(f"This bank already has a product named {product.name!r}.") from None
        return product_from_doc(product_to_doc(product), str(oid))

    async def replace(self, product_id: str, product: LoanProduct, now: datetime) -> LoanProduct | None:
        """New terms for a product; loans already opened keep the terms they were agreed on."""
        try:
            return await self.update_entity({"_id": to_object_id(product_id)},
                                            {"$set": {**product_to_doc(product), "updated_at": now}})
        except DuplicateKeyError:
            raise ProductExists(f"This bank already has a product named {product.name!r}.") from None

    async def find(self, *, bank_id: str | None = None, name: str | None = None) -> LoanProduct | None:
        return await self.find_entity({"bank_id": bank_id, "name": name})

    async def search(self, *, active_only: bool, type: str | None = None, bank_id: str | None = None,
                     amount: Decimal | None = None, tenure_months: int | None = None,
                     page: PageRequest = PageRequest()) -> Page[LoanProduct]:
        """Products matching every filter given: an amount or a tenure within the product's limits."""
        query = given({"active": True if active_only else None, "type": type, "bank_id": bank_id})
        if amount is not None:
            query["min_amount"] = {"$lte": amount}
            query["max_amount"] = {"$gte": amount}
        if tenure_months is not None:
            query["min_tenure_months"] = {"$lte": tenure_months}
            query["max_tenure_months"] = {"$gte": tenure_months}
        return await self.paginate(query, sort=[("type", ASCENDING), ("annual_interest_rate", ASCENDING),
                                                ("_id", ASCENDING)], page=page)
