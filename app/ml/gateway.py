"""The one async door to the models: a bounded thread pool with its own limit and timeout.

Model classes in `app/ml` are plain and synchronous. Everything that touches pixels
(decoding, OCR, face and landmark inference) runs here, never on the event loop;
ONNX Runtime, dlib and OpenCV release the GIL, so the pool's threads run in parallel
while the loop keeps answering other requests.
"""

from __future__ import annotations

import asyncio
import logging
import os
import threading
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from typing import Any, TypeVar

from app.domain.errors import ModelsUnavailable, ServiceUnavailable

log = logging.getLogger("kycflow.ml")
T = TypeVar("T")


@dataclass
class ModelSlot:
    """One model: how to load it, and what happened when we tried."""

    key: str
    loader: Callable[[], Any]
    instance: Any = None
    name: str | None = None
    error: str | None = None

    @property
    def loaded(self) -> bool:
        return self.instance is not None


class MlGateway:
    def __init__(
        self, loaders: dict[str, Callable[[], Any]], *, workers: int | None = None, timeout: float = 30.0,
        max_queue: int = 32,
    ) -> None:
        self.workers = workers or os.cpu_count() or 2
        self.timeout = timeout
        self.max_queue = max_queue
        self._pool = ThreadPoolExecutor(max_workers=self.workers, thread_name_prefix="ml")
        self._slots = {key: ModelSlot(key, loader) for key, loader in loaders.items()}
        self._load_lock = threading.Lock()
        self._waiting = 0

    # --- models -------------------------------------------------------------------------

    def _load_sync(self, slot: ModelSlot) -> Any:
        with self._load_lock:  # a model loads once, even if many requests ask at once
            if slot.instance is None:
                try:
                    slot.instance = slot.loader()
                    slot.name = getattr(slot.instance, "name", type(slot.instance).__name__)
                    slot.error = None
                except Exception as exc:  # a missing model must degrade, never crash the service
                    slot.error = f"{type(exc).__name__}: {exc}"
                    log.error("model failed to load", extra={"model": slot.key, "error": slot.error})
            return slot.instance

    async def preload(self) -> None:
        await asyncio.gather(*(self._submit(self._load_sync, slot) for slot in self._slots.values()))

    async def model(self, key: str) -> Any:
        """The loaded model, loading it on first use; 503 `models_unavailable` if it cannot load."""
        slot = self._slots[key]
        instance = slot.instance or await self._submit(self._load_sync, slot)  # no deadline: first load is slow
        if instance is None:
            raise ModelsUnavailable(f"The {key.replace('_', ' ')} is not available: {slot.error}")
        return instance

    def status(self) -> dict[str, dict[str, Any]]:
        return {k: {"loaded": s.loaded, "name": s.name, "error": s.error} for k, s in self._slots.items()}

    # --- running --------------------------------------------------------------------------

    async def _submit(self, fn: Callable[..., T], *args: Any) -> T:
        return await asyncio.get_running_loop().run_in_executor(self._pool, fn, *args)

    async def run(self, fn: Callable[..., T], *args: Any) -> T:
        """Run blocking work in the pool, with back-pressure and a deadline."""
        if self._waiting >= self.max_queue + self.workers:
            raise ServiceUnavailable("The verification engine is busy; retry shortly.", code="ml_busy", retry_after=2)
        self._waiting += 1
        try:
            return await asyncio.wait_for(self._submit(fn, *args), timeout=self.timeout)
        except TimeoutError as exc:
            raise ServiceUnavailable("The verification took too long; retry shortly.", code="ml_timeout") from exc
        finally:
            self._waiting -= 1

    def close(self) -> None:
        self._pool.shutdown(wait=False, cancel_futures=True)
