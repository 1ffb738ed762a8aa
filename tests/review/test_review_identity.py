"""Label Studio's identity (fake server): a server on a new database, a deleted project, task or
answer is noticed on the next push or pull, said in one line, and reconciled with nothing lost."""

from __future__ import annotations

import json

from data_engine.cli import main
from data_engine.review.labelstudio.labeling import choice_result
from data_engine.review.pull import pull_verdicts
from data_engine.review.push import push_queue
from data_engine.store.warehouse import open_warehouse
from tests.review_support import pushed_to_fake


def _pushed(tmp_path, n=12, **review):
    home, frame, client = pushed_to_fake(tmp_path, n, **review)
    return home, frame.set_index("id"), client


def _task_of(client):
    """example id -> task id of the tasks the fake server has now."""
    return {t["data"]["example_id"]: t["id"] for t in client.tasks.values()}


def _answer(client, frame, example_ids, *, wrong=False):
    tasks = _task_of(client)
    out = {}
    for ex in example_ids:
        label = frame.loc[ex, "true_label"] if not wrong else str((int(frame.loc[ex, "true_label"]) + 5) % 10)
        out[ex] = client.create_annotation(tasks[ex], choice_result(label))
    return out


def _in_force(con, example_id):
    return con.execute("SELECT label, source FROM current_labels WHERE example_id = ?", [example_id]).fetchall()[0]


def _statuses(con):
    return dict(con.execute("SELECT status, count(*) FROM review_tasks GROUP BY status").fetchall())


def test_a_server_on_a_new_database_loses_no_answer_and_gets_the_open_tasks_again(tmp_path):
    home, frame, client = _pushed(tmp_path, n=12)
    ids = list(frame.index)
    first = _answer(client, frame, ids[:6])
    with open_warehouse(home) as con:
        assert pull_verdicts(con, client, home.config).review_events == 6
        client.reset_database()  # a lost volume: the same URL, ids from 1 again
        pushed = push_queue(con, client, home.config)
        # The new server hands out the same ids: the same project id, the same annotation ids.
        second = _answer(client, frame, ids[6:])
        assert pushed.project_id == 1 and sorted(second.values()) == sorted(first.values())
        pulled = pull_verdicts(con, client, home.config)
        verdicts = con.execute("SELECT count(*), count(DISTINCT example_id) FROM review_verdicts").fetchall()[0]
        events = con.execute("SELECT count(*) FROM label_events WHERE source = 'review'").fetchall()[0][0]
        statuses = _statuses(con)
        in_force = {ex: _in_force(con, ex) for ex in ids}
        changes = con.execute("SELECT kind, count(*) FROM review_changes GROUP BY kind").fetchall()
    assert len(pushed.notices) == 1 and "new database" in pushed.notices[0] and "\n" not in pushed.notices[0]
    assert pushed.sent == 6 and len(client.tasks) == 6  # only the open work went to the new server
    assert pulled.review_events == 6 and pulled.annotations_new == 6
    assert verdicts == (12, 12) and events == 12 and statuses == {"done": 12}
    assert all(in_force[ex] == (frame.loc[ex, "true_label"], "review") for ex in ids)
    assert changes == [("server_changed", 1)]


def test_a_deleted_project_is_said_in_one_line_on_pull_and_re_created_on_push(tmp_path):
    home, frame, client = _pushed(tmp_path, n=10)
    ids = list(frame.index)
    _answer(client, frame, ids[:3])
    with open_warehouse(home) as con:
        pull_verdicts(con, client, home.config)
        client.delete_project(1)
        pulled = pull_verdicts(con, client, home.config)
        pushed = push_queue(con, client, home.config)
        statuses = _statuses(con)
        projects = con.execute("SELECT project_key, project_id, retired_reason FROM review_projects "
                               "ORDER BY project_key").fetchall()
    assert pulled.project_id is None and pulled.events == 0
    (line,) = pulled.notices
    assert "was deleted" in line and "7 open task(s)" in line and "{" not in line
    assert pushed.project_id == 2 and pushed.sent == 7 and pushed.notices == []
    assert statuses == {"done": 3, "open": 7}
    assert projects == [(1, 1, "project_deleted"), (2, 2, None)]
    assert sorted(_task_of(client)) == sorted(ids[3:])


def test_a_deleted_open_task_is_sent_again_and_a_decided_one_keeps_its_verdict(tmp_path, capsys):
    home, frame, client = _pushed(tmp_path, n=10, budget=10)
    ids = list(frame.index)
    _answer(client, frame, ids[:1])
    with open_warehouse(home) as con:
        pull_verdicts(con, client, home.config)
        tasks = _task_of(client)
        for ex in ids[:3]:  # one decided, two open
            client.delete_task(tasks[ex])
        pushed = push_queue(con, client, home.config)
        again = push_queue(con, client, home.config)
        statuses = _statuses(con)
        verdict = _in_force(con, ids[0])
    (line,) = pushed.notices
    assert line.startswith("3 task(s) of project 1 were deleted") and "2 still open will be sent again" in line
    assert pushed.sent == 2 and again.sent == 0 and again.notices == []
    assert set(_task_of(client)) == set(ids[1:])
    assert statuses == {"done": 1, "open": 9}
    assert verdict == (frame.loc[ids[0], "true_label"], "review")
    assert main(["--home", str(home.root), "review", "status"]) == 0
    assert "noticed in Label Studio: task_deleted=3" in capsys.readouterr().out


def test_a_deleted_answer_is_retracted_and_the_previous_label_is_in_force_again(tmp_path):
    home, frame, client = _pushed(tmp_path, n=9)
    ex = next(e for e in frame.index if frame.loc[e, "given_label"] != frame.loc[e, "true_label"])
    (ann,) = _answer(client, frame, [ex]).values()
    with open_warehouse(home) as con:
        pull_verdicts(con, client, home.config)
        assert _in_force(con, ex) == (frame.loc[ex, "true_label"], "review")
        client.update_annotation(ann, choice_result("0" if frame.loc[ex, "true_label"] != "0" else "1"))
        pull_verdicts(con, client, home.config)  # an edit: two events of one answer
        client.delete_annotation(ann)
        pulled = pull_verdicts(con, client, home.config)
        in_force = _in_force(con, ex)
        retractions = con.execute("SELECT detail FROM label_ledger WHERE source = 'retraction'").fetchall()
        reviews = con.execute("SELECT count(*) FROM label_ledger WHERE source = 'review'").fetchall()[0][0]
        verdicts = con.execute("SELECT count(*) FROM review_verdicts").fetchall()[0][0]
        status = con.execute("SELECT status FROM review_tasks WHERE example_id = ?", [ex]).fetchall()[0][0]
        # A new answer on the same task is taken again.
        client.create_annotation(_task_of(client)[ex], choice_result(frame.loc[ex, "true_label"]))
        again = pull_verdicts(con, client, home.config)
        after = _in_force(con, ex)
    (line,) = pulled.notices
    assert "1 answer(s) were deleted" in line and "retracted" in line
    assert in_force == (frame.loc[ex, "given_label"], "ingest")  # the label before the review
    assert len(retractions) == 2 and reviews == 2  # both versions withdrawn; the ledger keeps them
    assert {json.loads(d)["annotation_id"] for (d,) in retractions} == {ann}
    assert verdicts == 0 and status == "open"
    assert again.review_events == 1 and after == (frame.loc[ex, "true_label"], "review")


def test_a_deleted_vote_withdraws_the_consensus_and_the_task_waits_for_another(tmp_path):
    home, frame, client = _pushed(tmp_path, n=6, annotators_per_task=2)
    ex = list(frame.index)[0]
    task = _task_of(client)[ex]
    second = client.ensure_user("second@example.com")
    label = frame.loc[ex, "true_label"]
    client.create_annotation(task, choice_result(label))
    vote = client.create_annotation(task, choice_result(label), completed_by=second)
    with open_warehouse(home) as con:
        assert pull_verdicts(con, client, home.config).consensus == 1
        assert _in_force(con, ex) == (label, "consensus")
        client.delete_annotation(vote)
        pulled = pull_verdicts(con, client, home.config)
        in_force = _in_force(con, ex)
        status = con.execute("SELECT status FROM review_tasks WHERE task_id = ?", [task]).fetchall()[0][0]
        kinds = con.execute("SELECT count(*) FROM label_ledger WHERE source = 'retraction'").fetchall()[0][0]
    assert len(pulled.notices) == 1
    assert in_force == (frame.loc[ex, "given_label"], "ingest") and status == "partial" and kinds == 2


def test_a_project_recorded_before_identities_were_kept_gets_them_at_first_sight(tmp_path):
    home, frame, client = _pushed(tmp_path, n=6)
    with open_warehouse(home) as con:
        con.execute("UPDATE review_projects SET project_created_at = NULL, server_id = NULL")
        pushed = push_queue(con, client, home.config)
        recorded = con.execute("SELECT project_key, project_created_at, server_id FROM review_projects").fetchall()
    assert pushed.notices == [] and pushed.sent == 0 and len(client.projects) == 1
    assert recorded == [(1, client.projects[1]["created_at"], client.server_identity())]


def test_a_pull_lists_the_tasks_only_when_the_server_has_fewer_than_recorded(tmp_path):
    home, frame, client = _pushed(tmp_path, n=6)
    ids = list(frame.index)
    _answer(client, frame, ids[:1])
    listed = []
    inventory = client.task_inventory
    client.task_inventory = lambda *args: listed.append(args) or inventory(*args)
    with open_warehouse(home) as con:
        quiet = pull_verdicts(con, client, home.config)
        assert listed == [] and quiet.notices == [] and quiet.review_events == 1
        client.delete_task(_task_of(client)[ids[5]])
        noticed = pull_verdicts(con, client, home.config)
    assert len(listed) == 1 and len(noticed.notices) == 1 and "1 still open will be sent again" in noticed.notices[0]
