"""`make up` (scripts/up.sh) creates the Dagster instance's storage before the daemon and the
webserver open it: two processes creating fresh SQLite storage at once race their alembic
migrations, leave two heads in schedules.db, and the code location never loads. `make down`
(scripts/down.sh) leaves no process of the groups it stops."""

import multiprocessing
import os
import shutil
import signal
import socket
import sqlite3
import subprocess
import sys
import time
from pathlib import Path

import pytest

from data_engine.processes import group_alive
from tests.process_programs import LEADER_THREAD_GONE, wait_for_zombie_leader

REPO = Path(__file__).resolve().parents[2]


def _open_instance(dagster_home: str) -> None:
    import dagster as dg

    with dg.DagsterInstance.from_config(dagster_home):
        pass


def test_up_migrates_the_instance_before_any_process_opens_it() -> None:
    lines = (REPO / "scripts" / "up.sh").read_text().splitlines()

    def first(text: str) -> int:
        return next(i for i, line in enumerate(lines) if text in line and not line.lstrip().startswith("#"))

    migrate = first("dagster instance migrate")
    assert migrate < first("dagster-daemon run")
    assert migrate < first("dagster-webserver")
    # Before Label Studio starts, so a broken instance stops `make up` with nothing left running.
    assert migrate < first("labelstudio up")


# slow: `dagster instance migrate` and three fresh interpreters importing Dagster; make test runs it
@pytest.mark.slow
def test_a_migrated_instance_is_opened_by_concurrent_processes_with_one_schema_head(tmp_path: Path) -> None:
    dagster_home = tmp_path / "dagster"
    dagster_home.mkdir()
    shutil.copy(REPO / "scripts" / "dagster.yaml", dagster_home / "dagster.yaml")
    dagster_bin = Path(sys.executable).with_name("dagster")
    subprocess.run([str(dagster_bin), "instance", "migrate"], check=True, capture_output=True,
                   env={"DAGSTER_HOME": str(dagster_home), "PATH": "/usr/bin:/bin"})
    # What `make up` does next: the daemon, the webserver and a code server open it at once.
    ctx = multiprocessing.get_context("spawn")
    procs = [ctx.Process(target=_open_instance, args=(str(dagster_home),)) for _ in range(3)]
    for p in procs:
        p.start()
    for p in procs:
        p.join(timeout=120)
    assert [p.exitcode for p in procs] == [0, 0, 0]
    dbs = sorted(dagster_home.glob("*/*.db"))
    assert {db.parent.name for db in dbs} >= {"history", "schedules"}
    for db in dbs:
        with sqlite3.connect(db) as con:
            assert con.execute("SELECT count(*) FROM alembic_version").fetchone()[0] == 1, db


def test_down_stops_the_whole_process_group_not_only_its_leader(tmp_path: Path) -> None:
    # Like the daemon: a leader that stops on SIGTERM, and a child (its code server) that ignores it.
    dagster_home = tmp_path / "dagster"
    dagster_home.mkdir()
    child = "trap '' TERM; while true; do sleep 0.2; done"
    leader = subprocess.Popen(["bash", "-c", f"bash -c \"{child}\" & trap 'exit 0' TERM; wait"],
                              start_new_session=True)
    (dagster_home / "daemon.pid").write_text(str(leader.pid))
    try:
        time.sleep(0.5)  # the child is running
        out = subprocess.run(["bash", str(REPO / "scripts" / "down.sh"), "--dagster-only"], capture_output=True,
                             text=True, timeout=60, env={**os.environ, "DATA_ENGINE_HOME": str(tmp_path),
                                                          "DATA_ENGINE_DOWN_GRACE": "2"})
        leader.wait(timeout=5)
        assert not group_alive(leader.pid), "a process of the group outlived make down"
        assert f"stopped Dagster daemon (pid {leader.pid})" in out.stdout
        assert "still ran 2 s after SIGTERM; sending SIGKILL" in out.stderr
        assert not (dagster_home / "daemon.pid").exists()
    finally:
        if group_alive(leader.pid):
            os.killpg(leader.pid, signal.SIGKILL)


def test_down_stops_a_process_whose_leader_thread_is_gone(tmp_path: Path) -> None:
    # `ps` shows such a process (its leader a zombie, another thread alive, SIGTERM ignored) as a
    # zombie: down must look at its threads, or it leaves it running with its port held.
    dagster_home = tmp_path / "dagster"
    dagster_home.mkdir()
    server = subprocess.Popen([sys.executable, "-c", LEADER_THREAD_GONE, "ignore-term"], start_new_session=True,
                              stdout=subprocess.PIPE, text=True)
    (dagster_home / "webserver.pid").write_text(str(server.pid))
    try:
        port = int(server.stdout.readline())
        assert wait_for_zombie_leader(server.pid)
        out = subprocess.run(["bash", str(REPO / "scripts" / "down.sh"), "--dagster-only"], capture_output=True,
                             text=True, timeout=60, env={**os.environ, "DATA_ENGINE_HOME": str(tmp_path),
                                                          "DATA_ENGINE_DOWN_GRACE": "1"})
        assert f"stopped Dagster webserver (pid {server.pid})" in out.stdout
        assert not group_alive(server.pid), "a thread of the group outlived make down"
        with pytest.raises(ConnectionRefusedError):  # nothing holds its port any more
            socket.create_connection(("127.0.0.1", port), timeout=5).close()
    finally:
        server.kill()
        server.wait(timeout=10)
