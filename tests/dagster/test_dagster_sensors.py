"""The loop's sensors under Dagster: no request while a run of the job is queued or in progress
(asked of the instance's run storage), a request once it has finished."""

from __future__ import annotations

import uuid

import dagster as dg
import pytest
from dagster._core.storage.dagster_run import DagsterRun

from assets.resources import EngineResource
from sensors.mine import mining_sensor
from sensors.ship import retrain_sensor
from tests.loop_support import make_home


@pytest.fixture()
def home(tmp_path):
    return make_home(tmp_path, seed=0, n_train=120, n_gold=40, n_unlabeled=10)


def _add_run(instance: dg.DagsterInstance, job: str, status: dg.DagsterRunStatus) -> str:
    run_id = str(uuid.uuid4())
    instance.add_run(DagsterRun(job_name=job, run_id=run_id, status=status))
    return run_id


@pytest.mark.parametrize(("sensor", "job"), [(mining_sensor, "mine_job"), (retrain_sensor, "retrain_job")])
def test_no_request_while_a_run_of_the_job_is_in_flight(home, sensor, job) -> None:
    instance = dg.DagsterInstance.ephemeral()
    resources = {"engine": EngineResource(home=str(home.root))}

    def tick():
        return sensor(dg.build_sensor_context(instance=instance, resources=resources))

    first = tick()
    assert isinstance(first, dg.RunRequest) and first.run_key
    assert sensor.job.tags["dagster/priority"] in {"0", "1"}  # behind ingestion and verdict pulls
    run_id = _add_run(instance, job, dg.DagsterRunStatus.NOT_STARTED)
    queued = tick()  # (a QUEUED run needs a code-location origin; the daemon test covers it)
    assert isinstance(queued, dg.SkipReason) and "queued or in progress" in queued.skip_message
    instance.delete_run(run_id)
    started = _add_run(instance, job, dg.DagsterRunStatus.STARTED)
    assert isinstance(tick(), dg.SkipReason)
    instance.delete_run(started)
    _add_run(instance, job, dg.DagsterRunStatus.SUCCESS)  # finished runs do not hold the sensor back
    again = tick()
    assert isinstance(again, dg.RunRequest) and again.run_key == first.run_key
