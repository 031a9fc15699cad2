"""The one async door to the models: a bounded pool with its own limit and deadline.

Model classes in `app/ml` are plain and synchronous; the tasks in `app/ml/tasks.py`
run in this pool, never on the event loop. By default the pool is a set of worker
processes (`ML_PROCESSES=true`), each loading the models once: dlib holds the GIL for
60-80 ms per call, which in threads stalled the event loop (measured p99 loop lag
~85 ms with four verifications running). Threads remain available for tests, where
one set of loaded models is shared.
"""

from __future__ import annotations

import asyncio
import logging
import multiprocessing
import os
import threading
from collections.abc import Callable
from concurrent.futures import Executor, ProcessPoolExecutor, ThreadPoolExecutor
from concurrent.futures.process import BrokenProcessPool
from dataclasses import dataclass
from typing import Any

from app.domain.errors import ModelsUnavailable, ServiceUnavailable

log = logging.getLogger("kycflow.ml")


@dataclass
class ModelSlot:
    """One model: how to load it, and what happened when we tried."""

    key: str
    loader: Callable[[], Any]
    instance: Any = None
    name: str | None = None
    error: str | None = None

    def state(self) -> dict[str, Any]:
        return {"loaded": self.instance is not None, "name": self.name, "error": self.error}


class ModelRegistry:
    """The loaded models of one process; each loads once, on first use or at preload."""

    def __init__(self, loaders: dict[str, Callable[[], Any]]) -> None:
        self.slots = {key: ModelSlot(key, loader) for key, loader in loaders.items()}
        self._lock = threading.Lock()

    def get(self, key: str) -> Any:
        slot = self.slots[key]
        if slot.instance is None:
            with self._lock:  # many requests may ask at once; load once
                if slot.instance is None:
                    try:
                        slot.instance = slot.loader()
                        slot.name = getattr(slot.instance, "name", type(slot.instance).__name__)
                        slot.error = None
                    except Exception as exc:  # a missing model must degrade, never crash the service
                        slot.error = f"{type(exc).__name__}: {exc}"
                        log.error("model failed to load", extra={"model": key, "error": slot.error})
        if slot.instance is None:
            raise ModelsUnavailable(f"The {key.replace('_', ' ')} is not available: {slot.error}", model=key,
                                    error=slot.error)
        return slot.instance

    def load_all(self) -> dict[str, dict[str, Any]]:
        for key in self.slots:
            try:
                self.get(key)
            except ModelsUnavailable:
                pass
        return self.status()

    def status(self) -> dict[str, dict[str, Any]]:
        return {key: slot.state() for key, slot in self.slots.items()}


# --- inside a worker process ---------------------------------------------------------------

_worker_models: ModelRegistry | None = None


def _init_worker(loaders: dict[str, Callable[[], Any]]) -> None:
    global _worker_models
    _worker_models = ModelRegistry(loaders)


def _in_worker(task: Callable[..., Any], args: tuple[Any, ...], kwargs: dict[str, Any]) -> Any:
    assert _worker_models is not None
    return task(_worker_models, *args, **kwargs)


def _worker_load_all() -> dict[str, dict[str, Any]]:
    assert _worker_models is not None
    return _worker_models.load_all()


# --- in the service --------------------------------------------------------------------------

class MlGateway:
    def __init__(
        self, loaders: dict[str, Callable[[], Any]], *, workers: int | None = None, timeout: float = 30.0,
        max_queue: int = 32, processes: bool = False,
    ) -> None:
        self.workers = workers or os.cpu_count() or 2
        self.timeout, self.max_queue, self.processes = timeout, max_queue, processes
        self._loaders = loaders
        self._local = ModelRegistry(loaders)  # thread mode only; workers hold their own
        self._reported = {key: ModelSlot(key, loader).state() for key, loader in loaders.items()}  # process mode
        self._pool = self._new_pool()
        self._occupied = 0  # submitted and not finished: a timed-out task still holds its worker
        self._occupied_lock = threading.Lock()

    def _new_pool(self) -> Executor:
        if self.processes:
            # spawn: never fork a process that runs an event loop and threads.
            return ProcessPoolExecutor(self.workers, mp_context=multiprocessing.get_context("spawn"),
                                       initializer=_init_worker, initargs=(self._loaders,))
        return ThreadPoolExecutor(self.workers, thread_name_prefix="ml")

    def _submit(self, pool: Executor, task: Callable[..., Any], *args: Any, **kwargs: Any) -> asyncio.Future[Any]:
        if self.processes:
            future = pool.submit(_in_worker, task, args, kwargs)
        else:
            future = pool.submit(lambda: task(self._local, *args, **kwargs))
        with self._occupied_lock:
            self._occupied += 1
        future.add_done_callback(self._release)  # when the work really ends, not when we stop waiting
        return asyncio.wrap_future(future)

    def _release(self, _: Any) -> None:
        with self._occupied_lock:
            self._occupied -= 1

    async def preload(self) -> None:
        """Load every model in every worker now rather than on the first request."""
        if not self.processes:
            await asyncio.get_running_loop().run_in_executor(self._pool, self._local.load_all)
            return
        reports = await asyncio.gather(*(asyncio.get_running_loop().run_in_executor(self._pool, _worker_load_all)
                                         for _ in range(self.workers)), return_exceptions=True)
        for report in reports:
            if isinstance(report, dict):
                self._record(report)

    def _record(self, report: dict[str, dict[str, Any]]) -> None:
        self._reported.update(report)

    def status(self) -> dict[str, dict[str, Any]]:
        return dict(self._reported) if self.processes else self._local.status()

    async def run(self, task: Callable[..., Any], *args: Any, **kwargs: Any) -> Any:
        """Run a task from `app/ml/tasks.py` in the pool, with back-pressure and a deadline."""
        if self._occupied >= self.max_queue + self.workers:
            raise ServiceUnavailable("The verification engine is busy; retry shortly.", code="ml_busy", retry_after=2)
        pool = self._pool
        try:
            return await asyncio.wait_for(self._submit(pool, task, *args, **kwargs), timeout=self.timeout)
        except TimeoutError as exc:
            raise ServiceUnavailable("The verification took too long; retry shortly.", code="ml_timeout") from exc
        except ModelsUnavailable as exc:
            if self.processes and "model" in exc.details:
                self._record({exc.details["model"]: {"loaded": False, "name": None, "error": exc.details["error"]}})
            raise
        except BrokenProcessPool as exc:
            if self._pool is pool:  # several tasks may see the same broken pool: replace it once
                log.error("ML worker died; starting a new pool")
                self._pool = self._new_pool()
            raise ServiceUnavailable("The verification engine restarted; retry.", code="ml_restarted") from exc

    def close(self) -> None:
        self._pool.shutdown(wait=False, cancel_futures=True)
