"""Which routes the body-limit middleware allows more than the JSON limit, read from the app."""

from __future__ import annotations

from typing import Any

from app.api.middleware import route_body_kind


def large_body_routes(app: Any) -> list[tuple[str, str, str]]:
    """(method, path template, kind) of every route allowed more than the JSON limit."""
    found: list[tuple[str, str, str]] = []
    pending = list(app.routes)
    while pending:
        route = pending.pop(0)
        if hasattr(route, "effective_candidates"):  # FastAPI 0.16x wraps included routers
            pending[:0] = route.effective_candidates()
            continue
        kind = route_body_kind(route)
        if kind is not None:
            found += [(method, route.path, kind) for method in sorted(getattr(route, "methods", None) or ())]
    return found
