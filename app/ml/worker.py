"""What runs inside an ML worker process: its set-up (memory ceiling, signals, native log
noise) and the wrapper every task runs in. The service side is `app/ml/gateway.py`.

Memory ceiling: RLIMIT_DATA, not RLIMIT_AS. Measured with every model loaded (rapidocr,
dlib, MediaPipe): VmSize 0.8 GB idle and 2.8 GB at peak for a 40-megapixel photo, of
which most is address space ONNX Runtime and the TFLite/XNNPACK threads reserve and never
touch; VmData (heap, anonymous mappings, thread stacks) is 0.4 GB idle and RSS peaked at
1.5 GB. Under RLIMIT_AS=2 GB a dense 2000x1890 card already failed in ONNX Runtime while
it needed 1.1 GB resident; RLIMIT_DATA tracks what is really allocated. With the limit
reached, numpy/dlib raise MemoryError and ONNX Runtime a "bad allocation" error: both
become `WorkerOutOfMemory`, and the gateway replaces the worker. The default (2048 MB)
is the measured need of the largest accepted input: a 40-megapixel photo through the OCR and
the face matcher failed under 1536 MB and passed under 2048 MB.
"""

from __future__ import annotations

import os
import resource
import signal
import sys
import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any

from app.ml.registry import ModelRegistry

_models: ModelRegistry | None = None

# Harmless lines the native libraries write straight to fd 2 (no logger to turn down):
# MediaPipe's protobuf>=5 probe, TFLite's delegate banner and absl's feedback-tensor
# warning, printed for every Face Mesh graph (each liveness request).
NOISE = (
    b"'MessageFactory' object has no attribute 'GetPrototype'",
    b"Created TensorFlow Lite XNNPACK delegate",
    b"All log messages before absl::InitializeLog()",
    b"Feedback manager requires a model with a single signature",
)
_ALLOCATION_FAILURES = ("std::bad_alloc", "Failed to allocate memory")


class WorkerOutOfMemory(Exception):
    """A task hit the worker's memory ceiling; the worker should not be trusted further."""


def init_worker(loaders: dict[str, Callable[[], Any]], memory_mb: int | None) -> None:
    """ProcessPoolExecutor initializer: runs once in each new worker, before any task."""
    global _models
    # Ctrl-C reaches the whole process group: the service shuts its workers down itself,
    # so a worker must not die mid-task printing a KeyboardInterrupt traceback. Until this
    # line the worker was spawned with SIGINT blocked (`sigint_blocked`); it stays blocked.
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    os.environ.setdefault("GLOG_minloglevel", "2")
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
    filter_native_stderr()
    if memory_mb:
        limit = memory_mb * 1024 * 1024
        _, hard = resource.getrlimit(resource.RLIMIT_DATA)
        if hard != resource.RLIM_INFINITY:
            limit = min(limit, hard)
        resource.setrlimit(resource.RLIMIT_DATA, (limit, hard))
    _models = ModelRegistry(loaders)


@contextmanager
def sigint_blocked() -> Iterator[None]:
    """Spawn workers inside this. A child starts with its parent's signal mask, so a Ctrl-C sent
    to the process group while the worker's interpreter starts and imports (seconds on a loaded
    machine, before `init_worker` can ignore it) stays pending instead of raising KeyboardInterrupt
    there. The service loses nothing: another of its threads takes the signal, or it waits until
    the mask is restored. The standard library's resource tracker is started the same way."""
    previous = signal.pthread_sigmask(signal.SIG_BLOCK, {signal.SIGINT})
    try:
        yield
    finally:
        signal.pthread_sigmask(signal.SIG_SETMASK, previous)


def filter_native_stderr(noise: tuple[bytes, ...] = NOISE) -> None:
    """Route fd 2 through a thread that drops the known-harmless lines and passes every
    other line on, so real errors (C or Python) still reach the service's stderr."""
    try:
        original = os.dup(2)
        read_end, write_end = os.pipe()
        os.dup2(write_end, 2)
        os.close(write_end)
    except OSError:  # no stderr to filter: leave it alone
        return

    def pump() -> None:
        with os.fdopen(read_end, "rb", buffering=0) as source:
            pending = b""
            while chunk := source.read(65536):
                pending += chunk
                *lines, pending = pending.split(b"\n")
                for line in lines:
                    if not any(marker in line for marker in noise):
                        os.write(original, line + b"\n")
            if pending:
                os.write(original, pending)

    threading.Thread(target=pump, name="stderr-filter", daemon=True).start()
    sys.stderr.flush()


def run_task(task: Callable[..., Any], args: tuple[Any, ...], kwargs: dict[str, Any]) -> Any:
    assert _models is not None, "init_worker did not run"
    try:
        return task(_models, *args, **kwargs)
    except MemoryError as exc:
        raise WorkerOutOfMemory(str(exc)) from None
    except Exception as exc:
        if allocation_failed(exc):
            raise WorkerOutOfMemory(type(exc).__name__) from None
        raise


def allocation_failed(exc: BaseException | None) -> bool:
    """ONNX Runtime reports std::bad_alloc as a RuntimeException, which RapidOCR wraps again."""
    while exc is not None:
        if isinstance(exc, MemoryError) or any(marker in str(exc) for marker in _ALLOCATION_FAILURES):
            return True
        exc = exc.__cause__
    return False


def load_all() -> dict[str, dict[str, Any]]:
    assert _models is not None, "init_worker did not run"
    return _models.load_all()
