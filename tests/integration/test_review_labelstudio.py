"""Against the real Label Studio server: push digits, simulate the reviewer, pull into the ledger."""

from __future__ import annotations

import json

import pytest

from data_engine.cli import main as cli_main
from data_engine.errors import ReviewServiceError
from data_engine.review.labelstudio.client import LabelStudioClient
from data_engine.review.labelstudio.labeling import DISCARD_CHOICE, choice_result
from data_engine.review.project import make_client
from data_engine.review.pull import pull_verdicts
from data_engine.review.push import push_queue
from data_engine.review.simulate import read_oracle, simulate_reviews
from data_engine.store.warehouse import open_warehouse
from tests.review_support import make_queue

pytestmark = [pytest.mark.integration, pytest.mark.timeout(900)]
CLASSES = [str(i) for i in range(10)]


def _labels_in_force(con) -> dict[str, tuple]:
    return {r[0]: (r[1], r[2], r[3]) for r in
            con.execute("SELECT example_id, label, is_discarded, source FROM current_labels").fetchall()}


def _server_tasks(client: LabelStudioClient, project_id: int) -> list[dict]:
    return client.tasks_after(project_id, 0)


def test_push_simulate_pull_puts_verdicts_in_the_ledger(review_home):
    home, frame = review_home(n=30)
    client = make_client(home)
    with open_warehouse(home) as con:
        pushed = push_queue(con, client, home.config)
    assert pushed.sent == 30 and pushed.batches == 1
    sim = simulate_reviews(client, pushed.project_id, read_oracle(home.oracle_path), CLASSES, accuracy=1.0)
    assert sim.answered == 30
    with open_warehouse(home) as con:
        pulled = pull_verdicts(con, client, home.config)
        labels = _labels_in_force(con)
        events = con.execute("SELECT actor, detail FROM label_events WHERE source = 'review'").fetchall()
        done = con.execute("SELECT count(*) FROM review_tasks WHERE status = 'done'").fetchall()[0][0]
    assert pulled.review_events == 30 and done == 30
    truth = dict(zip(frame["id"], frame["true_label"], strict=True))
    assert all(labels[ex] == (truth[ex], False, "review") for ex in truth)
    actor, detail = events[0]
    detail = json.loads(detail)
    assert actor == "engine-admin@example.com"
    assert detail["annotation_id"] > 0 and 2.0 <= detail["lead_time"] <= 12.0


def test_the_project_has_a_saved_view_with_numeric_fields_that_range_filters_use(review_home):
    from label_studio_sdk.data_manager import Column, Filters, Operator, Type

    home, _ = review_home(n=12)
    client = make_client(home)
    with open_warehouse(home) as con:
        pushed = push_queue(con, client, home.config)
    sdk = client._sdk  # the test reads back what a reviewer's browser would load
    (view,) = [v for v in sdk.views.list(project=pushed.project_id)]
    data = view.data if isinstance(view.data, dict) else view.data.dict()
    assert data["title"] == "to review, by priority"
    assert data["ordering"] == ["-tasks:data.priority"]
    assert data["columnsDisplayType"]["tasks:data.priority"] == "Number"
    # A range filter on a numeric field ("priority above x"), as the Data Manager sends it.
    query = Filters.create(Filters.AND, [Filters.item(Column.data("priority"), Operator.GREATER, Type.Number,
                                                      Filters.value(0.995))])
    above = [t for t in sdk.tasks.list(project=pushed.project_id, query=json.dumps({"filters": query}))]
    expected = sorted(t["data"]["priority"] for t in _server_tasks(client, pushed.project_id)
                      if t["data"]["priority"] > 0.995)
    assert 0 < len(expected) < 12 and sorted(t.data["priority"] for t in above) == expected


def test_a_second_opinion_is_a_new_server_task_whose_answer_is_the_label_in_force(review_home):
    home, frame = review_home(n=4)
    client = make_client(home)
    oracle = read_oracle(home.oracle_path)
    with open_warehouse(home) as con:
        first = push_queue(con, client, home.config)
    simulate_reviews(client, first.project_id, oracle, CLASSES, accuracy=0.0)  # every answer a slip
    with open_warehouse(home) as con:
        pull_verdicts(con, client, home.config)
    example = frame.iloc[0]["id"]
    make_queue(home, frame, run_id=2, n=1)  # a later mining run still contradicts that review
    with open_warehouse(home) as con:
        second = push_queue(con, client, home.config)
    assert second.sent == 1
    on_server = [t["data"]["engine_key"] for t in _server_tasks(client, first.project_id)]
    assert sorted(on_server).count(f"{example}@v1/2") == 1 and len(on_server) == 5
    simulate_reviews(client, first.project_id, oracle, CLASSES, accuracy=1.0)
    with open_warehouse(home) as con:
        pulled = pull_verdicts(con, client, home.config)
        labels = _labels_in_force(con)
        opinions = con.execute("SELECT opinion, status FROM review_tasks WHERE example_id = ? ORDER BY opinion",
                               [example]).fetchall()
    assert pulled.review_events == 1 and opinions == [(1, "done"), (2, "done")]
    assert labels[example] == (oracle[example], False, "review")
    others = [e for e in frame["id"] if e != example]
    assert all(labels[e][0] != oracle[e] for e in others)  # their slips stand: nobody looked again


def test_cli_review_commands_end_to_end(review_home, capsys):
    home, _ = review_home(n=8)
    base = ["--home", str(home.root)]
    assert cli_main([*base, "review", "push"]) == 0
    assert cli_main([*base, "review", "simulate", "--accuracy", "1.0"]) == 0
    assert cli_main([*base, "review", "pull", "--json"]) == 0
    out = capsys.readouterr().out.strip().splitlines()
    pulled = json.loads(out[-1])
    assert pulled["review_events"] == 8
    assert cli_main([*base, "review", "status", "--json"]) == 0
    status = json.loads(capsys.readouterr().out)
    assert status["tasks"] == {"done": 8} and status["events"]["review"] == 8


def test_push_after_an_interrupted_push_creates_no_duplicates(review_home, monkeypatch):
    home, _ = review_home(n=25, import_batch_size=10)
    client = make_client(home)
    real_import = client.import_tasks
    calls = {"n": 0}

    def import_then_lose_reply(project_id, tasks):
        calls["n"] += 1
        ids = real_import(project_id, tasks)
        if calls["n"] == 2:  # the server stored batch 2; the engine never hears back
            raise ReviewServiceError(f"Label Studio at {client.url} did not answer within 30 s (importing)")
        return ids

    monkeypatch.setattr(client, "import_tasks", import_then_lose_reply)
    with open_warehouse(home) as con:
        with pytest.raises(ReviewServiceError):
            push_queue(con, client, home.config)
        monkeypatch.setattr(client, "import_tasks", real_import)
        resumed = push_queue(con, client, home.config)
        again = push_queue(con, client, home.config)
        recorded = con.execute("SELECT count(*), count(DISTINCT task_id) FROM review_tasks WHERE status = 'open'"
                               ).fetchall()[0]
    assert resumed.reconciled == 10 and resumed.sent == 5 and again.sent == 0
    keys = [t["data"]["engine_key"] for t in _server_tasks(client, resumed.project_id)]
    assert len(keys) == len(set(keys)) == 25
    assert recorded == (25, 25)


def test_pull_is_idempotent_and_an_edit_supersedes(review_home):
    home, frame = review_home(n=6)
    client = make_client(home)
    with open_warehouse(home) as con:
        pid = push_queue(con, client, home.config).project_id
    tasks = {t["data"]["example_id"]: t["id"] for t in _server_tasks(client, pid)}
    ex = frame.iloc[0]
    wrong = "5" if ex["true_label"] != "5" else "6"
    ann = client.create_annotation(tasks[ex["id"]], choice_result(wrong), lead_time=3.0)
    with open_warehouse(home) as con:
        first = pull_verdicts(con, client, home.config)
        second = pull_verdicts(con, client, home.config)
        assert (first.review_events, second.review_events) == (1, 0)
        assert _labels_in_force(con)[ex["id"]][0] == wrong
        client.update_annotation(ann, choice_result(ex["true_label"]))
        edited = pull_verdicts(con, client, home.config)
        assert edited.annotations_edited == 1
        assert _labels_in_force(con)[ex["id"]] == (ex["true_label"], False, "review")
        n_events = con.execute("SELECT count(*) FROM label_events WHERE source = 'review'").fetchall()[0][0]
    assert n_events == 2  # the first verdict stays in the ledger, superseded


def test_discard_and_skip(review_home):
    home, frame = review_home(n=6)
    client = make_client(home)
    with open_warehouse(home) as con:
        pid = push_queue(con, client, home.config).project_id
    tasks = {t["data"]["example_id"]: t["id"] for t in _server_tasks(client, pid)}
    bad, skipped = frame.iloc[0], frame.iloc[1]
    client.create_annotation(tasks[bad["id"]], choice_result(DISCARD_CHOICE))
    client.create_annotation(tasks[skipped["id"]], [], was_cancelled=True)
    with open_warehouse(home) as con:
        result = pull_verdicts(con, client, home.config)
        labels = _labels_in_force(con)
    assert result.discards == 1 and result.review_events == 1
    assert labels[bad["id"]] == (None, True, "review")
    assert labels[skipped["id"]] == (skipped["given_label"], False, "ingest")


def test_two_annotators_and_their_consensus(review_home):
    home, frame = review_home(n=10, annotators_per_task=2)
    client = make_client(home)
    with open_warehouse(home) as con:
        pid = push_queue(con, client, home.config).project_id
    oracle = read_oracle(home.oracle_path)
    simulate_reviews(client, pid, oracle, CLASSES, accuracy=1.0)
    with open_warehouse(home) as con:
        partial = pull_verdicts(con, client, home.config)
        assert partial.votes == 10 and partial.consensus == 0
    second = simulate_reviews(client, pid, oracle, CLASSES, accuracy=1.0, annotator="second-reviewer@example.com")
    assert second.answered == 10
    with open_warehouse(home) as con:
        result = pull_verdicts(con, client, home.config)
        labels = _labels_in_force(con)
        quality = dict(con.execute("SELECT annotator, agreement FROM review_annotator_quality").fetchall())
    assert result.votes == 10 and result.consensus == 10 and result.ties == 0
    truth = dict(zip(frame["id"], frame["true_label"], strict=True))
    assert all(labels[ex] == (truth[ex], False, "consensus") for ex in truth)
    assert quality == {"engine-admin@example.com": 1.0, "second-reviewer@example.com": 1.0}


def test_wrong_token_is_one_clear_line(review_home, label_studio):
    home, _ = review_home(n=3)
    client = LabelStudioClient(label_studio.url, "0" * 40, key_name="$LABEL_STUDIO_API_KEY")
    with pytest.raises(ReviewServiceError) as err:
        client.check()
    message = str(err.value)
    assert label_studio.url in message and "401" in message and "\n" not in message
    assert "0" * 40 not in message


def test_server_stopped_midway_loses_nothing_and_resumes(review_home, label_studio, capsys):
    home, frame = review_home(n=12)
    client = make_client(home)
    with open_warehouse(home) as con:
        pid = push_queue(con, client, home.config, limit=8).project_id
    oracle = read_oracle(home.oracle_path)
    simulate_reviews(client, pid, oracle, CLASSES, accuracy=1.0, limit=4)
    with open_warehouse(home) as con:
        assert pull_verdicts(con, client, home.config).review_events == 4
    simulate_reviews(client, pid, oracle, CLASSES, accuracy=1.0)  # 4 more, not pulled yet
    label_studio.stop()
    try:
        code = cli_main(["--home", str(home.root), "review", "pull"])
        err = capsys.readouterr().err.strip()
        assert code == 2 and label_studio.url in err and "connection refused" in err
        assert len(err.splitlines()) == 1 and "Traceback" not in err
        assert cli_main(["--home", str(home.root), "review", "push"]) == 2
        with open_warehouse(home) as con:
            kept = con.execute("SELECT count(*) FROM label_events WHERE source = 'review'").fetchall()[0][0]
            states = dict(con.execute("SELECT status, count(*) FROM review_tasks GROUP BY status").fetchall())
        assert kept == 4 and states == {"done": 4, "open": 4}
    finally:
        label_studio.restart()
    client = make_client(home)
    with open_warehouse(home) as con:
        resumed = pull_verdicts(con, client, home.config)
        pushed = push_queue(con, client, home.config)
        total = con.execute("SELECT count(*) FROM label_events WHERE source = 'review'").fetchall()[0][0]
    assert resumed.review_events == 4 and total == 8 and pushed.sent == 4


def test_a_running_server_is_reused_not_restarted(tmp_path, label_studio, capsys):
    from data_engine.review.labelstudio.server import ensure_server
    from tests.homes import make_home

    home = make_home(tmp_path)
    # This home's server data dir IS the session server's: `up` must find it running and re-use it.
    home.labelstudio_dir.symlink_to(label_studio.data_dir, target_is_directory=True)
    info = ensure_server(home)
    assert info.reused and info.pid == label_studio.info.pid and info.url == label_studio.url
    assert cli_main(["--home", str(home.root), "labelstudio", "status"]) == 0
    assert "running at " + label_studio.url in capsys.readouterr().out


@pytest.mark.parametrize("modality", ["text", "tabular"])
def test_text_and_tabular_configs_are_accepted_by_the_server(label_studio, modality):
    import uuid

    from data_engine.review.labelstudio.labeling import build_task, label_config
    from data_engine.store.config import DatasetConfig

    if modality == "text":
        ds = DatasetConfig(name="notes", modality="text", id_column="id", label_column="label", text_column="note")
        features = {"note": "The battery died after <b>two</b> days & the seller never answered."}
    else:
        ds = DatasetConfig(name="churn", modality="tabular", id_column="id", label_column="label",
                           feature_columns=("tenure", "plan", "monthly_fee"))
        features = {"tenure": 14, "plan": "family", "monthly_fee": 39.5}
    client = LabelStudioClient(label_studio.url, label_studio.token)
    project_id = client.create_project(f"it-{modality}-{uuid.uuid4().hex[:8]}", label_config(ds, ["pos", "neg"]))
    row = {"example_id": "e1", "example_version": 1, "run_id": 1, "issue_types": ["label"], "priority": 0.9,
           "suggested_label": "neg", "suggested_score": 0.8, "given_label": "pos", "scores": {"label": 0.1}}
    if modality == "tabular":  # an outlier without a suggestion: empty header fields must import too
        row.update(suggested_label=None, suggested_score=None, given_label=None)
    (task_id,) = client.import_tasks(project_id, [build_task(ds, row, features, model_version="m1")])
    client.create_annotation(task_id, choice_result("neg"))
    (task,) = client.annotated_tasks(project_id, None)
    assert task["id"] == task_id and task["annotations"][0]["result"] == choice_result("neg")


def test_accepted_predictions_are_real_answers_a_pull_reads(review_home):
    home, _frame = review_home(n=30)
    client = make_client(home)
    with open_warehouse(home) as con:
        pushed = push_queue(con, client, home.config)
        tasks = con.execute("SELECT task_id, example_id, suggested_label FROM review_tasks "
                            "WHERE suggested_label IS NOT NULL ORDER BY task_id LIMIT 12").fetchall()
    assert len(tasks) == 12
    ids = [t[0] for t in tasks]
    assert client.accept_predictions(pushed.project_id, ids) == 12
    assert client.accept_predictions(pushed.project_id, ids) == 0  # each prediction is accepted once
    with open_warehouse(home) as con:
        pulled = pull_verdicts(con, client, home.config)
        labels = _labels_in_force(con)
    assert pulled.tasks_seen == 12 and pulled.review_events == 12
    assert {ex: labels[ex] for _, ex, _ in tasks} == {ex: (label, False, "review") for _, ex, label in tasks}
