"""Pull: verdicts into the label ledger, edits, discards, skips, idempotence, consensus (fake server)."""

from __future__ import annotations

import json

import pytest

from data_engine.errors import ReviewServiceError
from data_engine.review.labelstudio.fake import FakeReviewClient
from data_engine.review.labelstudio.labeling import DISCARD_CHOICE, choice_result
from data_engine.review.pull import pull_verdicts
from data_engine.review.push import push_queue
from data_engine.store.warehouse import open_warehouse
from tests.review_support import digits_home, make_queue, pushed_to_fake


def _pushed(tmp_path, n=12, **review):
    home, frame, client = pushed_to_fake(tmp_path, n, **review)
    tasks = {t["data"]["example_id"]: t["id"] for t in client.tasks.values()}
    return home, frame, client, tasks


def _label_in_force(con, example_id):
    rows = con.execute("SELECT label, is_discarded, source FROM current_labels WHERE example_id = ?",
                       [example_id]).fetchall()
    return rows[0] if rows else None


def test_a_verdict_becomes_a_review_event_with_annotator_and_lead_time(tmp_path):
    home, frame, client, tasks = _pushed(tmp_path)
    ex = frame.iloc[0]
    ann = client.create_annotation(tasks[ex["id"]], choice_result(ex["true_label"]), lead_time=4.5)
    with open_warehouse(home) as con:
        result = pull_verdicts(con, client, home.config)
        event = con.execute("SELECT label, source, actor, detail FROM label_events WHERE source = 'review'").fetchall()
        in_force = _label_in_force(con, ex["id"])
        status = con.execute("SELECT status, completed_at IS NOT NULL FROM review_tasks WHERE task_id = ?",
                             [tasks[ex["id"]]]).fetchall()
    assert result.review_events == 1 and result.annotations_new == 1
    ((label, source, actor, detail),) = event
    detail = json.loads(detail)
    assert (label, source, actor) == (ex["true_label"], "review", "admin@example.com")
    assert detail["annotation_id"] == ann and detail["lead_time"] == 4.5 and detail["task_id"] == tasks[ex["id"]]
    assert in_force == (ex["true_label"], False, "review")
    assert status == [("done", True)]


def test_pulling_twice_changes_nothing(tmp_path):
    home, frame, client, tasks = _pushed(tmp_path)
    for ex in frame.head(5).itertuples():
        client.create_annotation(tasks[ex.id], choice_result(ex.true_label))
    with open_warehouse(home) as con:
        first = pull_verdicts(con, client, home.config)
        n1 = con.execute("SELECT count(*) FROM label_events").fetchall()[0][0]
        second = pull_verdicts(con, client, home.config)
        n2 = con.execute("SELECT count(*) FROM label_events").fetchall()[0][0]
    assert first.events == 5 and second.events == 0 and n1 == n2


def test_an_edited_annotation_supersedes_the_earlier_one(tmp_path):
    home, frame, client, tasks = _pushed(tmp_path)
    ex = frame.iloc[1]
    wrong = "7" if ex["true_label"] != "7" else "1"
    ann = client.create_annotation(tasks[ex["id"]], choice_result(wrong))
    with open_warehouse(home) as con:
        pull_verdicts(con, client, home.config)
        assert _label_in_force(con, ex["id"])[0] == wrong
        client.update_annotation(ann, choice_result(ex["true_label"]))
        result = pull_verdicts(con, client, home.config)
        assert result.annotations_edited == 1
        assert _label_in_force(con, ex["id"])[0] == ex["true_label"]
        verdict = con.execute("SELECT label FROM review_verdicts WHERE task_id = ?", [tasks[ex["id"]]]).fetchall()
    assert verdict == [(ex["true_label"],)]


def test_not_a_valid_example_discards_it(tmp_path):
    home, frame, client, tasks = _pushed(tmp_path)
    ex = frame.iloc[2]
    client.create_annotation(tasks[ex["id"]], choice_result(DISCARD_CHOICE))
    with open_warehouse(home) as con:
        result = pull_verdicts(con, client, home.config)
        assert _label_in_force(con, ex["id"]) == (None, True, "review")
        outcome = con.execute("SELECT outcome, is_discard FROM review_verdicts").fetchall()
    assert result.discards == 1 and outcome == [("confirmed", True)]


def test_skipped_and_cancelled_annotations_change_nothing(tmp_path):
    home, frame, client, tasks = _pushed(tmp_path)
    ex = frame.iloc[3]
    client.create_annotation(tasks[ex["id"]], [], was_cancelled=True)
    with open_warehouse(home) as con:
        before = _label_in_force(con, ex["id"])
        result = pull_verdicts(con, client, home.config)
        after = _label_in_force(con, ex["id"])
        status = con.execute("SELECT status FROM review_tasks WHERE task_id = ?", [tasks[ex["id"]]]).fetchall()
    assert result.events == 0 and before == after == (ex["given_label"], False, "ingest")
    assert status == [("open",)]


def test_an_empty_result_is_reported_and_counts_as_a_skip(tmp_path):
    """Submitted without a choice: no verdict, the task stays open like a skip, and the pull says so."""
    home, frame, client, tasks = _pushed(tmp_path)
    ex, other = frame.iloc[4], frame.iloc[5]
    client.create_annotation(tasks[ex["id"]], [])
    client.create_annotation(tasks[other["id"]], choice_result(str(other["given_label"])))
    with open_warehouse(home) as con:
        result = pull_verdicts(con, client, home.config)
        status = dict(con.execute("SELECT example_id, status FROM review_tasks").fetchall())
        assert _label_in_force(con, ex["id"]) == (ex["given_label"], False, "ingest")
    assert result.events == 1 and status[ex["id"]] == "open" and status[other["id"]] == "done"
    assert len(result.problems) == 1
    assert f"task {tasks[ex['id']]}" in result.problems[0] and "empty result" in result.problems[0]


def test_verdicts_measure_the_miner_and_move_the_weights(tmp_path):
    home, frame, client, tasks = _pushed(tmp_path, n=12)
    # make_queue flags every 3rd example (the flipped ones) as "label", the rest as "uncertain".
    for ex in frame.itertuples():
        client.create_annotation(tasks[ex.id], choice_result(ex.true_label))
    from data_engine.mine.weights import effective_weights
    from data_engine.review.verdicts import verdict_stats

    with open_warehouse(home) as con:
        pull_verdicts(con, client, home.config)
        stats = {s["issue_type"]: s for s in verdict_stats(con)}
        weights = effective_weights(con, home.config)
    assert stats["label"]["confirmed"] == 4 and stats["label"]["rejected"] == 0
    assert stats["uncertain"]["confirmed"] == 0 and stats["uncertain"]["rejected"] == 8
    base = home.config.review.weights
    assert weights["label"] > base["label"] and weights["uncertain"] < base["uncertain"]
    assert weights["outlier"] == base["outlier"]  # no verdicts: unchanged


def test_two_annotators_reach_consensus_and_ties_stay_pending(tmp_path):
    home, frame, client, tasks = _pushed(tmp_path, annotators_per_task=2)
    second = client.ensure_user("second@example.com")
    agree, split = frame.iloc[0], frame.iloc[1]
    other = "3" if split["true_label"] != "3" else "4"
    client.create_annotation(tasks[agree["id"]], choice_result(agree["true_label"]))
    client.create_annotation(tasks[split["id"]], choice_result(split["true_label"]))
    with open_warehouse(home) as con:
        partial = pull_verdicts(con, client, home.config)
        assert partial.votes == 2 and partial.consensus == 0
        # A vote alone is never in force.
        assert _label_in_force(con, agree["id"])[2] == "ingest"
        client.create_annotation(tasks[agree["id"]], choice_result(agree["true_label"]), completed_by=second)
        client.create_annotation(tasks[split["id"]], choice_result(other), completed_by=second)
        result = pull_verdicts(con, client, home.config)
        assert result.consensus == 1 and result.ties == 1
        assert _label_in_force(con, agree["id"]) == (agree["true_label"], False, "consensus")
        assert _label_in_force(con, split["id"])[2] == "ingest"
        states = dict(con.execute("SELECT task_id, status FROM review_tasks").fetchall())
        quality = con.execute("SELECT annotator, n_votes, agreement FROM review_annotator_quality ORDER BY 1").fetchall()
    assert states[tasks[agree["id"]]] == "done" and states[tasks[split["id"]]] == "tie"
    assert [q[0] for q in quality] == ["admin@example.com", "second@example.com"]
    assert all(q[2] == 1.0 for q in quality)


def test_a_failing_server_loses_nothing_and_the_next_pull_resumes(tmp_path):
    home, frame, client, tasks = _pushed(tmp_path)
    for ex in frame.head(3).itertuples():
        client.create_annotation(tasks[ex.id], choice_result(ex.true_label))
    with open_warehouse(home) as con:
        pull_verdicts(con, client, home.config)
        for ex in frame.iloc[3:6].itertuples():
            client.create_annotation(tasks[ex.id], choice_result(ex.true_label))
        client.fail_with = ReviewServiceError("Label Studio at http://fake failed with HTTP 502 while reading")
        with pytest.raises(ReviewServiceError, match="HTTP 502"):
            pull_verdicts(con, client, home.config)
        assert con.execute("SELECT count(*) FROM label_events WHERE source = 'review'").fetchall()[0][0] == 3
        client.fail_with = None
        resumed = pull_verdicts(con, client, home.config)
        n = con.execute("SELECT count(*) FROM label_events WHERE source = 'review'").fetchall()[0][0]
    assert resumed.review_events == 3 and n == 6


def test_pull_before_any_push_does_nothing(tmp_path):
    home, _ = digits_home(tmp_path / "home", n=5)
    with open_warehouse(home) as con:
        result = pull_verdicts(con, FakeReviewClient(), home.config)
    assert result.project_id is None and result.events == 0


def test_sensor_decision_runs_only_when_there_is_something_new(tmp_path):
    from data_engine.triggers import pull_decision

    home, frame, client, tasks = _pushed(tmp_path)
    idle = pull_decision(client, home.config, None)
    assert not idle.run and "no new verdicts" in idle.reason
    ex = frame.iloc[0]
    client.create_annotation(tasks[ex["id"]], choice_result(ex["true_label"]))
    go = pull_decision(client, home.config, None)
    assert go.run and go.cursor is not None and "1 task(s)" in go.reason
    assert not pull_decision(client, home.config, go.cursor).run  # the same annotation never triggers twice


def test_sensor_decision_skips_with_the_cause_when_the_server_fails(tmp_path):
    from data_engine.triggers import pull_decision

    home, _, client, _ = _pushed(tmp_path)
    client.fail_with = ReviewServiceError("cannot reach Label Studio at http://fake: connection refused")
    decision = pull_decision(client, home.config, "2026-01-01T00:00:00.000000Z")
    assert not decision.run and "connection refused" in decision.reason
    assert decision.cursor == "2026-01-01T00:00:00.000000Z"  # unchanged: the next tick retries


def test_review_status_command_reads_the_warehouse_only(tmp_path, capsys):
    from data_engine.cli import main

    home, frame, client, tasks = _pushed(tmp_path)
    client.create_annotation(tasks[frame.iloc[0]["id"]], choice_result(DISCARD_CHOICE))
    with open_warehouse(home) as con:
        pull_verdicts(con, client, home.config)
    assert main(["--home", str(home.root), "review", "status", "--json"]) == 0
    report = json.loads(capsys.readouterr().out)
    assert report["tasks"] == {"done": 1, "open": 11} and report["discarded"] == 1
    assert set(report["effective_weights"]) == set(home.config.review.weights)


def test_verdicts_on_tasks_of_an_interrupted_push_are_not_lost(tmp_path):
    home, frame = digits_home(tmp_path / "home", n=10)
    make_queue(home, frame)
    client = FakeReviewClient()
    client.fail_on_import = 1  # the tasks reach the server, the reply does not
    with open_warehouse(home) as con:
        with pytest.raises(ReviewServiceError):
            push_queue(con, client, home.config)
    ex = frame.iloc[0]
    orphan = next(t["id"] for t in client.tasks.values() if t["data"]["example_id"] == ex["id"])
    client.create_annotation(orphan, choice_result(ex["true_label"]))
    with open_warehouse(home) as con:
        result = pull_verdicts(con, client, home.config)
        in_force = _label_in_force(con, ex["id"])
    assert result.review_events == 1 and in_force == (ex["true_label"], False, "review")


def test_verdicts_given_in_process_are_recorded_as_a_pull_records_them(tmp_path):
    from data_engine.review.pull import record_verdicts
    from data_engine.review.verdicts import verdict_stats

    home, frame = digits_home(tmp_path / "home", n=12)
    make_queue(home, frame)
    with open_warehouse(home) as con:
        queue = con.execute("SELECT run_id, example_id, example_version, issue_types, given_label FROM review_queue "
                            "ORDER BY rank").fetchdf()
        truth = dict(zip(frame["id"], frame["true_label"]))
        labels = [None if i == 0 else truth[e] for i, e in enumerate(queue["example_id"])]
        event_ids = record_verdicts(con, queue, labels, "simulated")
        stats = {s["issue_type"]: s for s in verdict_stats(con)}
        assert _label_in_force(con, queue["example_id"].iloc[0])[1] is True
        sources = con.execute("SELECT DISTINCT source FROM label_events WHERE event_id IN (SELECT unnest(?))",
                              [event_ids]).fetchall()
    # Every 3rd label was flipped ("label" flags, all confirmed); the first row was discarded (confirmed).
    assert stats["label"]["confirmed"] == 4 and stats["label"]["rejected"] == 0
    assert stats["uncertain"]["confirmed"] == 0 and stats["uncertain"]["rejected"] == 8
    assert len(event_ids) == 12 and sources == [("review",)]
