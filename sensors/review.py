"""The review sensor: pull reviewers' verdicts when Label Studio has tasks annotated since its cursor."""

import dagster as dg

from assets.resources import WAREHOUSE_TAG, EngineResource, LabelStudioResource
from data_engine.triggers import in_flight_reason, pull_decision
from sensors.common import priority_tag, runs_in_flight

pull_job = dg.define_asset_job(
    "pull_job", selection=dg.AssetSelection.assets("review_verdicts"), tags={**WAREHOUSE_TAG, **priority_tag("pull_job")},
    executor_def=dg.in_process_executor,
    description="Pull reviewers' verdicts from Label Studio into the label ledger.",
)


# 5 s: the sensor daemon's own loop period; a verdict reaches the ledger within a tick and one short run.
@dg.sensor(job=pull_job, minimum_interval_seconds=5, default_status=dg.DefaultSensorStatus.RUNNING)
def review_sensor(context: dg.SensorEvaluationContext, engine: EngineResource,
                  label_studio: LabelStudioResource) -> dg.SensorResult | dg.SkipReason:
    """Pull when Label Studio has tasks annotated since the cursor (polls the server, not the warehouse),
    unless a pull is queued or in progress (it will see them; the cursor stays until then)."""
    busy = in_flight_reason(pull_job.name, runs_in_flight(context, pull_job.name))
    if busy:
        return dg.SkipReason(busy)
    home = engine.get_home()
    with label_studio.client(home) as client:
        decision = pull_decision(client, home.config, context.cursor)
    if not decision.run:
        if decision.cursor == context.cursor:
            return dg.SkipReason(decision.reason)
        # Nothing to pull, but the project's counts moved (a push): kept, so a later deletion shows.
        return dg.SensorResult(skip_reason=decision.reason, cursor=decision.cursor)
    return dg.SensorResult(
        run_requests=[dg.RunRequest(run_key=decision.run_key or f"pull-{decision.cursor}",
                                    tags={"data-engine/reason": decision.reason[:200]})],
        cursor=decision.cursor,
    )
