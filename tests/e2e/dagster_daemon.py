"""Run the real Dagster daemon (sensors on) over a temporary engine home, for end-to-end tests."""

import os
import shutil
import signal
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]


@contextmanager
def running_daemon(engine_home: Path, extra_env: dict[str, str] | None = None) -> Iterator[Path]:
    """Start ``dagster-daemon run`` for ``engine_home``; yield its DAGSTER_HOME; stop it on exit."""
    dagster_home = engine_home / "dagster"
    dagster_home.mkdir(parents=True, exist_ok=True)
    shutil.copy(REPO / "scripts" / "dagster.yaml", dagster_home / "dagster.yaml")
    env = {**os.environ, "DAGSTER_HOME": str(dagster_home), "DATA_ENGINE_HOME": str(engine_home),
           "PYTHONPATH": str(REPO), **(extra_env or {})}
    # Create the instance's SQLite storage before the daemon starts: a test reading the instance while
    # the daemon creates it races two alembic migrations of the same files.
    import dagster as dg

    with dg.DagsterInstance.from_config(str(dagster_home)):
        pass
    daemon_bin = Path(sys.executable).with_name("dagster-daemon")
    log = (dagster_home / "daemon.log").open("wb")
    # Its own process group, so one signal stops the daemon and the run processes it launched.
    proc = subprocess.Popen(
        [str(daemon_bin), "run", "-w", str(REPO / "workspace.yaml")],
        cwd=REPO, env=env, stdout=log, stderr=subprocess.STDOUT, start_new_session=True,
    )
    try:
        yield dagster_home
    finally:
        try:
            os.killpg(proc.pid, signal.SIGTERM)
            proc.wait(timeout=20)
        except (ProcessLookupError, subprocess.TimeoutExpired):
            try:
                os.killpg(proc.pid, signal.SIGKILL)
            except ProcessLookupError:
                pass
        log.close()


def wait_for(predicate: Callable[[], bool], timeout: float, what: str, log: Path | None = None) -> None:
    """Poll ``predicate`` until true; fail naming ``what`` (and the daemon log's tail) on timeout."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():
            return
        time.sleep(1.0)
    tail = log.read_text(errors="replace")[-3000:] if log and log.exists() else ""
    raise AssertionError(f"timed out after {timeout:.0f} s waiting for {what}\n{tail}")
