"""Liveness over a burst of frames, scheduled across the pool's workers.

Each worker measures one run of frames (decode, Face Mesh, its share of the face embeddings)
side by side, then one cheap task applies the rules to the whole sequence, so one request takes
about half the time it would in one worker; short bursts stay in one task. Services only ask
for an analysis: how it is split is the pool's business.
"""

from __future__ import annotations

import asyncio
from typing import Any

from app.ml import tasks
from app.ml.gateway import MlGateway


async def analyze_liveness(
    ml: MlGateway, frames: list[str], limits: tasks.Limits, *, initial_blink_count: int = 0,
    min_frames: int | None = None, actions: list[str] | None = None,
) -> tuple[Any, tuple[bool, str] | None]:
    """As `tasks.analyze_frames` returns: the analysis, and with `actions` the challenge verdict."""
    options: dict[str, Any] = {"initial_blink_count": initial_blink_count, "min_frames": min_frames,
                               "actions": actions}
    runs = tasks.split_frames(len(frames), ml.workers)
    if len(runs) == 1:
        return await ml.run(tasks.analyze_frames, frames, limits, **options)
    measured = await asyncio.gather(
        *(ml.run(tasks.measure_frames, frames[start:stop], limits, start=start, first=start == 0,
                 last=stop == len(frames)) for start, stop in runs),
        return_exceptions=True,
    )
    for result in measured:  # the earliest frame's error, as one task over all frames would say
        if isinstance(result, BaseException):
            raise result
    return await ml.run(tasks.merge_frames, measured, frames, limits, **options)
