"""The one async door to the models: a bounded pool with its own limit and deadline.

Model classes in `app/ml` are plain and synchronous; the tasks in `app/ml/tasks.py`
run in this pool, never on the event loop. By default the pool is a set of worker
processes (`ML_PROCESSES=true`), each loading the models once: dlib holds the GIL for
60-80 ms per call, which in threads stalled the event loop (measured p99 loop lag
~85 ms with four verifications running). Threads remain available for tests, where
one set of loaded models is shared.

Each worker process sits in its own single-process executor, and a task runs only on an
idle worker: when a task overruns its deadline, crashes its worker or hits the worker's
memory ceiling (`ML_WORKER_MEMORY_MB`, see `app/ml/worker.py`), that one process is
killed and replaced, so a runaway task never keeps burning CPU and memory, and the
tasks in the other workers carry on. A task whose caller went away (a dropped client)
finishes in its worker within the same deadline; the worker then serves again.
"""

from __future__ import annotations

import asyncio
import logging
import multiprocessing
import os
import threading
import time
from collections.abc import Callable
from concurrent.futures import ProcessPoolExecutor, ThreadPoolExecutor
from concurrent.futures.process import BrokenProcessPool
from typing import Any

from app import metrics
from app.domain.errors import FileTooLarge, ModelsUnavailable, ServiceUnavailable
from app.ml import worker
from app.ml.registry import ModelRegistry, ModelSlot

log = logging.getLogger("kycflow.ml")


class _Worker:
    """One worker process in its own single-process executor, so it can be killed alone."""

    def __init__(self, context: Any, loaders: dict[str, Callable[[], Any]], memory_mb: int | None) -> None:
        self.executor = ProcessPoolExecutor(1, mp_context=context, initializer=worker.init_worker,
                                            initargs=(loaders, memory_mb))

    def submit(self, fn: Callable[..., Any], *args: Any) -> asyncio.Future[Any]:
        with worker.sigint_blocked():  # the executor spawns its process on the first submit
            return asyncio.wrap_future(self.executor.submit(fn, *args))

    def stop(self, *, kill: bool) -> None:
        # `_processes` is the executor's only handle on its process (CPython 3.11-3.13);
        # shutdown() alone would let a runaway task finish first.
        processes = list((getattr(self.executor, "_processes", None) or {}).values())
        self.executor.shutdown(wait=False, cancel_futures=True)
        for process in processes:
            process.kill() if kill else process.terminate()


class MlGateway:
    def __init__(
        self, loaders: dict[str, Callable[[], Any]], *, workers: int | None = None, timeout: float = 30.0,
        max_queue: int = 32, processes: bool = False, memory_mb: int | None = None,
    ) -> None:
        self.workers = workers or os.cpu_count() or 2
        self.timeout, self.max_queue, self.processes = timeout, max_queue, processes
        self.memory_mb = memory_mb
        self._loaders = loaders
        self._local = ModelRegistry(loaders)  # thread mode only; workers hold their own
        self._reported = {key: ModelSlot(loader).state() for key, loader in loaders.items()}  # process mode
        self._occupied = 0  # waiting or running; in thread mode a timed-out task still holds its thread
        self._occupied_lock = threading.Lock()
        self._preloaded = False
        self.recycled = 0  # workers replaced after a timeout, a crash or the memory ceiling
        if processes:
            # spawn: never fork a process that runs an event loop and threads.
            self._context = multiprocessing.get_context("spawn")
            self._slots = [_Worker(self._context, loaders, memory_mb) for _ in range(self.workers)]
            self._idle = list(self._slots)
            self._free = asyncio.Semaphore(self.workers)
        else:
            self._threads = ThreadPoolExecutor(self.workers, thread_name_prefix="ml")

    def _count(self, delta: int) -> None:
        with self._occupied_lock:
            self._occupied += delta

    async def preload(self, *, announce: str = "") -> None:
        """Load every model in every worker now rather than on the first request, then log
        one line saying so (with `announce` appended, e.g. where the docs are)."""
        start = time.perf_counter()
        if not self.processes:
            await asyncio.get_running_loop().run_in_executor(self._threads, self._local.load_all)
        else:
            self._preloaded = True  # from now on a replacement worker loads its models before its first task
            await asyncio.gather(*(self._load_one() for _ in range(self.workers)), return_exceptions=True)
        states = self.status().values()
        loaded = sum(1 for state in states if state["loaded"])
        log.info(f"Models ready: {loaded}/{len(states)} loaded in {time.perf_counter() - start:.1f} s "
                 f"({self.workers} {'processes' if self.processes else 'threads'}). {announce}".strip())

    def status(self) -> dict[str, dict[str, Any]]:
        return dict(self._reported) if self.processes else self._local.status()

    async def run(self, task: Callable[..., Any], *args: Any, **kwargs: Any) -> Any:
        """Run a task from `app/ml/tasks.py` in the pool, with back-pressure and a deadline."""
        if self._occupied >= self.max_queue + self.workers:
            raise ServiceUnavailable("The verification engine is busy; retry shortly.", code="ml_busy", retry_after=2)
        with metrics.ML_DURATION.labels(getattr(task, "__name__", "?")).time():
            if not self.processes:
                return await self._run_in_thread(task, args, kwargs)
            return await self._run_in_process(task, args, kwargs)

    async def _run_in_process(self, task: Callable[..., Any], args: tuple[Any, ...], kwargs: dict[str, Any]) -> Any:
        self._count(1)
        try:
            deadline = asyncio.get_running_loop().time() + self.timeout  # the wait for a worker counts too
            return await self._run_in_worker(task, args, kwargs, deadline)
        except TimeoutError as exc:
            log.warning("ML task overran its deadline; its worker (if it had one) was replaced",
                        extra={"task": getattr(task, "__name__", "?"), "timeout_s": self.timeout})
            raise ServiceUnavailable("The verification took too long; retry shortly.", code="ml_timeout") from exc
        except ModelsUnavailable as exc:
            if "model" in exc.details:
                self._reported[exc.details["model"]] = {"loaded": False, "name": None, "error": exc.details["error"]}
            raise
        finally:
            self._count(-1)

    async def _take(self) -> _Worker:
        metrics.ML_QUEUE.inc()
        try:
            await self._free.acquire()  # one task per worker: the queue is here, where it can be timed out
        finally:
            metrics.ML_QUEUE.dec()
        metrics.ML_IN_FLIGHT.inc()  # until this worker, or the one replacing it, is given back
        return self._idle.pop()

    def _give_back(self, slot: _Worker) -> None:
        metrics.ML_IN_FLIGHT.dec()
        self._idle.append(slot)
        self._free.release()

    async def _load_one(self) -> None:
        """Load the models in one worker while it is held, so no task queues behind the loading
        (and none can time out there and get a loading worker killed)."""
        slot = await self._take()
        try:
            self._reported.update(await slot.submit(worker.load_all))
        finally:
            self._give_back(slot)

    async def _run_in_worker(self, task: Callable[..., Any], args: tuple[Any, ...], kwargs: dict[str, Any],
                             deadline: float) -> Any:
        loop = asyncio.get_running_loop()
        slot = await asyncio.wait_for(self._take(), max(0.0, deadline - loop.time()))
        future = slot.submit(worker.run_task, task, args, kwargs)
        try:
            # `wait`, not `wait_for`: neither the deadline nor a cancelled caller cancels the task here.
            done, _ = await asyncio.wait({future}, timeout=max(0.0, deadline - loop.time()))
        except asyncio.CancelledError:
            self._finish_unattended(slot, future, deadline)
            raise
        if not done:  # past the deadline: the only way to stop the task is to stop its worker
            self._recycle(slot)
            raise TimeoutError()
        self._settle(slot, future)
        try:
            return future.result()
        except BrokenProcessPool as exc:
            log.error("ML worker died; starting a new one")
            raise ServiceUnavailable("The verification engine restarted; retry.", code="ml_restarted") from exc
        except worker.WorkerOutOfMemory as exc:
            log.warning("ML task hit the worker memory ceiling; replacing the worker",
                        extra={"memory_mb": self.memory_mb})
            raise self._out_of_memory() from exc

    def _settle(self, slot: _Worker, future: asyncio.Future[Any]) -> None:
        """A finished task's worker goes back to the pool, unless the task broke it (crashed, or
        over its memory ceiling: that process is replaced). A task's own error leaves it fine."""
        error = None if future.cancelled() else future.exception()
        if future.cancelled() or isinstance(error, BrokenProcessPool | worker.WorkerOutOfMemory):
            self._recycle(slot)
        else:
            self._give_back(slot)

    def _finish_unattended(self, slot: _Worker, future: asyncio.Future[Any], deadline: float) -> None:
        """The caller went away (a client disconnected): the task finishes in its worker, which then
        goes back to the pool. Killing it instead would cost a model reload (seconds) for every
        dropped request, a cheap way to keep the pool reloading. Past the deadline it is stopped
        like any overrun (cancelling the future makes `_settle` replace the worker)."""
        overrun = asyncio.get_running_loop().call_at(deadline, future.cancel)
        self._count(1)  # still occupying its worker: counted against the queue limit until it ends

        def finished(_: asyncio.Future[Any]) -> None:
            overrun.cancel()
            self._count(-1)
            self._settle(slot, future)

        future.add_done_callback(finished)

    def _recycle(self, slot: _Worker) -> None:
        """Kill a worker whose task must not go on and put a fresh one in its place; after a
        preload, the fresh one takes tasks only once its models are loaded."""
        slot.stop(kill=True)
        fresh = _Worker(self._context, self._loaders, self.memory_mb)
        self._slots[self._slots.index(slot)] = fresh
        self.recycled += 1
        if not self._preloaded:
            self._give_back(fresh)
            return

        def loaded(future: asyncio.Future[Any]) -> None:
            if not future.cancelled() and future.exception() is None:
                self._reported.update(future.result())
            self._give_back(fresh)  # even after a failed load: its tasks then say why

        fresh.submit(worker.load_all).add_done_callback(loaded)

    async def _run_in_thread(self, task: Callable[..., Any], args: tuple[Any, ...], kwargs: dict[str, Any]) -> Any:
        # A thread cannot be stopped: a timed-out task keeps its thread (and is counted) until it ends.
        def call() -> Any:
            metrics.ML_QUEUE.dec()
            with metrics.ML_IN_FLIGHT.track_inprogress():
                return task(self._local, *args, **kwargs)

        metrics.ML_QUEUE.inc()
        future = self._threads.submit(call)
        self._count(1)
        future.add_done_callback(lambda _: self._count(-1))
        try:
            return await asyncio.wait_for(asyncio.wrap_future(future), timeout=self.timeout)
        except TimeoutError as exc:
            raise ServiceUnavailable("The verification took too long; retry shortly.", code="ml_timeout") from exc
        except Exception as exc:
            if worker.allocation_failed(exc):
                raise self._out_of_memory() from exc
            raise

    def _out_of_memory(self) -> FileTooLarge:
        return FileTooLarge("Analysing this input needs more memory than a verification worker may use; "
                            "send a smaller image.", memory_mb=self.memory_mb)

    def close(self) -> None:
        if self.processes:
            for slot in self._slots:
                slot.stop(kill=False)
        else:
            self._threads.shutdown(wait=False, cancel_futures=True)
