"""An NER set through mining and review (in-memory Label Studio): the task shows the text with the
model's spans pre-marked as ``<Labels>`` regions (character offsets), the simulated reviewer answers
from ``oracle.jsonl``, the pull puts the true span sets in force; a retrained model serves spans."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from data_engine.demo.entities import inject_errors, make_texts
from data_engine.review.labelstudio.labeling import DISCARD_CHOICE, FROM_NAME
from data_engine.review.oracle import oracle_path
from data_engine.steps import ingest_step
from data_engine.store.warehouse import open_warehouse
from data_engine.tasks.ner import DISCARD
from tests.homes import make_home
from tests.review_support import simulated_round

CONFIG = {"dataset": {"name": "news", "modality": "text", "task": "ner", "id_column": "id", "label_column": "spans",
                      "text_column": "text", "feature_columns": [], "classes": ["LOC", "ORG", "PER"]},
          "review": {"budget": 40}, "gate": {"metric": "f1"}}


def test_discard_answers_agree() -> None:
    assert DISCARD == DISCARD_CHOICE


@pytest.fixture(scope="module")
def reviewed(tmp_path_factory: pytest.TempPathFactory):
    root: Path = tmp_path_factory.mktemp("ner-review")
    home = make_home(root, CONFIG)
    # Half the boundary shifts slip inside a word ("Pari" of "Paris"): flagged by the engine's own check.
    examples = inject_errors(make_texts(240, seed=21), rate=0.1, seed=22, inside_words=0.5)
    path = home.landing / "news.jsonl"
    path.write_text("".join(json.dumps({"id": f"n{i:03d}", "text": e.text, "spans": json.loads(e.given_label)}) + "\n"
                            for i, e in enumerate(examples)), encoding="utf-8")
    oracle_path(home).parent.mkdir(parents=True, exist_ok=True)
    (home.root / "oracle.jsonl").write_text(
        "".join(json.dumps({"id": f"n{i:03d}", "label": json.loads(e.true_label)}) + "\n"
                for i, e in enumerate(examples)), encoding="utf-8")
    ingest_step(home, [path])
    mined, client, pushed, simulated, pulled = simulated_round(home, ["LOC", "ORG", "PER"])
    with open_warehouse(home) as con:
        labels = dict(con.execute("SELECT example_id, label FROM current_labels").fetchall())
        flagged = {r[0] for r in con.execute("SELECT example_id FROM issues WHERE run_id = ? AND issue_type = 'label' "
                                             "AND is_issue", [mined.summary.run_id]).fetchall()}
    return examples, mined, client, pushed, simulated, labels, flagged


def test_injected_span_errors_are_flagged(reviewed) -> None:
    examples, _, _, _, _, _, flagged = reviewed
    wrong = {f"n{i:03d}" for i, e in enumerate(examples) if e.error}
    assert len(flagged & wrong) >= 0.7 * len(wrong) and len(flagged & wrong) >= 0.8 * len(flagged)


def test_the_task_pre_marks_the_models_spans_on_the_text(reviewed) -> None:
    examples, _, client, pushed, *_ = reviewed
    config = client.projects[pushed.project_id]["label_config"]
    assert f'<Labels name="{FROM_NAME}" toName="item">' in config and '<Label value="PER"/>' in config
    task = next(t for t in client.tasks.values() if t["data"]["label_note"])
    regions = task["predictions"][0]["result"]
    suggested = json.loads(task["data"]["suggested_label"])
    assert [(r["value"]["start"], r["value"]["end"], r["value"]["labels"][0]) for r in regions] == \
        [(s["start"], s["end"], s["label"]) for s in suggested]
    text = task["data"]["text"]
    assert all(text[r["value"]["start"]:r["value"]["end"]].strip() == text[r["value"]["start"]:r["value"]["end"]]
               for r in regions)


def test_a_boundary_inside_a_word_is_flagged_and_named_in_the_task(reviewed) -> None:
    examples, _, client, *_ = reviewed
    slipped = {f"n{i:03d}": e for i, e in enumerate(examples) if e.error == "shifted_in_word"}
    tasks = {t["data"]["example_id"]: t for t in client.tasks.values() if t["data"]["example_id"] in slipped}
    assert len(slipped) >= 2 and set(tasks) == set(slipped)
    for ex, task in tasks.items():
        (cut,) = set(slipped[ex].given_spans) - set(slipped[ex].true_spans)
        text = slipped[ex].text
        assert task["data"]["label_note"].startswith(
            f"span_boundary: span {text[cut.start:cut.end]!r} [{cut.start}, {cut.end}) ")
        assert "inside the word" in task["data"]["label_note"]
        assert float(task["data"]["priority"]) > 0


def test_the_reviewers_span_sets_are_the_labels_in_force(reviewed) -> None:
    examples, _, _, pushed, simulated, labels, flagged = reviewed
    assert simulated.answered == pushed.sent > 0 and simulated.correct == simulated.answered
    reviewed_ids = {f"n{i:03d}" for i in range(len(examples))} & flagged
    for ex in reviewed_ids:
        i = int(ex[1:])
        assert labels[ex] == examples[i].true_label


def test_one_round_lifts_held_out_entity_f1_toward_the_clean_ceiling(reviewed) -> None:
    """The tagger trained on the labels after one round beats the one trained on the given labels on
    held-out texts, toward the one trained on the true labels (printed: run with -s for the figures)."""
    import pandas as pd

    from data_engine.demo.entities import TYPES
    from data_engine.tasks.ner_metrics import entity_metrics
    from data_engine.tasks.ner_model import TokenTagger
    from data_engine.tasks.spans import canonical

    examples, _, _, _, _, labels, _ = reviewed
    held = make_texts(600, seed=23)
    X = pd.DataFrame({"text": [e.text for e in examples]})
    held_X = pd.DataFrame({"text": [t for t, _ in held]})
    gold = [canonical(s) for _, s in held]

    def f1(y: list[str]) -> float:
        return entity_metrics(gold, list(TokenTagger(tags=TYPES).fit(X, y).predict(held_X)), list(TYPES))["f1"]

    noisy = f1([e.given_label for e in examples])
    after = f1([labels[f"n{i:03d}"] for i in range(len(examples))])
    clean = f1([e.true_label for e in examples])
    wrong_before = sum(e.given_label != e.true_label for e in examples)
    wrong_after = sum(labels[f"n{i:03d}"] != e.true_label for i, e in enumerate(examples))
    print(f"wrong labels {wrong_before} -> {wrong_after}; held-out entity F1 {noisy:.4f} -> {after:.4f} (clean {clean:.4f})")
    assert wrong_after < wrong_before / 2
    assert after >= noisy and clean - after <= clean - noisy
