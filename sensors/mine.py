"""The mining sensor: mine (and push the queue) when labels or examples changed. Nobody clicks "run"."""

import dagster as dg

from assets.resources import WAREHOUSE_TAG, EngineResource
from data_engine.triggers import mining_trigger
from sensors.common import read_warehouse, run_request

# Steps run in one process, one after another: every step writes the DuckDB file, which takes one
# writer process at a time.
mine_job = dg.define_asset_job(
    "mine_job",
    selection=dg.AssetSelection.assets("oof_predictions", "detected_issues", "review_queue", "review_tasks"),
    tags=WAREHOUSE_TAG,
    executor_def=dg.in_process_executor,
    description="Out-of-sample predictions, issue detectors, the ranked review queue, pushed to Label Studio.",
)


@dg.sensor(job=mine_job, minimum_interval_seconds=10, default_status=dg.DefaultSensorStatus.RUNNING)
def mining_sensor(engine: EngineResource) -> dg.RunRequest | dg.SkipReason:
    """Mine (and push the queue) when labels or examples changed since the last mining run."""
    return run_request(read_warehouse(engine.get_home(), mining_trigger))
