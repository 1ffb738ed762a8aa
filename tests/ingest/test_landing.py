"""The landing-folder decision, without Dagster."""

import os
import time
from pathlib import Path

from data_engine.ingest.landing import SETTLE_SECONDS, LandingDecision, decide_landing


def _write(path: Path, text: str, age: float = 60.0) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text)
    old = time.time() - age
    os.utime(path, (old, old))


def _look_twice(landing: Path, cursor: str | None = None) -> LandingDecision:
    """Two looks at the folder, :data:`SETTLE_SECONDS` apart (the sensor's ticks): the second requests
    what stayed unchanged."""
    t = time.time()
    first = decide_landing(landing, cursor, now=t)
    return decide_landing(landing, first.cursor, now=t + SETTLE_SECONDS + 1)


def test_new_files_are_requested_once(tmp_path: Path) -> None:
    _write(tmp_path / "a.csv", "id,x\n1,2\n")
    _write(tmp_path / "gold" / "g.csv", "id,x\n9,9\n")
    first = _look_twice(tmp_path)
    assert sorted(f.relpath for f in first.new_files) == ["a.csv", "gold/g.csv"]
    assert [f.is_gold for f in sorted(first.new_files, key=lambda f: f.relpath)] == [False, True]
    second = decide_landing(tmp_path, first.cursor)
    assert second.new_files == [] and "no new files" in second.skip_reason


def test_same_bytes_under_another_name_is_not_requested_again(tmp_path: Path) -> None:
    _write(tmp_path / "a.csv", "id,x\n1,2\n")
    first = _look_twice(tmp_path)
    _write(tmp_path / "copy.csv", "id,x\n1,2\n")
    copy = _look_twice(tmp_path, first.cursor)
    assert copy.new_files == [] and "same bytes as a.csv" in copy.ignored["copy.csv"]


def test_changed_file_is_requested_with_its_new_hash(tmp_path: Path) -> None:
    _write(tmp_path / "a.csv", "id,x\n1,2\n")
    first = _look_twice(tmp_path)
    _write(tmp_path / "a.csv", "id,x\n1,3\n", age=30.0)
    again = _look_twice(tmp_path, first.cursor)
    assert [f.relpath for f in again.new_files] == ["a.csv"]
    assert again.new_files[0].sha256 != first.new_files[0].sha256


def test_files_still_being_written_hidden_and_foreign_files_wait_or_are_ignored(tmp_path: Path) -> None:
    _write(tmp_path / "fresh.csv", "id\n1\n", age=0.0)
    _write(tmp_path / ".partial.csv", "id\n1\n")
    _write(tmp_path / "notes.docx", "x")
    decision = decide_landing(tmp_path, None, now=time.time())
    assert decision.new_files == []
    assert "1 not yet stable" in decision.skip_reason
    assert set(decision.ignored) == {".partial.csv", "notes.docx"}
    later = decide_landing(tmp_path, decision.cursor, now=time.time() + SETTLE_SECONDS + 1)
    assert [f.relpath for f in later.new_files] == ["fresh.csv"]


def test_missing_landing_folder_is_nothing_new(tmp_path: Path) -> None:
    decision = decide_landing(tmp_path / "nope", "not json")
    assert decision.new_files == [] and decision.skip_reason


def test_a_copy_of_requested_bytes_is_named_not_dropped_in_silence(tmp_path: Path) -> None:
    _write(tmp_path / "a.csv", "id,x\n1,2\n")
    first = _look_twice(tmp_path)
    _write(tmp_path / "gold" / "a copy.csv", "id,x\n1,2\n")
    settled = _look_twice(tmp_path, first.cursor)
    for again in (settled, decide_landing(tmp_path, settled.cursor)):
        assert again.new_files == [] and "gold/a copy.csv" in again.ignored
        assert "same bytes as a.csv" in again.skip_reason
