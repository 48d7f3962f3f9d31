"""Package layering (house style): only the CLI imports typer, only rendering imports rich, the
library works from Python without either, and dependencies point one way
(units/catalog -> roofline -> ... -> reports/export -> CLI). An AST scan, so no module has to be
imported for the check."""

from __future__ import annotations

import ast
import subprocess
import sys
from pathlib import Path

import pytest

import prfaas_plan

PACKAGE_DIR = Path(prfaas_plan.__file__).resolve().parent
SOURCES = sorted(p for p in PACKAGE_DIR.rglob("*.py") if "_catalog" not in p.parts)


def _module_name(path: Path) -> str:
    rel = path.relative_to(PACKAGE_DIR.parent).with_suffix("")
    parts = list(rel.parts)
    if parts[-1] == "__init__":
        parts.pop()
    return ".".join(parts)


def imported_modules(path: Path) -> set[str]:
    """Every module a file imports (anywhere, including inside functions), as absolute dotted
    names. ``from . import x`` yields both the package and ``package.x``."""
    module = _module_name(path)
    package = module if path.name == "__init__.py" else module.rpartition(".")[0]
    found: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"), filename=str(path))):
        if isinstance(node, ast.Import):
            found.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                base_parts = package.split(".")
                base_parts = base_parts[: len(base_parts) - (node.level - 1)]
                base = ".".join(base_parts)
                target = f"{base}.{node.module}" if node.module else base
            else:
                target = node.module or ""
            found.add(target)
            found.update(f"{target}.{alias.name}" for alias in node.names)
    return found


def _imports_top(path: Path, top: str) -> bool:
    return any(m == top or m.startswith(top + ".") for m in imported_modules(path))


def _rel(path: Path) -> str:
    return path.relative_to(PACKAGE_DIR.parent).as_posix()


def test_scan_sees_the_package():
    """The scan finds the modules this test is about (guards against scanning nothing)."""
    names = {_rel(p) for p in SOURCES}
    assert {"prfaas_plan/cli/__init__.py", "prfaas_plan/cli/_common.py", "prfaas_plan/reports/render.py", "prfaas_plan/roofline/prefill.py", "prfaas_plan/catalog/model.py"} <= names
    assert _imports_top(PACKAGE_DIR / "cli" / "_common.py", "typer")
    assert "prfaas_plan.errors" in imported_modules(PACKAGE_DIR / "catalog" / "paths.py")  # `from ..errors import`


def test_resolves_relative_imports():
    """`from . import counts` inside roofline resolves to prfaas_plan.roofline.counts."""
    assert "prfaas_plan.roofline.counts" in imported_modules(PACKAGE_DIR / "roofline" / "prefill.py")


def _in_cli(path: Path) -> bool:
    return path.parent == PACKAGE_DIR / "cli"


def test_only_cli_imports_typer():
    """typer is the CLI package's business alone, and nothing imports click (typer >= 0.26 vendors
    its own; the CLI reaches click's classes through typer)."""
    assert [_rel(p) for p in SOURCES if _imports_top(p, "click")] == []
    typer_users = [p for p in SOURCES if _imports_top(p, "typer")]
    assert PACKAGE_DIR / "cli" / "__init__.py" in typer_users
    assert [_rel(p) for p in typer_users if not _in_cli(p)] == []


def test_only_render_and_cli_import_rich():
    """Terminal formatting lives in reports/render.py and reports/terminal.py (and the CLI that drives it)."""
    offenders = [_rel(p) for p in SOURCES if _imports_top(p, "rich") and not _in_cli(p)]
    assert set(offenders) <= {"prfaas_plan/reports/render.py", "prfaas_plan/reports/terminal.py"}, offenders


def test_library_imports_without_cli_dependencies():
    """Importing the computational modules in a fresh interpreter loads neither typer nor rich."""
    code = (
        "import sys\n"
        "import prfaas_plan.roofline.prefill, prfaas_plan.roofline.decode, prfaas_plan.reports.kv_report\n"
        "import prfaas_plan.catalog.hardware, prfaas_plan.catalog.model, prfaas_plan.catalog.hf_import\n"
        "import prfaas_plan.paper.calibration, prfaas_plan.paper.validation, prfaas_plan.reports.export\n"
        "bad = sorted(m for m in sys.modules if m.split('.')[0] in ('typer', 'rich', 'click'))\n"
        "print(','.join(bad))\n"
    )
    res = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60)
    assert res.returncode == 0, res.stderr
    assert res.stdout.strip() == ""


#: The layers, bottom to top, as the folder listing shows them. A module may import from its own
#: layer or below, never above (house style: specs/units -> roofline and KV -> planning ->
#: latency -> reports -> CLI; `paper` reproduces the published tables on top of planning).
LAYERS = {"units": 0, "errors": 0, "bounds": 0, "execution": 1, "catalog": 1, "traces": 1, "roofline": 2, "planning": 3, "latency": 4, "fleet": 4,
          "simulation": 4,
          "paper": 5, "risk": 5, "reports": 6, "cli": 7, "__main__": 7}


def _layer(module: str) -> str | None:
    parts = module.split(".")
    return parts[1] if len(parts) > 1 and parts[0] == "prfaas_plan" and parts[1] in LAYERS else None


@pytest.mark.parametrize("path", [p for p in SOURCES if _layer(_module_name(p))], ids=lambda p: _rel(p))
def test_dependencies_point_down(path):
    """No module imports from a layer above its own."""
    own = LAYERS[_layer(_module_name(path))]
    above = sorted(m for m in imported_modules(path) if _layer(m) and LAYERS[_layer(m)] > own)
    assert above == []


def test_every_module_belongs_to_a_layer():
    """A new top-level module must be placed in the layer map above (keeps the listing honest)."""
    assert [_rel(p) for p in SOURCES if p.name != "__init__.py" and _layer(_module_name(p)) is None] == []


@pytest.mark.parametrize("path", [p for p in SOURCES if p.parent.name == "catalog"], ids=lambda p: _rel(p))
def test_catalog_does_not_import_roofline(path):
    """The catalog only reads and checks; the formulas live in roofline (catalog/model.py)."""
    assert not any(m.startswith("prfaas_plan.roofline") for m in imported_modules(path))


@pytest.mark.parametrize("name", ["units.py", "errors.py"])
def test_units_and_errors_are_leaves(name):
    """units and errors import nothing from the package except errors."""
    internal = {m for m in imported_modules(PACKAGE_DIR / name) if m.startswith("prfaas_plan")}
    assert internal <= {"prfaas_plan.errors", "prfaas_plan.errors.PlanError"}


def test_nothing_imports_the_cli():
    """The CLI is the top: no library module imports it (the `python -m prfaas_plan` entry
    point, __main__.py, is the one legitimate caller)."""
    offenders = [_rel(p) for p in SOURCES
                 if not _in_cli(p) and p.name != "__main__.py" and any(m.startswith("prfaas_plan.cli") for m in imported_modules(p))]
    assert offenders == []


def test_only_plots_import_matplotlib():
    """Plotting libraries load only when plotting (house style): one module draws."""
    offenders = [_rel(p) for p in SOURCES if _imports_top(p, "matplotlib")]
    assert offenders == ["prfaas_plan/reports/plots.py"]


@pytest.mark.parametrize("args", [["optimize", "paper-case-study", "-f", "json"], ["whatif", "paper-case-study", "-f", "json"],
                                  ["sweep", "paper-case-study", "--vary", "link.bandwidth_gbit_per_s=10,100", "-f", "json"],
                                  ["kv", "-m", "minimax-m2.5", "-H", "h200"]])
def test_plain_commands_do_not_load_matplotlib(args):
    """The plain commands never import matplotlib (it costs ~0.3 s), only plots and reports do."""
    code = (
        "import sys\n"
        "from prfaas_plan.cli import app\n"
        f"sys.argv = ['prfaas-plan', *{args!r}]\n"
        "try:\n    app()\nexcept SystemExit as e:\n    assert not e.code, e.code\n"
        "print('LOADED:' + ','.join(sorted(m for m in sys.modules if m.split('.')[0] == 'matplotlib')))\n"
    )
    res = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120, cwd=PACKAGE_DIR.parent)
    assert res.returncode == 0, res.stderr[-2000:]
    assert res.stdout.strip().splitlines()[-1] == "LOADED:"


def test_only_the_executors_import_dask():
    """Distributed libraries load only when used: one module imports dask, inside DaskExecutor."""
    offenders = [_rel(p) for p in SOURCES if _imports_top(p, "dask") or _imports_top(p, "distributed")]
    assert offenders == ["prfaas_plan/execution/executors.py"]
    tree = ast.parse((PACKAGE_DIR / "execution" / "executors.py").read_text(encoding="utf-8"))
    top = [n for n in tree.body if isinstance(n, (ast.Import, ast.ImportFrom))]
    assert not any((getattr(n, "module", "") or "").startswith("dask") or any(a.name.startswith("dask") for a in n.names) for n in top)


# --- no import cycles, no oversized modules (issue 15, the house) --------------------------------

MODULES = {_module_name(p): p for p in SOURCES}


def _module_of(name: str) -> str | None:
    """The package module an imported name belongs to (its longest prefix that is a module)."""
    parts = name.split(".")
    for i in range(len(parts), 0, -1):
        if ".".join(parts[:i]) in MODULES:
            return ".".join(parts[:i])
    return None


def import_graph() -> dict[str, set[str]]:
    """module -> the package modules it imports, anywhere in the file (a function-level import
    closes a cycle as surely as a top-level one, only later). ``from . import x`` is an edge to
    x, not to the package's __init__; a package's own submodules importing each other is not an
    edge to the package."""
    graph: dict[str, set[str]] = {}
    for name, path in MODULES.items():
        package = name if path.name == "__init__.py" else name.rpartition(".")[0]
        edges = set()
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"), filename=str(path))):
            if isinstance(node, ast.Import):
                targets = [a.name for a in node.names]
            elif isinstance(node, ast.ImportFrom):
                base = ".".join(package.split(".")[: len(package.split(".")) - (node.level - 1)]) if node.level else ""
                module = ".".join(x for x in (base, node.module or "") if x)
                targets = [f"{module}.{a.name}" if f"{module}.{a.name}" in MODULES else module for a in node.names]
            else:
                continue
            edges.update(m for m in map(_module_of, targets) if m and m != name)
        graph[name] = edges
    return graph


def cycles(graph: dict[str, set[str]]) -> list[list[str]]:
    """The strongly connected components with more than one module (Tarjan)."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on: set[str] = set()
    out: list[list[str]] = []

    def visit(v: str) -> None:
        index[v] = low[v] = len(index)
        stack.append(v)
        on.add(v)
        for w in graph.get(v, ()):
            if w not in index:
                visit(w)
                low[v] = min(low[v], low[w])
            elif w in on:
                low[v] = min(low[v], index[w])
        if low[v] == index[v]:
            comp = []
            while True:
                w = stack.pop()
                on.discard(w)
                comp.append(w)
                if w == v:
                    break
            if len(comp) > 1:
                out.append(sorted(comp))

    for v in sorted(graph):
        if v not in index:
            visit(v)
    return out


def test_cycle_finder_finds_a_cycle():
    """The finder itself: a -> b -> c -> a is one cycle, d alone is none."""
    assert cycles({"a": {"b"}, "b": {"c"}, "c": {"a"}, "d": {"a"}}) == [["a", "b", "c"]]


def test_no_import_cycles():
    """No two modules of the package import each other, directly or through others (e.g.
    reports/export.py and reports/xlsx.py did: export now writes JSON/CSV only)."""
    graph = import_graph()
    assert "prfaas_plan.reports.export" in graph["prfaas_plan.reports.xlsx"]  # the scan sees function-level imports
    assert cycles(graph) == []


#: House style: modules under ~400 lines (issue 15: no module over it).
MAX_MODULE_LINES = 400


@pytest.mark.parametrize("path", SOURCES, ids=lambda p: _rel(p))
def test_module_size(path):
    lines = len(path.read_text(encoding="utf-8").splitlines())
    assert lines <= MAX_MODULE_LINES, f"{_rel(path)}: {lines} lines"
