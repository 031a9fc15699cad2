"""`kycflow worker` (the real command, `app.cli.main(["worker"])`) with one extra job kind, `stall`,
that the worker-process test can catch in the middle of its work. Run as a child process."""

from __future__ import annotations

import asyncio
import os
import sys
from typing import Any

import app.bootstrap as bootstrap
from app.cli import main

_build = bootstrap.build_container


async def _build_with_test_kind(*args: Any, **kwargs: Any) -> Any:
    container = await _build(*args, **kwargs)
    db = container.db

    async def stall(job: Any) -> None:
        """Moves a case from `pending` to `done` under that expected state (idempotent), after
        blocking forever on the attempts the payload names."""
        await db["runs"].insert_one({"key": job.key, "attempt": job.attempts, "pid": os.getpid()})
        if job.payload["stall"] == "always" or (job.payload["stall"] == "first" and job.attempts == 1):
            await asyncio.Event().wait()
        await db["cases"].update_one({"_id": job.payload["case"], "state": "pending"},
                                     {"$set": {"state": "done", "by": os.getpid()}, "$inc": {"applied": 1}})

    container.jobs.register("stall", stall)
    return container


bootstrap.build_container = _build_with_test_kind  # `kycflow worker` looks it up when it runs

if __name__ == "__main__":
    sys.exit(main(["worker"]))
