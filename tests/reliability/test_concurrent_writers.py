"""Two sensor runs (the ``landed_batch`` asset materialized by two processes) and CLI commands
(``ingest`` and ``status``) writing the same warehouse at the same time, over a fixed set of files (a fixed
amount of work, not of time: under a loaded machine a time box left too few runs to overlap).

DuckDB allows one writer process: everyone must wait for the lock (open_warehouse), nobody may
fail, and afterwards every row of every file is stored or quarantined exactly once (some files
are given to several writers at once: the same bytes are stored once).
"""

from __future__ import annotations

import json
import subprocess
import sys
import time
from pathlib import Path

import pytest

from data_engine.store.warehouse import open_warehouse
from tests.homes import make_home
from tests.reliability.conftest import REPO, assert_rows_accounted, assert_status_answers

PIXELS = [f"px{i}" for i in range(64)]


def _csv(path: Path, prefix: str, rows: int, bad_every: int = 0) -> int:
    lines = ["id,label," + ",".join(PIXELS)]
    for r in range(rows):
        value = "oops" if bad_every and r % bad_every == 0 else str(r % 17)  # quarantined: not a number
        lines.append(f"{prefix}{r},{r % 10},{value}," + ",".join(str((r + i) % 17) for i in range(63)))
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    return rows


# slow: two sensor runs and the CLI as separate processes; tests/store/test_writers.py is the fast one
@pytest.mark.slow
@pytest.mark.timeout(600)
def test_two_sensor_runs_and_the_cli_write_at_once_and_lose_nothing(tmp_path: Path) -> None:
    home = make_home(tmp_path)
    rows: dict[str, int] = {}
    for i in range(15):
        rows[f"f{i:02d}.csv"] = _csv(home.landing / f"f{i:02d}.csv", f"f{i}-", 300, bad_every=37 if i % 3 == 0 else 0)
    names = sorted(rows)
    shared = names[:6]  # given to both sensor workers and the CLI: stored once
    worker_files = [shared + names[6:9], list(reversed(shared)) + names[9:12]]
    cli_files = shared + names[12:]
    workers = [subprocess.Popen([sys.executable, "-m", "tests.reliability.sensor_run_worker", str(home.root),
                                 "540", *files], cwd=REPO, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                                text=True) for files in worker_files]
    cli = [sys.executable, "-m", "data_engine.cli", "--home", str(home.root)]
    cli_runs, failures = 0, []
    pending = list(cli_files)
    while pending or any(w.poll() is None for w in workers):
        command = ["ingest", str(home.landing / pending.pop(0))] if pending else ["status"]
        done = subprocess.run([*cli, *command], capture_output=True, text=True, cwd=REPO, timeout=300)
        cli_runs += 1
        if done.returncode != 0:
            failures.append((command, done.stderr[-500:]))
        if not pending:
            # A user's `status` every second or two, not back to back: each call is a fresh interpreter
            # (seconds of CPU), and an unbroken stream of them slowed the sensor runs on a loaded
            # machine until their lock wait ran out, which is a test of the machine, not of the engine.
            time.sleep(1.0)
    runs = []
    for w in workers:
        out, err = w.communicate(timeout=300)
        assert w.returncode == 0, err[-2000:]
        runs += [json.loads(line) for line in out.splitlines() if line.startswith("{")]
    assert not failures, failures
    assert runs and all(r["ok"] for r in runs), [r for r in runs if not r["ok"]][:3]
    assert sorted(r["file"] for r in runs) == sorted(f for files in worker_files for f in files), runs
    assert cli_runs >= len(cli_files), cli_runs
    ingested = set(names)
    # Every file some writer finished: its rows are all stored or quarantined, once.
    assert_rows_accounted(home, {f"/{f}": rows[f] for f in ingested})
    with open_warehouse(home, read_only=True) as con:
        n_batches = con.execute("SELECT count(*) FROM batches WHERE status = 'ingested'").fetchone()[0]
        stored = con.execute("SELECT count(*), count(DISTINCT example_id) FROM examples").fetchone()
        quarantined = con.execute("SELECT count(*) FROM quarantine").fetchone()[0]
        events = con.execute("SELECT count(*) FROM label_events").fetchone()[0]
    assert n_batches == len(ingested)
    assert stored[0] == stored[1] == events
    assert stored[0] + quarantined == sum(rows[f] for f in ingested)
    print(f"concurrent writers: {len(runs)} sensor runs, {cli_runs} CLI commands, {len(ingested)} files, "
          f"{stored[0]} rows stored, {quarantined} quarantined")
    assert_status_answers(home)
