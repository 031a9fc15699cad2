"""KYC-case scenarios: submit-to-checks-done beside the bare model time of the same checks, and
the auditor's review queue with 10,000 cases in the database beside its engine floor (bench/replay.py),
then one request at a time with 10,000 and 100,000 cases, to show how its cost grows.

The checks job's model work is the face match (document photo against the selfie; OCR ran at
upload), so "bare" is `tasks.match_faces` on the same two files in this process.
"""

from __future__ import annotations

import json
import statistics
import time
import uuid
from datetime import UTC, datetime, timedelta
from typing import Any

import cv2
import httpx
from bson import ObjectId
from pymongo import MongoClient

from app.ml import tasks
from app.repositories.embedded import with_options
from bench import replay
from bench.load import SELECTION, Result, Scenario
from bench.ml import BareModels, Inputs
from bench.server import BenchServer

API = "/api/v1"
PASSWORD = "Bench-Customer-Pass-42"
QUEUE_SIZE = 10_000
GROWTH = (10_000, 100_000)


def _customer(server: BenchServer, client: httpx.Client) -> dict[str, str]:
    email = f"bench.kyc.{uuid.uuid4().hex[:10]}@example.com"
    server.create_user("--role", "customer", "--email", email, "--password", PASSWORD, "--name", "Rahul Kumar Sharma")
    token = client.post("/auth/login", json={"identifier": email, "password": PASSWORD}).json()["access_token"]
    headers = {"Authorization": f"Bearer {token}"}
    client.patch("/users/me", headers=headers, json={"dob": "1990-08-15"}).raise_for_status()
    return headers


def submit_to_checks_done(server: BenchServer, inputs: Inputs, bare: BareModels, runs: int = 8) -> Result:
    """Each run: a new customer uploads an Aadhaar card, a PAN card and a selfie (not timed); then
    POST /kyc/submit and GET /kyc/me every 100 ms until the checks are done. The time is the case's
    own record of it, `checks_completed_at - submitted_at` (the service's clock, both shown by
    GET /kyc/me): a client polling fast enough to time it to the millisecond would load this small
    machine with the very requests it waits through, and partly measure itself. The bare face match
    runs right after each run, so both see the machine as it was then (its speed drifts by a third
    over minutes here)."""
    from tests.ml import cards

    pan_jpeg = cv2.imencode(".jpg", cards.pan_card(), [cv2.IMWRITE_JPEG_QUALITY, 90])[1].tobytes()
    result = Result("kyc_submit_to_checks", 1, None)
    bare_ms: list[float] = []
    with httpx.Client(base_url=f"{server.base_url}{API}", timeout=120) as client:
        for i in range(runs + 1):
            headers = _customer(server, client)
            for kind, content in (("aadhaar", inputs.card), ("pan", pan_jpeg)):
                client.post("/kyc/documents", headers=headers, data={"document_type": kind},
                            files={"file": ("card.jpg", content, "image/jpeg")}).raise_for_status()
            client.post("/kyc/selfie", headers=headers,
                        files={"file": ("me.jpg", inputs.selfie, "image/jpeg")}).raise_for_status()
            start = time.perf_counter()
            ok = client.post("/kyc/submit", headers=headers).status_code == 202
            took = 0.0
            while ok:
                case = client.get("/kyc/me", headers=headers).json()
                if case["checks_state"] == "DONE":
                    took = (datetime.fromisoformat(case["checks_completed_at"])
                            - datetime.fromisoformat(case["submitted_at"])).total_seconds()
                    break
                if time.perf_counter() - start > 60:
                    ok = False
                time.sleep(0.1)
            bare_start = time.perf_counter()
            tasks.match_faces(bare.models, inputs.card, inputs.selfie, bare.limits)
            bare_took = time.perf_counter() - bare_start
            if i == 0:  # warm-up (the bare models too)
                continue
            result.latencies_ms.append(took * 1000)
            result.requests += 1
            result.errors += not ok
            result.seconds += took
            bare_ms.append(bare_took * 1000)
    result.bare_ms = round(statistics.median(bare_ms), 1)
    return result


def seed_review_queue(server: BenchServer, count: int = QUEUE_SIZE) -> None:
    """`count` submitted, checked cases written straight into the embedded database, as the service
    stores them (the queue reads them by the indexes the service made at its start)."""
    uri = with_options(json.loads((server.data_dir / "mongo.json").read_text())["uri"])
    client: MongoClient[dict[str, Any]] = MongoClient(uri)
    try:
        cases = client["kycflow"]["kyc_doc"]
        now = datetime.now(UTC)
        levels = [("Low", 2), ("Medium", 1), ("High", 0)]
        docs = []
        for n in range(count):
            level, rank = levels[n % 3]
            at = now - timedelta(minutes=count - n)
            docs.append({
                "_id": ObjectId(), "user_id": str(ObjectId()), "status": "SUBMITTED", "checks_state": "DONE",
                "created_at": at, "updated_at": at, "submitted_at": at, "risk_level": level, "risk_rank": rank,
                "overall_score": 60 + n % 40, "applicant": {"name": f"Customer {n}", "email": f"c{n}@example.com"},
                "documents": [{"id": uuid.uuid4().hex, "type": "aadhaar", "side": "front", "file_id": str(ObjectId()),
                               "content_type": "image/jpeg", "uploaded_at": at, "fields": {}, "confidence": 0.9,
                               "validation": {}, "number_masked": f"XXXX XXXX {n % 10000:04d}"}],
                "selfie": None, "checks": [],
            })
        for start in range(0, count, 1000):
            cases.insert_many(docs[start:start + 1000])
    finally:
        client.close()


def review_queue_scenarios(base: str, auditor_token: str) -> list[Scenario]:
    auth = {"Authorization": f"Bearer {auditor_token}"}
    oldest = httpx.Request("GET", f"{base}{API}/kyc/pending", params={"page_size": 20}, headers=auth)
    by_risk = httpx.Request("GET", f"{base}{API}/kyc/pending",
                            params={"page_size": 20, "sort": "risk", "risk_level": "High"}, headers=auth)
    # Four auditors at once: the embedded engine decodes and sorts every waiting case in Python
    # (1.5-2 s a page with 10,000 here), so more workers would only queue in it.
    return [Scenario("kyc_pending", oldest, concurrency=4, count=2000, max_s=20.0),
            Scenario("kyc_pending_high_risk", by_risk, concurrency=4, count=2000, max_s=20.0)]


async def run_all(server: BenchServer, inputs: Inputs | None, bare: BareModels | None,
                  auditor_token: str) -> list[Result]:
    results = []
    if inputs and bare and SELECTION.wanted("kyc_submit_to_checks"):
        print("running kyc_submit_to_checks (8 customers: upload, then submit and wait for the checks) ...",
              flush=True)
        results.append(submit_to_checks_done(server, inputs, bare))
    if not SELECTION.wanted("kyc_pending", "kyc_pending_high_risk", "kyc_pending_growth"):
        return results
    size = SELECTION.count(QUEUE_SIZE)
    print(f"seeding {size} submitted cases ...", flush=True)
    seed_review_queue(server, size)
    scenarios = review_queue_scenarios(server.base_url, auditor_token)
    for scenario in scenarios:
        if SELECTION.wanted(scenario.name):
            # A page costs seconds here: two recorded requests are enough.
            results += await replay.beside(server, scenario, recorded=2)
    if SELECTION.wanted("kyc_pending_growth"):
        seeded = size
        for size in map(SELECTION.count, GROWTH):
            if size > seeded:
                print(f"seeding {size - seeded} more submitted cases ...", flush=True)
                seed_review_queue(server, size - seeded)
                seeded = size
            # A page takes seconds here with 100,000 cases (~20 s): a few, the first counted too.
            results += await replay.beside(server, Scenario(f"kyc_pending@{size}", scenarios[0].request,
                                                            concurrency=1, count=5, max_s=30.0, warmup_s=0.0),
                                           recorded=1)
    return results
