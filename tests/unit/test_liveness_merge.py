"""How the service cuts a liveness request into runs for the worker pool (no models needed)."""

from __future__ import annotations

import types

import pytest

from app.domain.errors import InvalidInput
from app.ml import tasks
from app.ml.gateway import MlGateway
from app.ml.liveness_pool import analyze_liveness


@pytest.mark.parametrize("count", [1, 2, 8, 9, 10, 11, 30, 31, 60])
@pytest.mark.parametrize("parts", [1, 2, 3, 4])
def test_runs_cover_every_frame_and_share_one_frame(count: int, parts: int) -> None:
    runs = tasks.split_frames(count, parts)
    assert 1 <= len(runs) <= parts
    assert runs[0][0] == 0 and runs[-1][1] == count
    for (_, stop), (start, _) in zip(runs, runs[1:]):
        assert start == stop - 1  # every frame-to-frame jump lies inside one run
    if len(runs) > 1:
        assert min(stop - start for start, stop in runs) >= 5


def test_short_bursts_stay_in_one_run() -> None:
    assert tasks.split_frames(8, 2) == [(0, 8)]
    assert tasks.split_frames(30, 2) == [(0, 15), (14, 30)]


async def test_a_bad_frame_is_named_as_if_one_task_had_read_them_all() -> None:
    def not_reached(*args, **kwargs):
        raise AssertionError("frames that do not decode must never reach the analyzer")

    analyzer = types.SimpleNamespace(measure=not_reached, merge=not_reached, analyze=not_reached)
    ml = MlGateway({"liveness_detector": lambda: analyzer}, workers=2)
    try:
        with pytest.raises(InvalidInput) as err:
            await analyze_liveness(ml, ["%%%not base64%%%"] * 30, tasks.Limits())
        assert err.value.message.startswith("Frame 0: ")
    finally:
        ml.close()
