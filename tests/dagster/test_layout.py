"""The plain-Python core never imports Dagster: checked in the sources and at import time."""

from __future__ import annotations

import ast
import json
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
PACKAGE = ROOT / "data_engine"


def _modules() -> list[str]:
    names = []
    for path in sorted(PACKAGE.rglob("*.py")):
        parts = path.relative_to(ROOT).with_suffix("").parts
        names.append(".".join(parts[:-1] if parts[-1] == "__init__" else parts))
    return names


def _imported(path: Path) -> set[str]:
    """Top-level names of every module imported anywhere in ``path`` (also inside functions)."""
    found: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"), str(path))):
        if isinstance(node, ast.Import):
            found.update(a.name.split(".")[0] for a in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            found.add(node.module.split(".")[0])
        elif isinstance(node, ast.Call) and getattr(node.func, "attr", getattr(node.func, "id", "")) in (
            "import_module", "__import__"
        ) and node.args and isinstance(node.args[0], ast.Constant) and isinstance(node.args[0].value, str):
            found.add(node.args[0].value.split(".")[0])
    return found


@pytest.mark.parametrize("path", sorted(PACKAGE.rglob("*.py")), ids=lambda p: str(p.relative_to(ROOT)))
def test_no_source_file_imports_dagster(path: Path) -> None:
    bad = {m for m in _imported(path) if m == "dagster" or m.startswith("dagster_")}
    assert not bad, f"{path.relative_to(ROOT)} imports {sorted(bad)}"


def test_importing_every_module_loads_no_dagster() -> None:
    modules = _modules()
    assert "data_engine.ingest.batch" in modules and "data_engine.cli" in modules
    script = (
        "import importlib, json, sys\n"
        f"failed = {{}}\n"
        f"for name in {modules!r}:\n"
        "    try:\n"
        "        importlib.import_module(name)\n"
        "    except Exception as exc:\n"
        "        failed[name] = repr(exc)\n"
        "loaded = sorted(m for m in sys.modules if m == 'dagster' or m.startswith(('dagster.', 'dagster_')))\n"
        "print(json.dumps({'failed': failed, 'dagster': loaded}))\n"
    )
    out = subprocess.run([sys.executable, "-c", script], cwd=ROOT, capture_output=True, text=True, check=True,
                         env={"PYTHONPATH": str(ROOT), "PATH": "/usr/bin:/bin"})
    report = json.loads(out.stdout.strip().splitlines()[-1])
    assert report["dagster"] == [], f"dagster loaded by importing data_engine: {report['dagster'][:5]}"
    assert report["failed"] == {}, report["failed"]


def test_loading_the_dagster_definitions_imports_no_scikit_learn(tmp_path: Path) -> None:
    # Every run process, the code server and the daemon load them: scikit-learn (and the scipy it
    # pulls in) is 1-2 s of each start; the jobs that fit import it when they fit.
    script = ("import json, sys, definitions, assets.trainer_pipes\n"
              "print(json.dumps(sorted(m for m in sys.modules if m.split('.')[0] in ('sklearn', 'scipy'))))\n")
    out = subprocess.run([sys.executable, "-c", script], cwd=ROOT, capture_output=True, text=True, check=True,
                         env={"PYTHONPATH": str(ROOT), "PATH": "/usr/bin:/bin", "DATA_ENGINE_HOME": str(tmp_path)})
    assert json.loads(out.stdout.strip().splitlines()[-1]) == []


def test_the_scan_would_see_an_import(tmp_path: Path) -> None:
    sample = tmp_path / "m.py"
    sample.write_text("def f():\n    import dagster as dg\n    from dagster_duckdb import x\n"
                      "    importlib.import_module('dagster')\n", encoding="utf-8")
    assert {"dagster", "dagster_duckdb"} <= _imported(sample)


def _package_imports(path: Path, modules: set[str]) -> set[str]:
    """The ``data_engine`` modules ``path`` imports anywhere (also inside functions), as module names."""
    found: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"), str(path))):
        if isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            for alias in node.names:
                full = f"{node.module}.{alias.name}"
                found.add(full if full in modules else node.module)
        elif isinstance(node, ast.Import):
            found.update(a.name for a in node.names)
    return {m for m in found if m in modules}


def test_no_import_cycle_in_the_core() -> None:
    # Lazy imports inside functions count too: a cycle hidden in a function still ties two
    # stages' modules together, and the layout issue asks for none.
    paths = {}
    for path in sorted(PACKAGE.rglob("*.py")):
        parts = path.relative_to(ROOT).with_suffix("").parts
        paths[".".join(parts[:-1] if parts[-1] == "__init__" else parts)] = path
    graph = {name: _package_imports(path, set(paths)) - {name} for name, path in paths.items()}
    state: dict[str, int] = {}
    stack: list[str] = []

    def visit(node: str) -> list[str] | None:
        state[node] = 1
        stack.append(node)
        for nxt in sorted(graph[node]):
            if state.get(nxt) == 1:
                return stack[stack.index(nxt):] + [nxt]
            if not state.get(nxt) and (cycle := visit(nxt)):
                return cycle
        stack.pop()
        state[node] = 2
        return None

    for name in sorted(graph):
        if not state.get(name) and (cycle := visit(name)):
            pytest.fail("import cycle: " + " -> ".join(cycle))


# The layout issue's bound: a module past this is two concerns waiting to be split.
MAX_MODULE_LINES = 450


@pytest.mark.parametrize("path", sorted(PACKAGE.rglob("*.py")), ids=lambda p: str(p.relative_to(ROOT)))
def test_no_module_is_too_long(path: Path) -> None:
    lines = len(path.read_text(encoding="utf-8").splitlines())
    assert lines <= MAX_MODULE_LINES, f"{path.relative_to(ROOT)} has {lines} lines (at most {MAX_MODULE_LINES})"


def test_dagster_wiring_mirrors_the_stages() -> None:
    stages = {"ingest", "mine", "review", "ship"}
    # trainer_pipes: the user's trainer through Dagster Pipes, used by the mine and ship assets.
    shared_assets = {"resources", "metadata", "history", "trainer_pipes"}
    for folder, shared in (("assets", shared_assets), ("sensors", {"common"})):
        names = {p.stem for p in (ROOT / folder).glob("*.py")} - {"__init__"}
        assert names <= stages | shared, f"{folder}/ has modules outside the stages: {sorted(names - stages - shared)}"
