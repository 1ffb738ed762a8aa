"""tests/heavy_tests.txt names tests that exist (a stale entry would hide nothing, a typo would
silently keep a heavy test in `make test-fast`)."""

from __future__ import annotations

from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]


def test_every_heavy_test_listed_exists() -> None:
    lines = [ln.strip() for ln in (ROOT / "tests" / "heavy_tests.txt").read_text().splitlines()]
    entries = [ln for ln in lines if ln and not ln.startswith("#")]
    assert entries, "the list is empty: make test-fast would run every test"
    missing = []
    for entry in entries:
        path, _, name = entry.partition("::")
        function = name.split("[")[0].split("::")[-1]
        source = ROOT / path
        if not source.is_file() or f"def {function}(" not in source.read_text():
            missing.append(entry)
    assert not missing, f"listed but not found: {missing[:5]}"
