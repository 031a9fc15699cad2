"""The ML gateway's pool: loading once, degrading on failure, deadlines, back-pressure, a free event loop."""

from __future__ import annotations

import asyncio
import threading
import time

import pytest

from app.domain.errors import ModelsUnavailable, ServiceUnavailable
from app.ml.gateway import MlGateway


class Model:
    name = "tiny"

    def __init__(self) -> None:
        self.thread = threading.current_thread().name


async def test_models_load_once_in_the_pool_and_report_status():
    calls = []

    def load() -> Model:
        calls.append(1)
        time.sleep(0.05)
        return Model()

    gw = MlGateway({"m": load}, workers=2)
    models = await asyncio.gather(*(gw.model("m") for _ in range(5)))
    assert len(calls) == 1 and all(m is models[0] for m in models)
    assert models[0].thread.startswith("ml")  # loaded off the event loop
    assert gw.status() == {"m": {"loaded": True, "name": "tiny", "error": None}}
    gw.close()


async def test_a_model_that_cannot_load_degrades_to_503():
    def broken() -> Model:
        raise FileNotFoundError("weights.onnx missing")

    gw = MlGateway({"m": broken}, workers=1)
    await gw.preload()
    assert gw.status()["m"] == {"loaded": False, "name": None, "error": "FileNotFoundError: weights.onnx missing"}
    with pytest.raises(ModelsUnavailable) as err:
        await gw.model("m")
    assert err.value.code == "models_unavailable"
    gw.close()


async def test_blocking_work_never_blocks_the_event_loop():
    gw = MlGateway({}, workers=2)
    ticks = 0

    async def ticker() -> None:
        nonlocal ticks
        while True:
            await asyncio.sleep(0.01)
            ticks += 1

    task = asyncio.create_task(ticker())
    await asyncio.gather(*(gw.run(time.sleep, 0.2) for _ in range(4)))
    task.cancel()
    assert ticks >= 20  # the loop kept running during 0.4 s of blocking work
    gw.close()


async def test_deadline_and_back_pressure():
    gw = MlGateway({}, workers=1, timeout=0.1, max_queue=1)
    with pytest.raises(ServiceUnavailable) as err:
        await gw.run(time.sleep, 0.5)
    assert err.value.code == "ml_timeout"
    gw.close()
    gw = MlGateway({}, workers=1, timeout=5, max_queue=0)
    first = asyncio.create_task(gw.run(time.sleep, 0.2))
    await asyncio.sleep(0.01)
    with pytest.raises(ServiceUnavailable) as err:
        await gw.run(time.sleep, 0.01)
    assert err.value.code == "ml_busy" and err.value.details["retry_after"] == 2
    await first
    gw.close()
