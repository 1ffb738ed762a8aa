"""The retrain sensor: train, gate and deploy when enough corrections arrived, a labeled batch landed,
or the review has settled with verdicts no model has seen. The gold sensor: re-score the champion
when the gold set changed (a gold file landed, or gold relabelled in place)."""

import dagster as dg

from assets.resources import WAREHOUSE_TAG, EngineResource
from data_engine.triggers import gold_trigger, retrain_trigger
from sensors.common import priority_tag, read_warehouse, run_request, runs_in_flight

# The out-of-fold predictions come first: their data version is the label snapshot, so the candidate
# records the labels it was trained on. Without them a retrain that beat mining to new verdicts
# leaves the candidate "Unsynced" once mining catches up, though no label is missing from it. When
# mining already saw these labels the step re-uses the stored predictions (no fit).
retrain_job = dg.define_asset_job(
    "retrain_job", selection=dg.AssetSelection.assets("oof_predictions", "candidate_model", "champion_model",
                                                      "champion_scores"),
    tags={**WAREHOUSE_TAG, **priority_tag("retrain_job")},
    executor_def=dg.in_process_executor,
    description="Train a candidate, gate it against the champion on gold data, deploy it if it passes.",
)


@dg.sensor(job=retrain_job, minimum_interval_seconds=10, default_status=dg.DefaultSensorStatus.RUNNING)
def retrain_sensor(context: dg.SensorEvaluationContext, engine: EngineResource) -> dg.RunRequest | dg.SkipReason:
    """Retrain when the core's rule says so (data_engine.triggers.retrain_trigger), never beside a
    retrain in flight; the final retrain also waits for mining and pulls in flight to finish."""
    home = engine.get_home()
    in_flight = {job: runs_in_flight(context, job) for job in ("retrain_job", "mine_job", "pull_job")}
    return run_request(read_warehouse(home, lambda con: retrain_trigger(
        con, home.config, in_flight=in_flight["retrain_job"], mining_in_flight=in_flight["mine_job"],
        pull_in_flight=in_flight["pull_job"])))


gold_job = dg.define_asset_job(
    "gold_job", selection=dg.AssetSelection.assets("champion_scores"),
    tags={**WAREHOUSE_TAG, **priority_tag("gold_job")},
    executor_def=dg.in_process_executor,
    description="Re-score the champion on the current gold set (and score new unlabeled examples).",
)


@dg.sensor(job=gold_job, minimum_interval_seconds=30, default_status=dg.DefaultSensorStatus.RUNNING)
def gold_sensor(context: dg.SensorEvaluationContext, engine: EngineResource) -> dg.RunRequest | dg.SkipReason:
    """Re-score the champion when the gold version differs from the one it was last scored on
    (data_engine.triggers.gold_trigger), never beside a run of its own or a retrain."""
    home = engine.get_home()
    return run_request(read_warehouse(home, lambda con: gold_trigger(
        con, in_flight=runs_in_flight(context, "gold_job"), retrain_in_flight=runs_in_flight(context, "retrain_job"))))
