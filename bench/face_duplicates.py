"""The face_duplicate search against 100,000 stored embeddings, beside one face match.

100,000 approved cases with generated face embeddings (random unit vectors of dlib's 128 dimensions,
sealed as the checks job seals them) go into a database of their own next to the bench's, so no other
scenario sees them. `FaceDuplicates.search` (app/services/face_duplicates.py) then runs as the checks
job runs it: the first search builds the in-memory index (reads and decrypts every embedding: shown as
`face_index_build_100k`), each later one is a catch-up query and one matrix product; half of the queries
are near copies of a stored face, so the hit path (its confirming query) is timed too. Gate: a search
costs at most a tenth of one bare face match (the model work it rides along with)."""

from __future__ import annotations

import time
from datetime import UTC, datetime, timedelta
from typing import Any

import numpy as np
from bson import ObjectId

from app.document_keys import generate_key_spec
from app.repositories.database import close_client, make_client
from app.repositories.kyc import KycCaseRepository
from app.services.clock import Clock
from app.services.encryption import DocumentCipher
from app.services.face_duplicates import FaceDuplicates
from bench.load import SELECTION, Result
from bench.server import BenchServer

STORED, RUNS, DIM = 100_000, 200, 128
NAMES = ("face_index_build_100k", "face_duplicate_100k")


def _unit(rows: np.ndarray) -> np.ndarray:
    return (rows / np.linalg.norm(rows, axis=-1, keepdims=True)).astype(np.float32)


async def run_all(server: BenchServer, bare: Any) -> list[Result]:
    rng = np.random.default_rng(19)
    stored = _unit(rng.standard_normal((SELECTION.count(STORED), DIM)))
    client = make_client(server.db_uri)
    db = client["kycflow_bench_faces"]
    try:
        await client.drop_database(db.name)
        cases = KycCaseRepository(db)
        await cases.ensure_indexes()
        faces = FaceDuplicates(cases=cases, cipher=DocumentCipher.from_specs(generate_key_spec(), [], generate_key_spec()),
                               clock=Clock(), model="dlib", threshold=0.94)
        print(f"storing {len(stored)} sealed face embeddings ...", flush=True)
        now, ids = datetime.now(UTC), [str(ObjectId()) for _ in range(len(stored))]
        for start in range(0, len(stored), 5000):
            docs = []
            for i in range(start, min(start + 5000, len(stored))):
                key_id, blob = faces.cipher.encrypt(stored[i].tobytes(), faces._aad(ids[i], f"user{i}"))
                docs.append({"_id": ObjectId(ids[i]), "user_id": f"user{i}", "status": "APPROVED",
                             "decision": {"at": now - timedelta(minutes=i)},  # approved over the past months
                             "face": {"key_id": key_id, "data": blob, "model": "dlib"}})
            await db["kyc_doc"].insert_many(docs)
        print("running face_index_build_100k, then face_duplicate_100k (one search at a time) ...", flush=True)
        start = time.perf_counter()
        assert await faces.search(stored[0], "nobody") != [], "the index must find a stored face"
        build = Result("face_index_build_100k", 1, None, requests=1, seconds=time.perf_counter() - start)
        build.latencies_ms.append(build.seconds * 1000)
        result = Result("face_duplicate_100k", 1, None)
        for i in range(RUNS + 10):
            near = i % 2 == 0  # a near copy of a stored face (a hit), or a face stored nowhere
            query = _unit(stored[i * 7 % len(stored)] + 0.01 * rng.standard_normal(DIM)) if near else \
                _unit(rng.standard_normal(DIM))
            start = time.perf_counter()
            found = await faces.search(query, "nobody")
            took = time.perf_counter() - start
            if i < 10:  # warm-up
                continue
            result.latencies_ms.append(took * 1000)
            result.requests += 1
            result.errors += bool(found) != near
            result.seconds += took
    finally:
        await client.drop_database(db.name)
        await close_client(client)
    result.bare_ms = bare.face() if bare is not None else None
    return [build, result]


def face_ratio(results: dict[str, Result]) -> float:
    row = results["face_duplicate_100k"]
    if row.bare_ms is None:
        raise KeyError("bare face match (run with the ML scenarios)")
    return row.pct(50) / row.bare_ms
