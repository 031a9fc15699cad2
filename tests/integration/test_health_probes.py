"""The probes: `/health/live` answers while the process does and never touches the database (a
database blip must not restart every instance); `/health/ready` says 503 `not_ready`, naming each
part, until the database answers, the models are loaded and the job workers run."""

from __future__ import annotations

import asyncio
from typing import Any

import httpx
from pymongo import monitoring

from app.main import create_app
from tests.conftest import make_settings


class Commands(monitoring.CommandListener):
    def __init__(self) -> None:
        self.names: list[str] = []

    def started(self, event: monitoring.CommandStartedEvent) -> None:
        self.names.append(event.command_name)

    def succeeded(self, event: Any) -> None:
        pass

    def failed(self, event: Any) -> None:
        pass


async def test_live_reads_nothing_and_answers_with_the_database_gone(api_factory):
    commands = Commands()
    api = await api_factory(db_listeners=[commands], job_workers=0)
    await asyncio.sleep(0.05)
    commands.names.clear()
    r = await api.client.get("/health/live")
    assert r.status_code == 200 and r.json() == {"status": "alive"}
    assert commands.names == []
    await api.container.client.close()
    assert (await api.client.get("/health/live")).status_code == 200


async def test_ready_when_database_models_and_workers_are(api):
    r = await api.client.get("/health/ready")
    assert r.status_code == 200, r.text
    assert r.json() == {"status": "ready", "checks": {"database": True, "models": True, "jobs": True}}


async def test_not_ready_names_the_database_when_it_is_gone(api_factory):
    api = await api_factory()
    await api.container.client.close()
    r = await api.client.get("/health/ready")
    body = r.json()
    assert r.status_code == 503 and body["error_code"] == "not_ready", body
    assert body["detail"] == "Not ready: database."
    assert [e["loc"] for e in body["errors"]] == [["checks", "database"]]


async def test_not_ready_names_the_job_workers_when_they_stopped_and_not_when_there_are_none(api_factory):
    api = await api_factory(job_workers=1)
    await api.container.jobs.stop()
    r = await api.client.get("/health/ready")
    assert r.status_code == 503 and [e["loc"] for e in r.json()["errors"]] == [["checks", "jobs"]], r.text
    none = await api_factory(job_workers=0)  # the jobs run in `kycflow worker` processes
    assert (await none.client.get("/health/ready")).status_code == 200


async def test_not_ready_while_the_models_load_and_when_one_fails(mongo_uri, tmp_path):
    loading = asyncio.Event()

    def slow() -> object:
        asyncio.run_coroutine_threadsafe(loading.wait(), loop).result(10)
        return object()

    def broken() -> object:
        raise RuntimeError("model file missing")

    loop = asyncio.get_running_loop()
    settings = make_settings(mongo_uri, tmp_path, None, ml_preload=True, job_workers=0)
    app = create_app(settings, ml_loaders={"face_matcher": slow, "ocr_extractor": broken})
    async with app.router.lifespan_context(app):
        client = httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://test/api/v1")
        r = await client.get("/health/ready")
        assert r.status_code == 503 and r.json()["detail"] == "Not ready: models.", r.text
        assert (await client.get("/health/live")).status_code == 200
        loading.set()
        for _ in range(100):  # the preload finishes: the broken model keeps it not ready
            if app.state.container.ml.status()["face_matcher"]["loaded"]:
                break
            await asyncio.sleep(0.02)
        assert app.state.container.ml.status()["face_matcher"]["loaded"]
        r = await client.get("/health/ready")
        assert r.status_code == 503 and [e["loc"] for e in r.json()["errors"]] == [["checks", "models"]]
        # /health keeps its own answer beside the probes
        assert (await client.get("/health")).json()["status"] == "degraded"
