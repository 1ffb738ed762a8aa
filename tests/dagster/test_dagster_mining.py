"""Mining under Dagster, as its users read it: typed, rounded metadata, tables with schemas, the
noise matrix inline, and data versions that leave the graph in sync when nothing changed."""

from __future__ import annotations

import dagster as dg

from assets.mine import mined_issues, oof_predictions
from assets.resources import ComputeResource, EngineResource
from tests.loop_support import make_home


def test_mining_assets_write_typed_metadata_and_data_versions(tmp_path) -> None:
    home = make_home(tmp_path, {"mining": {"model": "linear", "detectors": ["label", "outlier", "near_duplicate"]}},
                     seed=0, n_train=200, n_gold=40, n_unlabeled=20, noise=0.1)
    instance = dg.DagsterInstance.ephemeral()
    engine = EngineResource(home=str(home.root))
    resources = {"engine": engine, "compute": ComputeResource(engine=engine)}
    result = dg.materialize([oof_predictions, mined_issues], instance=instance, resources=resources)
    assert result.success
    oof = result.asset_materializations_for_node("oof_predictions")[0]
    assert oof.metadata["dagster/row_count"].value == 200
    assert oof.tags["dagster/data_version"].startswith("labels-")
    issues, queue = (result.asset_materializations_for_node("mined_issues")[i] for i in (0, 1))
    noise = issues.metadata["estimated_noise_rate"].value
    assert isinstance(noise, float) and len(repr(noise)) <= 6  # rounded, not 0.0013908205841446364
    assert issues.metadata["noise_matrix"].value.count("data:image/png;base64,") == 1
    assert issues.metadata["noise_matrix_path"].value.endswith(".png")
    balance = issues.metadata["class_balance"]
    assert [c.name for c in balance.schema.columns] == ["class", "examples", "share", "minority"]
    top = queue.metadata["top_of_queue"]
    assert top.records and all(0 <= r.data["priority"] <= 1 for r in top.records)
    assert queue.metadata["dagster/row_count"].value == queue.metadata["queue_size"].value > 0
    # The same state mined again queues the same examples: the queue's data version is unchanged.
    again = dg.materialize([oof_predictions, mined_issues], instance=instance, resources=resources)
    same = again.asset_materializations_for_node("mined_issues")[1]
    assert same.tags["dagster/data_version"] == queue.tags["dagster/data_version"]

