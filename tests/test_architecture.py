"""The architecture, visible in the tree and kept by tests.

- No import cycles among relto's modules (imports under ``if TYPE_CHECKING:``
  aside): imports point from adapters to capabilities to pure cores.
- ``relto.server`` holds adapters only: it never reaches into persistence
  (``relto.store.*``, SQLAlchemy) or builds facts for decisions itself.
- The sharing capability (``relto.documents``) is typed and takes what it uses
  in its constructors: no ``Any``, no imports inside functions.
"""

from __future__ import annotations

import ast
from collections.abc import Iterator
from pathlib import Path

SRC = Path(__file__).resolve().parent.parent / "src"
PACKAGE = "relto"


def _modules() -> dict[str, Path]:
    out = {}
    for path in sorted((SRC / PACKAGE).rglob("*.py")):
        parts = path.relative_to(SRC).with_suffix("").parts
        name = ".".join(parts[:-1] if parts[-1] == "__init__" else parts)
        out[name] = path
    return out


def _is_type_checking(test: ast.expr) -> bool:
    return (isinstance(test, ast.Name) and test.id == "TYPE_CHECKING") or (
        isinstance(test, ast.Attribute) and test.attr == "TYPE_CHECKING"
    )


def _module_level_imports(tree: ast.Module, name: str, is_package: bool) -> Iterator[str]:
    """Imports run when the module is imported (not in functions, not TYPE_CHECKING)."""
    stack: list[ast.stmt] = list(tree.body)
    while stack:
        node = stack.pop()
        if isinstance(node, ast.If) and _is_type_checking(node.test):
            stack.extend(node.orelse)
            continue
        if isinstance(node, ast.If | ast.Try | ast.With):
            for block in ("body", "orelse", "finalbody", "handlers"):
                for child in getattr(node, block, []):
                    stack.extend(child.body if isinstance(child, ast.ExceptHandler) else [child])
            continue
        if isinstance(node, ast.Import):
            yield from (alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                anchor = name.split(".")
                if not is_package:
                    anchor = anchor[:-1]
                anchor = anchor[: len(anchor) - (node.level - 1)]
                base = ".".join([*anchor, base] if base else anchor)
            yield base
            yield from (f"{base}.{alias.name}" for alias in node.names)


def import_graph() -> dict[str, set[str]]:
    modules = _modules()
    graph: dict[str, set[str]] = {}
    for name, path in modules.items():
        tree = ast.parse(path.read_text(encoding="utf-8"))
        targets = set()
        for imported in _module_level_imports(tree, name, path.name == "__init__.py"):
            # Importing a.b.c runs a, a.b and a.b.c -- except the packages the
            # importing module itself lives in, which are already being imported.
            parts = imported.split(".")
            for i in range(1, len(parts) + 1):
                candidate = ".".join(parts[:i])
                if candidate in modules and not (name + ".").startswith(candidate + "."):
                    targets.add(candidate)
        graph[name] = targets
    return graph


def cycles(graph: dict[str, set[str]]) -> list[list[str]]:
    """Strongly connected components of more than one module (Tarjan)."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    on_stack: set[str] = set()
    stack: list[str] = []
    out: list[list[str]] = []
    counter = 0

    def visit(v: str) -> None:
        nonlocal counter
        index[v] = low[v] = counter
        counter += 1
        stack.append(v)
        on_stack.add(v)
        for w in graph[v]:
            if w not in index:
                visit(w)
                low[v] = min(low[v], low[w])
            elif w in on_stack:
                low[v] = min(low[v], index[w])
        if low[v] == index[v]:
            component = []
            while True:
                w = stack.pop()
                on_stack.discard(w)
                component.append(w)
                if w == v:
                    break
            if len(component) > 1:
                out.append(sorted(component))

    for v in sorted(graph):
        if v not in index:
            visit(v)
    return out


def test_the_cycle_finder_finds_a_cycle() -> None:
    graph = {"a": {"b"}, "b": {"c"}, "c": {"a"}, "d": {"a"}}
    assert cycles(graph) == [["a", "b", "c"]]


def test_no_import_cycles() -> None:
    found = cycles(import_graph())
    assert found == [], "import cycles: " + "; ".join(" <-> ".join(c) for c in found)


def test_server_never_reaches_into_persistence() -> None:
    """Routes and pages call capabilities' services; they never open sessions,
    build repositories or query tables themselves."""
    offenders = []
    for name, targets in import_graph().items():
        if name.startswith("relto.server"):
            bad = sorted(t for t in targets if t.startswith("relto.store."))
            if bad:
                offenders.append((name, bad))
    for path in (SRC / PACKAGE / "server").rglob("*.py"):
        text = path.read_text(encoding="utf-8")
        if "sqlalchemy" in text or "Repository(" in text or ".session()" in text:
            offenders.append((str(path.relative_to(SRC)), ["sqlalchemy/repository/session"]))
    assert offenders == []


def test_sharing_capability_is_typed_and_wired_by_its_constructors() -> None:
    problems = []
    for path in (SRC / PACKAGE / "documents").rglob("*.py"):
        tree = ast.parse(path.read_text(encoding="utf-8"))
        for node in ast.walk(tree):
            if isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef):
                for inner in ast.walk(node):
                    if isinstance(inner, ast.Import | ast.ImportFrom):
                        problems.append(f"{path.name}:{inner.lineno} import inside a function")
            if isinstance(node, ast.Name) and node.id == "Any":
                problems.append(f"{path.name}:{node.lineno} Any")
    assert problems == []


def test_services_are_not_looked_up_by_name() -> None:
    """One composition root (relto.node): no service locator left in the server."""
    for path in (SRC / PACKAGE / "server").rglob("*.py"):
        text = path.read_text(encoding="utf-8")
        assert "extras" not in text and "importlib" not in text, path
