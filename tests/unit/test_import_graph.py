"""The import graph of `app/` has no cycles (config <-> services/encryption and ml/gateway <->
ml/worker were two): every import is read, those inside functions and under TYPE_CHECKING too,
since an import deferred to break a cycle still ties the two modules together."""

from __future__ import annotations

import ast
from graphlib import CycleError, TopologicalSorter
from pathlib import Path

APP = Path(__file__).resolve().parents[2] / "app"


def _module(path: Path) -> str:
    parts = path.relative_to(APP.parent).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def _imports(path: Path, modules: set[str]) -> set[str]:
    found: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.Import):
            found |= {alias.name for alias in node.names}
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            found.add(node.module)
            found |= {f"{node.module}.{alias.name}" for alias in node.names}  # `from app.ml import worker`
    return found & modules


def test_app_modules_import_one_another_without_cycles():
    paths = {_module(p): p for p in APP.rglob("*.py")}
    modules = set(paths)
    # A package's __init__ gathering its own submodules is not a cycle between two modules.
    graph = {name: {dep for dep in _imports(path, modules) if dep != name and not
                    (path.name == "__init__.py" and dep.startswith(name + "."))}
             for name, path in paths.items()}
    try:
        TopologicalSorter(graph).prepare()
    except CycleError as cycle:
        raise AssertionError(f"import cycle: {' -> '.join(cycle.args[1])}") from None
