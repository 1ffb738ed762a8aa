"""The `drift` asset check of `landed_batch`: WARN naming the drifted column, with typed metadata
(columns, AUC, adjusted p-values, a table and a plot); passes for a batch like the training data."""

from __future__ import annotations

from pathlib import Path

import dagster as dg

from assets.ingest import batches_partitions, landed_batch
from assets.resources import EngineResource
from tests import homes
from tests.ingest.test_batch_drift import CONFIG, _rows


def test_drift_check_warns_naming_the_column_and_passes_a_same_distribution_batch(tmp_path: Path) -> None:
    home = homes.make_home(tmp_path, CONFIG)
    _rows(600, 0, 0).to_csv(home.landing / "train.csv", index=False)
    grams = _rows(200, 1, 10_000)
    grams["weight"] = grams["weight"] * 1000
    grams.to_csv(home.landing / "grams.csv", index=False)
    _rows(200, 2, 20_000).to_csv(home.landing / "same.csv", index=False)
    instance = dg.DagsterInstance.ephemeral()
    instance.add_dynamic_partitions(batches_partitions.name, ["train.csv", "grams.csv", "same.csv"])
    resources = {"engine": EngineResource(home=str(home.root))}

    def drift_check(key: str) -> dg.AssetCheckEvaluation:
        run = dg.materialize([landed_batch], partition_key=key, instance=instance, resources=resources)
        assert run.success
        return next(c for c in run.get_asset_check_evaluations() if c.check_name == "drift")

    assert drift_check("train.csv").passed
    # Before the grams batch: once labeled, it is training data in force that later batches are compared with.
    same = drift_check("same.csv")
    assert same.passed and same.metadata["columns"].value == ""
    check = drift_check("grams.csv")
    assert (check.passed, check.severity) == (False, dg.AssetCheckSeverity.WARN)
    assert check.description.startswith("drifted: weight;")
    meta = check.metadata
    assert meta["columns"].value == "weight" and meta["drifted"].value is True
    assert isinstance(meta["auc"], dg.FloatMetadataValue) and meta["auc"].value > 0.9
    assert meta["p_adjusted"].value["weight"] < 0.05 and meta["p_adjusted"].value["age"] > 0.05
    assert [c.name for c in meta["per_column"].schema.columns][:4] == ["column", "test", "p_value", "p_adjusted"]
    assert "data:image/png;base64," in meta["figure"].value
