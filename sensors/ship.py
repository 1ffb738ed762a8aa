"""The retrain sensor: train, gate and deploy when enough corrections arrived or a labeled batch landed."""

import dagster as dg

from assets.resources import WAREHOUSE_TAG, EngineResource
from data_engine.triggers import retrain_trigger
from sensors.common import read_warehouse, run_request

retrain_job = dg.define_asset_job(
    "retrain_job", selection=dg.AssetSelection.assets("candidate_model", "champion_model", "champion_scores"),
    tags=WAREHOUSE_TAG,
    executor_def=dg.in_process_executor,
    description="Train a candidate, gate it against the champion on gold data, deploy it if it passes.",
)


@dg.sensor(job=retrain_job, minimum_interval_seconds=10, default_status=dg.DefaultSensorStatus.RUNNING)
def retrain_sensor(engine: EngineResource) -> dg.RunRequest | dg.SkipReason:
    """Retrain when enough corrections arrived since the last model, or a new labeled batch landed."""
    home = engine.get_home()
    return run_request(read_warehouse(home, lambda con: retrain_trigger(con, home.config)))
