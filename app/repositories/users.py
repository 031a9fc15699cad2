"""`user` collection: accounts, profiles and their KYC summary."""

from __future__ import annotations

import re
from datetime import datetime
from decimal import Decimal
from typing import Any

from pymongo import ASCENDING, DESCENDING
from pymongo.errors import DuplicateKeyError

from app.domain.errors import Conflict
from app.domain.kyc import DEFAULT_LEVEL
from app.domain.kyc_renewal import Validity
from app.domain.pages import Page, PageRequest
from app.domain.sessions import Session
from app.domain.users import EmploymentDetails, FinancialDetails, KycStatus, Role, User, UserStatus, identifier_kind
from app.repositories.base import EntityRepository, given, to_object_id
from app.repositories.codecs import from_db

MAX_SESSIONS = 20  # live sign-ins kept per user; the oldest is dropped beyond this

_STRING = {"$type": "string"}
# While a case reviews them and once one approved them, name and date of birth are held.
_IDENTITY_HELD = (KycStatus.SUBMITTED.value, KycStatus.APPROVED.value, KycStatus.RESUBMISSION_REQUESTED.value,
                  KycStatus.RE_KYC_DUE.value)
# An update-pipeline stage copying the record's name and date of birth as verified.
_PIN_IDENTITY = {"$set": {"verified_identity": {"name": "$name", "dob": "$profile.dob",
                                                "verified_at": "$kyc_status_updated_at"}}}


_KINDS = ("email", "phone")


def _verified(doc: dict[str, Any]) -> frozenset[str]:
    """Kinds whose own code was verified. Documents written before this was recorded only ever
    verified the primary identifier (email, else phone), and only once the account left pending."""
    if "verified" in doc:
        return frozenset(doc["verified"])
    if doc.get("status") == UserStatus.PENDING_VERIFICATION.value:
        return frozenset()
    return frozenset({"email" if doc.get("email") else "phone"})


def _from_doc(doc: dict[str, Any]) -> User:
    return User(
        id=str(doc["_id"]), name=doc["name"], role=Role(doc["role"]), status=UserStatus(doc["status"]),
        password_hash=doc["password_hash"], created_at=doc["created_at"],
        # A secondary identifier waiting for its code lives under `unverified_<kind>`: outside the
        # unique index, so it never blocks its real owner, who may register with it and verify first.
        email=doc.get("email") or doc.get("unverified_email"), phone=doc.get("phone") or doc.get("unverified_phone"),
        verified=_verified(doc), kyc_status=KycStatus(doc.get("kyc_status", KycStatus.PENDING)),
        # Approved before levels existed: at the level every case was then (the default).
        kyc_level=doc.get("kyc_level", DEFAULT_LEVEL) if doc.get("kyc_status") == KycStatus.APPROVED else None,
        risk_level=doc.get("risk_level"), kyc_score=doc.get("kyc_score"), updated_at=doc.get("updated_at"),
        kyc_status_updated_at=doc.get("kyc_status_updated_at"), kyc_valid_until=doc.get("kyc_valid_until"),
        profile=doc.get("profile") or {},
        profile_risk=doc.get("profile_risk"), financial_details=_financial(doc.get("financial_details")),
        employment_details=doc.get("employment_details"), verified_identity=doc.get("verified_identity"),
    )


_MONEY_FIELDS = ("monthly_income", "monthly_expenses", "existing_emi")


def _financial(stored: dict[str, Any] | None) -> FinancialDetails | None:
    """Amounts as exact Decimals, stored as Decimal128 or, before that, as JSON floats."""
    if not stored:
        return None
    details = FinancialDetails(**{k: from_db(stored.get(k)) or Decimal(0) for k in _MONEY_FIELDS})  # type: ignore[typeddict-item]
    if "credit_score" in stored:
        details["credit_score"] = stored["credit_score"]
    return details


def _session(session_id: str, doc: dict[str, Any]) -> Session:
    return Session(
        id=session_id, user_id=doc["user_id"], refresh_jti=doc["refresh_jti"], created_at=doc["created_at"],
        expires_at=doc["expires_at"], revoked_at=doc.get("revoked_at"), revoked_reason=doc.get("revoked_reason"),
        ip_address=doc.get("ip_address"), user_agent=doc.get("user_agent"), kind=doc.get("kind", "api"),
        secret_hash=doc.get("secret_hash"), last_seen_at=doc.get("last_seen_at"),
    )


class UserRepository(EntityRepository[User]):
    """Accounts, with their sign-in sessions inside (`sessions.<id>`): every authenticated
    request needs both, and one document read is half the cost of two."""

    collection_name = "user"
    to_entity = staticmethod(_from_doc)

    async def ensure_indexes(self) -> None:
        # Email and phone are each optional but unique when present.
        await self.collection.create_index("email", unique=True, partialFilterExpression={"email": _STRING})
        await self.collection.create_index("phone", unique=True, partialFilterExpression={"phone": _STRING})
        # The admin's list: newest first (`created_at`, then `_id`), whole or by role and KYC status.
        await self.collection.create_index([("created_at", DESCENDING), ("_id", DESCENDING)])
        await self.collection.create_index([("role", ASCENDING), ("created_at", DESCENDING), ("_id", DESCENDING)])
        await self.collection.create_index([("kyc_status", ASCENDING), ("created_at", DESCENDING), ("_id", DESCENDING)])
        await self.collection.create_index([("role", ASCENDING), ("kyc_status", ASCENDING), ("created_at", DESCENDING),
                                            ("_id", DESCENDING)])
        await self.collection.create_index([("kyc_status", ASCENDING), ("_id", ASCENDING)])  # and the re-screen's walk
        await self.collection.create_index([("kyc_status", ASCENDING), ("kyc_renewal_at", ASCENDING)])  # re-KYC
        for kind in _KINDS:
            await self.collection.create_index(f"unverified_{kind}", sparse=True)
        await self._move_legacy_claims()
        # Approved before identities were pinned: pin what the record holds now. Idempotent.
        await self.collection.update_many({"kyc_status": KycStatus.APPROVED.value,
                                           "verified_identity": {"$exists": False}}, [_PIN_IDENTITY])

    async def _move_legacy_claims(self) -> None:
        """Documents written before identifiers were verified one by one kept an unverified secondary
        phone in the unique field; move it out (it stays the account's, to confirm) and record
        which identifiers were verified. Idempotent: touches only documents without `verified`."""
        async for doc in self.collection.find({"verified": {"$exists": False}}):
            verified = _verified(doc)
            update: dict[str, Any] = {"$set": {"verified": sorted(verified)}}
            primary = "email" if doc.get("email") else "phone"
            for kind in _KINDS:
                if kind != primary and doc.get(kind) and kind not in verified:
                    update["$set"][f"unverified_{kind}"] = doc[kind]
                    update["$unset"] = {kind: ""}
            await self.collection.update_one({"_id": doc["_id"], "verified": {"$exists": False}}, update)

    async def add(
        self, *, name: str, password_hash: str, role: Role, status: UserStatus, now: datetime,
        email: str | None = None, phone: str | None = None,
    ) -> User:
        """The primary identifier (email, else phone) is held under its unique index; the other is
        stored as an unverified claim. An account created active has its primary verified."""
        primary = "email" if email else "phone"
        doc: dict[str, Any] = {
            "name": name, "password_hash": password_hash, "role": role.value, "status": status.value,
            "kyc_status": KycStatus.PENDING.value, "kyc_status_updated_at": now, "created_at": now, "updated_at": now,
            "verified": [] if status == UserStatus.PENDING_VERIFICATION else [primary],
        }
        for kind, value in (("email", email), ("phone", phone)):
            if value:
                doc[kind if kind == primary else f"unverified_{kind}"] = value
        try:
            result = await self.collection.insert_one(doc)
        except DuplicateKeyError as exc:
            raise Conflict("An account with this email or phone already exists.", code="identifier_taken") from exc
        doc["_id"] = result.inserted_id
        return _from_doc(doc)

    async def claim_loan_book(self, user_id: str) -> None:
        """Write the customer's book version inside a loan change's transaction: two changes to one
        customer's book at once then conflict, and the retried one sees the other's loan (eligibility is
        judged on the whole book, so two loans must never each be judged without the other)."""
        await self.collection.update_one({"_id": to_object_id(user_id)}, {"$inc": {"loan_book_version": 1}})

    async def get_with_session(self, user_id: str, session_id: str) -> tuple[User | None, Session | None]:
        doc = await self.collection.find_one({"_id": to_object_id(user_id)})
        if doc is None:
            return None, None
        raw = (doc.get("sessions") or {}).get(session_id)
        return _from_doc(doc), _session(session_id, raw) if raw else None

    async def _change_sessions(self, user_id: str, plan: Any) -> Any:
        """Read-modify-write of the session map under a revision number: a login and a
        "sign out everywhere" that overlap are applied one after the other, never lost."""
        oid = to_object_id(user_id)
        for _ in range(10):
            doc = await self.collection.find_one({"_id": oid}, {"sessions": 1, "sessions_rev": 1}) if oid else None
            if doc is None:
                return None
            update, result = plan(doc.get("sessions") or {})
            if not update:
                return result
            rev = doc.get("sessions_rev", 0)
            update.setdefault("$set", {})["sessions_rev"] = rev + 1
            rev_filter = {"sessions_rev": rev} if rev else {"sessions_rev": {"$exists": False}}
            if (await self.collection.update_one({"_id": oid, **rev_filter}, update)).modified_count:
                return result
        raise RuntimeError("sessions kept changing; giving up")  # ten collisions in a row: not expected

    async def add_session(self, session: Session, now: datetime) -> None:
        """Store a new session, dropping expired ones and the oldest beyond MAX_SESSIONS."""

        def plan(sessions: dict[str, Any]) -> tuple[dict[str, Any], None]:
            live = sorted(((sid, s) for sid, s in sessions.items() if s["expires_at"] > now),
                          key=lambda item: item[1]["created_at"])
            drop = [sid for sid, s in sessions.items() if s["expires_at"] <= now]
            drop += [sid for sid, _ in live[: max(len(live) - MAX_SESSIONS + 1, 0)]]
            update: dict[str, Any] = {"$set": {f"sessions.{session.id}": {
                "user_id": session.user_id, "refresh_jti": session.refresh_jti, "created_at": session.created_at,
                "expires_at": session.expires_at, "revoked_at": None, "ip_address": session.ip_address,
                "user_agent": session.user_agent,
                **({"kind": session.kind, "secret_hash": session.secret_hash, "last_seen_at": session.last_seen_at}
                   if session.kind != "api" else {}),
            }}}
            if drop:
                update["$unset"] = {f"sessions.{sid}": "" for sid in drop}
            return update, None

        await self._change_sessions(session.user_id, plan)

    async def rotate_session(self, user_id: str, session_id: str, old_jti: str, new_jti: str,
                             expires_at: datetime) -> bool:
        """Swap the refresh token id only if `old_jti` is still the live one (compare-and-set)."""
        key = f"sessions.{session_id}"
        result = await self.collection.update_one(
            {"_id": to_object_id(user_id), f"{key}.refresh_jti": old_jti, f"{key}.revoked_at": None},
            {"$set": {f"{key}.refresh_jti": new_jti, f"{key}.expires_at": expires_at}},
        )
        return result.modified_count == 1

    async def touch_session(self, user_id: str, session_id: str, now: datetime) -> None:
        """Record activity on a live session (the console's idle timeout). Filtered on a live
        expiry, so it never recreates a session that a login dropped meanwhile."""
        key = f"sessions.{session_id}"
        await self.collection.update_one(
            {"_id": to_object_id(user_id), f"{key}.expires_at": {"$gt": now}, f"{key}.revoked_at": None},
            {"$set": {f"{key}.last_seen_at": now}})

    async def revoke_sessions(self, user_id: str, reason: str, now: datetime, *, only: str | None = None,
                              keep: str | None = None) -> int:
        """End one session (`only`) or all of a user's live sessions but `keep`; returns how many."""

        def plan(sessions: dict[str, Any]) -> tuple[dict[str, Any], int]:
            sids = [sid for sid, s in sessions.items()
                    if s.get("revoked_at") is None and sid != keep and (only is None or sid == only)]
            fields: dict[str, Any] = {}
            for sid in sids:
                fields[f"sessions.{sid}.revoked_at"] = now
                fields[f"sessions.{sid}.revoked_reason"] = reason
            return ({"$set": fields} if fields else {}), len(sids)

        return int(await self._change_sessions(user_id, plan) or 0)

    async def get_by_identifier(self, identifier: str) -> User | None:
        """The account holding `identifier` (verified, or a pending account's primary); never one that
        only claims it as an unverified secondary."""
        return await self.find_entity({identifier_kind(identifier): identifier})

    async def identifier_held(self, identifier: str) -> bool:
        return await self.collection.count_documents({identifier_kind(identifier): identifier}, limit=1) > 0

    async def mark_verified(self, user: User, identifier: str, now: datetime, *, activate: bool = False) -> User | None:
        """Record that `identifier`'s own code was verified: a claim moves under the unique index, and
        a pending account may become active. Another account verified it first: the claim is
        dropped and Conflict raised."""
        kind = identifier_kind(identifier)
        update: dict[str, Any] = {"$set": {kind: identifier, "verified": sorted(user.verified | {kind}),
                                           "updated_at": now}, "$unset": {f"unverified_{kind}": ""}}
        query: dict[str, Any] = {"_id": to_object_id(user.id)}
        if activate:
            update["$set"]["status"] = UserStatus.ACTIVE.value
            query["status"] = UserStatus.PENDING_VERIFICATION.value
        try:
            return await self.update_entity(query, update)
        except DuplicateKeyError as exc:
            await self.collection.update_one({"_id": to_object_id(user.id)}, {"$unset": {f"unverified_{kind}": ""}})
            raise Conflict("This email or phone already belongs to another account.",
                           code="identifier_taken") from exc

    async def drop_claims(self, identifier: str, *, winner_id: str) -> list[str]:
        """`identifier` was verified by `winner_id`: drop every other account's unverified claim to it.
        A pending account whose primary it was can never be verified now and is deleted; returns
        the ids of deleted accounts."""
        kind, winner = identifier_kind(identifier), to_object_id(winner_id)
        await self.collection.update_many({f"unverified_{kind}": identifier, "_id": {"$ne": winner}},
                                          {"$unset": {f"unverified_{kind}": ""}})
        deleted: list[str] = []
        async for doc in self.collection.find({kind: identifier, "_id": {"$ne": winner}}):
            holder = _from_doc(doc)
            if holder.is_verified(identifier):
                continue
            if holder.status == UserStatus.PENDING_VERIFICATION and holder.primary_identifier == identifier:
                result = await self.collection.delete_one({"_id": doc["_id"], "status": holder.status.value,
                                                           kind: identifier})
                if result.deleted_count:
                    deleted.append(holder.id)
            else:
                await self.collection.update_one({"_id": doc["_id"], kind: identifier}, {"$unset": {kind: ""}})
        return deleted

    async def _set(self, user_id: str, changes: dict[str, Any], *,
                   expect: dict[str, Any] | None = None) -> User | None:
        """Set fields atomically; `expect` adds conditions (compare-and-set)."""
        return await self.update_entity({"_id": to_object_id(user_id), **(expect or {})}, {"$set": changes})

    # --- named changes (services never build update documents) -----------------------------

    @staticmethod
    def _pending_risk(queued_at: datetime | None) -> dict[str, Any]:
        if queued_at is None:
            return {}
        return {"profile_risk": {"status": "PENDING", "score": None, "level": None, "queued_at": queued_at}}

    async def save_profile(self, user_id: str, *, profile: dict[str, Any], name: str | None, now: datetime,
                           queue_risk_at: datetime | None = None, identity_open: bool = False) -> User | None:
        """Replace the profile (and the name when given); `queue_risk_at` marks a new pending
        risk assessment in the same write. `identity_open`: only while no KYC case is reviewing or
        has approved the name and date of birth (None otherwise)."""
        changes: dict[str, Any] = {"profile": profile, "updated_at": now, **self._pending_risk(queue_risk_at)}
        if name is not None:
            changes["name"] = name
        expect = {"kyc_status": {"$nin": list(_IDENTITY_HELD)}} if identity_open else None
        return await self._set(user_id, changes, expect=expect)

    async def save_details(self, user_id: str, kind: str, details: FinancialDetails | EmploymentDetails,
                           now: datetime, *, queue_risk_at: datetime | None = None) -> User | None:
        """`kind`: `financial_details` or `employment_details`."""
        return await self._set(user_id, {kind: dict(details), "updated_at": now, **self._pending_risk(queue_risk_at)})

    async def finish_profile_risk(self, user_id: str, queued_at: datetime, *, score: int, level: str,
                                  factors: dict[str, int], now: datetime) -> bool:
        """Write the result only while the assessment queued at `queued_at` is still the pending one."""
        return await self._set(user_id, {"profile_risk": {
            "status": "DONE", "score": score, "level": level, "factors": factors, "assessed_at": now,
        }}, expect={"profile_risk.status": "PENDING", "profile_risk.queued_at": queued_at}) is not None

    async def set_password(self, user_id: str, password_hash: str, now: datetime) -> User | None:
        return await self._set(user_id, {"password_hash": password_hash, "updated_at": now})

    async def set_status(self, user_id: str, status: UserStatus, now: datetime) -> User | None:
        return await self._set(user_id, {"status": status.value, "updated_at": now})

    async def names(self, user_ids: list[str]) -> dict[str, str]:
        """Display names of several users in one read (on `_id`), e.g. the customers on a page."""
        ids = [to_object_id(i) for i in user_ids]
        return {str(d["_id"]): d.get("name") or "" async for d in self.collection.find({"_id": {"$in": ids}}, {"name": 1})}

    async def search(self, *, role: str | None = None, kyc_status: str | None = None, q: str | None = None,
                     page: PageRequest = PageRequest()) -> Page[User]:
        query = given({"role": role, "kyc_status": kyc_status})
        if q:
            pattern = {"$regex": re.escape(q), "$options": "i"}
            query["$or"] = [{"name": pattern}, {"email": pattern}, {"phone": pattern}]
        return await self.paginate(query, sort=[("created_at", -1), ("_id", -1)], page=page)

    async def set_kyc_status(self, user_id: str, status: KycStatus, now: datetime, level: str | None = None,
                             validity: Validity | None = None) -> None:
        """The KYC summary follows the case (`kyc_doc` holds the truth); `kyc_status_updated_at` says when it moved;
        `level`, the level an approval verified; `validity`, when it runs out (`kyc_renewal_at`: the job's next step)."""
        changes: dict[str, Any] = {"kyc_status": status.value, "kyc_status_updated_at": now,
                                   **({"kyc_level": level} if level else {}),
                                   **({"kyc_valid_until": validity.until, "kyc_renewal_at": validity.notice_at}
                                      if validity else {})}
        if status == KycStatus.SUBMITTED:  # a new submission: the last case's risk no longer applies
            changes.update(risk_level=None, kyc_score=None)
        update: Any = {"$set": changes}
        if status == KycStatus.APPROVED:
            # The name and date of birth the case verified, pinned in the same write: the record's own
            # values at this instant (held unchanged since the submission: `save_profile`).
            update = [{"$set": changes}, _PIN_IDENTITY]
        await self.collection.update_one({"_id": to_object_id(user_id)}, update)

    # --- periodic re-KYC (app/services/kyc/renewals.py): each step once, filtered on the approval's end ---

    async def renewals_due(self, now: datetime, limit: int) -> list[User]:
        """Approved customers whose notice or expiry is due, the longest due first."""
        return [_from_doc(d) for d in await self.find_many(
            {"kyc_status": KycStatus.APPROVED.value, "kyc_renewal_at": {"$lte": now}},
            sort=[("kyc_renewal_at", ASCENDING)], limit=limit)]

    async def unrenewed(self, limit: int) -> list[User]:
        """Approved before periodic re-KYC: no `kyc_renewal_at` (null matches the missing field in its index)."""
        return [_from_doc(d) for d in await self.find_many(
            {"kyc_status": KycStatus.APPROVED.value, "kyc_renewal_at": None}, limit=limit)]

    async def set_validity(self, user_id: str, validity: Validity) -> None:
        await self.collection.update_one(
            {"_id": to_object_id(user_id), "kyc_status": KycStatus.APPROVED.value, "kyc_renewal_at": None},
            {"$set": {"kyc_valid_until": validity.until, "kyc_renewal_at": validity.notice_at}})

    async def renewal_noticed(self, user: User) -> bool:
        """The notice went out for this approval: its next step is the expiry."""
        until = user.kyc_valid_until
        return (await self.collection.update_one(
            {"_id": to_object_id(user.id), "kyc_status": KycStatus.APPROVED.value, "kyc_valid_until": until,
             "kyc_renewal_at": {"$lt": until}}, {"$set": {"kyc_renewal_at": until}})).modified_count == 1

    async def renewal_due(self, user: User, now: datetime) -> bool:
        return (await self.collection.update_one(
            {"_id": to_object_id(user.id), "kyc_status": KycStatus.APPROVED.value,
             "kyc_valid_until": user.kyc_valid_until},
            {"$set": {"kyc_status": KycStatus.RE_KYC_DUE.value, "kyc_status_updated_at": now}})).modified_count == 1

    async def role_counts(self) -> dict[str, int]:
        counts = await self.count_by("role")
        return {role.value: counts.get((role.value,), 0) for role in Role}

    async def set_kyc_risk(self, user_id: str, risk_level: str, score: int) -> None:
        await self.collection.update_one({"_id": to_object_id(user_id)},
                                         {"$set": {"risk_level": risk_level, "kyc_score": score}})
