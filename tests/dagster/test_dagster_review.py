"""The review wiring under Dagster, over the in-memory Label Studio (``FakeLabelStudioResource``):
``review_tasks`` pushes the queue, a reviewer answers, ``review_sensor`` requests a pull only when
something was annotated since its cursor, and ``review_verdicts`` writes the verdicts to the ledger."""

from __future__ import annotations

import uuid

import dagster as dg
import pytest
from dagster._core.storage.dagster_run import DagsterRun

from assets.resources import EngineResource, FakeLabelStudioResource
from assets.review import review_tasks, review_verdicts
from data_engine.errors import ReviewServiceError
from data_engine.review.labelstudio.fake import FakeReviewClient
from data_engine.review.labelstudio.labeling import DISCARD_CHOICE, choice_result
from data_engine.store.warehouse import open_warehouse
from sensors.review import pull_job, review_sensor
from tests.review_support import digits_home, make_queue

QUEUED = 12


@pytest.fixture()
def queued(tmp_path):
    """A home with a review queue of ``QUEUED`` digits, an empty fake server and the resources over both."""
    home, frame = digits_home(tmp_path / "home", n=QUEUED)
    make_queue(home, frame)
    fake = FakeReviewClient()
    resources = {"engine": EngineResource(home=str(home.root)), "label_studio": FakeLabelStudioResource.over(fake)}
    return home, frame, fake, resources


def _materialize(asset, resources, instance=None) -> dg.ExecuteInProcessResult:
    result = dg.materialize([asset], resources=resources, instance=instance)
    assert result.success
    return result


def _metadata(result: dg.ExecuteInProcessResult, key: str) -> dict:
    (event,) = result.get_asset_materialization_events()
    assert event.asset_key == dg.AssetKey(key)
    return {k: v.value for k, v in event.materialization.metadata.items()}


def _tick(resources, cursor=None, instance=None):
    context = dg.build_sensor_context(instance=instance or dg.DagsterInstance.ephemeral(), resources=resources,
                                      cursor=cursor)
    return review_sensor(context)


def _answer(fake: FakeReviewClient, frame, n: int, *, discard_last: bool = False) -> dict[str, str | None]:
    """A reviewer answers the first ``n`` queued examples with their true label (the last one
    discarded when asked); returns example id -> the verdict's label (None: discarded)."""
    tasks = {t["data"]["example_id"]: t["id"] for t in fake.tasks.values()}
    answers: dict[str, str | None] = {}
    for i, ex in enumerate(frame.head(n).itertuples()):
        discard = discard_last and i == n - 1
        fake.create_annotation(tasks[ex.id], choice_result(DISCARD_CHOICE if discard else ex.true_label))
        answers[ex.id] = None if discard else ex.true_label
    return answers


def test_review_tasks_pushes_the_queue_once_and_records_each_task(queued) -> None:
    home, frame, fake, resources = queued
    first = _metadata(_materialize(review_tasks, resources), "review_tasks")
    with open_warehouse(home, read_only=True) as con:
        recorded = con.execute("SELECT example_id, task_id, status FROM review_tasks ORDER BY example_id").fetchall()
    assert first["sent"] == QUEUED and first["dagster/row_count"] == QUEUED and first["tasks_not_done"] == QUEUED
    assert len(fake.projects) == 1 and len(fake.tasks) == QUEUED
    assert sorted(eid for eid, _, _ in recorded) == sorted(frame["id"])
    assert {tid for _, tid, _ in recorded} == set(fake.tasks) and {s for _, _, s in recorded} == {"open"}
    # A second materialization sends nothing new: the push is idempotent and its data version stays.
    again = _metadata(_materialize(review_tasks, resources), "review_tasks")
    assert again["sent"] == 0 and again["dagster/row_count"] == QUEUED and len(fake.tasks) == QUEUED


def test_the_sensor_skips_until_a_project_exists_and_until_something_is_annotated(queued) -> None:
    _, _, fake, resources = queued
    before_push = _tick(resources)
    assert isinstance(before_push, dg.SkipReason) and "no review project" in before_push.skip_message
    _materialize(review_tasks, resources)
    nothing_yet = _tick(resources)
    # Nothing to pull; the project's counts go into the cursor (a later deletion shows against them).
    assert isinstance(nothing_yet, dg.SensorResult) and not nothing_yet.run_requests
    assert "no new verdicts" in nothing_yet.skip_reason.skip_message and fake.url in nothing_yet.skip_reason.skip_message
    assert nothing_yet.cursor == f"|1:{QUEUED}:0"
    still = _tick(resources, cursor=nothing_yet.cursor)
    assert isinstance(still, dg.SkipReason) and "no new verdicts" in still.skip_message


def test_the_sensor_pulls_when_the_server_lost_tasks_or_the_project(queued) -> None:
    _, frame, fake, resources = queued
    _materialize(review_tasks, resources)
    idle = _tick(resources)
    fake.delete_task(next(iter(fake.tasks)))  # the last open work is gone: no answer will come for it
    lost = _tick(resources, cursor=idle.cursor)
    assert isinstance(lost, dg.SensorResult) and len(lost.run_requests) == 1
    assert lost.cursor == f"|1:{QUEUED - 1}:0" and "pulling to reconcile" in lost.run_requests[0].tags["data-engine/reason"]
    fake.delete_project(1)
    gone = _tick(resources, cursor=lost.cursor)
    assert isinstance(gone, dg.SensorResult) and gone.cursor == ""
    assert gone.run_requests[0].run_key == f"pull-gone-{lost.cursor}"
    assert "is gone from" in gone.run_requests[0].tags["data-engine/reason"]


def test_sensor_then_pull_puts_the_verdicts_in_the_ledger_and_moves_the_cursor(queued) -> None:
    home, frame, fake, resources = queued
    _materialize(review_tasks, resources)
    answers = _answer(fake, frame, 4, discard_last=True)

    tick = _tick(resources)
    assert isinstance(tick, dg.SensorResult)
    (request,) = tick.run_requests
    assert tick.cursor and request.run_key == f"pull-{tick.cursor}"
    assert request.tags["data-engine/reason"].startswith("4 task(s) annotated")

    pulled = _metadata(_materialize(review_verdicts, resources), "review_verdicts")
    assert pulled["tasks_seen"] == 4 and pulled["label_events"] == 4 and pulled["discards"] == 1
    with open_warehouse(home, read_only=True) as con:
        events = dict(con.execute("SELECT example_id, label FROM label_events WHERE source = 'review'").fetchall())
        in_force = dict(con.execute("SELECT example_id, CASE WHEN is_discarded THEN NULL ELSE label END "
                                    "FROM current_labels WHERE example_id IN (SELECT unnest(?))",
                                    [list(answers)]).fetchall())
        done = con.execute("SELECT count(*) FROM review_tasks WHERE status = 'done'").fetchone()[0]
    assert set(events) == set(answers) and in_force == answers and done == 4

    # The next tick, from the new cursor, has nothing to pull until the reviewer answers again.
    idle = _tick(resources, cursor=tick.cursor)
    assert isinstance(idle, dg.SkipReason) and "no new verdicts" in idle.skip_message
    _answer(fake, frame.iloc[4:], 1)
    more = _tick(resources, cursor=tick.cursor)
    assert isinstance(more, dg.SensorResult) and more.cursor > tick.cursor
    assert more.run_requests[0].tags["data-engine/reason"].startswith("1 task(s) annotated")


def test_the_sensor_waits_while_a_pull_is_in_flight(queued) -> None:
    _, frame, fake, resources = queued
    _materialize(review_tasks, resources)
    _answer(fake, frame, 2)
    instance = dg.DagsterInstance.ephemeral()
    run_id = str(uuid.uuid4())
    instance.add_run(DagsterRun(job_name=pull_job.name, run_id=run_id, status=dg.DagsterRunStatus.STARTED))
    busy = _tick(resources, instance=instance)
    assert isinstance(busy, dg.SkipReason) and "queued or in progress" in busy.skip_message
    instance.delete_run(run_id)
    assert isinstance(_tick(resources, instance=instance), dg.SensorResult)


def test_an_unreachable_server_is_a_skip_that_names_it_not_a_failed_tick(queued) -> None:
    _, frame, fake, resources = queued
    _materialize(review_tasks, resources)
    _answer(fake, frame, 1)
    fake.fail_with = ReviewServiceError(f"Label Studio at {fake.url} refused the connection")
    down = _tick(resources, cursor="2026-01-01T00:00:00.000000Z")
    assert isinstance(down, dg.SkipReason)
    assert "refused the connection" in down.skip_message and "will retry" in down.skip_message
    fake.fail_with = None
    assert isinstance(_tick(resources), dg.SensorResult)
