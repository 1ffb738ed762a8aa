"""What ran outside Dagster (make demo, the CLI) is recorded in the home's Dagster instance: typed
materializations in the order they happened, the gate's check evaluations, the noise matrix."""

from __future__ import annotations

import dagster as dg

from assets.history import record_history
from data_engine.ingest.batch import ingest_file
from data_engine.mine.run import run_mining
from data_engine.ship.step import gate_and_promote
from data_engine.ship.training import train_candidate
from data_engine.store.warehouse import open_warehouse
from tests.loop_support import make_home


def test_the_loop_run_outside_dagster_shows_in_its_instance(tmp_path) -> None:
    from sklearn.datasets import load_digits

    home = make_home(tmp_path, {"mining": {"model": "linear", "detectors": ["label", "outlier"]}})
    d = load_digits()
    rows = "".join(f"e{i},{d.target[i]}," + ",".join(str(int(v)) for v in d.data[i]) + "\n" for i in range(260))
    header = "id,label," + ",".join(f"px{i}" for i in range(64)) + "\n"
    (home.landing / "batch.csv").write_text(header + rows[: rows.index("e200,")])
    (home.gold_landing / "gold.csv").write_text(header + rows[rows.index("e200,"):])
    with open_warehouse(home) as con:
        ingest_file(con, home.config.dataset, home.landing / "batch.csv")
        ingest_file(con, home.config.dataset, home.gold_landing / "gold.csv", gold=True)
        run_mining(con, home.config, home=home)
        train_candidate(con, home)
        gate_and_promote(con, home)
    (tmp_path / "dagster").mkdir()
    instance = dg.DagsterInstance.local_temp(str(tmp_path / "dagster"))
    assert record_history(home, instance) >= 6
    assert sorted(instance.get_dynamic_partitions("landed_files")) == ["batch.csv", "gold/gold.csv"]
    batch = instance.get_latest_materialization_event(dg.AssetKey("landed_batch")).asset_materialization
    assert batch.metadata["dagster/row_count"].value in (200, 60)
    issues = instance.get_latest_materialization_event(dg.AssetKey("detected_issues")).asset_materialization
    assert issues.metadata["noise_matrix"].value.count("data:image/png;base64,") == 1
    model = instance.get_latest_materialization_event(dg.AssetKey("candidate_model")).asset_materialization
    assert 0.8 < model.metadata["gold_accuracy"].value <= 1 and len(str(model.metadata["gold_accuracy"].value)) <= 6
    check = instance.event_log_storage.get_latest_asset_check_execution_by_key(
        [dg.AssetCheckKey(dg.AssetKey("candidate_model"), "promotion_gate")])
    assert check  # the gate's verdict is on the candidate's Checks tab
    assert instance.get_latest_materialization_event(dg.AssetKey("champion_model")) is not None
    assert record_history(home, instance) == 0  # recorded once
