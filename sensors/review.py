"""The review sensor: pull reviewers' verdicts when Label Studio has tasks annotated since its cursor."""

import dagster as dg

from assets.resources import WAREHOUSE_TAG, EngineResource, LabelStudioResource
from data_engine.review.pull import pull_decision

pull_job = dg.define_asset_job(
    "pull_job", selection=dg.AssetSelection.assets("review_verdicts"), tags=WAREHOUSE_TAG,
    executor_def=dg.in_process_executor,
    description="Pull reviewers' verdicts from Label Studio into the label ledger.",
)


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
