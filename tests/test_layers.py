"""The package layout is the architecture (docs/architecture.md): dependencies point inward.

Reads every module of `src/edgeproxy` with `ast` (imports under `TYPE_CHECKING` and inside
functions count like any other) and fails on an import cycle between modules, on an arrow the
table below does not allow, and on an import hidden inside a function.
"""

from __future__ import annotations

import ast
from collections.abc import Iterator
from pathlib import Path

import pytest

SRC = Path(__file__).resolve().parents[1] / "src"
PACKAGE = SRC / "edgeproxy"

# Which of our packages each package may import (itself always). Read it bottom-up: `domain` is
# the pure core; `node` is the composition root, which nothing imports.
ALLOWED: dict[str, set[str]] = {
    "domain": set(),
    "authz": set(),
    "config": {"authz", "domain"},
    "runtime": {"config"},
    "store": {"domain"},
    "revocation": set(),
    "tls": {"authz", "config", "domain", "revocation"},
    "service": {"authz", "domain", "store"},
    "dataplane": {
        "authz", "config", "domain", "revocation", "runtime", "service", "store", "tls",
    },
    "admin": {"authz", "config", "domain", "runtime", "service", "store"},
    "cli": {"authz", "config", "domain"},
    "node": {
        "admin", "authz", "cli", "config", "dataplane", "domain", "runtime", "service", "store",
        "tls",
    },
}  # fmt: skip
# Third-party and standard modules a sans-IO or pure package must not use.
FORBIDDEN_EXTERNAL: dict[str, set[str]] = {
    "domain": {"asyncio", "aiohttp", "aiosqlite", "asyncpg"},
    "authz": {"asyncio", "aiohttp", "aiosqlite", "asyncpg"},
    "revocation": {"asyncio", "aiohttp"},
    "tls": {"asyncio", "aiohttp"},
}


def module_name(path: Path) -> str:
    parts = path.relative_to(SRC).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def package_of(module: str) -> str:
    parts = module.split(".")
    return parts[1] if len(parts) > 1 else ""


def modules() -> dict[str, Path]:
    return {module_name(p): p for p in sorted(PACKAGE.rglob("*.py"))}


_MODULE_PATHS = {name.replace(".", "/") for name in modules()}


def imports(path: Path, module: str) -> Iterator[tuple[str, int, bool]]:
    """(imported module, line, inside a function) for every import statement in the file."""
    tree = ast.parse(path.read_text(), str(path))
    functions = {
        id(node): True
        for fn in ast.walk(tree)
        if isinstance(fn, ast.FunctionDef | ast.AsyncFunctionDef)
        for node in ast.walk(fn)
    }
    is_package = path.name == "__init__.py"
    for node in ast.walk(tree):
        local = id(node) in functions
        if isinstance(node, ast.Import):
            for alias in node.names:
                yield alias.name, node.lineno, local
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                base = module.split(".")
                base = base[: len(base) - node.level + (1 if is_package else 0)]
                target = ".".join([*base, node.module] if node.module else base)
            else:
                target = node.module or ""
            for alias in node.names:
                # `from edgeproxy.store import codec` is an arrow to the module `codec`; a
                # package's own names are an arrow to its `__init__`. `graph` keeps known ones.
                yield f"{target}.{alias.name}", node.lineno, local
                if f"{target}.{alias.name}".replace(".", "/") not in _MODULE_PATHS:
                    yield target, node.lineno, local


def graph() -> dict[str, dict[str, int]]:
    """module → {our module it imports: line}."""
    known = modules()
    edges: dict[str, dict[str, int]] = {}
    for module, path in known.items():
        out = edges.setdefault(module, {})
        for target, line, _ in imports(path, module):
            if target in known and target != module and target != "edgeproxy":
                out.setdefault(target, line)
    return edges


def cycles(edges: dict[str, dict[str, int]]) -> list[list[str]]:
    """Strongly connected components with more than one module (Tarjan)."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    found: list[list[str]] = []

    def visit(v: str) -> None:
        index[v] = low[v] = len(index)
        stack.append(v)
        on_stack.add(v)
        for w in edges.get(v, {}):
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
                found.append(sorted(component))

    for v in sorted(edges):
        if v not in index:
            visit(v)
    return found


def test_every_package_is_in_the_table() -> None:
    packages = {package_of(m) for m in modules()} - {"", "__main__"}
    assert packages == set(ALLOWED), "add the new package to ALLOWED (and docs/architecture.md)"


def test_no_import_cycles() -> None:
    assert cycles(graph()) == []


def test_arrows_point_inward() -> None:
    wrong = []
    for module, targets in graph().items():
        source = package_of(module)
        if source not in ALLOWED:
            continue
        for target, line in targets.items():
            dest = package_of(target)
            if dest and dest != source and dest not in ALLOWED[source]:
                wrong.append(f"{module}:{line} imports {target}")
    assert wrong == []


@pytest.mark.parametrize("package", sorted(FORBIDDEN_EXTERNAL))
def test_pure_packages_do_no_io(package: str) -> None:
    wrong = []
    for module, path in modules().items():
        if package_of(module) != package:
            continue
        for target, line, _ in imports(path, module):
            if target.split(".")[0] in FORBIDDEN_EXTERNAL[package]:
                wrong.append(f"{module}:{line} imports {target}")
    assert wrong == []


def test_no_imports_hidden_in_functions() -> None:
    hidden = [
        f"{module}:{line} imports {target}"
        for module, path in modules().items()
        for target, line, local in imports(path, module)
        if local and target.startswith("edgeproxy")
    ]
    assert hidden == []


def test_the_check_sees_a_cycle() -> None:
    assert cycles({"a": {"b": 1}, "b": {"c": 1}, "c": {"a": 1}, "d": {"a": 1}}) == [["a", "b", "c"]]
