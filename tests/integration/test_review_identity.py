"""Against the real Label Studio: a server restarted on a new database, a deleted project, task or
answer. Each is noticed on the next push or pull, said in one line, and reconciled with nothing lost."""

from __future__ import annotations

import shutil
import time

import pytest
from label_studio_sdk import LabelStudio

from data_engine.review.labelstudio.labeling import choice_result
from data_engine.review.labelstudio.server import port_in_use, start_server, stop_pid
from data_engine.review.project import make_client
from data_engine.review.pull import pull_verdicts
from data_engine.triggers import pull_decision
from data_engine.review.push import push_queue
from data_engine.store.warehouse import open_warehouse
from tests.labelstudio_server import START_WAIT_S

pytestmark = [pytest.mark.integration, pytest.mark.timeout(1200)]


def _tasks(client, project_id: int) -> dict[str, int]:
    """example id -> task id on the server."""
    return {t["data"]["example_id"]: t["id"] for t in client.tasks_after(project_id, 0)}


def _answer(client, project_id, truth, example_ids) -> dict[str, int]:
    tasks = _tasks(client, project_id)
    return {ex: client.create_annotation(tasks[ex], choice_result(truth[ex])) for ex in example_ids}


def _in_force(con, example_id):
    return con.execute("SELECT label, source FROM current_labels WHERE example_id = ?", [example_id]).fetchall()[0]


def test_a_server_on_a_new_database_on_the_same_url_loses_no_answer(review_home, label_studio, tmp_path):
    home, frame = review_home(n=12)
    truth = dict(zip(frame["id"], frame["true_label"], strict=True))
    ids = list(frame["id"])
    client = make_client(home)
    with open_warehouse(home) as con:
        first_push = push_queue(con, client, home.config)
    first = _answer(client, first_push.project_id, truth, ids[:6])
    with open_warehouse(home) as con:
        assert pull_verdicts(con, client, home.config).review_events == 6
    # The volume is lost: the same URL and token, a new database (the server's own migrations run again).
    label_studio.stop()
    deadline = time.monotonic() + 60
    while port_in_use(label_studio.info.port) and time.monotonic() < deadline:
        time.sleep(0.5)  # its workers close the socket a moment after the main process is gone
    secrets = tmp_path / "new-db-secrets"
    shutil.copytree(label_studio.secrets_dir, secrets)
    fresh = start_server(tmp_path / "new-db", secrets, label_studio.info.port, wait_s=START_WAIT_S)
    try:
        client = make_client(home)
        with open_warehouse(home) as con:
            pushed = push_queue(con, client, home.config)
        second = _answer(client, pushed.project_id, truth, ids[6:])
        with open_warehouse(home) as con:
            pulled = pull_verdicts(con, client, home.config)
            verdicts = con.execute("SELECT count(*), count(DISTINCT example_id) FROM review_verdicts").fetchall()[0]
            statuses = dict(con.execute("SELECT status, count(*) FROM review_tasks GROUP BY status").fetchall())
            in_force = {ex: _in_force(con, ex) for ex in ids}
    finally:
        stop_pid(fresh.pid)
        deadline = time.monotonic() + 60
        while port_in_use(label_studio.info.port) and time.monotonic() < deadline:
            time.sleep(0.5)
        label_studio.restart()
    # The new server hands out ids from 1 again (on a session server that was fresh before this test,
    # the six annotation ids are those of the first six answers).
    assert pushed.project_id == 1 and sorted(second.values()) == list(range(1, 7))
    assert len(first) == 6
    (line,) = pushed.notices
    assert "runs on a new database" in line and "6 open task(s)" in line
    assert pushed.sent == 6 and pulled.review_events == 6 and pulled.annotations_new == 6
    assert verdicts == (12, 12) and statuses == {"done": 12}
    assert all(in_force[ex] == (truth[ex], "review") for ex in ids)


def test_deleted_tasks_answers_and_project_are_reconciled(review_home, label_studio):
    home, frame = review_home(n=10)
    truth = dict(zip(frame["id"], frame["true_label"], strict=True))
    given = dict(zip(frame["id"], frame["given_label"], strict=True))
    ids = list(frame["id"])
    flipped = next(ex for ex in ids if truth[ex] != given[ex])
    client = make_client(home)
    sdk = LabelStudio(base_url=label_studio.url, api_key=label_studio.token)
    with open_warehouse(home) as con:
        pid = push_queue(con, client, home.config).project_id
    answered = [flipped] + [ex for ex in ids if ex != flipped][:2]
    annotations = _answer(client, pid, truth, answered)
    with open_warehouse(home) as con:
        assert pull_verdicts(con, client, home.config).review_events == 3
        assert _in_force(con, flipped) == (truth[flipped], "review")
    tick = pull_decision(client, home.config, None)  # the review sensor's view before the deletions
    tasks = _tasks(client, pid)
    open_ones = [ex for ex in ids if ex not in answered][:2]
    for ex in open_ones:
        sdk.tasks.delete(id=tasks[ex])
    sdk.annotations.delete(id=annotations[flipped])
    lost = pull_decision(client, home.config, tick.cursor)
    assert lost.run and lost.cursor.endswith("|%d:8:2" % pid)  # 8 tasks and 2 answers left on the server
    with open_warehouse(home) as con:
        pulled = pull_verdicts(con, client, home.config)
        withdrawn = _in_force(con, flipped)
        pushed = push_queue(con, client, home.config)
        statuses = dict(con.execute("SELECT status, count(*) FROM review_tasks GROUP BY status").fetchall())
    assert len(pulled.notices) == 2
    assert "2 task(s)" in pulled.notices[0] and "2 still open will be sent again" in pulled.notices[0]
    assert "1 answer(s) were deleted" in pulled.notices[1]
    assert withdrawn == (given[flipped], "ingest")  # the label before the withdrawn verdict
    assert pushed.sent == 2 and set(_tasks(client, pid)) == set(ids)
    assert statuses == {"done": 2, "open": 8}

    # The whole project deleted: one line on pull (no raw 404 body), a new project on push.
    sdk.projects.delete(id=pid)
    assert pull_decision(client, home.config, lost.cursor).run_key == f"pull-gone-{lost.cursor}"
    with open_warehouse(home) as con:
        gone = pull_verdicts(con, client, home.config)
        again = push_queue(con, client, home.config)
    (line,) = gone.notices
    assert gone.project_id is None and "was deleted" in line and "8 open task(s)" in line and "{" not in line
    assert again.project_id != pid and again.sent == 8
    assert set(_tasks(client, again.project_id)) == set(ids) - set(answered[1:])
