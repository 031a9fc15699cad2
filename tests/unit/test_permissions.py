"""One table decides who may do what: `GET /roles` shows it, route dependencies check it."""

from __future__ import annotations

from typing import Any

import pytest

from app.api.deps import require
from app.domain.users import ALL_PERMISSIONS, PERMISSIONS, Role, role_can
from app.main import create_app


def _api_routes(app: Any) -> list[Any]:
    """Each route with its full path and dependency tree (FastAPI 0.16x wraps included routers)."""
    routes = []
    for route in app.routes:
        if hasattr(route, "effective_candidates"):
            routes += route.effective_candidates()
        elif hasattr(route, "dependant"):
            routes.append(route)
    return routes


def _permissions(route: Any) -> set[str]:
    """The permissions a route's dependency tree checks (the `require` closures carry theirs)."""
    found: set[str] = set()
    stack = [route.dependant]
    while stack:
        dep = stack.pop()
        call = dep.call
        if getattr(call, "__name__", None) == "check" and getattr(call, "__closure__", None):
            found |= {c.cell_contents for c in call.__closure__ if isinstance(c.cell_contents, str)}
        stack.extend(dep.dependencies)
    return found


def test_unknown_permission_fails_at_import_time():
    with pytest.raises(ValueError):
        require("loans:dispurse")


def test_admin_holds_every_permission_an_auditor_holds():
    assert set(PERMISSIONS[Role.AUDITOR]) <= set(PERMISSIONS[Role.ADMIN])
    assert role_can(Role.AUDITOR, "audit:read") and not role_can(Role.AUDITOR, "staff:create")
    assert not role_can(Role.CUSTOMER, "users:read")


def test_every_staff_route_is_guarded_by_a_permission_from_the_table():
    app = create_app()
    staff_routes = [r for r in _api_routes(app)
                    if r.path.startswith("/api/v1/admin") or r.path == "/api/v1/audit-logs"]
    assert staff_routes
    for route in staff_routes:
        perms = _permissions(route)
        assert perms, f"{route.path} checks no permission"
        assert perms <= ALL_PERMISSIONS, (route.path, perms)
        # No customer holds any of them: staff routes are closed to customers by the table itself.
        assert not any(role_can(Role.CUSTOMER, p) for p in perms), (route.path, perms)
