"""The fault and abuse suite: shared invariants (the session's real Label Studio server is the
root conftest's, tests/labelstudio_server.py).

Every fault test checks, afterwards, the invariants of issue 6 that apply to it:
every input row is in ``examples`` or ``quarantine``; every Label Studio verdict is in
``label_events`` exactly once; no example is sent twice; the champion is unchanged unless a
gate passed; ``data-engine status`` still answers.
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

from data_engine.store.home import Home
from data_engine.store.warehouse import open_warehouse

REPO = Path(__file__).resolve().parents[2]


def cli(home: Home, *args: str, env: dict[str, str] | None = None, timeout: float = 300) -> subprocess.CompletedProcess:
    """Run ``data-engine --home HOME ARGS`` as its own process (as a user would)."""
    return subprocess.run([sys.executable, "-m", "data_engine.cli", "--home", str(home.root), *args],
                          capture_output=True, text=True, cwd=REPO, timeout=timeout,
                          env={**os.environ, **(env or {})})


def assert_one_line_error(proc: subprocess.CompletedProcess, *needles: str) -> str:
    """A failed command: exit status 2, one line on stderr naming each of ``needles``, no traceback."""
    err = proc.stderr.strip()
    assert proc.returncode == 2, (proc.returncode, proc.stderr)
    assert len(err.splitlines()) == 1 and "Traceback" not in err, err
    assert err.startswith("data-engine: error: "), err
    for needle in needles:
        assert needle in err, (needle, err)
    return err


def assert_status_answers(home: Home) -> None:
    """``data-engine status`` still works on this home."""
    proc = cli(home, "status", "--json")
    assert proc.returncode == 0, proc.stderr


def assert_rows_accounted(home: Home, expected: dict[str, int] | None = None) -> None:
    """Every batch keeps ``rows_in == rows_ok + rows_quarantined`` and the quarantine holds exactly its
    rows; ``expected`` (batch path suffix -> data rows in the file) checks the file side too."""
    with open_warehouse(home, read_only=True) as con:
        bad = con.execute(
            "SELECT b.batch_id, b.rows_in, b.rows_ok, b.rows_quarantined, "
            "(SELECT count(*) FROM quarantine q WHERE q.batch_id = b.batch_id) "
            "FROM batches b WHERE b.status = 'ingested'").fetchall()
        for batch_id, rows_in, ok, quarantined, in_q in bad:
            assert rows_in == ok + quarantined == ok + in_q, (batch_id, rows_in, ok, quarantined, in_q)
        if expected:
            got = dict(con.execute(
                "SELECT path, rows_in FROM batches WHERE status = 'ingested'").fetchall())
            for suffix, n in expected.items():
                hits = [v for p, v in got.items() if p.endswith(suffix)]
                assert hits == [n], (suffix, hits)
        dup = con.execute("SELECT count(*) FROM (SELECT example_id, version FROM examples GROUP BY ALL "
                          "HAVING count(*) > 1)").fetchone()[0]
        assert dup == 0, f"{dup} duplicated example versions"
