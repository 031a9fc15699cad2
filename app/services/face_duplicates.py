"""The same face on another account (`face_duplicate`): a selfie's embedding against those of every
other customer who passed KYC. A match goes to review, never to an automatic rejection.

Embeddings are biometric data. Each is kept in its own case record (`face`), AES-GCM under the document
keys with the case, customer and model bound in as associated data: it is deleted with the case and opens
on no other record. A search never decrypts: each instance holds an in-memory index, a float32 matrix of
the L2-normalised embeddings of approved cases, searched with one matrix product (100,000 x 128: a few ms).
Memory, measured: ~0.75 GB per million customers with dlib's 128-d vectors (512 B of vector, the rest ids
in Python; the matrix grows by doubling), ~2.3 GB with ArcFace's 512-d. The index is built from the
database at start (beside the models' preload; else at the first search), each face decrypted once, off
the event loop; caught up before every search with the cases approved since (one indexed query, so an
approval on any instance counts at once); rebuilt hourly while searches go on. A hit is confirmed against the database before
it is named, so a deleted or reopened case never is (and leaves the index then).
"""

from __future__ import annotations

import asyncio
import json
import logging
from datetime import datetime, timedelta
from typing import Any

import numpy as np

from app.domain.errors import DocumentIntegrityError, DocumentKeyUnavailable
from app.domain.kyc import Check, CheckName, CheckStatus, KycCase
from app.repositories.kyc import KycCaseRepository
from app.services.clock import Clock
from app.services.encryption import DocumentCipher

log = logging.getLogger("kycflow.faces")
# Approvals are stamped before their transaction commits, and instances' clocks differ a little:
# each catch-up reads this far behind the newest approval it has seen (seen cases are replaced, not added).
CATCH_UP_MARGIN = timedelta(minutes=5)
REBUILD_EVERY = timedelta(hours=1)


class FaceIndex:
    """Embeddings by case, in one growing float32 matrix (rows doubled as it fills)."""

    def __init__(self) -> None:
        self.matrix = np.zeros((0, 0), np.float32)
        self.cases: list[str] = []
        self.users: list[str] = []
        self.rows: dict[str, int] = {}
        self.since: datetime | None = None  # the newest approval read
        self.recent: dict[str, datetime] = {}  # approvals inside the catch-up margin, read already: not decrypted again

    def __len__(self) -> int:
        return len(self.cases)

    def put(self, case_id: str, user_id: str, vector: np.ndarray) -> None:
        if len(self) and vector.shape[0] != self.matrix.shape[1]:
            return  # another model's embedding: not comparable
        row = self.rows.get(case_id)
        if row is None:
            row = self.rows[case_id] = len(self)
            if row >= self.matrix.shape[0]:
                grown = np.zeros((max(1024, 2 * row), vector.shape[0]), np.float32)
                grown[:row] = self.matrix[:row] if row else grown[:0]
                self.matrix = grown
            self.cases.append(case_id)
            self.users.append(user_id)
        self.matrix[row], self.users[row] = vector, user_id

    def drop(self, case_id: str) -> None:
        if (row := self.rows.get(case_id)) is not None:
            self.matrix[row] = 0.0  # scores 0: never a match again (the row is reused if the case comes back)

    def search(self, vector: np.ndarray, user_id: str, threshold: float, limit: int = 5) -> list[tuple[str, float]]:
        """Other customers' cases at or above `threshold`, most similar first."""
        if not len(self) or vector.shape[0] != self.matrix.shape[1]:
            return []
        scores = self.matrix[:len(self)] @ vector.astype(np.float32)
        hits = sorted(((float(scores[i]), self.cases[i]) for i in np.flatnonzero(scores >= threshold)
                       if self.users[i] != user_id), reverse=True)
        return [(case_id, score) for score, case_id in hits[:limit]]


class FaceDuplicates:
    def __init__(self, *, cases: KycCaseRepository, cipher: DocumentCipher, clock: Clock, model: str,
                 threshold: float) -> None:
        self.cases, self.cipher, self.clock, self.model, self.threshold = cases, cipher, clock, model, threshold
        self.index = FaceIndex()
        self._built: datetime | None = None
        self._lock = asyncio.Lock()

    def _aad(self, case_id: str, user_id: str) -> str:
        return json.dumps(["kyc_doc", "face", case_id, user_id, self.model])

    async def check(self, case: KycCase, vector: np.ndarray) -> Check:
        """Keeps the case's embedding (sealed) in its record, then looks for it on other approved accounts."""
        key_id, blob = self.cipher.encrypt(np.asarray(vector, "<f4").tobytes(), self._aad(case.id, case.user_id))
        await self.cases.set_face(case.id, {"key_id": key_id, "data": blob, "model": self.model})
        found = await self.search(vector, case.user_id)
        if not found:
            return Check(CheckName.FACE_DUPLICATE, CheckStatus.PASS, 1.0, "No other approved customer has this face.")
        return Check(CheckName.FACE_DUPLICATE, CheckStatus.REVIEW, 0.5,
                     f"The selfie matches the face of {len(found)} other approved customer(s), closest cosine "
                     f"{found[0][1]:.3f} (threshold {self.threshold:.2f}): compare the faces.",
                     other_cases=tuple(c for c, _ in found))

    async def warm(self) -> None:
        await self.search(np.zeros(1, np.float32), "")

    async def search(self, vector: np.ndarray, user_id: str) -> list[tuple[str, float]]:
        if self._built and self.clock.now() - self._built > REBUILD_EVERY:  # drops what a catch-up cannot see
            self._built, fresh = self.clock.now(), FaceIndex()
            await self._catch_up(fresh)  # outside the lock: meanwhile searches go on in the current index
            async with self._lock:
                await self._catch_up(fresh)
                self.index = fresh
        async with self._lock:  # one catch-up at a time; the index is not shared with threads meanwhile
            self._built = self._built or self.clock.now()
            await self._catch_up(self.index)  # the first: the whole build, which searches wait for
            found = self.index.search(np.asarray(vector, np.float32), user_id, self.threshold)
            if found:  # rare: confirm against the records (deleted or reopened since the index saw them)
                live = await self.cases.approved_ids([c for c, _ in found])
                for gone in {c for c, _ in found} - live:
                    self.index.drop(gone)
                found = [(c, s) for c, s in found if c in live]
        return found

    async def _catch_up(self, index: FaceIndex) -> None:
        async for batch in self.cases.approved_faces(index.since - CATCH_UP_MARGIN if index.since else None):
            if len(batch) > 64:  # a build: thousands of decryptions, off the event loop
                await asyncio.to_thread(self._load, index, batch)
            else:
                self._load(index, batch)
        if index.since is not None:
            index.recent = {c: at for c, at in index.recent.items() if at >= index.since - CATCH_UP_MARGIN}

    def _load(self, index: FaceIndex, batch: list[dict[str, Any]]) -> None:
        for doc in batch:
            case_id, face, at = str(doc["_id"]), doc.get("face") or {}, doc["decision"]["at"]
            index.since = at if index.since is None or at > index.since else index.since
            if face.get("model") != self.model or index.recent.get(case_id) == at:  # no selfie, or another model
                continue
            index.recent[case_id] = at
            try:
                plain = self.cipher.decrypt(face["key_id"], bytes(face["data"]), self._aad(case_id, doc["user_id"]))
            except (DocumentIntegrityError, DocumentKeyUnavailable):
                log.warning("a stored face embedding does not open; left out of the index", extra={"kyc_id": case_id})
                continue
            index.put(case_id, doc["user_id"], np.frombuffer(plain, "<f4"))
