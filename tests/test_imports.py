"""No import cycles in asgi_llm, read from the source with `ast` (nothing is imported).

What counts: module-level imports of asgi_llm modules (`import`, `from ... import`, relative
ones resolved), also under `if` and `try`; those under `if TYPE_CHECKING:` are kept apart.
Imports inside functions are not module-level: they are how a module reaches a late or
optional dependency on purpose. `import asgi_llm.a.b` also runs the package `asgi_llm.a`, so
that is an import of it too, except from a module inside it (its package is already running
then); `from asgi_llm.a import name` needs `asgi_llm/a/__init__.py` unless `name` is a module.

The rules:

1. Modules: runtime imports form no cycle, and no module imports itself.
2. Units: each sub-package (config, auth, ratelimit, cache, routing, providers, translate,
   metrics, admin, and any added later) is one unit, and so is each top-level module (exchange,
   context, app, ..., and the package's `__init__`). Runtime imports between units form no
   cycle: the package tree is a layering. Top-level modules are units of their own, not one
   "core", because `exchange.py` (which every layer imports) and `app.py` (which imports every
   layer) would make one cycle of everything.
3. The same with the imports under `if TYPE_CHECKING:` added: a type-only import may point
   back within a unit (config.catalog <-> config.loader), never back across units.
"""

from __future__ import annotations

import ast
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from functools import cache
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1] / "asgi_llm"
PACKAGE = "asgi_llm"

Graph = Mapping[str, Iterable[str]]


@dataclass(frozen=True)
class Module:
    name: str
    path: Path
    is_package: bool


@dataclass
class Imports:
    """importer -> {imported: (file, line)}, for runtime and for type-only imports."""

    runtime: dict[str, dict[str, str]] = field(default_factory=dict)
    typing: dict[str, dict[str, str]] = field(default_factory=dict)


def modules(root: Path = ROOT) -> dict[str, Module]:
    found = {}
    for path in sorted(root.rglob("*.py")):
        parts = list(path.relative_to(root.parent).with_suffix("").parts)
        is_package = parts[-1] == "__init__"
        name = ".".join(parts[:-1] if is_package else parts)
        found[name] = Module(name, path, is_package)
    return found


def _is_type_checking(test: ast.expr) -> bool:
    return (isinstance(test, ast.Name) and test.id == "TYPE_CHECKING") or (
        isinstance(test, ast.Attribute) and test.attr == "TYPE_CHECKING"
    )


def _targets(node: ast.Import | ast.ImportFrom, module: Module, known: set[str]) -> list[str]:
    """The dotted names an import statement loads. `from x import y` loads x.y when that is a
    module; it needs x itself only for a name x defines (a package it is inside of is already
    running, so `from . import sibling` is no import of that package)."""
    if isinstance(node, ast.Import):
        return [alias.name for alias in node.names]
    if node.level:
        package = module.name.split(".") if module.is_package else module.name.split(".")[:-1]
        package = package[: len(package) - (node.level - 1)]
        base = ".".join([*package, *([node.module] if node.module else [])])
    else:
        base = node.module or ""
    submodules = [f"{base}.{alias.name}" for alias in node.names if f"{base}.{alias.name}" in known]
    return submodules + ([base] if len(submodules) < len(node.names) else [])


def imports_of(module: Module, source: str, known: Iterable[str]) -> tuple[dict[str, str], dict[str, str]]:
    """(runtime, type-only) module-level imports of asgi_llm modules by `module`, each with
    where it is (`asgi_llm/app.py:23`)."""
    known = set(known)
    runtime: dict[str, str] = {}
    typing: dict[str, str] = {}
    where_of = f"{module.path.relative_to(ROOT.parent) if module.path.is_absolute() else module.path}"

    def add(name: str, line: int, type_only: bool) -> None:
        while name and name not in known:  # `from asgi_llm.x import SomeClass`: the module x
            name = name.rpartition(".")[0]
        if not (name == PACKAGE or name.startswith(PACKAGE + ".")):
            return
        parts = name.split(".")
        # the packages on the way, unless `module` is inside them (then they already run)
        loaded = [".".join(parts[:k]) for k in range(2, len(parts))] + [name]
        for target in loaded:
            inside = module.name == target or module.name.startswith(target + ".")
            if target in known and not (inside and target != name):
                (typing if type_only else runtime).setdefault(target, f"{where_of}:{line}")

    def visit(statements: list[ast.stmt], type_only: bool) -> None:
        for node in statements:
            if isinstance(node, ast.Import | ast.ImportFrom):
                for name in _targets(node, module, known):
                    add(name, node.lineno, type_only)
            elif isinstance(node, ast.If):
                visit(node.body, type_only or _is_type_checking(node.test))
                visit(node.orelse, type_only)
            elif isinstance(node, ast.Try):
                for block in (node.body, node.orelse, node.finalbody, *(h.body for h in node.handlers)):
                    visit(block, type_only)

    visit(ast.parse(source).body, False)
    for name in runtime:
        typing.pop(name, None)  # imported at runtime anyway
    return runtime, typing


@cache
def import_graph() -> Imports:
    found = modules()
    graph = Imports()
    for name, module in found.items():
        graph.runtime[name], graph.typing[name] = imports_of(module, module.path.read_text(), found)
    return graph


def tangles(graph: Graph) -> list[list[str]]:
    """The strongly connected components of more than one node, and the nodes that point at
    themselves: where the cycles are (Tarjan's algorithm)."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    components: list[list[str]] = []

    def strongconnect(node: str) -> None:
        index[node] = low[node] = len(index)
        stack.append(node)
        on_stack.add(node)
        for other in graph.get(node, ()):
            if other not in index:
                strongconnect(other)
                low[node] = min(low[node], low[other])
            elif other in on_stack:
                low[node] = min(low[node], index[other])
        if low[node] == index[node]:
            component = []
            while True:
                other = stack.pop()
                on_stack.discard(other)
                component.append(other)
                if other == node:
                    break
            components.append(sorted(component))

    for node in sorted(graph):
        if node not in index:
            strongconnect(node)
    return sorted(c for c in components if len(c) > 1 or c[0] in graph.get(c[0], ()))


def cycles(graph: Graph) -> list[list[str]]:
    """One cycle through each tangle (its first node, repeated last)."""
    return [_path_back(graph, tangle[0], set(tangle)) for tangle in tangles(graph)]


def _path_back(graph: Graph, start: str, within: set[str]) -> list[str]:
    """A shortest path from `start` back to itself inside one component."""
    came_from: dict[str, str] = {}
    frontier = [start]
    while frontier:
        following = []
        for node in frontier:
            for other in sorted(graph.get(node, ())):
                if other == start:
                    path = [start, node]
                    while path[-1] != start:
                        path.append(came_from[path[-1]])
                    return [start, *reversed(path[1:-1]), start] if node != start else [start, start]
                if other in within and other not in came_from:
                    came_from[other] = node
                    following.append(other)
        frontier = following
    raise AssertionError(f"{start} is in a component without a cycle through it")


def unit_of(module: str) -> str:
    """The unit a module belongs to: its sub-package, or the top-level module itself."""
    parts = module.split(".")
    if len(parts) == 1:
        return f"{PACKAGE}/__init__"
    if (ROOT / parts[1]).is_dir():
        return parts[1]
    return f"{parts[1]}.py"


def unit_graph(edges: Mapping[str, Mapping[str, str]]) -> dict[str, dict[str, str]]:
    """unit -> {other unit: one import that makes the edge}."""
    units: dict[str, dict[str, str]] = {}
    for importer, imported in edges.items():
        mine = units.setdefault(unit_of(importer), {})
        for name, where in imported.items():
            other = unit_of(name)
            if other != unit_of(importer):
                mine.setdefault(other, f"{where} ({importer} -> {name})")
    return units


def describe(graph: Mapping[str, Mapping[str, str]]) -> str:
    """Each cycle of `graph`, with the import behind each step and what else is caught in it."""
    lines = []
    for tangle in tangles(graph):
        cycle = _path_back(graph, tangle[0], set(tangle))
        lines.append(" -> ".join(cycle))
        for a, b in zip(cycle, cycle[1:], strict=False):
            lines.append(f"    {a} -> {b}: {graph[a][b]}")
        if len(tangle) > len(cycle) - 1:
            lines.append(f"    in one tangle with it: {', '.join(n for n in tangle if n not in cycle)}")
    return "\n".join(lines)


def merged(*graphs: Mapping[str, Mapping[str, str]]) -> dict[str, dict[str, str]]:
    out: dict[str, dict[str, str]] = {}
    for graph in graphs:
        for node, targets in graph.items():
            out.setdefault(node, {}).update(targets)
    return out


# -- the rules -------------------------------------------------------------------------------


def test_no_module_import_cycles():
    runtime = import_graph().runtime
    assert not cycles(runtime), "module-level import cycles:\n" + describe(runtime)


def test_no_import_cycles_between_units():
    units = unit_graph(import_graph().runtime)
    assert not cycles(units), "import cycles between sub-packages / top-level modules:\n" + describe(units)


def test_type_only_imports_close_no_cycle_between_units():
    graph = import_graph()
    units = unit_graph(merged(graph.runtime, graph.typing))
    assert not cycles(units), "cycles between units once TYPE_CHECKING imports count:\n" + describe(units)


# -- the machinery, so that the rules above can fail -----------------------------------------


def test_the_graph_covers_the_package():
    graph = import_graph()
    assert len(graph.runtime) == len(modules()) > 50
    units = set(unit_graph(graph.runtime))
    assert {"config", "auth", "ratelimit", "cache", "routing", "providers", "translate", "metrics"} <= units
    assert {"admin", "exchange.py", "app.py", f"{PACKAGE}/__init__"} <= units
    assert graph.runtime["asgi_llm"], "the package's __init__ imports its public names"
    assert any(graph.typing.values()), "no TYPE_CHECKING import found: the parser misses them"


def test_imports_are_resolved_and_sorted_by_kind(tmp_path):
    known = {
        "asgi_llm",
        "asgi_llm.cache",
        "asgi_llm.cache.keys",
        "asgi_llm.cache.store",
        "asgi_llm.cache.semantic",
        "asgi_llm.config",
        "asgi_llm.config.schema",
        "asgi_llm.context",
        "asgi_llm.errors",
    }
    source = """
from __future__ import annotations
import json
from typing import TYPE_CHECKING
from . import keys
from .store import CacheStore
from ..context import LLMContext
import asgi_llm.errors
try:
    from asgi_llm.config.schema import Cache
except ImportError:
    pass
if TYPE_CHECKING:
    from asgi_llm.cache.semantic import SemanticTier
    from asgi_llm.context import Usage
else:
    from asgi_llm import lifespan

def late():
    from asgi_llm.config import schema  # not module-level
"""
    module = Module("asgi_llm.cache.middleware", Path("asgi_llm/cache/middleware.py"), False)
    runtime, typing = imports_of(module, source, known)
    assert set(runtime) == {
        "asgi_llm.cache.keys",  # its package, which holds this module, is already running
        "asgi_llm.cache.store",
        "asgi_llm.context",
        "asgi_llm.errors",
        "asgi_llm.config",  # running asgi_llm.config.schema runs its package first
        "asgi_llm.config.schema",
        "asgi_llm",  # a name from the package's __init__, in the else branch of TYPE_CHECKING
    }
    assert set(typing) == {"asgi_llm.cache.semantic"}  # asgi_llm.context is a runtime import already
    assert runtime["asgi_llm.context"] == "asgi_llm/cache/middleware.py:7"
    # A name the package's __init__ defines needs that __init__, from inside the package too.
    package_name = "from asgi_llm.cache import CacheKey\n"
    assert set(imports_of(module, package_name, known)[0]) == {"asgi_llm.cache"}
    package = Module("asgi_llm.cache", Path("asgi_llm/cache/__init__.py"), True)
    assert set(imports_of(package, "from .keys import CacheKey\n", known)[0]) == {"asgi_llm.cache.keys"}


def test_cycles_are_found_and_shown_as_paths():
    graph = {"a": {"b"}, "b": {"c", "g"}, "c": {"a", "d"}, "d": set(), "e": {"e"}, "f": {"a"}, "g": {"b"}}
    assert tangles(graph) == [["a", "b", "c", "g"], ["e"]]
    assert cycles(graph) == [["a", "b", "c", "a"], ["e", "e"]]
    assert cycles({"x": {"y"}, "y": set()}) == []
    shown = describe({k: {v: f"{k}.py:1" for v in vs} for k, vs in graph.items()})
    assert shown.splitlines() == [
        "a -> b -> c -> a",
        "    a -> b: a.py:1",
        "    b -> c: b.py:1",
        "    c -> a: c.py:1",
        "    in one tangle with it: g",
        "e -> e",
        "    e -> e: e.py:1",
    ]


def test_units_are_sub_packages_and_top_level_modules():
    assert unit_of("asgi_llm.cache.middleware") == unit_of("asgi_llm.cache") == "cache"
    assert unit_of("asgi_llm.exchange") == "exchange.py"
    assert unit_of("asgi_llm") == "asgi_llm/__init__"
    units = unit_graph(
        {
            "asgi_llm.cache.middleware": {"asgi_llm.cache.keys": "m.py:1", "asgi_llm.exchange": "m.py:2"},
            "asgi_llm.exchange": {"asgi_llm.cache.policy": "exchange.py:9"},
        }
    )
    assert units == {
        "cache": {"exchange.py": "m.py:2 (asgi_llm.cache.middleware -> asgi_llm.exchange)"},
        "exchange.py": {"cache": "exchange.py:9 (asgi_llm.exchange -> asgi_llm.cache.policy)"},
    }
    assert cycles(units) == [["cache", "exchange.py", "cache"]]
