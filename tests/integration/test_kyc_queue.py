"""The auditor's review queue (`GET /kyc/pending`): every filter, sort and page, and its total, equals
a brute-force sort of the same cases; concurrent submissions, decisions and reads keep it exact; the
previous version's queue machinery (`kyc_queue` counters, `queue_seq` indexes) goes at start-up.

Cases are built through the repositories (no models needed) and moved through the service's own
transactions: submit, the checks job (its checks stubbed to give the wanted risk level), and the
auditor's decision over HTTP."""

from __future__ import annotations

import asyncio
import uuid
from dataclasses import dataclass, field
from datetime import UTC, datetime
from types import SimpleNamespace
from typing import Any

import pytest
from bson import ObjectId
from hypothesis import HealthCheck, given, seed, settings
from hypothesis import strategies as st

from app.domain.audit import ClientInfo
from app.domain.kyc import CaseDocument, Check, CheckStatus
from app.domain.users import Role, UserStatus
from tests.conftest import bearer

TYPES = ("aadhaar", "passport", "driving_licence", "pan")
IDENTITY = ("aadhaar", "passport", "driving_licence")
LEVELS = ("High", "Medium", "Low")
RANK = {"High": 0, "Medium": 1, "Low": 2, None: 3}
# Checks that `assess` turns into each level: a failure is High, a check for a person Medium.
CHECKS = {"High": Check("face_match", CheckStatus.FAIL, 0.0, "no match"),
          "Medium": Check("face_match", CheckStatus.REVIEW, 0.6, "unsure"),
          "Low": Check("face_match", CheckStatus.PASS, 1.0, "match")}


@pytest.fixture
async def queue_api(api_factory):
    # No job workers: the checks run when the test says, with the level it says.
    # No rate limits: the test reads hundreds of pages as one auditor.
    return await api_factory(job_workers=0, kyc_required_documents="", kyc_require_selfie=False,
                             rate_limits_enabled=False)


@dataclass
class Queue:
    """The test's side: the app, an auditor, and what the cases should be (the brute-force truth)."""

    api: Any
    auditor: dict[str, str]
    cases: list[dict[str, Any]] = field(default_factory=list)  # in submission order
    levels: dict[str, str] = field(default_factory=dict)  # the level each case's checks give

    async def new_case(self, types: list[str]) -> dict[str, Any]:
        c = self.api.container
        now = datetime.now(UTC)
        user = await c.users_repo.add(name="Queue Customer", password_hash="x", role=Role.CUSTOMER,
                                      status=UserStatus.ACTIVE, now=now, email=f"q{uuid.uuid4().hex[:12]}@example.com")
        case = await c.kyc.cases.open_case(user.id, now)
        for n, kind in enumerate(types):
            side = ("front", "back")[n % 2] if kind == "aadhaar" else None
            doc = CaseDocument(id=uuid.uuid4().hex, type=kind, side=side, file_id=str(ObjectId()),
                               content_type="image/jpeg", uploaded_at=now, fields={}, confidence=0.9, validation={})
            assert await c.kyc.cases.replace_document(case.id, user.id, doc, now) is not None
        return {"id": case.id, "user": user, "types": set(types), "level": None, "decided": False}

    async def submit(self, case: dict[str, Any]) -> None:
        await self.api.container.kyc.submit(case["user"], ClientInfo())

    async def check(self, case: dict[str, Any], level: str) -> None:
        """The checks job as the worker runs it, its checks giving `level`."""
        kyc = self.api.container.kyc_checks
        self.levels[case["id"]] = level

        async def stub(case: Any, _user: Any) -> list[Check]:
            return [CHECKS[self.levels[case.id]]]

        kyc.run_checks = stub
        await kyc.handle(SimpleNamespace(payload={"case_id": case["id"]}))
        case["level"] = level

    async def decide(self, case: dict[str, Any], approve: bool) -> int:
        path, body = ((f"/kyc/{case['id']}/approve", {}) if approve
                      else (f"/kyc/{case['id']}/reject", {"reason": "document_unreadable"}))
        r = await self.api.client.put(path, headers=self.auditor, json=body)
        if r.status_code == 200:
            case["decided"] = True
        return r.status_code

    def expected(self, risk: str | None, kind: str | None, sort: str) -> list[str]:
        waiting = [c for c in self.cases if not c["decided"]
                   and (risk is None or c["level"] == risk) and (kind is None or kind in c["types"])]
        if sort == "risk":
            waiting.sort(key=lambda c: RANK[c["level"]])  # stable: submission order within a level
        return [c["id"] for c in waiting]

    async def page(self, risk: str | None, kind: str | None, sort: str, page: int, size: int) -> dict[str, Any]:
        params: dict[str, Any] = {"sort": sort, "page": page, "page_size": size}
        if risk:
            params["risk_level"] = risk
        if kind:
            params["document_type"] = kind
        r = await self.api.client.get("/kyc/pending", headers=self.auditor, params=params)
        assert r.status_code == 200, r.text
        return r.json()

    async def assert_pages_match(self, size: int, kinds: tuple[str | None, ...] = (None, *TYPES)) -> None:
        for risk in (None, *LEVELS):
            for kind in kinds:
                for sort in ("oldest", "risk"):
                    want = self.expected(risk, kind, sort)
                    for page in range(1, len(want) // size + 3):
                        body = await self.page(risk, kind, sort, page, size)
                        where = f"risk={risk} type={kind} sort={sort} page={page} size={size}"
                        assert body["total"] == len(want), where
                        assert (body["page"], body["page_size"]) == (page, size), where
                        assert [i["kyc_id"] for i in body["items"]] == want[(page - 1) * size:page * size], where


async def make_queue(api) -> Queue:
    return Queue(api, bearer(await api.staff("auditor")))


async def clear(api) -> None:
    await api.container.db["kyc_doc"].delete_many({})


async def in_submission_order(api, cases: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Cases submitted at once, in the order the queue's oldest-first sort gives them."""
    docs = await api.container.db["kyc_doc"].find({"_id": {"$in": [ObjectId(c["id"]) for c in cases]}}).to_list(None)
    order = [str(d["_id"]) for d in sorted(docs, key=lambda d: (d["submitted_at"], d["_id"]))]
    return sorted(cases, key=lambda c: order.index(c["id"]))


def run_on(loop: asyncio.AbstractEventLoop, coroutine: Any) -> Any:
    return asyncio.run_coroutine_threadsafe(coroutine, loop).result(timeout=300)


case_types = st.lists(st.sampled_from(TYPES), min_size=1, max_size=3).map(
    lambda ts: ts if set(ts) & set(IDENTITY) else ["aadhaar", *ts])  # a proof of identity in each
operations = st.lists(st.one_of(
    st.tuples(st.just("submit"), case_types),
    st.tuples(st.just("check"), st.integers(0, 50), st.sampled_from(LEVELS)),
    st.tuples(st.just("decide"), st.integers(0, 50), st.booleans()),
), min_size=1, max_size=16)


async def test_every_filter_sort_and_page_equals_a_brute_force_sort(queue_api):
    api = queue_api
    queue = await make_queue(api)
    loop = asyncio.get_running_loop()

    async def play(ops: list[tuple[Any, ...]], size: int) -> None:
        await clear(api)
        queue.cases = []
        for op in ops:
            if op[0] == "submit":
                case = await queue.new_case(op[1])
                await queue.submit(case)
                queue.cases.append(case)
                continue
            running = [c for c in queue.cases if c["level"] is None and not c["decided"]]
            ready = [c for c in queue.cases if c["level"] is not None and not c["decided"]]
            if op[0] == "check" and running:
                await queue.check(running[op[1] % len(running)], op[2])
            elif op[0] == "decide" and running and op[1] % 3 == 0:
                # Checks still running: refused, and nothing leaves the queue.
                assert await queue.decide(running[op[1] % len(running)], op[2]) == 409
            elif op[0] == "decide" and ready:
                assert await queue.decide(ready[op[1] % len(ready)], op[2]) == 200
        await queue.assert_pages_match(size)

    @seed(20261122)
    @settings(max_examples=8, deadline=None, database=None, suppress_health_check=[HealthCheck.too_slow])
    @given(ops=operations, size=st.integers(1, 4))
    def check(ops: list[tuple[Any, ...]], size: int) -> None:
        run_on(loop, play(ops, size))

    await asyncio.to_thread(check)


async def test_concurrent_submits_and_decisions_keep_the_queue_exact(queue_api):
    api = queue_api
    queue = await make_queue(api)
    cases = [await queue.new_case(["aadhaar", "pan"] if n % 2 else ["passport"]) for n in range(12)]
    await asyncio.gather(*(queue.submit(c) for c in cases))

    # Each is listed exactly once, oldest first.
    queue.cases = await in_submission_order(api, cases)
    body = await queue.page(None, None, "oldest", 1, 100)
    assert body["total"] == 12 and [i["kyc_id"] for i in body["items"]] == [c["id"] for c in queue.cases]

    await asyncio.gather(*(queue.check(c, LEVELS[n % 3]) for n, c in enumerate(queue.cases)))
    await queue.assert_pages_match(5, kinds=(None, "pan"))

    # Two auditors decide the same case at once: one wins, it leaves the queue once.
    first = queue.cases[0]
    statuses = sorted(await asyncio.gather(queue.decide(first, True), queue.decide(dict(first), False)))
    assert statuses == [200, 409]
    first["decided"] = True
    assert (await queue.page(None, None, "oldest", 1, 1))["total"] == 11
    await queue.assert_pages_match(5, kinds=(None, "pan"))


async def test_reads_racing_submissions_and_decisions_list_whatever_still_waits(queue_api):
    api = queue_api
    queue = await make_queue(api)
    for n in range(8):
        case = await queue.new_case(["aadhaar"])
        await queue.submit(case)
        queue.cases.append(case)
        await queue.check(case, LEVELS[n % 3])
    for case in queue.cases[:5]:
        assert await queue.decide(case, True) == 200

    late = [await queue.new_case(["pan", "passport"]) for _ in range(6)]
    reads = [queue.page(None, None, "oldest", 1, 2) for _ in range(6)]
    *_, decided, first_pages = await asyncio.gather(*(queue.submit(c) for c in late), queue.decide(queue.cases[5], False),
                                                     asyncio.gather(*reads))
    assert decided == 200
    # A read during the race sees each case at most once and oldest first, whatever it caught.
    waiting_or_gone = [c["id"] for c in queue.cases] + [c["id"] for c in await in_submission_order(api, late)]
    for body in first_pages:
        ids = [i["kyc_id"] for i in body["items"]]
        assert len(set(ids)) == len(ids) and ids == sorted(ids, key=waiting_or_gone.index)
    queue.cases += await in_submission_order(api, late)
    for case in queue.cases[6:8]:
        assert await queue.decide(case, True) == 200
    body = await queue.page(None, None, "oldest", 1, 50)
    assert [i["kyc_id"] for i in body["items"]] == queue.expected(None, None, "oldest")
    assert len(body["items"]) == body["total"] == 6
    await queue.assert_pages_match(2, kinds=(None, "pan"))


async def test_the_previous_queue_machinery_goes_at_start_up(queue_api):
    api = queue_api
    queue = await make_queue(api)
    db, cases = api.container.db, api.container.kyc.cases
    # A database as the previous version left it: counters in `kyc_queue`, `queue_seq` on each
    # submitted case and the indexes the queue read by.
    await db["kyc_queue"].insert_many([{"_id": "seq", "next_seq": 3}, {"_id": "counts.0", "counts": {"all": 3}}])
    for n in range(3):
        case = await queue.new_case(["passport"])
        await queue.submit(case)
        await db["kyc_doc"].update_one({"_id": ObjectId(case["id"])}, {"$set": {"queue_seq": 2 - n}})
        queue.cases.append(case)
    for keys in (["queue_seq"], ["risk_rank", "queue_seq"], ["documents.type", "queue_seq"],
                 ["risk_rank", "documents.type", "queue_seq"]):
        await db["kyc_doc"].create_index([("status", 1), *[(k, 1) for k in keys]])

    for _ in range(2):  # what every start runs; the second finds nothing left to drop
        await cases.ensure_indexes()
        assert "kyc_queue" not in await db.list_collection_names()
        names = [ix["name"] async for ix in await db["kyc_doc"].list_indexes()]
        assert not [n for n in names if "queue_seq" in n], names
    # The stale seqs (reversed here) steer nothing: oldest first is by submission.
    await queue.assert_pages_match(2, kinds=(None, "passport"))
