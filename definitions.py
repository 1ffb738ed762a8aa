"""The one Dagster ``Definitions`` of the data engine (``dagster dev -w workspace.yaml`` loads it)."""

import dagster as dg

from assets.ingest import landed_batch
from assets.mine import mined_issues, oof_predictions
from assets.resources import ComputeResource, EngineResource, LabelStudioResource
from assets.review import review_tasks, review_verdicts
from assets.ship import candidate_model, champion_model, champion_scores, training_data_export
from sensors.ingest import ingest_job, landing_sensor
from sensors.mine import mine_job, mining_sensor
from sensors.review import pull_job, review_sensor
from sensors.ship import gold_job, gold_sensor, retrain_job, retrain_sensor

ENGINE = EngineResource(home=dg.EnvVar("DATA_ENGINE_HOME"))

defs = dg.Definitions(
    assets=[landed_batch, champion_scores, oof_predictions, mined_issues, review_tasks, review_verdicts,
            candidate_model, champion_model, training_data_export],
    jobs=[ingest_job, mine_job, pull_job, retrain_job, gold_job],
    sensors=[landing_sensor, mining_sensor, review_sensor, retrain_sensor, gold_sensor],
    resources={
        "engine": ENGINE,
        # The engine config's [compute] scheduler: local processes or a Dask cluster's client.
        "compute": ComputeResource(engine=ENGINE),
        # The key comes from the environment only; `make up` exports it from the home's 0600 token file.
        "label_studio": LabelStudioResource(api_key=dg.EnvVar("LABEL_STUDIO_API_KEY")),
    },
)
