"""`Idempotency-Key` for the routes that create records (`POST /kyc/upload`, `POST /loans/apply`).

Same caller, key and body within 24 h: the first response again, never a second record.
Same key with another body: 422 `idempotency_key_reused`. Two at once: the second waits for
the first one's answer. A request that fails releases its key, so the client may retry.
"""

from __future__ import annotations

import asyncio
import hashlib
import json
from collections.abc import Awaitable, Callable
from datetime import timedelta
from typing import Any

from app.domain.errors import IdempotencyInProgress, IdempotencyKeyReused
from app.repositories.idempotency import IdempotencyRepository
from app.services.clock import Clock

TTL = timedelta(hours=24)


def request_hash(body: Any) -> str:
    return hashlib.sha256(json.dumps(body, sort_keys=True, default=str).encode()).hexdigest()


class IdempotencyService:
    def __init__(self, repo: IdempotencyRepository, clock: Clock, *, wait_seconds: float = 30.0) -> None:
        self.repo, self.clock, self.wait_seconds = repo, clock, wait_seconds

    async def run(self, scope: str, owner: str, key: str | None, body: Any,
                  work: Callable[[], Awaitable[tuple[int, dict[str, Any]]]]) -> tuple[int, dict[str, Any]]:
        """`work()` returns (status, JSON body); with a key it runs at most once per caller and key."""
        if not key:
            return await work()
        digest = await asyncio.to_thread(request_hash, body)  # bodies may carry a base64 file: off the loop
        now = self.clock.now()
        stored = await self.repo.claim(scope, owner, key, digest, now, now + TTL)
        if stored is None:
            try:
                status, response = await work()
            except BaseException:
                await self.repo.release(scope, owner, key)
                raise
            await self.repo.complete(scope, owner, key, status, response)
            return status, response
        loop = asyncio.get_running_loop()
        deadline = loop.time() + self.wait_seconds
        while True:
            if stored is None:  # the first request failed and released the key: this one may run
                return await self.run(scope, owner, key, body, work)
            if stored.request_hash != digest:
                raise IdempotencyKeyReused()
            if stored.status_code is not None and stored.body is not None:
                return stored.status_code, stored.body
            if loop.time() >= deadline:
                raise IdempotencyInProgress(retry_after=1)
            await asyncio.sleep(0.05)
            stored = await self.repo.find(scope, owner, key)
