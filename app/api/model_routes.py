"""The routes that run a model (OCR, face, liveness) during the request. Each declares
`RUNS_MODELS` among its dependencies; the request limits cap these per caller (MAX_IN_FLIGHT_PER_CALLER),
matching the concrete route (method and path template), never a path prefix. A test reads the
code to find every route that reaches the ML gateway and checks that exactly those are capped."""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from typing import Any

from fastapi import Depends
from starlette.routing import Match


async def runs_models() -> None:
    """Marks a route that runs a model; it does nothing itself."""


RUNS_MODELS = Depends(runs_models)


def api_routes(routes: Iterable[Any]) -> Iterator[Any]:
    """Every endpoint route with its full path, dependency tree and `matches(scope)`.
    FastAPI 0.16x keeps an included router whole and builds its routes' full form lazily."""
    for route in routes:
        if hasattr(route, "effective_route_contexts"):
            yield from route.effective_route_contexts()
        elif getattr(route, "dependant", None) is not None:
            yield route


def _declares(dependant: Any) -> bool:
    return dependant.call is runs_models or any(_declares(d) for d in dependant.dependencies)


def model_routes(routes: Iterable[Any]) -> tuple[Any, ...]:
    """The routes among `routes` that declare `RUNS_MODELS`."""
    return tuple(route for route in api_routes(routes) if _declares(route.dependant))


def is_model_route(routes: Iterable[Any], scope: dict[str, Any]) -> bool:
    """Whether the request in `scope` is for one of `routes` (its method and path both match)."""
    return any(route.matches(scope)[0] is Match.FULL for route in routes)
