"""The home's disk full, and the warehouse locked by another process: a clear error, no corruption,
and the next run succeeds.

The full disk is real: the home lives on a 3 MB tmpfs mounted for the test (needs root, which
`make test` has here; elsewhere the test is skipped with that reason).
"""

from __future__ import annotations

import os
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from data_engine.store.home import Home
from data_engine.store.warehouse import open_warehouse
from tests.homes import make_home
from tests.reliability.conftest import assert_one_line_error, assert_rows_accounted, assert_status_answers, cli

PIXELS = [f"px{i}" for i in range(64)]


def _csv(path: Path, prefix: str, rows: int) -> Path:
    with path.open("w", encoding="utf-8") as fh:
        fh.write("id,label," + ",".join(PIXELS) + "\n")
        for r in range(rows):
            fh.write(f"{prefix}{r},{r % 10}," + ",".join(str((r * 7 + i) % 17) for i in range(64)) + "\n")
    return path


def _snapshot(home: Home) -> tuple:
    with open_warehouse(home, read_only=True) as con:
        return (con.execute("SELECT count(*) FROM batches").fetchone()[0],
                con.execute("SELECT count(*), sum(hash(example_id, version)) FROM examples").fetchone(),
                con.execute("SELECT count(*), max(event_id) FROM label_events").fetchone())


@pytest.fixture
def small_disk(tmp_path: Path) -> Iterator[Path]:
    """A 3 MB tmpfs at tmp_path/disk, unmounted afterwards."""
    if os.geteuid() != 0:
        pytest.skip("mounting a 3 MB tmpfs needs root (make test runs as root here)")
    mount = tmp_path / "disk"
    mount.mkdir()
    done = subprocess.run(["mount", "-t", "tmpfs", "-o", "size=3m", "tmpfs", str(mount)], capture_output=True, text=True)
    if done.returncode != 0:
        pytest.skip(f"cannot mount a tmpfs here: {done.stderr.strip()}")
    try:
        yield mount
    finally:
        subprocess.run(["umount", "-l", str(mount)], check=False)


def _grow(mount: Path) -> None:
    """Free space: the same tmpfs, made bigger (what deleting other files would do)."""
    subprocess.run(["mount", "-o", "remount,size=64m", str(mount)], check=True)


# slow: a 60,000-row file filling a tmpfs, then a retry; the completely-full-disk test stays fast
@pytest.mark.slow
@pytest.mark.timeout(300)
def test_disk_full_during_a_load_is_one_clear_line_and_the_retry_succeeds(small_disk: Path, tmp_path: Path) -> None:
    home = make_home(small_disk)
    assert cli(home, "ingest", str(_csv(tmp_path / "first.csv", "f", 200))).returncode == 0
    big = _csv(tmp_path / "big.csv", "b", 60_000)  # stored, far more than the 3 MB left
    before = _snapshot(home)
    failed = cli(home, "ingest", str(big))
    assert_one_line_error(failed, str(home.warehouse_path), "No space left on device")
    _grow(small_disk)
    assert _snapshot(home) == before, "the failed batch left a trace"
    assert_status_answers(home)
    retry = cli(home, "ingest", str(big))
    assert retry.returncode == 0, retry.stderr
    assert_rows_accounted(home, {"first.csv": 200, "big.csv": 60_000})
    with open_warehouse(home, read_only=True) as con:
        assert con.execute("SELECT count(*) FROM examples").fetchone()[0] == 60_200


@pytest.mark.timeout(300)
def test_a_completely_full_disk_still_answers_status_and_refuses_writes_clearly(small_disk: Path, tmp_path: Path) -> None:
    home = make_home(small_disk)
    assert cli(home, "ingest", str(_csv(tmp_path / "first.csv", "f", 100))).returncode == 0
    ballast = small_disk / "ballast"
    with ballast.open("wb") as fh:  # fill every last block
        try:
            while True:
                fh.write(b"\0" * 65536)
                fh.flush()
        except OSError:
            pass
    before = _snapshot(home)
    assert_status_answers(home)
    failed = cli(home, "ingest", str(_csv(tmp_path / "second.csv", "s", 500)))
    assert_one_line_error(failed, str(home.warehouse_path))
    ballast.unlink()
    _grow(small_disk)  # the warehouse alone nearly fills 3 MB: room for the retry
    assert _snapshot(home) == before
    retry = cli(home, "ingest", str(tmp_path / "second.csv"))
    assert retry.returncode == 0, retry.stderr
    assert_rows_accounted(home, {"first.csv": 100, "second.csv": 500})


def _hold_lock(path: Path) -> subprocess.Popen:
    """Another process that opens the warehouse for writing and keeps it open."""
    code = ("import duckdb, sys, time; con = duckdb.connect(sys.argv[1]); print('held', flush=True); "
            "sys.stdin.read(); con.close()")
    proc = subprocess.Popen([sys.executable, "-c", code, str(path)], stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                            text=True)
    assert proc.stdout.readline().strip() == "held"
    return proc


# slow: a dozen CLI processes against a held lock; tests/store/test_warehouse.py's locked-warehouse test is the fast one
@pytest.mark.slow
@pytest.mark.timeout(300)
def test_a_locked_warehouse_names_the_holder_and_the_next_run_succeeds(tmp_path: Path) -> None:
    home = make_home(tmp_path)
    assert cli(home, "ingest", str(_csv(tmp_path / "first.csv", "f", 100))).returncode == 0
    before = _snapshot(home)
    rounds = 3
    for i in range(rounds):
        holder = _hold_lock(home.warehouse_path)
        try:
            started = time.monotonic()
            for command in (["ingest", str(_csv(tmp_path / f"next{i}.csv", f"n{i}-", 50))], ["status"]):
                failed = cli(home, *command, env={"DATA_ENGINE_LOCK_WAIT": "1"})
                assert_one_line_error(failed, str(home.warehouse_path), "locked", f"process {holder.pid}",
                                      "DATA_ENGINE_LOCK_WAIT")
            assert time.monotonic() - started < 60
        finally:
            holder.communicate("")
        assert _snapshot(home) == before
    # The lock gone, a waiting writer gets through: one holds it for 2 s while the CLI waits.
    holder = _hold_lock(home.warehouse_path)
    waiting = subprocess.Popen([sys.executable, "-m", "data_engine.cli", "--home", str(home.root), "ingest",
                                str(tmp_path / "next0.csv")], stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                               text=True, env={**os.environ, "DATA_ENGINE_LOCK_WAIT": "60"})
    time.sleep(2)
    holder.communicate("")
    out, err = waiting.communicate(timeout=120)
    assert waiting.returncode == 0, err
    for i in range(1, rounds):
        assert cli(home, "ingest", str(tmp_path / f"next{i}.csv")).returncode == 0
    assert_rows_accounted(home, {"first.csv": 100, **{f"next{i}.csv": 50 for i in range(rounds)}})
    assert_status_answers(home)


@pytest.mark.timeout(300)
def test_a_pull_on_a_full_disk_is_one_clear_line_and_the_next_pull_records_every_verdict_once(tmp_path: Path) -> None:
    if os.geteuid() != 0:
        pytest.skip("mounting a tmpfs needs root (make test runs as root here)")
    from data_engine.errors import EngineError
    from data_engine.review.labelstudio.fake import FakeReviewClient
    from data_engine.review.labelstudio.labeling import choice_result
    from data_engine.review.pull import pull_verdicts
    from data_engine.review.push import push_queue
    from tests.review_support import digits_home, make_queue

    mount = tmp_path / "disk"
    mount.mkdir()
    subprocess.run(["mount", "-t", "tmpfs", "-o", "size=64m", "tmpfs", str(mount)], check=True)
    try:
        home, frame = digits_home(mount / "home", n=40)
        make_queue(home, frame)
        client = FakeReviewClient()
        with open_warehouse(home) as con:
            push_queue(con, client, home.config)
        tasks = {t["data"]["example_id"]: t["id"] for t in client.tasks.values()}
        for ex, label in zip(frame["id"], frame["true_label"], strict=True):
            client.create_annotation(tasks[ex], choice_result(label))
        ballast = mount / "ballast"
        with ballast.open("wb", buffering=0) as fh:
            try:
                while True:
                    fh.write(b"\0" * 65536)
            except OSError:
                pass
        with pytest.raises(EngineError) as err:
            with open_warehouse(home) as con:
                pull_verdicts(con, client, home.config)
        assert str(home.warehouse_path) in str(err.value) and "\n" not in str(err.value)
        ballast.unlink()
        with open_warehouse(home) as con:
            assert con.execute("SELECT count(*) FROM label_events WHERE source = 'review'").fetchone()[0] == 0
            assert pull_verdicts(con, client, home.config).review_events == 40
            assert pull_verdicts(con, client, home.config).review_events == 0
            ids = [r[0] for r in con.execute("SELECT detail->>'annotation_id' FROM label_events WHERE source = 'review'")
                   .fetchall()]
        assert len(ids) == len(set(ids)) == 40
    finally:
        subprocess.run(["umount", "-l", str(mount)], check=False)
