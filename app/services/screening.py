"""Sanctions and PEP screening: loading a watchlist file (`kycflow screening load`), the `screening`
check of every KYC case, and the re-screen of approved customers when a list changes.

A load reads the file twice, streaming: once to validate it all and count how common each name
sound is (nothing is written if any row is bad), once to write the new version's entries with their
blocking keys and whether each is new or changed. It queues the re-screen job, then switches the
list to the new version in one write (the job switches too, should the loader die in between), and
deletes the older version.

The re-screen (a durable job) screens every approved customer against the new or changed entries
only, in memory; a hit sends the customer's approved case back to the review queue: the case is
SUBMITTED again with its checks DONE and the new `screening` result, the customer's KYC status is
SUBMITTED (new loans wait; running ones are untouched), and an auditor decides it as any case."""

from __future__ import annotations

import asyncio
import hashlib
import re
from collections import Counter, defaultdict
from collections.abc import Mapping
from dataclasses import dataclass
from itertools import islice
from pathlib import Path
from typing import Any

from app.domain.audit import AuditAction
from app.domain.checks.screening import screening_check, subject
from app.domain.events import EventType
from app.domain.jobs import Job
from app.domain.kyc import CaseStatus, Check, CheckName, KycCase, assess
from app.domain.screening import (
    Entry,
    Hit,
    Subject,
    WatchlistInvalid,
    common_sounds,
    entry_keys,
    entry_sounds,
    screen,
    subject_keys,
)
from app.domain.users import KycStatus, User
from app.domain.watchlist_files import entries
from app.repositories.kyc import KycCaseRepository
from app.repositories.screening import (
    Candidate,
    WatchlistEntryRepository,
    WatchlistRepository,
    entry_doc,
    version_key,
)
from app.repositories.transactions import Transactions, UnitOfWork
from app.repositories.users import UserRepository
from app.services.audit import AuditService
from app.services.clock import Clock
from app.services.events import EventService
from app.services.jobs import JobService

RESCREEN_JOB = "screening_rescreen"
BATCH = 2000
_LIST_NAME = re.compile(r"[a-z0-9][a-z0-9_.-]{0,39}")


@dataclass(frozen=True)
class Loaded:
    name: str
    version: int
    entries: int
    changed: int


def _survey(path: Path) -> tuple[Counter[str], int, str]:
    """Validates the whole file (raises on the first bad row) and counts each name sound's entries."""
    counts: Counter[str] = Counter()
    seen: set[str] = set()
    for entry in entries(path):
        if entry.id in seen:
            raise WatchlistInvalid(f"Entry id {entry.id} appears twice.")
        seen.add(entry.id)
        counts.update(set().union(*entry_sounds(entry)))
    digest = hashlib.sha256()
    with path.open("rb") as f:
        while chunk := f.read(1 << 20):
            digest.update(chunk)
    return counts, len(seen), digest.hexdigest()


class ScreeningService:
    def __init__(self, *, lists: WatchlistRepository, entries: WatchlistEntryRepository, users: UserRepository,
                 cases: KycCaseRepository, transactions: Transactions, jobs: JobService, audit: AuditService,
                 events: EventService, clock: Clock, weights: Mapping[str, float] | None = None) -> None:
        self.lists, self.entries, self.users, self.cases = lists, entries, users, cases
        self.transactions, self.jobs, self.audit, self.events, self.clock = transactions, jobs, audit, events, clock
        self.weights = weights
        jobs.register(RESCREEN_JOB, self.rescreen, timeout=3600)  # every approved customer: may be long

    # --- loading -------------------------------------------------------------------------

    async def load(self, name: str, path: Path) -> Loaded:
        if not _LIST_NAME.fullmatch(name):
            raise WatchlistInvalid("A list name is 1-40 lower-case letters, digits, '.', '_' or '-'.",
                                   code="watchlist_name_invalid")
        try:
            counts, total, sha256 = await asyncio.to_thread(_survey, path)
        except OSError as exc:
            raise WatchlistInvalid(f"Cannot read {path}: {exc.strerror}.") from exc
        if not total:
            raise WatchlistInvalid("The file has no entries; the list in force is kept.")
        common, in_force = common_sounds(counts, total), await self.lists.get(name) or {}
        current = in_force.get("version")
        if current and in_force.get("sha256") == sha256:  # the daily reload of an unchanged file: nothing to do
            return Loaded(name, current, total, 0)
        before = await self.entries.digests(name, current) if current else {}
        version = await self.lists.reserve_version(name)
        changed = 0
        read, none = entries(path), list[Entry]()
        batches = iter(lambda: list(islice(read, BATCH)), none)
        while batch := await asyncio.to_thread(next, batches, none):  # parsing stays off the event loop
            docs = [entry_doc(name, version, e, entry_keys(e, common), before.get(e.id) != e.digest()) for e in batch]
            changed += sum(d["changed"] for d in docs)
            await self.entries.insert(docs)
        info = {"entries": total, "changed": changed, "source": path.name, "sha256": sha256,
                "loaded_at": self.clock.now()}
        await self.jobs.enqueue(RESCREEN_JOB, f"screening:{name}:{version}", {"list": name, "version": version,
                                                                              "info": info})
        await self._switch(name, version, info)
        return Loaded(name, version, total, changed)

    async def _switch(self, name: str, version: int, info: dict[str, Any]) -> None:
        await self.lists.switch(name, version, info)
        await self.entries.drop_older(name, version)

    # --- screening -----------------------------------------------------------------------

    async def screen(self, who: Subject) -> tuple[list[Hit], list[str]]:
        """The hits on the lists in force, and those lists as `name vN`."""
        lists, keys = await self.lists.all(), subject_keys(who)
        names = [f"{d['_id']} v{d['version']}" for d in lists]
        if not lists or not keys:
            return [], names
        return screen(who, await self.entries.candidates([version_key(d["_id"], d["version"]) for d in lists], keys)), names

    async def check(self, case: KycCase, user: User) -> Check:
        hits, lists = await self.screen(subject(user, case))
        return screening_check(hits, lists)

    # --- re-screening --------------------------------------------------------------------

    async def rescreen(self, job: Job) -> None:
        name, version = job.payload["list"], int(job.payload["version"])
        await self._switch(name, version, job.payload["info"])  # done already unless the loader died
        index: dict[str, list[Candidate]] = defaultdict(list)
        for candidate, keys in await self.entries.changed(name, version):
            for key in keys:
                index[key].append(candidate)
        if not index:
            return
        flagged: list[User] = []
        query: dict[str, Any] = {"kyc_status": KycStatus.APPROVED.value}  # every approved customer, 500 a read
        while docs := await self.users.find_many(query, sort=[("_id", 1)], limit=500):
            query["_id"], users = {"$gt": docs[-1]["_id"]}, [self.users.to_entity(d) for d in docs]
            flagged += [u for u in users if _hits(subject(u), index)]  # all read before a case moves
        for user in flagged:
            await self._reopen(user, index, name, version)

    async def _reopen(self, user: User, index: dict[str, list[Candidate]], name: str, version: int) -> None:
        # The approval in force (a step-up may have opened a newer case beside it).
        case = next((c for c in await self.cases.list_for_user(user.id) if c.status == CaseStatus.APPROVED), None)
        if case is None:
            return
        hits = _hits(subject(user, case), index)
        if not hits:
            return  # the nationality on the documents rules the entry out
        checks = [c for c in case.checks if c.name != CheckName.SCREENING] + [screening_check(hits, [f"{name} v{version}"])]
        assessment, now = assess(checks, self.weights), self.clock.now()

        async def step(tx: UnitOfWork) -> None:
            reopened = await tx.kyc.reopen(case.id, checks, assessment, now)
            if reopened is None:
                return  # decided again meanwhile, or a retried job: once
            await tx.users.set_kyc_status(user.id, KycStatus.SUBMITTED, now)
            await tx.users.set_kyc_risk(user.id, assessment.risk_level.value, assessment.overall_score)
            await self.events.publish(EventType.KYC_CHECKS_COMPLETED, tx=tx, user_id=user.id, data={
                "kyc_id": case.id, "status": reopened.status.value, "checks_state": reopened.checks_state.value})
            await self.audit.record(AuditAction.KYC_CHECKS_COMPLETED, user_id=user.id, actor_id="system",
                                    actor_role="system", kyc_id=case.id, trigger="watchlist_reload", list=name,
                                    version=version, entries=[h.entry.id for h in hits],
                                    overall_score=assessment.overall_score, risk_level=assessment.risk_level.value,
                                    tx=tx)

        await self.transactions.run(step)


def _hits(who: Subject, index: dict[str, list[Candidate]]) -> list[Hit]:
    found = {(c[0], c[2].id): c for key in subject_keys(who) for c in index.get(key, ())}
    return screen(who, found.values())
