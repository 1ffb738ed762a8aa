"""Issue 24, the column checks for every task's labels: tag sets, span sets and box sets are read as
which tags, entity types or box classes each example carries (``Task.carried_tags``). A planted leak
column naming one of them is a shortcut, a noise column useless, a row number an identifier, through
the whole mining step (``mine --json``'s ``dataset_issues``)."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from data_engine.cli import main
from data_engine.mine.columns import column_issues
from data_engine.steps import ingest_step, mine_step
from data_engine.tasks import TASKS
from tests.homes import make_home

PLANTED = {("shortcut", "leak"), ("useless", "noise"), ("identifier", "row_no")}


def _found(issues: list[dict]) -> set[tuple[str, str]]:
    return {(i["type"], i["column"]) for i in issues}


def _plant(rows: list[dict], carries: list[bool], seed: int) -> list[dict]:
    """Each row with ``leak`` (a code that says whether it carries the leaked tag, 1 in 50 rows off),
    ``noise`` (random numbers) and ``row_no`` (its position)."""
    rng = np.random.default_rng(seed)
    flip = rng.random(len(rows)) < 0.02
    return [{**r, "leak": "yes" if c != f else "no", "noise": round(float(rng.normal()), 4), "row_no": i}
            for i, (r, c, f) in enumerate(zip(rows, carries, flip))]


def _write_jsonl(path: Path, rows: list[dict]) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text("".join(json.dumps(r) + "\n" for r in rows), encoding="utf-8")
    return path


def test_carried_tags_of_span_and_box_sets():
    spans = TASKS["ner"]().encode(['[{"start": 0, "end": 4, "label": "PER"}, {"start": 9, "end": 12, "label": "PER"}]',
                                   "[]", '[{"start": 2, "end": 5, "label": "LOC"}]'], ["LOC", "ORG", "PER"])
    assert TASKS["ner"]().carried_tags(spans, ["LOC", "ORG", "PER"]).tolist() == [[0, 0, 1], [0, 0, 0], [1, 0, 0]]
    boxes = TASKS["detection"]().encode(['[{"label": "square", "x": 1, "y": 2, "w": 3, "h": 4}]', "[]",
                                         '[{"label": "disc", "x": 1, "y": 2, "w": 3, "h": 4}, '
                                         '{"label": "cross", "x": 5, "y": 6, "w": 3, "h": 4}]'],
                                        ["disc", "square", "cross"])
    assert TASKS["detection"]().carried_tags(boxes, ["disc", "square", "cross"]).tolist() == [
        [0, 1, 0], [0, 0, 0], [1, 0, 1]]
    tags = np.array([[1, 0], [0, 1]])
    assert TASKS["multilabel"]().carried_tags(tags, ["a", "b"]).tolist() == tags.tolist()
    with pytest.raises(NotImplementedError):
        TASKS["classification"]().carried_tags(np.array([0, 1]), ["a", "b"])


def test_mine_json_names_the_planted_columns_of_a_multilabel_home(tmp_path, capsys):
    # A noise column escapes the useless finding with chance about USELESS_ALPHA (seed 3's does: its
    # permutation p is 0.05); seeds 4 to 8 all give exactly the planted findings.
    rng = np.random.default_rng(5)
    n = 240
    X = rng.normal(size=(n, 3)).round(4)
    # Each tag reads two columns and noise: no real column gives one away alone.
    even = X[:, 0] + X[:, 1] + rng.normal(0, 0.5, n) > 0
    big = X[:, 2] - X[:, 1] + rng.normal(0, 0.5, n) > 0.3
    rows = [{"id": f"t{i:04d}", "x0": X[i, 0], "x1": X[i, 1], "x2": X[i, 2],
             "label": json.dumps([t for t, on in (("even", even[i]), ("big", big[i])) if on])} for i in range(n)]
    frame = pd.DataFrame(_plant(rows, list(big), seed=6))
    home = make_home(tmp_path, {"dataset": {"name": "table", "modality": "tabular", "task": "multilabel",
                                            "id_column": "id", "label_column": "label", "classes": ["even", "big"],
                                            "feature_columns": ["x0", "x1", "x2", "leak", "noise", "row_no"]},
                                "mining": {"folds": 3, "n_jobs": 1}})
    frame.to_csv(home.landing / "table.csv", index=False)
    ingest_step(home, [home.landing / "table.csv"])
    assert main(["--home", str(home.root), "mine", "--json"]) == 0
    meta = json.loads(capsys.readouterr().out)
    assert _found(meta["dataset_issues"]) == PLANTED
    leak = next(i for i in meta["dataset_issues"] if i["type"] == "shortcut")
    assert "carries tag 'big'" in leak["reason"] and leak["figure"] >= 0.9
    assert set(meta["column_checks"]["tag_baselines"]) == {"even", "big"}
    # The leak fits even the labels a weak slice would get wrong: an empty search says so.
    assert meta["slices"] == [] and meta["slice_search"]["hidden_by_shortcut"] == (
        "no weak slice found while 'leak' looks like a shortcut: the model fits the labels through it, so weak "
        "slices can hide; drop it from the input columns and mine again")
    # Too few labeled rows: `mine` says the shortcut and useless checks did not judge the columns.
    home = make_home(tmp_path / "small", {"dataset": {"name": "table", "modality": "tabular", "task": "multilabel",
                                                      "id_column": "id", "label_column": "label",
                                                      "classes": ["even", "big"],
                                                      "feature_columns": ["x0", "x1", "x2", "leak", "noise", "row_no"]},
                                          "mining": {"folds": 3, "n_jobs": 1}})
    frame.head(24).to_csv(home.landing / "table.csv", index=False)
    ingest_step(home, [home.landing / "table.csv"])
    capsys.readouterr()
    assert main(["--home", str(home.root), "mine"]) == 0
    out = capsys.readouterr().out
    assert "column checks: shortcut and useless not judged (fewer than 30 labeled rows)" in out


def test_an_ner_home_reads_the_entity_types_a_text_carries(tmp_path):
    from data_engine.demo.entities import inject_errors, make_texts

    texts = inject_errors(make_texts(150, seed=5), rate=0.0)
    has_person = ['"PER"' in e.true_label for e in texts]
    assert 20 < sum(has_person) < 130  # the leak names a type some texts carry and others do not
    rows = _plant([{"id": f"n{i}", "text": e.text, "spans": json.loads(e.true_label)} for i, e in enumerate(texts)],
                  has_person, seed=6)
    home = make_home(tmp_path, {"dataset": {"name": "news", "modality": "text", "task": "ner", "id_column": "id",
                                            "label_column": "spans", "text_column": "text",
                                            "feature_columns": ["leak", "noise", "row_no"],
                                            "classes": ["LOC", "ORG", "PER"]},
                                "mining": {"folds": 3, "n_jobs": 1}, "gate": {"metric": "f1"}})
    ingest_step(home, [_write_jsonl(home.landing / "news.jsonl", rows)])
    summary = mine_step(home).summary
    assert _found(summary.dataset_issues) == PLANTED
    leak = next(i for i in summary.dataset_issues if i["type"] == "shortcut")
    assert "carries entity type 'PER'" in leak["reason"]
    assert "model_checks_skipped" not in summary.column_checks
    assert summary.column_checks["labels_read_as"].startswith("whether each example carries each entity type")
    # Slices are looked for too, judged by whether each text's span set was predicted exactly: the
    # generated texts are easy, every span set is (no slice can be weaker than the rest).
    assert summary.slice_search == {"skipped": "every out-of-fold prediction is right"}



def test_without_a_column_to_judge_the_summary_says_so():
    """An image-file data set (detection's only modality) has no numeric, categorical or text input column."""
    report = column_issues(pd.DataFrame({"image": ["a.png"] * 40}), np.ones((40, 2), dtype=int), {"image": "image"},
                           tag_sets=True, classes=["disc", "square"], tag_noun="box class")
    assert report.issues == [] and "no numeric, categorical or text input column" in report.summary["nothing_checked"]


def test_a_classification_homes_shortcut_that_hides_no_slice_is_named_in_the_slice_search(tmp_path):
    """One class per example (not only tag sets): a leak fits the labels, no weak slice is found, and
    the run says the empty search is not a clean one."""
    rng = np.random.default_rng(5)
    n = 240
    X = rng.normal(size=(n, 3)).round(4)
    y = np.where(X[:, 0] + X[:, 1] + rng.normal(0, 0.5, n) > 0, "high", "low")  # x2 plays no part
    rows = [{"id": f"t{i:04d}", "x0": X[i, 0], "x1": X[i, 1], "x2": X[i, 2], "label": y[i]} for i in range(n)]
    home = make_home(tmp_path, {"dataset": {"name": "table", "modality": "tabular", "task": "classification",
                                            "id_column": "id", "label_column": "label", "classes": ["high", "low"],
                                            "feature_columns": ["x0", "x1", "x2", "leak", "noise", "row_no"]},
                                "mining": {"folds": 3, "n_jobs": 1}})
    pd.DataFrame(_plant(rows, list(y == "high"), seed=6)).to_csv(home.landing / "table.csv", index=False)
    ingest_step(home, [home.landing / "table.csv"])
    summary = mine_step(home).summary
    assert _found(summary.dataset_issues) == PLANTED | {("useless", "x2")}
    assert summary.slices == [] and summary.slice_search["hidden_by_shortcut"] == (
        "no weak slice found while 'leak' looks like a shortcut: the model fits the labels through it, so weak "
        "slices can hide; drop it from the input columns and mine again")


def test_a_text_homes_numeric_ticket_number_is_an_identifier_to_mining_and_left_out_of_drift(tmp_path):
    """A text home's metadata column issued as a sequence (ticket numbers): the second batch's numbers
    are all new by construction, so compared they would drift every batch (its KS test and the domain
    classifier both find it); they are named as an identifier and left out."""
    home = make_home(tmp_path, {"dataset": {"name": "tickets", "modality": "text", "task": "classification",
                                            "id_column": "id", "label_column": "label", "text_column": "text",
                                            "feature_columns": ["ticket_no"], "classes": ["billing", "outage"]},
                                "mining": {"folds": 3, "n_jobs": 1, "model": "linear", "embedding": "tfidf"}})
    words = {"billing": ["invoice", "charge", "refund", "payment", "bill", "card"],
             "outage": ["down", "offline", "error", "timeout", "crash", "server"]}
    common = ["please", "help", "today", "again", "my", "the", "account", "since"]

    def batch(name: str, n: int, start: int, seed: int) -> Path:
        rng = np.random.default_rng(seed)
        rows = []
        for i in range(n):
            label = ["billing", "outage"][int(rng.integers(2))]
            text = list(rng.choice(words[label], 2)) + list(rng.choice(common, 4))
            rng.shuffle(text)
            rows.append({"id": f"t{start + i}", "text": " ".join(text), "ticket_no": 5000 + start + i, "label": label})
        return _write_jsonl(home.landing / name, rows)

    ingest_step(home, [batch("a.jsonl", 60, 0, 1)])
    (second,) = ingest_step(home, [batch("b.jsonl", 40, 60, 2)])
    drift = second.drift
    assert (drift["identifiers"], drift["drifted"], drift["columns"]) == (["ticket_no"], False, [])
    assert [c["column"] for c in drift["per_column"]] == ["label"]
    assert drift["auc"] < drift["auc_threshold"] == 0.75  # the domain classifier reads the texts, not the numbers
    summary = mine_step(home).summary
    assert _found(summary.dataset_issues) == {("identifier", "ticket_no")}
    assert summary.column_checks["columns_checked"] == ["ticket_no", "text"]
