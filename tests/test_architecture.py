"""Imports only go down: the layers of ``spec/architecture.md``, checked on the source.

The import graph of ``src/voxzarr`` is built with ``ast`` from every ``import`` statement,
at module level and inside functions alike, between top-level modules and packages
(``voxzarr.halo.store`` counts as ``halo``). :data:`LAYERS` is the table of the spec (the spec
is checked to show the same table): a module may import its own layer and the layers below,
never one above, and no two modules may import each other, directly or round a circle,
except the circles listed in :data:`KNOWN_CYCLES`.
"""

from __future__ import annotations

import ast
import re
from collections import defaultdict
from pathlib import Path

import pytest

import voxzarr

SRC = Path(voxzarr.__file__).parent
SPEC = Path(__file__).parents[1] / "spec" / "architecture.md"

#: layers, bottom first: (name, top-level modules and packages of src/voxzarr)
LAYERS: list[tuple[str, set[str]]] = [
    ("base", {"__init__", "errors", "_registry", "_warn"}),
    ("geometry", {"units", "_dims", "gridindex", "coords"}),
    ("store", {"_store", "_cluster", "_progress", "_dprogress", "_chunkwrite", "_chunkread",
               "_pool", "_views"}),
    ("ngff", {"ngff"}),
    ("io", {"_locate", "_write", "io"}),
    ("compute", {"_xp", "_cupyx_exact", "_kernels", "_gpu_gauss", "ndinterp",
                 "_downsample"}),
    ("viz", {"plot"}),
    ("halo", {"halo"}),
    ("ops", {"resample", "filters", "pyramid"}),
    ("domain", {"series", "convert"}),
    ("apps", {"inspect", "view", "demo", "cli", "accessor", "backend", "testing"}),
]

#: circles still to break (spec/architecture.md, "Known exceptions"; none left); each would
#: also allow the upward imports inside it
KNOWN_CYCLES: list[set[str]] = []


def _module_name(path: Path) -> str:
    parts = list(path.relative_to(SRC.parent).with_suffix("").parts)
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def _is_module(name: str) -> bool:
    rel = Path(*name.split(".")[1:]) if "." in name else Path()
    return (SRC / rel).with_suffix(".py").is_file() or (SRC / rel / "__init__.py").is_file()


def _top(name: str) -> str:
    parts = name.split(".")
    return parts[1] if len(parts) > 1 else "__init__"


def import_graph() -> dict[str, dict[str, list[str]]]:
    """``{importer: {imported: ["file:line", ...]}}`` between top-level modules."""
    graph: dict[str, dict[str, list[str]]] = defaultdict(lambda: defaultdict(list))
    for path in sorted(SRC.rglob("*.py")):
        mod = _module_name(path)
        package = mod if path.name == "__init__.py" else mod.rsplit(".", 1)[0]
        tree = ast.parse(path.read_text(encoding="utf-8"))
        for node in ast.walk(tree):
            targets: list[str] = []
            if isinstance(node, ast.Import):
                targets = [a.name for a in node.names]
            elif isinstance(node, ast.ImportFrom):
                if node.level:
                    base = package.split(".")
                    base = base[: len(base) - (node.level - 1)]
                    src = ".".join(base + ([node.module] if node.module else []))
                else:
                    src = node.module or ""
                for alias in node.names:  # `from pkg import submodule` imports the submodule
                    sub = f"{src}.{alias.name}"
                    targets.append(sub if _is_module(sub) else src)
            for target in targets:
                if target == "voxzarr" or target.startswith("voxzarr."):
                    a, b = _top(mod), _top(target)
                    if a != b:
                        where = f"{path.relative_to(SRC).as_posix()}:{node.lineno}"
                        graph[a][b].append(where)
    return graph


def _layer_of() -> dict[str, int]:
    return {m: i for i, (_, mods) in enumerate(LAYERS) for m in mods}


def _top_level_modules() -> set[str]:
    found = {p.stem for p in SRC.glob("*.py")}
    found |= {p.parent.name for p in SRC.glob("*/__init__.py")}
    return found


def _cycles(graph: dict[str, dict[str, list[str]]]) -> list[set[str]]:
    """Strongly connected components with more than one module (Tarjan)."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    found: list[set[str]] = []

    def visit(v: str) -> None:
        index[v] = low[v] = len(index)
        stack.append(v)
        on_stack.add(v)
        for w in graph.get(v, {}):
            if w not in index:
                visit(w)
                low[v] = min(low[v], low[w])
            elif w in on_stack:
                low[v] = min(low[v], index[w])
        if low[v] == index[v]:
            comp = set()
            while True:
                w = stack.pop()
                on_stack.discard(w)
                comp.add(w)
                if w == v:
                    break
            if len(comp) > 1:
                found.append(comp)

    nodes = set(graph) | {b for targets in graph.values() for b in targets}
    for v in sorted(nodes):
        if v not in index:
            visit(v)
    return found


def test_every_module_has_a_layer():
    layer = _layer_of()
    assert sum(len(m) for _, m in LAYERS) == len(layer), "a module is in two layers"
    missing = sorted(_top_level_modules() - set(layer))
    assert not missing, (f"place {missing} in a layer: LAYERS here and the table in "
                         "spec/architecture.md")


def test_no_import_goes_up():
    layer = _layer_of()
    allowed = {(a, b) for cycle in KNOWN_CYCLES for a in cycle for b in cycle}
    upward = [
        f"{a} ({LAYERS[layer[a]][0]}) imports {b} ({LAYERS[layer[b]][0]}) at {', '.join(w)}"
        for a, targets in import_graph().items() for b, w in targets.items()
        if a in layer and b in layer and layer[b] > layer[a] and (a, b) not in allowed
    ]
    assert not upward, "imports must go down (spec/architecture.md):\n" + "\n".join(upward)


def test_no_import_circles_but_the_known_ones():
    graph = import_graph()
    cycles = _cycles(graph)
    unknown = [sorted(c) for c in cycles if c not in KNOWN_CYCLES]
    detail = {str(c): {f"{a} -> {b}": graph[a][b][:3] for a in c for b in c if b in graph[a]}
              for c in map(set, unknown)}
    assert not unknown, f"import circles: {detail}"


def test_graph_sees_function_level_imports():
    graph = import_graph()
    # img.vox.pyramid imports pyramid inside the method
    assert "pyramid" in graph["accessor"]
    # `from .. import _store` inside a subpackage is an import of the _store module
    assert "_store" in graph["ngff"]


def test_spec_shows_the_same_table():
    text = SPEC.read_text(encoding="utf-8")
    rows = re.findall(r"^\|\s*(\d+)\s*\|\s*(\w+)\s*\|([^|]*)\|", text, re.M)
    assert rows, "spec/architecture.md has no layer table"
    table = [(name, set(re.findall(r"`([\w]+)`", mods))) for _, name, mods in rows]
    assert table == LAYERS
    for cycle in KNOWN_CYCLES:
        a, b = sorted(cycle)
        assert re.search(rf"`{a}`\s*<->\s*`{b}`|`{b}`\s*<->\s*`{a}`", text), cycle


#: the modules of the ndinterp package, bottom first (spec/architecture.md, "Where new things
#: go"): each imports only those before it
NDINTERP: list[str] = ["_checks", "_taps", "_matrix", "_dtypes", "_graph", "_cpu", "_gpu",
                       "_blocks", "_cval", "_plan", "_points", "_complex", "api"]


def test_ndinterp_modules_import_downward():
    pkg = SRC / "ndinterp"
    assert sorted(p.stem for p in pkg.glob("*.py") if p.stem != "__init__") == sorted(NDINTERP)
    upward = []
    for i, name in enumerate(NDINTERP):
        tree = ast.parse((pkg / f"{name}.py").read_text(encoding="utf-8"))
        for node in ast.walk(tree):
            if not isinstance(node, ast.ImportFrom):
                continue
            if node.level == 1:  # from .x import ..., from . import x
                targets = [node.module] if node.module else [a.name for a in node.names]
            elif node.level == 0 and (node.module or "").startswith("voxzarr.ndinterp"):
                targets = [node.module.removeprefix("voxzarr.ndinterp").lstrip(".")]
            else:
                continue
            upward += [f"{name} imports {t} (line {node.lineno})" for t in targets
                       if t not in NDINTERP[:i]]
    assert not upward, "ndinterp modules must import downward:\n" + "\n".join(upward)


@pytest.mark.parametrize("name", ["halo", "plot", "io"])
def test_the_circles_this_layering_broke_stay_broken(name):
    graph = import_graph()
    if name == "halo":
        assert "filters" not in graph["halo"]  # halo knows voxel depths only
    elif name == "io":
        # io finds the pyramid's level stream by name; both write through _write, below them
        assert "pyramid" not in graph["io"]
        assert not {"io", "pyramid"} & set(graph["_write"])
    else:
        assert set(graph["plot"]) <= {"_progress", "coords", "errors"}  # plot only draws
