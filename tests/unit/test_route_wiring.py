"""Routes name the typed service they use (`LoanServiceDep`, ...) instead of taking the whole
container and reaching through it; the modules still taking it say why."""

from __future__ import annotations

import importlib
import pkgutil

from fastapi.routing import APIRoute

import app.api
from app.api.deps import get_container

# Routes that still take the container, and why.
TAKES_CONTAINER = {
    "app.api.health": "the database and model status of the container itself",
    "app.api.events": "the live stream reads the hub, the clock and the settings",
    "app.api.gateway": "the gateway settings (forwarded auth, trusted proxies)",
    "app.api.console": "the staff console (its own helper)",
    "app.api.metrics": "the metrics token setting and the database figures of the container itself",
}


def _routes() -> list[tuple[str, APIRoute]]:
    found = []
    for info in pkgutil.walk_packages(app.api.__path__, "app.api."):
        module = importlib.import_module(info.name)
        router = getattr(module, "router", None)
        if router is not None:
            found += [(info.name, r) for r in router.routes if isinstance(r, APIRoute)]
    return found


def test_routes_depend_on_the_service_they_use_not_on_the_container():
    reaching = sorted(f"{name}: {' '.join(route.methods)} {route.path}" for name, route in _routes()
                      if not any(name == m or name.startswith(m + ".") for m in TAKES_CONTAINER)
                      and any(d.call is get_container for d in route.dependant.dependencies))
    assert reaching == []
    assert {name for name, _ in _routes()} >= {"app.api.loans", "app.api.catalogue", "app.api.admin",
                                               "app.api.webhooks", "app.api.jobs", "app.api.users"}
