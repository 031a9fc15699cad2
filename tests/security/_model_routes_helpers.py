"""Which routes run a model, found by reading the code rather than by the routes' own declaration:
a route runs a model when its endpoint, or a service method it calls (followed through `self.<...>`
on the live services), calls the ML gateway's `run` or hands the gateway to another function.

Names are resolved on live objects (the endpoint's parameters, a method's `self`); a local alias
(`svc = c.kyc`) is not followed, so keep routes calling services through their dependency."""

from __future__ import annotations

import ast
import inspect
import re
import textwrap
import typing
from typing import Any

from fastapi import FastAPI

from app.api.model_routes import api_routes
from app.bootstrap import Container
from app.ml.gateway import MlGateway

_UNRESOLVED = object()


def _tree(fn: Any) -> ast.AST | None:
    try:
        return ast.parse(textwrap.dedent(inspect.getsource(fn)))
    except (OSError, TypeError, SyntaxError):
        return None


class _Walker:
    def __init__(self) -> None:
        self._memo: dict[tuple[type, str], bool] = {}

    def _resolve(self, node: ast.expr, env: dict[str, Any]) -> Any:
        if isinstance(node, ast.Name):
            return env.get(node.id, _UNRESOLVED)
        if isinstance(node, ast.Attribute):
            owner = self._resolve(node.value, env)
            if owner is _UNRESOLVED:
                return _UNRESOLVED
            return getattr(owner, node.attr, _UNRESOLVED)
        return _UNRESOLVED

    def body_reaches(self, fn: Any, env: dict[str, Any]) -> bool:
        tree = _tree(fn)
        if tree is None:
            return False
        reaches = False
        for node in ast.walk(tree):
            if not isinstance(node, ast.Call):
                continue
            args = [*node.args, *(k.value for k in node.keywords)]
            if any(isinstance(self._resolve(a, env), MlGateway) for a in args):
                reaches = True  # the gateway handed to a helper (analyze_liveness(self.ml, ...))
            if isinstance(node.func, ast.Attribute):
                owner = self._resolve(node.func.value, env)
                if isinstance(owner, MlGateway):
                    reaches |= node.func.attr == "run"  # status() and close() run nothing
                elif owner is not _UNRESOLVED:
                    reaches |= self.method_reaches(owner, node.func.attr)
        return reaches

    def method_reaches(self, obj: Any, name: str) -> bool:
        cls = type(obj)
        if not cls.__module__.startswith("app."):
            return False
        key = (cls, name)
        if key not in self._memo:
            self._memo[key] = False  # recursion guard
            fn = inspect.getattr_static(cls, name, None)
            fn = getattr(fn, "__func__", fn)
            self._memo[key] = callable(fn) and self.body_reaches(fn, {"self": obj})
        return self._memo[key]


def _params(route: Any, container: Container) -> dict[str, Any]:
    """The endpoint's parameters that are the container or one of its services."""
    services = {type(v): v for v in vars(container).values()}
    env: dict[str, Any] = {}
    for name, hint in typing.get_type_hints(route.endpoint, include_extras=True).items():
        base = typing.get_args(hint)[0] if typing.get_origin(hint) is typing.Annotated else hint
        if base is Container:
            env[name] = container
        elif isinstance(base, type) and base in services:
            env[name] = services[base]
    return env


def routes_reaching_models(app: FastAPI, container: Container) -> set[tuple[str, str]]:
    """`(method, path template)` of every route that runs a model during the request."""
    walker = _Walker()
    found: set[tuple[str, str]] = set()
    for route in api_routes(app.routes):
        if walker.body_reaches(route.endpoint, _params(route, container)):
            found |= {(method, route.path) for method in route.methods}
    return found


def concrete_path(template: str) -> str:
    """A path that the route's template matches (any path parameter filled in)."""
    return re.sub(r"\{[^}]+\}", "6741f0c2a1b2c3d4e5f60718", template)
