"""SIGKILL of an ingesting process mid-load, then the same file retried.

The file is big enough (200k rows, about 30 MB) that the kill lands while the process works:
while it reads and validates, and while DuckDB writes the batch's blocks into the warehouse
file inside the batch's transaction (seen as the file growing). Nothing of the killed batch may
stay, what was there before must stay, and the retry must store every row exactly once.
"""

from __future__ import annotations

import os
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from data_engine.steps import ingest_step
from data_engine.store.home import Home
from data_engine.store.warehouse import open_warehouse
from tests.homes import make_home
from tests.reliability.conftest import REPO, assert_rows_accounted, assert_status_answers, cli

ROWS = 200_000
PIXELS = [f"px{i}" for i in range(64)]


def _write_csv(path: Path, prefix: str, rows: int) -> None:
    with path.open("w", encoding="utf-8") as fh:
        fh.write("id,label," + ",".join(PIXELS) + "\n")
        tail = ",".join(str(i % 17) for i in range(56))  # most pixels constant: quick to write
        for r in range(rows):
            head = ",".join(str((r + i) % 17) for i in range(8))
            fh.write(f"{prefix}{r},{r % 10},{head},{tail}\n")


def _snapshot(home: Home) -> tuple:
    with open_warehouse(home, read_only=True) as con:
        return (con.execute("SELECT count(*) FROM batches").fetchone()[0],
                con.execute("SELECT count(*), sum(hash(example_id, version)) FROM examples").fetchone(),
                con.execute("SELECT count(*), max(event_id) FROM label_events").fetchone(),
                con.execute("SELECT count(*) FROM quarantine").fetchone()[0])


def _kill_when(home: Home, big: Path, phase: str) -> float:
    """Start `data-engine ingest big`, SIGKILL it in ``phase``; return the seconds it ran."""
    db = home.warehouse_path
    base = db.stat().st_size
    proc = subprocess.Popen([sys.executable, "-m", "data_engine.cli", "--home", str(home.root), "ingest", str(big)],
                            cwd=REPO, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    started = time.monotonic()
    try:
        if phase == "reading":
            time.sleep(1.5)
        else:  # "writing": DuckDB writes the uncommitted batch into the file; kill as it grows
            while db.stat().st_size <= base and proc.poll() is None and time.monotonic() - started < 120:
                time.sleep(0.01)
            if phase == "late-writing":
                time.sleep(0.15)
        assert proc.poll() is None, f"the ingest finished before the kill ({phase}); use a bigger file"
        os.kill(proc.pid, signal.SIGKILL)
        proc.wait(timeout=30)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
    assert proc.returncode == -signal.SIGKILL
    return time.monotonic() - started


# slow: kills an ingesting process in three phases, each a fresh interpreter; make test runs it
@pytest.mark.slow
@pytest.mark.timeout(600)
def test_sigkill_mid_load_leaves_nothing_and_the_retry_stores_every_row(tmp_path: Path) -> None:
    template = make_home(tmp_path, name="template")
    small = tmp_path / "small.csv"
    _write_csv(small, "s", 50)
    ingest_step(template, [small])  # data that was there before the kill and must stay
    big = tmp_path / "big.csv"
    _write_csv(big, "b", ROWS)
    for phase in ("reading", "writing", "late-writing"):
        home = Home(tmp_path / phase)
        shutil.copytree(template.root, home.root)
        before = _snapshot(home)
        _kill_when(home, big, phase)
        after = _snapshot(home)
        if after != before:
            # The batch's COMMIT can finish before the kill lands (late in writing, or on a quick
            # machine even by the "reading" kill at 1.5 s: seen at 200k rows): then all of it must be
            # there, never a part.
            assert (after[0], after[1][0], after[2][0]) == (2, 50 + ROWS, 50 + ROWS), \
                f"the killed batch is partly stored ({phase}): {after}"
        assert_status_answers(home)
        retry = cli(home, "ingest", "--json", str(big))
        assert retry.returncode == 0, retry.stderr
        with open_warehouse(home, read_only=True) as con:
            assert con.execute("SELECT count(*) FROM examples").fetchone()[0] == 50 + ROWS
            assert con.execute("SELECT count(*) FROM label_events").fetchone()[0] == 50 + ROWS
            assert con.execute("SELECT count(DISTINCT example_id) FROM examples").fetchone()[0] == 50 + ROWS
            assert con.execute("SELECT count(*) FROM batches WHERE status = 'ingested'").fetchone()[0] == 2
        assert_rows_accounted(home, {"small.csv": 50, "big.csv": ROWS})
        # Once more: the same bytes are a no-op, not a second copy.
        again = cli(home, "ingest", str(big))
        assert again.returncode == 0 and "already ingested" in again.stdout
        shutil.rmtree(home.root)
