"""The ML gateway: models load once, failures degrade to 503, deadlines, back-pressure,
and a free event loop, in both thread and process mode."""

from __future__ import annotations

import asyncio
import os
import threading
import time
from functools import partial

import pytest

from app.domain.errors import InvalidInput, ModelsUnavailable, ServiceUnavailable
from app.ml.gateway import MlGateway


class Model:
    name = "tiny"

    def __init__(self) -> None:
        self.thread = threading.current_thread().name
        self.pid = os.getpid()


def make_model(delay: float = 0.0) -> Model:
    time.sleep(delay)
    return Model()


def broken() -> Model:
    raise FileNotFoundError("weights.onnx missing")


def where(models, key: str = "m") -> tuple[str, int, int]:
    model = models.get(key)
    return model.thread, model.pid, id(model)


def spin(models, seconds: float) -> None:
    """Pure-Python busy work: holds the GIL the whole time, like dlib does."""
    end = time.perf_counter() + seconds
    while time.perf_counter() < end:
        pass


def refuse(models) -> None:
    raise InvalidInput("bad frame", code="invalid_image", frame=3)


async def test_models_load_once_in_the_pool_and_report_status():
    calls = []

    def load() -> Model:
        calls.append(1)
        return make_model(0.05)

    gw = MlGateway({"m": load}, workers=2)
    seen = await asyncio.gather(*(gw.run(where) for _ in range(5)))
    assert len(calls) == 1 and len({s[2] for s in seen}) == 1
    assert seen[0][0].startswith("ml")  # loaded and used off the event loop
    assert gw.status() == {"m": {"loaded": True, "name": "tiny", "error": None}}
    gw.close()


async def test_a_model_that_cannot_load_degrades_to_503():
    gw = MlGateway({"m": broken}, workers=1)
    await gw.preload()
    assert gw.status()["m"] == {"loaded": False, "name": None, "error": "FileNotFoundError: weights.onnx missing"}
    with pytest.raises(ModelsUnavailable) as err:
        await gw.run(where)
    assert err.value.code == "models_unavailable"
    gw.close()


async def _loop_lag_while(gw: MlGateway, work) -> float:
    lags: list[float] = []

    async def probe() -> None:
        while True:
            start = time.perf_counter()
            await asyncio.sleep(0.005)
            lags.append(time.perf_counter() - start - 0.005)

    task = asyncio.create_task(probe())
    await work
    task.cancel()
    return max(lags)


async def test_process_mode_keeps_the_event_loop_free_from_gil_holding_work():
    gw = MlGateway({"m": partial(make_model, 0.0)}, workers=2, processes=True)
    await gw.preload()
    assert gw.status()["m"]["loaded"] is True
    _, pid, _ = await gw.run(where)
    assert pid != os.getpid()  # the model lives in a worker process
    lag = await _loop_lag_while(gw, asyncio.gather(*(gw.run(spin, 0.3) for _ in range(4))))
    assert lag < 0.1
    with pytest.raises(InvalidInput) as err:  # domain errors keep their code and details across processes
        await gw.run(refuse)
    assert err.value.code == "invalid_image" and err.value.details == {"frame": 3}
    gw.close()


async def test_process_mode_reports_a_model_that_cannot_load():
    gw = MlGateway({"m": broken}, workers=1, processes=True)
    await gw.preload()
    assert gw.status()["m"]["error"] == "FileNotFoundError: weights.onnx missing"
    with pytest.raises(ModelsUnavailable):
        await gw.run(where)
    gw.close()


async def test_deadline_and_back_pressure():
    gw = MlGateway({}, workers=1, timeout=0.1, max_queue=1)
    with pytest.raises(ServiceUnavailable) as err:
        await gw.run(lambda models: time.sleep(0.5))
    assert err.value.code == "ml_timeout"
    gw.close()
    gw = MlGateway({}, workers=1, timeout=5, max_queue=0)
    first = asyncio.create_task(gw.run(lambda models: time.sleep(0.2)))
    await asyncio.sleep(0.01)
    with pytest.raises(ServiceUnavailable) as err:
        await gw.run(lambda models: None)
    assert err.value.code == "ml_busy" and err.value.details["retry_after"] == 2
    await first
    gw.close()


async def test_a_timed_out_task_keeps_its_worker_counted_until_it_really_ends():
    gw = MlGateway({}, workers=1, timeout=0.05, max_queue=0)
    with pytest.raises(ServiceUnavailable):
        await gw.run(lambda models: time.sleep(0.4))
    with pytest.raises(ServiceUnavailable) as err:  # the worker is still busy with the abandoned task
        await gw.run(lambda models: None)
    assert err.value.code == "ml_busy"
    await asyncio.sleep(0.5)
    assert await gw.run(lambda models: 42) == 42
    gw.close()
