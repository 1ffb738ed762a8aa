"""Entity spans against the real Label Studio server: the text task shows the model's spans
pre-marked as ``<Labels>`` regions (character offsets) and the suspect tokens, and answers (an edited
span set, no spans, "not a valid example") come back as the right verdicts in the ledger, offsets
exact to a character."""

from __future__ import annotations

import json
import os
import shutil
import uuid

import pytest

from data_engine.demo.entities import TYPES, inject_errors, make_texts
from data_engine.review.labelstudio.labeling import DISCARD_CHOICE, FROM_NAME, TO_NAME
from data_engine.review.labelstudio.server import TOKEN_FILE
from data_engine.review.oracle import oracle_path, read_oracle
from data_engine.review.project import make_client
from data_engine.review.pull import pull_verdicts
from data_engine.review.push import push_queue
from data_engine.review.simulate import simulate_reviews
from data_engine.steps import ingest_step, mine_step
from data_engine.store.warehouse import open_warehouse
from data_engine.tasks import task_for
from data_engine.tasks.ner import DISCARD_SUFFIX
from data_engine.tasks.spans import canonical
from tests.homes import make_home

pytestmark = [pytest.mark.integration, pytest.mark.timeout(900)]


def test_span_tasks_round_trip_through_the_server(tmp_path, label_studio, monkeypatch):
    monkeypatch.delenv("LABEL_STUDIO_API_KEY", raising=False)
    examples = inject_errors(make_texts(200, seed=41), rate=0.15, seed=42)
    config = {"dataset": {"name": "news", "modality": "text", "task": "ner", "id_column": "id",
                          "label_column": "spans", "text_column": "text", "feature_columns": [],
                          "classes": list(TYPES)},
              "mining": {"embedding": "tfidf", "n_jobs": 1},
              "gate": {"metric": "f1"},
              "review": {"url": label_studio.url, "project_title": f"it-ner-{uuid.uuid4().hex[:10]}"}}
    home = make_home(tmp_path, config)
    shutil.copy(label_studio.secrets_dir / TOKEN_FILE, home.secrets / TOKEN_FILE)
    os.chmod(home.secrets / TOKEN_FILE, 0o600)
    path = home.landing / "news.jsonl"
    path.write_text("".join(json.dumps({"id": f"n{i:03d}", "text": e.text, "spans": json.loads(e.given_label)}) + "\n"
                            for i, e in enumerate(examples)), encoding="utf-8")
    (home.root / "oracle.jsonl").write_text("".join(json.dumps({"id": f"n{i:03d}", "label": json.loads(e.true_label)})
                                                    + "\n" for i, e in enumerate(examples)), encoding="utf-8")
    ingest_step(home, [path])
    mined = mine_step(home, budget=30)
    client = make_client(home)
    with open_warehouse(home) as con:
        pushed = push_queue(con, client, home.config)
        flagged = dict(con.execute("SELECT example_id, reason FROM issues WHERE issue_type = 'label' AND is_issue "
                                   "AND run_id = ?", [mined.summary.run_id]).fetchall())
    tasks = client.tasks_after(pushed.project_id, 0)
    assert len(tasks) == pushed.sent > 3
    by_example = {t["data"]["example_id"]: t for t in tasks}
    example = next(e for e in by_example if e in flagged)
    assert by_example[example]["data"]["label_note"] == flagged[example]
    # The server kept the model's spans as text regions with character offsets.
    sdk_task = client._sdk.tasks.get(id=by_example[example]["id"])
    (prediction,) = [p if isinstance(p, dict) else p.dict() for p in sdk_task.predictions]
    suggested = json.loads(by_example[example]["data"]["suggested_label"])
    regions = [r for r in prediction["result"] if r["from_name"] == FROM_NAME]
    assert [(r["value"]["start"], r["value"]["end"], r["value"]["labels"]) for r in regions] == \
        [(s["start"], s["end"], [s["label"]]) for s in suggested]
    # Three answers by hand: an edited span set (the true spans, one retyped back and forth is not
    # needed: the true spans as regions), no spans, and a discard; the rest by the simulated reviewer.
    ids = sorted(by_example)
    first = examples[int(ids[0][1:])]
    edited = [{"from_name": FROM_NAME, "to_name": TO_NAME, "type": "labels",
               "value": {"start": s.start, "end": s.end, "text": first.text[s.start:s.end], "labels": [s.label]}}
              for s in reversed(first.true_spans)]
    answers = {ids[0]: edited, ids[1]: [],
               ids[2]: [{"from_name": FROM_NAME + DISCARD_SUFFIX, "to_name": TO_NAME, "type": "choices",
                         "value": {"choices": [DISCARD_CHOICE]}}]}
    for example_id, result in answers.items():
        client.create_annotation(by_example[example_id]["id"], result)
    label_task = task_for(home.config.dataset)
    simulate_reviews(client, pushed.project_id, read_oracle(oracle_path(home), label_task), list(TYPES),
                     accuracy=1.0, label_task=label_task)
    with open_warehouse(home) as con:
        pulled = pull_verdicts(con, client, home.config)
        in_force = {r[0]: (r[1], r[2], r[3]) for r in con.execute(
            "SELECT example_id, label, is_discarded, source FROM current_labels").fetchall()}
    assert pulled.review_events == len(tasks) and pulled.discards == 1
    assert in_force[ids[0]] == (canonical(first.true_spans), False, "review")
    assert in_force[ids[1]] == ("[]", False, "review")
    assert in_force[ids[2]][1] is True
    for e in ids[3:]:
        assert in_force[e] == (examples[int(e[1:])].true_label, False, "review")
