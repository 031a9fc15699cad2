"""`user` collection: accounts, profiles and their KYC summary."""

from __future__ import annotations

import re
from datetime import datetime
from typing import Any

from bson import ObjectId
from pymongo import ASCENDING, ReturnDocument
from pymongo.errors import DuplicateKeyError

from app.domain.errors import Conflict
from app.domain.users import KycStatus, Role, User, UserStatus
from app.repositories.base import RepositoryBase, to_object_id

_STRING = {"$type": "string"}


def _from_doc(doc: dict[str, Any]) -> User:
    return User(
        id=str(doc["_id"]),
        name=doc["name"],
        role=Role(doc["role"]),
        status=UserStatus(doc["status"]),
        password_hash=doc["password_hash"],
        created_at=doc["created_at"],
        email=doc.get("email"),
        phone=doc.get("phone"),
        kyc_status=KycStatus(doc.get("kyc_status", KycStatus.PENDING)),
        risk_level=doc.get("risk_level"),
        updated_at=doc.get("updated_at"),
        kyc_updated_at=doc.get("kyc_updated_at"),
        profile=doc.get("profile") or {},
        profile_risk=doc.get("profile_risk"),
        financial_details=doc.get("financial_details"),
        employment_details=doc.get("employment_details"),
    )


class UserRepository(RepositoryBase):
    collection_name = "user"

    async def ensure_indexes(self) -> None:
        # Email and phone are each optional but unique when present.
        await self.collection.create_index("email", unique=True, partialFilterExpression={"email": _STRING})
        await self.collection.create_index("phone", unique=True, partialFilterExpression={"phone": _STRING})
        await self.collection.create_index([("role", ASCENDING), ("created_at", ASCENDING)])
        await self.collection.create_index("kyc_status")

    async def add(
        self, *, name: str, password_hash: str, role: Role, status: UserStatus, now: datetime,
        email: str | None = None, phone: str | None = None,
    ) -> User:
        doc: dict[str, Any] = {
            "name": name, "password_hash": password_hash, "role": role.value, "status": status.value,
            "kyc_status": KycStatus.PENDING.value, "created_at": now, "updated_at": now,
        }
        if email:
            doc["email"] = email
        if phone:
            doc["phone"] = phone
        try:
            result = await self.collection.insert_one(doc)
        except DuplicateKeyError as exc:
            raise Conflict("An account with this email or phone already exists.", code="identifier_taken") from exc
        doc["_id"] = result.inserted_id
        return _from_doc(doc)

    async def get(self, user_id: str) -> User | None:
        oid = to_object_id(user_id)
        doc = await self.collection.find_one({"_id": oid}) if oid else None
        return _from_doc(doc) if doc else None

    async def get_by_identifier(self, identifier: str) -> User | None:
        key = "phone" if identifier.startswith("+") else "email"
        doc = await self.collection.find_one({key: identifier})
        return _from_doc(doc) if doc else None

    async def update(self, user_id: str, changes: dict[str, Any], *, expect: dict[str, Any] | None = None) -> User | None:
        """Set fields atomically; `expect` adds conditions (compare-and-set)."""
        oid = to_object_id(user_id)
        if oid is None:
            return None
        doc = await self.collection.find_one_and_update(
            {"_id": oid, **(expect or {})}, {"$set": changes}, return_document=ReturnDocument.AFTER
        )
        return _from_doc(doc) if doc else None

    async def list(
        self, *, role: str | None = None, kyc_status: str | None = None, q: str | None = None,
        skip: int = 0, limit: int = 20,
    ) -> tuple[list[User], int]:
        query: dict[str, Any] = {}
        if role:
            query["role"] = role
        if kyc_status:
            query["kyc_status"] = kyc_status
        if q:
            pattern = {"$regex": re.escape(q), "$options": "i"}
            query["$or"] = [{"name": pattern}, {"email": pattern}, {"phone": pattern}]
        docs = await self.find_many(query, sort=[("created_at", -1), ("_id", -1)], skip=skip, limit=limit)
        return [_from_doc(d) for d in docs], await self.count(query)

    async def count_by(self, field: str) -> dict[str, int]:
        rows = await self.aggregate([{"$group": {"_id": f"${field}", "n": {"$sum": 1}}}])
        return {str(r["_id"]): int(r["n"]) for r in rows if r["_id"] is not None}

    async def with_pending_profile_risk(self) -> list[str]:
        docs = await self.find_many({"profile_risk.status": "PENDING"})
        return [str(d["_id"]) for d in docs]

    @staticmethod
    def new_id() -> str:
        return str(ObjectId())
