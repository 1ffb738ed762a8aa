"""The landing-folder sensor: one ingestion run per new file (run key = its sha256)."""


import dagster as dg

from assets.ingest import batches_partitions
from assets.resources import WAREHOUSE_TAG, EngineResource
from data_engine.ingest.landing import decide_landing
from data_engine.triggers import in_flight_reason
from sensors.common import priority_tag, runs_in_flight

ingest_job = dg.define_asset_job(
    "ingest_job",
    selection=dg.AssetSelection.assets("landed_batch"),
    tags={**WAREHOUSE_TAG, **priority_tag("ingest_job")},
    executor_def=dg.in_process_executor,
    description="Ingest one landed file.",
)


@dg.sensor(job=ingest_job, minimum_interval_seconds=5, default_status=dg.DefaultSensorStatus.RUNNING)
def landing_sensor(context: dg.SensorEvaluationContext, engine: EngineResource) -> dg.SensorResult | dg.SkipReason:
    """Request an ingestion run for every file in landing/ whose bytes are new, unless an ingestion
    is queued or in progress (the cursor stays: the next tick after it sees the files)."""
    busy = in_flight_reason(ingest_job.name, runs_in_flight(context, ingest_job.name))
    if busy:
        return dg.SkipReason(busy)
    decision = decide_landing(engine.get_home().landing, context.cursor)
    if not decision.new_files:
        # The cursor is kept even then: it holds the first look at files that must stay unchanged
        # until the next tick before they are requested (data_engine.ingest.landing).
        return dg.SensorResult(skip_reason=decision.skip_reason or "nothing new", cursor=decision.cursor)
    keys = [f.partition_key for f in decision.new_files]
    return dg.SensorResult(
        run_requests=[
            dg.RunRequest(run_key=f.sha256, partition_key=f.partition_key, tags={"data-engine/sha256": f.sha256})
            for f in decision.new_files
        ],
        dynamic_partitions_requests=[batches_partitions.build_add_request(keys)],
        cursor=decision.cursor,
    )
