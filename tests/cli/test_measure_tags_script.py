"""scripts/measure_tags_loop.py removes the home it measured in (about 170 MB each) unless --keep,
and then says where it is."""

from __future__ import annotations

import importlib.util
import json
import sys
from pathlib import Path

import pytest

SCRIPT = Path(__file__).resolve().parents[2] / "scripts" / "measure_tags_loop.py"


@pytest.fixture
def script(monkeypatch):
    """The script as a module (its measurement replaced by one that writes a home and its figures)."""
    # No arguments: importing the script must not start a measurement (one that read them at import fails).
    monkeypatch.setattr(sys, "argv", [str(SCRIPT)])
    spec = importlib.util.spec_from_file_location("measure_tags_loop", SCRIPT)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    made = []

    def measure(name, seed, home_dir):
        home_dir.mkdir(parents=True)
        (home_dir / "warehouse.duckdb").write_bytes(b"x" * 1000)
        made.append(home_dir)
        return {"set": name, "seed": seed}
    monkeypatch.setattr(module, "measure", measure)
    module.made = made
    return module


def test_the_home_is_removed_at_the_end(script, tmp_path, capsys):
    assert script.main(["cancer", "0", str(tmp_path)]) == 0
    assert json.loads(capsys.readouterr().out) == {"set": "cancer", "seed": 0}
    assert script.made == [tmp_path / "cancer0"] and not (tmp_path / "cancer0").exists() and tmp_path.exists()


def test_a_temporary_root_goes_too(script, tmp_path, monkeypatch):
    monkeypatch.setattr(script.tempfile, "mkdtemp", lambda: str(tmp_path / "made"))
    (tmp_path / "made").mkdir()
    script.main(["wine", "1"])
    assert script.made == [tmp_path / "made" / "wine1"] and not (tmp_path / "made").exists()


def test_keep_keeps_it_and_says_where(script, tmp_path, capsys):
    script.main(["cancer", "2", str(tmp_path), "--keep"])
    assert (tmp_path / "cancer2" / "warehouse.duckdb").exists()
    assert f"home kept at {tmp_path / 'cancer2'}" in capsys.readouterr().err


def test_a_failed_measurement_removes_its_home_too(script, tmp_path, monkeypatch):
    def fails(name, seed, home_dir):
        home_dir.mkdir(parents=True)
        raise RuntimeError("loop failed")
    monkeypatch.setattr(script, "measure", fails)
    with pytest.raises(RuntimeError, match="loop failed"):
        script.main(["cancer", "3", str(tmp_path)])
    assert not (tmp_path / "cancer3").exists()
