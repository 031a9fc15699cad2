"""Inside an ML worker: Ctrl-C is the service's to handle, native log noise is dropped (and
nothing else), an allocation failure is recognised however it is wrapped; the ready line."""

from __future__ import annotations

import asyncio
import logging
import os
import signal
import subprocess
import sys
from functools import partial

import pytest

from app.domain.errors import FileTooLarge
from app.ml import worker
from app.ml.gateway import MlGateway
from tests.unit.test_ml_gateway import make_model, where


async def test_a_worker_survives_ctrl_c_and_keeps_working():
    gw = MlGateway({"m": partial(make_model, 0.0)}, workers=1, processes=True)
    try:
        _, pid, _ = await gw.run(where)
        os.kill(pid, signal.SIGINT)  # what a terminal's Ctrl-C sends the whole process group
        await asyncio.sleep(0.3)
        _, again, _ = await gw.run(where)
        assert again == pid and gw.recycled == 0
    finally:
        gw.close()


def test_native_noise_is_dropped_and_everything_else_passes():
    script = (
        "import os, time; from app.ml.worker import filter_native_stderr; filter_native_stderr();"
        "os.write(2, b\"AttributeError: 'MessageFactory' object has no attribute 'GetPrototype'\\n\");"
        "os.write(2, b'INFO: Created TensorFlow Lite XNNPACK delegate for CPU.\\nreal problem here\\n');"
        "os.write(2, b'W0000 00:00 1 inference_feedback_manager.cc:114] Feedback manager requires a model with "
        "a single signature inference.\\n'); time.sleep(0.3)"
    )
    out = subprocess.run([sys.executable, "-c", script], capture_output=True, timeout=30, cwd=os.getcwd())
    assert out.returncode == 0
    assert out.stderr == b"real problem here\n"


@pytest.mark.parametrize("error, expected", [
    (MemoryError(), True),
    (RuntimeError("[ONNXRuntimeError] : 6 : RUNTIME_EXCEPTION : ... Status Message: std::bad_alloc"), True),
    (ValueError("the image is odd"), False),
])
def test_allocation_failures_are_recognised_through_wrappers(error, expected):
    class Wrapper(Exception):  # as RapidOCR wraps ONNX Runtime's errors
        pass

    wrapped = Wrapper("Traceback (most recent call last): ...")
    wrapped.__cause__ = error
    assert worker.allocation_failed(wrapped) is expected


async def test_preload_logs_one_ready_line_with_what_the_app_appends(caplog):
    gw = MlGateway({"m": partial(make_model, 0.0)}, workers=1)
    try:
        with caplog.at_level(logging.INFO, logger="kycflow.ml"):
            await gw.preload(announce="API docs at http://127.0.0.1:8000/docs")
        ready = [r.getMessage() for r in caplog.records if r.getMessage().startswith("Models ready")]
        assert len(ready) == 1 and "1/1 loaded" in ready[0]
        assert ready[0].endswith("API docs at http://127.0.0.1:8000/docs")
    finally:
        gw.close()


async def test_in_thread_mode_an_allocation_failure_is_a_413_too():
    def exhaust(models):
        raise MemoryError

    gw = MlGateway({}, workers=1)
    try:
        with pytest.raises(FileTooLarge) as err:
            await gw.run(exhaust)
        assert err.value.code == "file_too_large"
    finally:
        gw.close()
