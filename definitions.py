"""The one Dagster ``Definitions`` of the data engine (``dagster dev -w workspace.yaml`` loads it)."""


import dagster as dg

from assets.ingestion import landed_batch
from assets.resources import EngineResource
from sensors.landing import ingest_job, landing_sensor

defs = dg.Definitions(
    assets=[landed_batch],
    jobs=[ingest_job],
    sensors=[landing_sensor],
    resources={"engine": EngineResource(home=dg.EnvVar("DATA_ENGINE_HOME"))},
)
