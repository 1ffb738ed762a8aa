"""Writers to the DuckDB file never collide: the instance queues warehouse runs one at a time, and
processes that still meet (CLI next to a run) wait for the lock instead of failing."""

import shutil
import subprocess
import sys
from pathlib import Path

import dagster as dg

from data_engine.store.warehouse import open_warehouse
from tests.homes import make_home

REPO = Path(__file__).resolve().parents[2]


def test_instance_config_serialises_warehouse_runs(tmp_path: Path) -> None:
    shutil.copy(REPO / "scripts" / "dagster.yaml", tmp_path / "dagster.yaml")
    instance = dg.DagsterInstance.from_config(str(tmp_path))
    try:
        coordinator = instance.run_coordinator
        assert type(coordinator).__name__ == "QueuedRunCoordinator"
        limits = coordinator.get_run_queue_config().tag_concurrency_limits
        assert {"key": "data-engine/warehouse", "limit": 1} in [dict(l) for l in limits]
    finally:
        instance.dispose()


def test_instance_config_ticks_every_sensor_side_by_side(monkeypatch, tmp_path: Path) -> None:
    # A sensor waiting for a run's write lock must not hold back the others' ticks: threads, one per sensor.
    monkeypatch.setenv("DATA_ENGINE_HOME", str(tmp_path))
    import definitions

    shutil.copy(REPO / "scripts" / "dagster.yaml", tmp_path / "dagster.yaml")
    instance = dg.DagsterInstance.from_config(str(tmp_path))
    try:
        settings = instance.get_settings("sensors")
        assert settings["use_threads"] is True
        assert settings["num_workers"] == len(list(definitions.defs.sensors or [])) == 5
    finally:
        instance.dispose()


def test_every_warehouse_job_carries_the_tag(monkeypatch, tmp_path: Path) -> None:
    monkeypatch.setenv("DATA_ENGINE_HOME", str(tmp_path))
    import definitions

    for job in definitions.defs.resolve_all_job_defs():
        if job.name.startswith("__"):
            continue
        assert job.tags.get("data-engine/warehouse") == "write", job.name


def _csv(path: Path, prefix: str, rows: int) -> None:
    header = "id,label," + ",".join(f"px{i}" for i in range(64))
    body = [f"{prefix}{r},{r % 10}," + ",".join(str((r + i) % 17) for i in range(64)) for r in range(rows)]
    path.write_text("\n".join([header, *body]) + "\n")


def test_concurrent_cli_writers_all_succeed(tmp_path: Path) -> None:
    home = make_home(tmp_path)
    files = []
    # Three writers and two readers at once: each waits for the lock the others hold.
    for i in range(3):
        f = tmp_path / f"part{i}.csv"
        _csv(f, f"p{i}-", 400)
        files.append(f)
    cli = [sys.executable, "-m", "data_engine.cli", "--home", str(home.root)]
    procs = [subprocess.Popen([*cli, "ingest", str(f)], stdout=subprocess.PIPE, stderr=subprocess.PIPE, cwd=REPO)
             for f in files]
    procs += [subprocess.Popen([*cli, "status"], stdout=subprocess.PIPE, stderr=subprocess.PIPE, cwd=REPO)
              for _ in range(2)]
    for p in procs:
        out, err = p.communicate(timeout=300)
        assert p.returncode == 0, err.decode()
    with open_warehouse(home, read_only=True) as con:
        assert con.execute("SELECT count(*), sum(rows_ok) FROM batches WHERE status = 'ingested'").fetchone() == (3, 1200)
        assert con.execute("SELECT count(*) FROM examples").fetchone()[0] == 1200
        assert con.execute("SELECT count(*) FROM label_events").fetchone()[0] == 1200
