"""The sensors that close the loop: mine, pull verdicts, retrain. Nobody clicks "run".

Each sensor calls one plain decision function from the core and turns it into a RunRequest (with
a run key, so the same state never starts the same work twice) or a SkipReason. Sensors only read
the warehouse, briefly and read-only; while a run holds the write lock they skip the tick.
"""

from collections.abc import Callable
from typing import TypeVar

import dagster as dg

from assets.resources import WAREHOUSE_TAG, EngineResource, LabelStudioResource
from data_engine.errors import EngineError
from data_engine.review.pull import pull_decision
from data_engine.store.home import Home
from data_engine.store.warehouse import open_warehouse
from data_engine.triggers import Trigger, mining_trigger, retrain_trigger

T = TypeVar("T")
# Jobs run their steps in one process, one after another: every step writes the DuckDB file, which
# takes one writer process at a time.
# A sensor waits this long for a writer to finish before it skips the tick.
SENSOR_LOCK_WAIT_S = 3.0

mine_job = dg.define_asset_job(
    "mine_job",
    selection=dg.AssetSelection.assets("oof_predictions", "detected_issues", "review_queue", "review_tasks"),
    tags=WAREHOUSE_TAG,
    executor_def=dg.in_process_executor,
    description="Out-of-sample predictions, issue detectors, the ranked review queue, pushed to Label Studio.",
)
pull_job = dg.define_asset_job(
    "pull_job", selection=dg.AssetSelection.assets("review_verdicts"), tags=WAREHOUSE_TAG,
    executor_def=dg.in_process_executor,
    description="Pull reviewers' verdicts from Label Studio into the label ledger.",
)
retrain_job = dg.define_asset_job(
    "retrain_job", selection=dg.AssetSelection.assets("candidate_model", "champion_model", "champion_scores"),
    tags=WAREHOUSE_TAG,
    executor_def=dg.in_process_executor,
    description="Train a candidate, gate it against the champion on gold data, deploy it if it passes.",
)


def read_warehouse(home: Home, decide: Callable[..., T]) -> T | dg.SkipReason:
    """Run ``decide(con)`` on a short read-only connection; a busy or missing warehouse skips the tick."""
    if not home.warehouse_path.exists():
        return dg.SkipReason(f"no warehouse yet at {home.warehouse_path}")
    try:
        with open_warehouse(home, read_only=True, wait_s=SENSOR_LOCK_WAIT_S) as con:
            return decide(con)
    except EngineError as exc:
        return dg.SkipReason(f"{exc} (will retry next tick)")


def _request(trigger: "Trigger | dg.SkipReason") -> dg.RunRequest | dg.SkipReason:
    if isinstance(trigger, dg.SkipReason):
        return trigger
    if not trigger.run:
        return dg.SkipReason(trigger.reason)
    return dg.RunRequest(run_key=trigger.run_key, tags={"data-engine/reason": trigger.reason[:200]})


@dg.sensor(job=mine_job, minimum_interval_seconds=10, default_status=dg.DefaultSensorStatus.RUNNING)
def mining_sensor(engine: EngineResource) -> dg.RunRequest | dg.SkipReason:
    """Mine (and push the queue) when labels or examples changed since the last mining run."""
    return _request(read_warehouse(engine.get_home(), mining_trigger))


@dg.sensor(job=pull_job, minimum_interval_seconds=10, default_status=dg.DefaultSensorStatus.RUNNING)
def review_sensor(context: dg.SensorEvaluationContext, engine: EngineResource,
                  label_studio: LabelStudioResource) -> dg.SensorResult | dg.SkipReason:
    """Pull when Label Studio has tasks annotated since the cursor (polls the server, not the warehouse)."""
    home = engine.get_home()
    with label_studio.client(home) as client:
        decision = pull_decision(client, home.config, context.cursor)
    if not decision.run:
        return dg.SkipReason(decision.reason)
    return dg.SensorResult(
        run_requests=[dg.RunRequest(run_key=f"pull-{decision.cursor}", tags={"data-engine/reason": decision.reason[:200]})],
        cursor=decision.cursor,
    )


@dg.sensor(job=retrain_job, minimum_interval_seconds=10, default_status=dg.DefaultSensorStatus.RUNNING)
def retrain_sensor(engine: EngineResource) -> dg.RunRequest | dg.SkipReason:
    """Retrain when enough corrections arrived since the last model, or a new labeled batch landed."""
    home = engine.get_home()
    return _request(read_warehouse(home, lambda con: retrain_trigger(con, home.config)))
