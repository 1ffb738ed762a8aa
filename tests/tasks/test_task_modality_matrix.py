"""Every task on every modality, through the loop's core steps: (numbers, tag sets) x (tabular,
text, image columns, image files) ingested, mined, mined again after a reviewer relabelled and discarded examples,
trained and gated, then `predict FILE` and `evaluate --file` on a labeled file.

Classification has its own matrix (tests/mine/test_mining_matrix.py). The data is small and
generated (image files are the first digits as PNGs), so each cell runs in seconds; what is checked
is that no stage assumes one class per example or a column per pixel, and that each stage answers
in the task's own terms (the task's metric names, its prediction columns).
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from data_engine.demo.image_files import write_digit_files
from data_engine.ship.files import evaluate_file, predict_file
from data_engine.ship.step import ship_step
from data_engine.steps import ingest_step, mine_step
from data_engine.store.home import Home
from data_engine.store.warehouse import open_warehouse
from data_engine.tasks import task_for
from tests.homes import PIXELS, make_home
from tests.loop_support import review

TASKS = ("regression", "multilabel")
MODALITIES = ("tabular", "text", "image columns", "image files")
CELLS = [(t, m) for t in TASKS for m in MODALITIES]
# Two tags for every modality (for text: "even" = has a good word, "big" = has a bad word).
TAGS = ["even", "big"]
# What `evaluate --file --json` gives per task (issue 21).
EVALUATE_KEYS = {"regression": {"mae", "rmse", "r2", "n"},
                 "multilabel": {"micro_f1", "macro_f1", "exact_match", "per_tag_recall", "n"}}
MINING = '\n[mining]\nfolds = 3\nn_jobs = 1\nembedding = "{embedding}"\n\n[review]\nbudget = 60\n'


def _tags(even: np.ndarray, big: np.ndarray) -> list[str]:
    return [json.dumps([t for t, on in zip(TAGS, pair) if on]) for pair in zip(even, big)]


def _label_lines(task: str) -> str:
    return ('task = "regression"\n' if task == "regression"
            else f'task = "multilabel"\nclasses = {json.dumps(TAGS)}\n')


def _tabular(root: Path, task: str) -> tuple[Home, Path, Path]:
    rng = np.random.default_rng(0)
    n = 240
    X = rng.normal(size=(n, 4)).round(4)
    frame = pd.DataFrame(X, columns=[f"x{i}" for i in range(4)])
    frame["color"] = np.array(["red", "green", "blue"], dtype=object)[np.arange(n) % 3]
    score = 3 * X[:, 0] - 2 * X[:, 1] + (frame["color"] == "red") * 1.5
    frame["label"] = (score + rng.normal(0, 0.2, n)).round(3) if task == "regression" \
        else _tags(X[:, 0] > 0, X[:, 1] > 0.3)
    frame.insert(0, "id", [f"t{i:04d}" for i in range(n)])
    config = ('[dataset]\nname = "table"\nmodality = "tabular"\nid_column = "id"\nlabel_column = "label"\n'
              'feature_columns = ["x0", "x1", "x2", "x3", "color"]\n' + _label_lines(task)
              + MINING.format(embedding="tfidf"))
    return _land(make_home(root, config), frame, "table.csv")


def _text(root: Path, task: str) -> tuple[Home, Path, Path]:
    rng = np.random.default_rng(1)
    good = "great good lovely excellent tasty".split()
    bad = "bad awful slow rude broken".split()
    fill = "the food service phone screen was is really quite and very this it".split()
    rows = []
    for i in range(240):
        g, b = rng.integers(0, 3, size=2)
        words = [*rng.choice(fill, 4), *rng.choice(good, g), *rng.choice(bad, b)]
        rng.shuffle(words)
        label = round(5 + 1.5 * g - 1.5 * b, 1) if task == "regression" else _tags([g > 0], [b > 0])[0]
        rows.append((f"s{i:04d}", " ".join(words).capitalize() + ".", label))
    frame = pd.DataFrame(rows, columns=["id", "sentence", "label"])
    config = ('[dataset]\nname = "reviews"\nmodality = "text"\nid_column = "id"\nlabel_column = "label"\n'
              'text_column = "sentence"\n' + _label_lines(task) + MINING.format(embedding="tfidf"))
    return _land(make_home(root, config), frame, "reviews.csv")


def _digit_labels(digit: np.ndarray, task: str) -> np.ndarray | list[str]:
    """The task's label of each digit: its value as a number, or its tags (even, 5 or more)."""
    return digit.astype(float) if task == "regression" else _tags(digit % 2 == 0, digit >= 5)


def _image_columns(root: Path, task: str) -> tuple[Home, Path, Path]:
    from sklearn.datasets import load_digits

    digits = load_digits()
    frame = pd.DataFrame(digits.data[:240], columns=PIXELS)
    frame.insert(0, "id", [f"d{i:04d}" for i in range(240)])
    frame["label"] = _digit_labels(digits.target[:240], task)
    config = ('[dataset]\nname = "digit-pixels"\nmodality = "image"\nid_column = "id"\nlabel_column = "label"\n'
              f"feature_columns = {json.dumps(PIXELS)}\n" + _label_lines(task) + MINING.format(embedding="tfidf"))
    return _land(make_home(root, config), frame, "pixels.csv")


def _image_files(root: Path, task: str) -> tuple[Home, Path, Path]:
    config = ('[dataset]\nname = "digit-files"\nmodality = "image"\nid_column = "id"\nlabel_column = "label"\n'
              'image_column = "image"\n' + _label_lines(task) + MINING.format(embedding="image"))
    home = make_home(root, config)
    paths = []
    for folder, rows in ((home.landing / "digits", slice(0, 200)), (home.gold_landing / "digits", slice(200, 240))):
        files = write_digit_files(folder, n=240)
        files.manifest["label"] = _digit_labels(files.manifest["label"].astype(int).to_numpy(), task)
        files.manifest.iloc[rows].to_csv(files.manifest_path, index=False)
        paths.append(files.manifest_path)
    return home, *paths


def _land(home: Home, frame: pd.DataFrame, name: str) -> tuple[Home, Path, Path]:
    """The first 200 rows as the training file, the last 40 as gold data."""
    path, gold = home.landing / name, home.gold_landing / name
    gold.parent.mkdir(parents=True, exist_ok=True)
    frame.iloc[:200].to_csv(path, index=False)
    frame.iloc[200:].to_csv(gold, index=False)
    return home, path, gold


BUILDERS = {"tabular": _tabular, "text": _text, "image columns": _image_columns, "image files": _image_files}


def _relabel_and_discard(con, task: str) -> tuple[list[str], list[str]]:
    """A reviewer discards three training examples and gives three others another label of the task's kind."""
    rows = con.execute("SELECT example_id, cl.label FROM current_labels cl JOIN current_examples ce USING (example_id) "
                       "WHERE cl.label IS NOT NULL AND NOT cl.is_discarded AND NOT ce.is_gold "
                       "ORDER BY example_id").fetchall()
    discarded = [eid for eid, _ in rows[:3]]
    other = {eid: (str(float(label) + 10) if task == "regression" else json.dumps(TAGS if label == "[]" else []))
             for eid, label in rows[3:6]}
    review(con, {eid: None for eid in discarded} | other)
    return discarded, list(other)


@pytest.mark.parametrize(("task", "modality"), CELLS, ids=[f"{t}-{m.replace(' ', '-')}" for t, m in CELLS])
def test_every_task_runs_the_loop_on_every_modality(tmp_path: Path, task: str, modality: str) -> None:
    home, path, gold = BUILDERS[modality](tmp_path, task)
    ingested, gold_batch = ingest_step(home, [path, gold])
    assert ingested.status == "ingested" and ingested.rows_quarantined == 0, ingested.reason
    assert gold_batch.is_gold and gold_batch.rows_ok == 40, gold_batch
    first = mine_step(home).summary
    with open_warehouse(home) as con:
        discarded, relabelled = _relabel_and_discard(con, task)
    second = mine_step(home).summary
    assert second.run_id > first.run_id and second.n_labeled == first.n_labeled - len(discarded)
    with open_warehouse(home) as con:
        queued = {r[0] for r in con.execute("SELECT example_id FROM review_queue WHERE run_id = ?",
                                            [second.run_id]).fetchall()}
        assert not queued & set(discarded), "a discarded example went back to review"
        shipped = ship_step(con, home)
    record = shipped.trained.record
    assert record.train_size == second.n_labeled
    # The first model has no champion to lose against: the gate passes it on gold.
    assert shipped.verdict.promote, shipped.verdict.reason
    assert shipped.promotion.champion is not None and shipped.promotion.champion.version == record.version
    spec = task_for(home.config.dataset)
    predictions, rejected, version = predict_file(home, path)
    assert rejected == [] and version == record.version and len(predictions) == ingested.rows_ok
    assert list(predictions.columns)[1:] == list(spec.predict_table(
        np.zeros((1, spec.prediction_width(list(record.classes)))), list(record.classes)))
    figures = evaluate_file(home, gold).to_json(spec)
    assert set(figures) - {"model_version", "file", "rejected_rows", "notes"} == EVALUATE_KEYS[task], figures
    assert figures["n"] == gold_batch.rows_ok
    assert all(isinstance(figures[k], float) for k in EVALUATE_KEYS[task] - {"n", "per_tag_recall"}), figures
    # The labels follow the inputs on every modality, so the served model learned them (measured: R^2
    # 0.84-0.99, micro-F1 0.95-1.00); predicting the mean gives R^2 0, tags at random micro-F1 about 0.5.
    assert (figures["r2"] if task == "regression" else figures["micro_f1"]) > 0.7, figures
