"""bcrypt through passlib, always off the event loop in a small dedicated pool."""

from __future__ import annotations

import asyncio
from concurrent.futures import ThreadPoolExecutor

from passlib.context import CryptContext


class PasswordHasher:
    def __init__(self, rounds: int = 12, workers: int = 2) -> None:
        self._context = CryptContext(schemes=["bcrypt"], bcrypt__rounds=rounds)
        # Own pool: a burst of logins can only occupy these threads, never the loop.
        self._pool = ThreadPoolExecutor(max_workers=workers, thread_name_prefix="bcrypt")
        # A well-formed hash of the same cost: checking against it takes as long as a real one,
        # and building it needs no bcrypt run on the event loop at start-up.
        self._dummy = f"$2b${rounds:02d}${'.' * 53}"

    async def hash(self, password: str) -> str:
        return await asyncio.get_running_loop().run_in_executor(self._pool, self._context.hash, password)

    async def verify(self, password: str, password_hash: str | None) -> bool:
        """Check a password; with no hash, spend the same time and fail (no user enumeration)."""
        target = password_hash or self._dummy
        ok = await asyncio.get_running_loop().run_in_executor(self._pool, self._context.verify, password, target)
        return bool(ok) and password_hash is not None

    def close(self) -> None:
        self._pool.shutdown(wait=False, cancel_futures=True)
