"""Under the real Dagster daemon: a file dropped into landing/ is ingested with no manual run."""

from pathlib import Path

import pytest

from data_engine.store.home import Home
from data_engine.store.warehouse import open_warehouse
from tests.e2e.dagster_daemon import running_daemon, wait_for
from tests.homes import make_home

pytestmark = pytest.mark.integration


def _ingested(home: Home) -> int:
    if not home.warehouse_path.exists():
        return 0
    try:
        with open_warehouse(home, read_only=True, wait_s=2) as con:
            return con.execute("SELECT count(*) FROM batches WHERE status = 'ingested'").fetchone()[0]
    except Exception:  # the run holds the write lock: ask again next second
        return 0


def test_dropped_file_is_ingested_by_the_sensor(tmp_path: Path) -> None:
    home = make_home(tmp_path)
    with running_daemon(home.root) as dagster_home:
        header = "id,label," + ",".join(f"px{i}" for i in range(64))
        rows = [f"x{r},{r % 10}," + ",".join(str((r * i) % 17) for i in range(64)) for r in range(30)]
        staging = home.root / "staging.csv"
        staging.write_text("\n".join([header, *rows]) + "\n")
        staging.rename(home.landing / "dropped.csv")  # write, then move: the sensor never sees half a file
        wait_for(lambda: _ingested(home) == 1, 180, "the landing sensor to ingest dropped.csv",
                 dagster_home / "daemon.log")
    with open_warehouse(home, read_only=True) as con:
        assert con.execute("SELECT rows_in, rows_ok FROM batches").fetchone() == (30, 30)
