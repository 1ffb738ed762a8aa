"""Tags against the real Label Studio server: the multiple-choice task shows the model's tag set and
the suspect tags, and answers (a tag set, nothing ticked, "not a valid example") come back as the
right verdicts in the ledger."""

from __future__ import annotations

import json
import os
import shutil
import uuid

import pytest

from data_engine.review.labelstudio.labeling import DISCARD_CHOICE, FROM_NAME, TO_NAME
from data_engine.review.labelstudio.server import TOKEN_FILE
from data_engine.review.oracle import oracle_path, read_oracle
from data_engine.review.project import make_client
from data_engine.review.pull import pull_verdicts
from data_engine.review.push import push_queue
from data_engine.review.simulate import simulate_reviews
from data_engine.steps import ingest_step, mine_step
from data_engine.store.schema import load_classes
from data_engine.store.warehouse import open_warehouse
from data_engine.tasks import task_for
from tests import multilabel_support
from tests.homes import make_home

pytestmark = [pytest.mark.integration, pytest.mark.timeout(900)]


def test_tag_tasks_round_trip_through_the_server(tmp_path, label_studio, monkeypatch):
    monkeypatch.delenv("LABEL_STUDIO_API_KEY", raising=False)
    data = multilabel_support.tickets(200, noise=0.1, seed=8)
    config = {"dataset": {"name": "tickets", "modality": "text", "task": "multilabel", "id_column": "id",
                          "label_column": "tags", "text_column": "text", "feature_columns": [],
                          "classes": data.tags},
              "mining": {"model": "linear", "embedding": "tfidf", "n_jobs": 1},
              "review": {"url": label_studio.url, "project_title": f"it-tags-{uuid.uuid4().hex[:10]}"}}
    home = make_home(tmp_path, config)
    shutil.copy(label_studio.secrets_dir / TOKEN_FILE, home.secrets / TOKEN_FILE)
    os.chmod(home.secrets / TOKEN_FILE, 0o600)
    ingest_step(home, [data.write(home.root)])
    mined = mine_step(home, budget=30)
    client = make_client(home)
    with open_warehouse(home) as con:
        pushed = push_queue(con, client, home.config)
        flagged = dict(con.execute("SELECT example_id, reason FROM issues WHERE issue_type = 'label' AND is_issue "
                                   "AND run_id = ?", [mined.summary.run_id]).fetchall())
        classes = load_classes(con)
    tasks = client.tasks_after(pushed.project_id, 0)
    assert len(tasks) == pushed.sent > 3
    # The server kept the suggestion as ticked tags and the suspect tags as a task field.
    by_example = {t["data"]["example_id"]: t for t in tasks}
    example = next(e for e in by_example if e in flagged)
    assert by_example[example]["data"]["label_note"] == flagged[example]
    sdk_task = client._sdk.tasks.get(id=by_example[example]["id"])
    (prediction,) = [p if isinstance(p, dict) else p.dict() for p in sdk_task.predictions]
    suggested = json.loads(by_example[example]["data"]["suggested_label"])
    assert [r for r in prediction["result"] if r["from_name"] == FROM_NAME][0]["value"]["choices"] == suggested
    # Three answers by hand: tags in another order, nothing ticked, and a discard; the rest by the
    # simulated reviewer from oracle.jsonl.
    ids = sorted(by_example)
    answers = {ids[0]: ["urgent", "billing"], ids[1]: [], ids[2]: [DISCARD_CHOICE]}
    for example_id, ticked in answers.items():
        result = [{"from_name": FROM_NAME, "to_name": TO_NAME, "type": "choices", "value": {"choices": ticked}}] \
            if ticked else []
        client.create_annotation(by_example[example_id]["id"], result)
    label_task = task_for(home.config.dataset)
    simulate_reviews(client, pushed.project_id, read_oracle(oracle_path(home), label_task), classes, accuracy=1.0,
                     label_task=label_task)
    with open_warehouse(home) as con:
        pulled = pull_verdicts(con, client, home.config)
        in_force = {r[0]: (r[1], r[2], r[3]) for r in con.execute(
            "SELECT example_id, label, is_discarded, source FROM current_labels").fetchall()}
    assert pulled.review_events == len(tasks) and pulled.discards == 1
    assert in_force[ids[0]] == ('["billing","urgent"]', False, "review")
    assert in_force[ids[1]] == ("[]", False, "review")
    assert in_force[ids[2]][1] is True
    for e in ids[3:]:
        assert in_force[e] == (json.dumps(sorted(data.truth[e]), separators=(",", ":")), False, "review")


def test_demo_loop_runs_on_a_home_of_tags(tmp_path):
    """`demo-loop` on generated tickets with 20 % of the tag sets given one wrong tag: its own Label
    Studio, the simulated reviewer answering from oracle.jsonl, retrain and gate each round."""
    from data_engine.demo.loop import run_demo
    from data_engine.review.labelstudio.server import free_port, stop_server

    data = multilabel_support.tickets(300, noise=0.2, seed=12, words_per_tag=1)
    gold = multilabel_support.tickets(100, noise=0.0, seed=13, words_per_tag=1)
    config = {"dataset": {"name": "tickets", "modality": "text", "task": "multilabel", "id_column": "id",
                          "label_column": "tags", "text_column": "text", "feature_columns": [],
                          "classes": data.tags},
              "mining": {"model": "linear", "embedding": "tfidf", "n_jobs": 1},
              "retrain": {"model": "linear", "min_new_labels": 10},
              "review": {"url": f"http://127.0.0.1:{free_port()}", "budget": 45}}
    home = make_home(tmp_path, config)
    data.write(home.root)
    gold.write_gold(home.root)
    lines: list[str] = []
    try:
        final = run_demo(home, say=lines.append, budget=90)
    finally:
        stop_server(home)
    print("\n".join(lines))
    assert final["true_errors"] == len(data.noisy) and final["reviewed"] <= 90
    assert final["rounds"] >= 1 and final[f"{final['metric']}_final"] > final[f"{final['metric']}_noisy"], final
