"""Ingestion through Dagster: the definitions load, the sensor requests runs, the asset ingests."""

import os
import time
from pathlib import Path

import dagster as dg
import pytest

from assets.ingest import batches_partitions, landed_batch
from assets.resources import EngineResource
from data_engine.store.home import Home
from data_engine.store.warehouse import open_warehouse
from sensors.ingest import landing_sensor
from tests.homes import make_home


@pytest.fixture()
def demo_home(tmp_path: Path) -> Home:
    home = make_home(tmp_path)
    (home.landing / "a.csv").write_text(
        "id,label," + ",".join(f"px{i}" for i in range(64)) + "\n"
        + "".join(f"e{r},{r % 10}," + ",".join(str((r + i) % 17) for i in range(64)) + "\n" for r in range(12))
        + "bad,3," + ",".join(["x"] * 64) + "\n"
    )
    # Older than the sensor's settle time: a file that was just written may still be growing.
    old = time.time() - 60
    os.utime(home.landing / "a.csv", (old, old))
    return home


def test_definitions_load(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.setenv("DATA_ENGINE_HOME", str(tmp_path))
    import definitions

    dg.Definitions.validate_loadable(definitions.defs)
    assert definitions.defs.resolve_job_def("ingest_job") is not None


def _two_ticks(instance: dg.DagsterInstance, resources: dict) -> dg.SensorResult:
    """The sensor's first tick (which only looks) and its second, which requests the files that stayed
    unchanged (ticks are seconds apart; here the settle time is 0 s)."""
    first = landing_sensor(dg.build_sensor_context(instance=instance, resources=resources))
    assert isinstance(first, dg.SensorResult) and not first.run_requests and first.cursor
    return landing_sensor(dg.build_sensor_context(instance=instance, resources=resources, cursor=first.cursor))


@pytest.fixture(autouse=True)
def _no_settle_wait(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr("data_engine.ingest.landing.SETTLE_SECONDS", 0.0)


def test_sensor_requests_one_run_per_new_file_then_skips(demo_home: Home) -> None:
    instance = dg.DagsterInstance.ephemeral()
    resources = {"engine": EngineResource(home=str(demo_home.root))}
    result = _two_ticks(instance, resources)
    assert isinstance(result, dg.SensorResult)
    assert [r.partition_key for r in result.run_requests] == ["a.csv"]
    assert result.run_requests[0].run_key == result.run_requests[0].tags["data-engine/sha256"]
    again = landing_sensor(dg.build_sensor_context(instance=instance, resources=resources, cursor=result.cursor))
    assert isinstance(again, dg.SensorResult) and not again.run_requests and again.skip_reason


def test_asset_ingests_the_partition_and_reports_quarantine(demo_home: Home) -> None:
    instance = dg.DagsterInstance.ephemeral()
    instance.add_dynamic_partitions(batches_partitions.name, ["a.csv"])
    result = dg.materialize(
        [landed_batch], partition_key="a.csv", instance=instance,
        resources={"engine": EngineResource(home=str(demo_home.root))},
    )
    assert result.success
    meta = result.asset_materializations_for_node("landed_batch")[0].metadata
    assert meta["rows_in"].value == 13 and meta["rows_ok"].value == 12 and meta["rows_quarantined"].value == 1
    assert meta["dagster/row_count"].value == 12
    checks = {c.check_name: c for c in result.get_asset_check_evaluations()}
    check = checks["quarantined_share"]  # 1 of 13 rows quarantined: below the default 0.5
    assert check.passed
    assert checks["drift"].passed  # the first batch: no training data in force to compare it with
    (bad,) = meta["quarantine_preview"].records
    assert "not a finite number" in bad.data["reason"] and isinstance(bad.data["row"], int)
    assert [c.type for c in meta["quarantine_preview"].schema.columns] == ["int", "string", "string"]
    with open_warehouse(demo_home, read_only=True) as con:
        assert con.execute("SELECT count(*) FROM examples").fetchone()[0] == 12


def test_odd_file_names_and_compressed_files_go_through_the_sensor_and_the_asset(demo_home: Home) -> None:
    """Issue 11: partition keys from any file name; .csv.gz and .json read by the asset; a file the
    engine will not read is named in the skip reason; column types in the asset's metadata."""
    import gzip
    import shutil

    src = (demo_home.landing / "a.csv").read_text()
    header, *rows = src.splitlines(keepends=True)
    names = {"Report, Q1 2024 (copy).csv": header + rows[0], "sales...final.csv": header + rows[1],
             "données été.csv": header + rows[2]}
    for name, text in names.items():
        (demo_home.landing / name).write_text(text)
    (demo_home.landing / "b.csv.gz").write_bytes(gzip.compress((header + rows[3]).encode()))
    (demo_home.landing / "notes.xlsx").write_bytes(b"PK")
    (demo_home.landing / "a.csv").unlink()
    old = time.time() - 60
    for p in demo_home.landing.iterdir():
        os.utime(p, (old, old))
    instance = dg.DagsterInstance.ephemeral()
    resources = {"engine": EngineResource(home=str(demo_home.root))}
    result = _two_ticks(instance, resources)
    keys = [r.partition_key for r in result.run_requests]
    assert len(keys) == 4 and all(k.isascii() and "..." not in k and "," not in k for k in keys)
    instance.add_dynamic_partitions(batches_partitions.name, keys)
    metas = []
    for key in keys:
        run = dg.materialize([landed_batch], partition_key=key, instance=instance, resources=resources)
        metas.append(run.asset_materializations_for_node("landed_batch")[0].metadata)
        assert metas[-1]["status"].value == "ingested" and metas[-1]["rows_ok"].value == 1
    # The first batch fixed the column types, and its metadata says which.
    assert metas[0]["column_types"].value["px0"] == "numeric" and all("column_types" not in m for m in metas[1:])
    again = landing_sensor(dg.build_sensor_context(instance=instance, resources=resources, cursor=result.cursor))
    assert not again.run_requests and "notes.xlsx" in again.skip_reason.skip_message
    with open_warehouse(demo_home, read_only=True) as con:
        assert con.execute("SELECT count(*) FROM examples").fetchone()[0] == 4
    shutil.rmtree(demo_home.landing)


def test_a_batch_without_a_good_row_fails_the_run_and_a_large_quarantined_share_warns(demo_home: Home) -> None:
    """Issue 26: px0 turned to text upstream ("56 months") in every row: the run fails naming the
    column (rows kept in quarantine); 3 of 5 rows bad (60% > the default 0.5): ingested with a warning."""
    instance = dg.DagsterInstance.ephemeral()
    resources = {"engine": EngineResource(home=str(demo_home.root))}
    header = "id,label," + ",".join(f"px{i}" for i in range(64)) + "\n"
    row = lambda r, px0: f"t{r},{r % 10},{px0}," + ",".join(["1"] * 63) + "\n"  # noqa: E731
    (demo_home.landing / "text.csv").write_text(header + "".join(row(r, f"{r} months") for r in range(4)))
    (demo_home.landing / "mixed.csv").write_text(header + "".join(row(r, f"{r} months" if r < 13 else r)
                                                               for r in range(10, 15)))
    instance.add_dynamic_partitions(batches_partitions.name, ["a.csv", "text.csv", "mixed.csv"])
    assert dg.materialize([landed_batch], partition_key="a.csv", instance=instance, resources=resources).success
    failed = dg.materialize([landed_batch], partition_key="text.csv", instance=instance, resources=resources,
                            raise_on_error=False)
    assert not failed.success and not failed.asset_materializations_for_node("landed_batch")
    (failure,) = [e for e in failed.all_events if e.event_type_value == "STEP_FAILURE"]
    message = failure.step_failure_data.error.message
    assert "text.csv: no good row: all 4 rows quarantined, rejected by column 'px0' (4 rows" in message
    mixed = dg.materialize([landed_batch], partition_key="mixed.csv", instance=instance, resources=resources)
    meta = mixed.asset_materializations_for_node("landed_batch")[0].metadata
    assert (meta["rows_ok"].value, meta["rows_quarantined"].value) == (2, 3)
    assert meta["warnings"].value.startswith("- 3 of 5 rows (60%) quarantined, above [ingest] max_quarantine_share "
                                             "= 0.5: rejected by column 'px0' (3 rows")
    check = next(c for c in mixed.get_asset_check_evaluations() if c.check_name == "quarantined_share")
    assert (check.passed, check.severity) == (False, dg.AssetCheckSeverity.WARN)
    assert "rejected by column 'px0'" in (check.description or "")
    with open_warehouse(demo_home, read_only=True) as con:
        assert con.execute("SELECT count(*) FROM quarantine WHERE batch_id LIKE 'text-%'").fetchone()[0] == 4
        assert con.execute("SELECT count(*) FROM examples").fetchone()[0] == 12 + 2
