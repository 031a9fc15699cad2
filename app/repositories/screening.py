"""Watchlists: `screening_lists` (one record a list: the version in force, when and from what it was
loaded) and `screening_entries` (every entry of every version, with its blocking keys).

A load writes a new version's entries beside the one in force, then moves the list's `version` in
one write: screening reads the entries of the versions in force only, so a reader sees the old list
or the new one, never half of each. Older versions are deleted after the switch."""

from __future__ import annotations

import asyncio
from collections.abc import Iterable
from typing import Any

from pymongo import ASCENDING, ReturnDocument

from app.domain.screening import Entry
from app.repositories.base import RepositoryBase, guarded

Candidate = tuple[str, int, Entry]


def version_key(name: str, version: int) -> str:
    return f"{name}@{version}"


def entry_doc(name: str, version: int, entry: Entry, keys: list[str], changed: bool) -> dict[str, Any]:
    return {"version": version_key(name, version), "list": name, "n": version, "entry_id": entry.id,
            "names": list(entry.names), "schema": entry.schema, "birth_dates": list(entry.birth_dates),
            "countries": list(entry.countries), "program": entry.program, "digest": entry.digest(), "keys": keys,
            "changed": changed}


def _candidate(doc: dict[str, Any]) -> Candidate:
    return doc["list"], doc["n"], Entry(doc["entry_id"], tuple(doc["names"]), doc["schema"],
                                        tuple(doc["birth_dates"]), tuple(doc["countries"]), doc["program"])


class WatchlistRepository(RepositoryBase):
    collection_name = "screening_lists"  # bounded: one record per list an operator loads

    async def all(self) -> list[dict[str, Any]]:
        """The lists in force (a list whose first load has not switched yet has no `version`)."""
        return [d for d in await self.find_many({}) if d.get("version")]

    async def get(self, name: str) -> dict[str, Any] | None:
        return await self.collection.find_one({"_id": name})

    async def reserve_version(self, name: str) -> int:
        """A version number no other load of this list gets, even two at once."""
        doc = await self.collection.find_one_and_update({"_id": name}, {"$inc": {"next_version": 1}}, upsert=True,
                                                         return_document=ReturnDocument.AFTER)
        return int(doc["next_version"])

    async def switch(self, name: str, version: int, info: dict[str, Any]) -> None:
        """The one write that puts `version` in force; never back to an older one (a load that lost a race)."""
        await self.collection.update_one({"_id": name, "$or": [{"version": None}, {"version": {"$lt": version}}]},
                                         {"$set": {"version": version, **info}})


class WatchlistEntryRepository(RepositoryBase):
    collection_name = "screening_entries"

    async def ensure_indexes(self) -> None:
        await self.collection.create_index([("version", ASCENDING), ("keys", ASCENDING)])  # screening; a version's digests
        await self.collection.create_index([("version", ASCENDING), ("changed", ASCENDING)])  # the re-screen
        await self.collection.create_index([("list", ASCENDING), ("n", ASCENDING)])  # older versions deleted

    async def insert(self, docs: list[dict[str, Any]]) -> None:
        if docs:
            await self.collection.insert_many(docs, ordered=False)

    async def _find(self, query: dict[str, Any], projection: dict[str, int] | None = None) -> list[dict[str, Any]]:
        async def run() -> list[dict[str, Any]]:
            return [doc async for doc in self.collection.find(query, projection)]

        return await guarded(run, read=True)

    async def digests(self, name: str, version: int) -> dict[str, str]:
        docs = await self._find({"version": version_key(name, version)}, {"entry_id": 1, "digest": 1})
        return {d["entry_id"]: d["digest"] for d in docs}

    async def candidates(self, versions: Iterable[str], keys: list[str]) -> list[Candidate]:
        """The entries of the versions in force that share a blocking key with the person: one query a
        list, on equality (a `$in` on both fields made the embedded engine scan the collection)."""
        found = await asyncio.gather(*(self._find({"version": v, "keys": {"$in": keys}}, {"keys": 0}) for v in versions))
        return [_candidate(d) for docs in found for d in docs]

    async def changed(self, name: str, version: int) -> list[tuple[Candidate, list[str]]]:
        """A version's entries that the one before it did not have as they are, with their keys."""
        docs = await self._find({"version": version_key(name, version), "changed": True})
        return [(_candidate(d), d["keys"]) for d in docs]

    async def drop_older(self, name: str, version: int) -> None:
        await self.collection.delete_many({"list": name, "n": {"$lt": version}})
