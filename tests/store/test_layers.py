"""The layers contract (pyproject's [tool.importlinter], run by `lint-imports` in scripts/test.sh) and
scripts/import_arrows.py: the contract holds the loop's order without exceptions, and both the
contract and the script fail on an import against the order."""

from __future__ import annotations

import subprocess
import sys
import tomllib
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
SCRIPT = ROOT / "scripts" / "import_arrows.py"
LINT = Path(sys.executable).parent / "lint-imports"


def _contract() -> dict:
    config = tomllib.loads((ROOT / "pyproject.toml").read_text(encoding="utf-8"))["tool"]["importlinter"]
    (contract,) = [c for c in config["contracts"] if c["type"] == "layers"]
    return contract


def test_the_contract_follows_the_loop_with_no_exceptions() -> None:
    contract = _contract()
    assert "ignore_imports" not in contract and contract.get("exhaustive") is True
    order = [layer for layer in contract["layers"] if "|" not in layer]
    stages = ["ship", "review", "mine", "ingest", "compute", "store"]
    assert [layer for layer in order if layer in stages] == stages  # top first: the loop read upwards
    assert order.index("commands") < order.index("ship") and order[-1] == "errors"


def test_the_arrows_of_this_repository_follow_the_order() -> None:
    out = subprocess.run([sys.executable, str(SCRIPT)], cwd=ROOT, capture_output=True, text=True)
    assert out.returncode == 0, out.stdout + out.stderr
    lines = out.stdout.splitlines()
    assert any(line.split()[:3] == ["mine", "->", "store"] for line in lines)
    assert lines[-1].endswith("0 against the declared order")


def _toy(tmp_path: Path, *, against: bool) -> Path:
    """A package ``toy`` with layers high > low; ``low`` imports ``high`` when ``against``."""
    pkg = tmp_path / "toy"
    for name in ("high", "low"):
        (pkg / name).mkdir(parents=True)
        (pkg / name / "__init__.py").write_text("", encoding="utf-8")
    (pkg / "__init__.py").write_text("", encoding="utf-8")
    (pkg / "high" / "a.py").write_text("from toy.low import b\n", encoding="utf-8")
    (pkg / "low" / "b.py").write_text("def f():\n    from toy.high import a\n" if against else "x = 1\n",
                                      encoding="utf-8")
    (tmp_path / "pyproject.toml").write_text(
        '[tool.importlinter]\nroot_packages = ["toy"]\n\n[[tool.importlinter.contracts]]\nname = "toy layers"\n'
        'type = "layers"\ncontainers = ["toy"]\nlayers = ["high", "low"]\n', encoding="utf-8")
    return tmp_path


@pytest.mark.parametrize("against", [False, True])
def test_the_contract_and_the_script_fail_on_an_import_against_the_order(tmp_path: Path, against: bool) -> None:
    root = _toy(tmp_path, against=against)
    env = {"PATH": "/usr/bin:/bin", "PYTHONPATH": str(root)}
    lint = subprocess.run([str(LINT), "pyproject.toml", "--no-cache"], cwd=root, capture_output=True,
                          text=True, env=env)
    arrows = subprocess.run([sys.executable, str(SCRIPT), "--pyproject", str(root / "pyproject.toml")], cwd=root,
                            capture_output=True, text=True, env=env)
    assert (lint.returncode != 0, arrows.returncode) == (against, int(against)), lint.stdout + arrows.stdout
    assert ("low -> high" in arrows.stdout and "AGAINST" in arrows.stdout) == against
    assert "high -> low" in arrows.stdout
