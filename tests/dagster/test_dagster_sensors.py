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


def test_the_retrain_sensor_re_evaluates_the_champion_once_a_drifted_batch_is_labeled(tmp_path) -> None:
    from data_engine.ship.training import train_candidate
    from data_engine.store.warehouse import open_warehouse
    from tests.loop_support import review, seed_digits

    home = make_home(tmp_path, {"retrain": {"min_new_labels": 50}})
    info = seed_digits(home, n_train=120, n_gold=40, n_unlabeled=10)
    new = list(info["ids"][info["parts"]["unlabeled"]])
    instance = dg.DagsterInstance.ephemeral()
    resources = {"engine": EngineResource(home=str(home.root))}

    def tick():
        return retrain_sensor(dg.build_sensor_context(instance=instance, resources=resources))

    with open_warehouse(home) as con:
        train_candidate(con, home)
        con.execute("INSERT INTO batch_drift (batch_id, drifted, columns, auc, report) "
                    "VALUES ('unlabeled-1', true, '[\"px3\"]', 0.93, '{}')")
        con.executemany("INSERT INTO drift_rows VALUES ('unlabeled-1', ?, ?)", [[new[0], 0.9], [new[1], 0.7]])
        review(con, {new[0]: "3"})
    waiting = tick()
    assert isinstance(waiting, dg.SkipReason) and "waiting for 50" in waiting.skip_message
    with open_warehouse(home) as con:
        review(con, {new[1]: "5"})
    request = tick()
    assert isinstance(request, dg.RunRequest)
    with open_warehouse(home) as con:
        train_candidate(con, home)
    assert isinstance(tick(), dg.SkipReason)  # re-evaluated once
