"""The order `make test`'s workers start the test files in (tests/suite_order.py)."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.suite_order import FILE_SECONDS_PATH, longest_files_first, read_file_seconds

ROOT = Path(__file__).resolve().parents[1]


def test_the_longest_files_come_first_and_each_file_keeps_its_tests_together_in_order() -> None:
    nodeids = ["tests/a.py::t1", "tests/a.py::t2", "tests/b.py::t1", "tests/c.py::t1", "tests/c.py::t2[x]",
               "tests/d.py::t1"]
    order = longest_files_first(nodeids, {"tests/c.py": 300.0, "tests/b.py": 20.0, "tests/zz.py": 999.0})
    assert [nodeids[p] for p in order] == [
        "tests/c.py::t1", "tests/c.py::t2[x]", "tests/b.py::t1",
        # unmeasured files after the measured ones, in collection order
        "tests/a.py::t1", "tests/a.py::t2", "tests/d.py::t1"]


def test_seconds_are_read_and_a_bad_line_names_the_file_and_line(tmp_path: Path) -> None:
    good = tmp_path / "seconds.txt"
    good.write_text("# comment\n431.2 tests/integration/test_loop_daemon.py\n\n2.5 tests/a.py\n")
    assert read_file_seconds(good) == {"tests/integration/test_loop_daemon.py": 431.2, "tests/a.py": 2.5}
    assert read_file_seconds(tmp_path / "absent.txt") == {}
    bad = tmp_path / "bad.txt"
    bad.write_text("1.0 tests/a.py\ntests/b.py 2.0\n")
    with pytest.raises(ValueError, match=r"bad.txt:2: expected"):
        read_file_seconds(bad)


def test_the_shipped_figures_name_test_files_that_exist() -> None:
    seconds = read_file_seconds(FILE_SECONDS_PATH)
    assert seconds, "tests/file_seconds.txt is empty: the workers would start the long files last"
    missing = [path for path in seconds if not (ROOT / path).is_file()]
    assert not missing, f"tests/file_seconds.txt names files that are gone: {missing[:5]}"
