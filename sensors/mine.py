"""The mining sensor: mine (and push the queue) when labels or examples changed. Nobody clicks "run"."""

import dagster as dg

from assets.resources import WAREHOUSE_TAG, EngineResource
from data_engine.triggers import mining_trigger, refill_threshold
from sensors.common import priority_tag, read_warehouse, run_request, runs_in_flight

# Steps run in one process, one after another: every step writes the DuckDB file, which takes one
# writer process at a time.
mine_job = dg.define_asset_job(
    "mine_job",
    selection=dg.AssetSelection.assets("oof_predictions", "detected_issues", "review_queue", "review_tasks"),
    tags={**WAREHOUSE_TAG, **priority_tag("mine_job")},
    executor_def=dg.in_process_executor,
    description="Out-of-sample predictions, issue detectors, the ranked review queue, pushed to Label Studio.",
)


@dg.sensor(job=mine_job, minimum_interval_seconds=5, default_status=dg.DefaultSensorStatus.RUNNING)
def mining_sensor(context: dg.SensorEvaluationContext, engine: EngineResource) -> dg.RunRequest | dg.SkipReason:
    """Mine (and push the queue) when labels or examples differ from the last mining run's, unless a
    mining run is queued or in progress, or only verdicts changed while reviewers still have tasks."""
    in_flight = runs_in_flight(context, mine_job.name)
    home = engine.get_home()
    refill = refill_threshold(home.config)
    return run_request(read_warehouse(home, lambda con: mining_trigger(con, in_flight=in_flight, refill_below=refill)))
