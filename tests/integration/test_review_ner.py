"""Entity spans against the real Label Studio server: the text task shows the model's spans
pre-marked as ``<Labels>`` regions (character offsets) and the suspect tokens, and answers (an edited
span set, no spans, "not a valid example") come back as the right verdicts in the ledger, offsets
exact to a character."""

from __future__ import annotations

import json
import uuid

import pytest

from data_engine.demo.entities import TYPES, inject_errors, make_texts
from data_engine.review.labelstudio.labeling import DISCARD_CHOICE, FROM_NAME, TO_NAME
from data_engine.steps import ingest_step, mine_step
from data_engine.tasks.ner import DISCARD_SUFFIX
from data_engine.tasks.spans import canonical
from tests.integration.round_trip import answer_and_pull, push_and_read_back, server_home, shoot_flagged_task

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
    home = server_home(tmp_path, label_studio, config)
    path = home.landing / "news.jsonl"
    path.write_text("".join(json.dumps({"id": f"n{i:03d}", "text": e.text, "spans": json.loads(e.given_label)}) + "\n"
                            for i, e in enumerate(examples)), encoding="utf-8")
    (home.root / "oracle.jsonl").write_text("".join(json.dumps({"id": f"n{i:03d}", "label": json.loads(e.true_label)})
                                                    + "\n" for i, e in enumerate(examples)), encoding="utf-8")
    ingest_step(home, [path])
    mined = mine_step(home, budget=30)
    pushed = push_and_read_back(home, mined.summary.run_id)
    # The server kept the model's spans as text regions with character offsets.
    assert [(r["value"]["start"], r["value"]["end"], r["value"]["labels"]) for r in pushed.regions] == \
        [(s["start"], s["end"], [s["label"]]) for s in pushed.suggested]
    # What the reviewer sees (docs/review-spans-task.png when refreshed).
    shoot_flagged_task(home, label_studio, pushed, "review-spans-task.png", tmp_path)
    # Three answers by hand: an edited span set (the true spans as regions, in reverse order), no
    # spans, and a discard; the rest by the simulated reviewer.
    ids = sorted(pushed.by_example)
    first = examples[int(ids[0][1:])]
    edited = [{"from_name": FROM_NAME, "to_name": TO_NAME, "type": "labels",
               "value": {"start": s.start, "end": s.end, "text": first.text[s.start:s.end], "labels": [s.label]}}
              for s in reversed(first.true_spans)]
    answers = {ids[0]: edited, ids[1]: [],
               ids[2]: [{"from_name": FROM_NAME + DISCARD_SUFFIX, "to_name": TO_NAME, "type": "choices",
                         "value": {"choices": [DISCARD_CHOICE]}}]}
    pulled, in_force = answer_and_pull(home, pushed, answers, list(TYPES))
    assert pulled.review_events == pushed.sent and pulled.discards == 1
    assert in_force[ids[0]] == (canonical(first.true_spans), False, "review")
    assert in_force[ids[1]] == ("[]", False, "review")
    assert in_force[ids[2]][1] is True
    for e in ids[3:]:
        assert in_force[e] == (examples[int(e[1:])].true_label, False, "review")
