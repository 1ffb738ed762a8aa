"""The user's trainer on tag sets ([dataset] task = "multilabel"): TRAIN.parquet's label is a list of
tags, the manifest names every tag, PRED.parquet holds one probability column per tag (each in
[0, 1], checked with the file, column and row named); the loop mines on its out-of-fold tag
probabilities, trains, gates and promotes its candidate, and `predict FILE`, `evaluate --file`
and /predict (through its worker) answer what its own `predict` returns."""

from __future__ import annotations

import io
import json
import sys
import tempfile
import tomllib
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from data_engine.bench.detect_multilabel import inject_tag_errors, load_digit_tags, tag_cells
from data_engine.errors import EngineError
from data_engine.steps import ingest_step
from data_engine.store.config import parse_config
from data_engine.store.warehouse import open_warehouse
from data_engine.tasks import tagsets
from data_engine.tasks.multilabel_oof import one_vs_rest
from data_engine.trainers.command import CommandClassifier
from data_engine.tasks.multilabel_trainer import CommandTagger
from data_engine.trainers.worker import PredictWorker
from tests.homes import make_home
from tests.ship.own_model_support import cli, land_train_and_gold, mine_flags, promoted_champion

EXAMPLE = Path(__file__).resolve().parents[2] / "examples" / "own_model" / "train.py"
TAGS = ["closed_loop", "even", "large", "prime"]

# A trainer that keeps what it was given (TRAIN.parquet and MANIFEST.json, in its model directory);
# at predict it has read the manifest (``meta``) and the input (``X``). The boxes, spans and tags
# tests each add their answer ``p`` (and a fault that may break PRED.parquet) after it.
RECORDER_HEAD = """import json, shutil, sys
import numpy as np, pandas as pd
args = dict(zip(sys.argv[2::2], sys.argv[3::2]))
if sys.argv[1] == "fit":
    shutil.copy(args["--train"], args["--out"] + "/TRAIN.parquet")
    shutil.copy(args["--manifest"], args["--out"] + "/MANIFEST.json")
    sys.exit(0)
meta = json.load(open(args["--model"] + "/MANIFEST.json"))
X = pd.read_parquet(args["--input"])
"""
# Here: each tag's share of the training labels; the body after `X = ...` may break PRED.parquet.
RECORDER = RECORDER_HEAD + """train = pd.read_parquet(args["--model"] + "/TRAIN.parquet")
p = pd.DataFrame({"example_id": X["example_id"]})
for t in meta["classes"]:
    p[t] = float(np.mean([t in list(tags) for tags in train["label"]]))
"""


def _recorder(tmp_path: Path, fault: str = "") -> list[str]:
    script = tmp_path / "recorder.py"
    script.write_text(RECORDER + fault + "\np.to_parquet(args['--out'], index=False)\n", encoding="utf-8")
    return [sys.executable, str(script)]


def _small() -> tuple[pd.DataFrame, np.ndarray]:
    X = pd.DataFrame({"example_id": [f"e{i}" for i in range(12)], "a": np.arange(12.0)})
    Y = np.array([[i % 2, i % 3 == 0, 0, 1] for i in range(12)], dtype=np.int8)
    return X, Y


def test_train_parquet_holds_tag_lists_and_pred_one_probability_per_tag(tmp_path):
    X, Y = _small()
    model = CommandTagger(_recorder(tmp_path), timeout_s=60, manifest={"class_names": TAGS}).fit(X, Y)
    with tempfile.TemporaryDirectory() as tmp:
        d = model.unpack_model(Path(tmp) / "m")
        train = pd.read_parquet(d / "TRAIN.parquet")
        meta = json.loads((d / "MANIFEST.json").read_text())
    assert meta["task"] == "multilabel" and meta["classes"] == TAGS and "class_names" not in meta
    # The label is a list of tag names per row; a row with no tags is an empty list.
    expected = [[t for t, on in zip(TAGS, row) if on] for row in Y]
    assert [list(t) for t in train["label"]] == expected
    assert list(train["example_id"]) == list(X["example_id"])
    probs = model.predict_proba(X)
    assert probs.shape == (12, 4)
    np.testing.assert_allclose(probs[0], Y.mean(axis=0))  # the recorder's training shares
    # predict: the stored tag set at probability >= 0.5 (shares: closed_loop 1/2, even 1/3, large 0, prime 1).
    assert set(model.predict(X)) == {tagsets.canonical(["closed_loop", "prime"])}
    assert list(model.classes_) == TAGS


def test_the_engine_gives_its_tag_model_the_user_trainer_whole():
    """The multi-label task wraps the engine's members one-vs-rest; the user's trainer takes tag sets."""
    member = CommandClassifier(["python", "t.py"], timeout_s=9, out_of_fold="trainer")
    tagger = one_vs_rest(member)
    assert isinstance(tagger, CommandTagger)
    assert (tagger.command, tagger.timeout_s, tagger.out_of_fold) == (["python", "t.py"], 9, "trainer")
    assert one_vs_rest(tagger) is tagger


@pytest.mark.parametrize(("fault", "message"), [
    ("p['even'] = np.where(np.arange(len(X)) == 4, 1.5, 0.5)",
     r"PRED.parquet: row example_id='e4', column 'even' is 1.5 \(probabilities must be in \[0, 1\]\)"),
    ("p['prime'] = np.where(np.arange(len(X)) == 2, np.nan, 0.5)", r"row example_id='e2', column 'prime' is nan"),
    ("p = p.drop(columns=['large'])", r"has no probability column for tag 'large'"),
    ("p['closed_loop'] = 'yes'", r"column 'closed_loop' holds a non-number"),
    ("p = p.iloc[1:]", r"misses 1 of 12 example_id, e.g. 'e0'"),
])
def test_a_malformed_tag_prediction_fails_the_fit_naming_file_column_and_row(tmp_path, fault, message):
    X, Y = _small()
    with pytest.raises(EngineError, match=message):
        CommandTagger(_recorder(tmp_path, fault), timeout_s=60, tags=tuple(TAGS)).fit(X, Y)


def test_tag_rows_need_not_sum_to_one(tmp_path):
    X, Y = _small()
    # Every tag at 0.9: a row sums to 3.6, which a single-label prediction would refuse.
    model = CommandTagger(_recorder(tmp_path, "for t in meta['classes']: p[t] = 0.9"), timeout_s=60,
                          tags=tuple(TAGS)).fit(X, Y)
    assert model.predict_proba(X).sum(axis=1) == pytest.approx(np.full(12, 3.6))
    assert set(model.predict(X)) == {tagsets.canonical(TAGS)}


def test_tags_without_names_are_refused(tmp_path):
    X, Y = _small()
    with pytest.raises(EngineError, match="3 tag names for 4 tag columns"):
        CommandTagger(_recorder(tmp_path), timeout_s=60, tags=("a", "b", "c")).fit(X, Y)


def test_the_serve_worker_answers_tag_sets_as_the_trainers_predict(tmp_path):
    X, Y, tags = load_digit_tags()
    frame = X.iloc[:150].copy()
    frame.insert(0, "example_id", [f"d{i}" for i in range(150)])
    model = CommandTagger([sys.executable, str(EXAMPLE)], timeout_s=120, tags=tuple(tags)).fit(frame, Y[:150])
    ask = X.iloc[150:170].reset_index(drop=True)
    own = model.predict_proba(ask)
    worker = PredictWorker(model, timeout_s=60, label="v1").start()
    try:
        np.testing.assert_allclose(worker.predict_proba(ask), own, rtol=1e-9)
        answered = list(worker.predict(ask))  # stored tag sets, as the trainer's model decides them
        assert answered == list(model.predict(ask)) and all(isinstance(tagsets.tags_of(s), list) for s in answered)
        assert worker.status()["answered"] == 2
    finally:
        worker.stop()


@pytest.mark.parametrize("task", ["ner", "detection"])
def test_the_trainer_for_spans_and_boxes_is_accepted_by_the_config(task):
    """Spans and boxes have their contract now (tests/ship/test_own_model_sets.py)."""
    raw = {"dataset": {"name": "x", "label_column": "label", "modality": "image" if task == "detection" else "text", "task": task,
                       **({"image_column": "image"} if task == "detection" else {"text_column": "text"})},
           "model": {"trainer": "command", "command": ["python", "train.py"]}}
    cfg = parse_config(raw)
    assert cfg.model.trainer == "command" and list(cfg.model.command) == ["python", "train.py"]


def _tags_config(command: list[str], columns: list[str]) -> str:
    return "\n".join([
        "[dataset]", 'name = "digit-tags"', 'modality = "tabular"', 'id_column = "id"', 'label_column = "tags"',
        f"feature_columns = {json.dumps(columns)}", 'task = "multilabel"', f"classes = {json.dumps(TAGS)}", "",
        "[mining]", "folds = 3", "n_jobs = 1", "", "[review]", "budget = 40", "",
        "[model]", 'trainer = "command"', f"command = {json.dumps(command)}", "timeout_s = 300", ""])


def test_tags_through_the_trainer_mine_train_gate_promote_predict_serve(tmp_path, capsys):
    X, Y, tags = load_digit_tags()
    assert tags == TAGS
    train_rows, gold_rows, ask_rows = np.arange(0, 400), np.arange(400, 600), np.arange(600, 630)
    unlabeled_rows = np.arange(630, 660)
    noisy, flipped = inject_tag_errors(Y[train_rows], 0.1, seed=0)
    home = make_home(tmp_path, _tags_config([sys.executable, str(EXAMPLE)], list(X.columns)))
    ids = np.array([f"d{i:04d}" for i in range(len(Y))], dtype=object)
    land_train_and_gold(home, X, ids, "tags", [(train_rows, tag_cells(noisy, tags)),
                                                (gold_rows, tag_cells(Y[gold_rows], tags))])
    new = X.iloc[unlabeled_rows].copy()  # unlabeled rows: mining scores them with the trainer fitted on all labels
    new.insert(0, "id", ids[unlabeled_rows])
    new.assign(tags="").to_csv(home.landing / "new.csv", index=False)
    ingest_step(home, [home.landing / "new.csv"])
    flagged = mine_flags(capsys, home)
    with open_warehouse(home, read_only=True) as con:
        scored = np.array([r[0] for r in con.execute("SELECT probs FROM predictions WHERE kind = 'full'").fetchall()])
    assert scored.shape == (30, 4) and ((scored >= 0) & (scored <= 1)).all()
    # Confident per-tag answers on digits it did not train on: most of them far from 0.5.
    assert (np.abs(scored - 0.5) > 0.3).mean() > 0.8
    # cleanlab's multi-label check on the MLP's out-of-fold tag probabilities finds most of the 40
    # injected tag flips, and flags few clean rows.
    truth = set(ids[train_rows][flipped])
    hits = len(flagged & truth)
    assert hits >= 0.6 * len(truth) and hits >= 0.5 * len(flagged), (hits, len(truth), len(flagged))
    model = promoted_champion(capsys, home, ("evaluate",))  # the gate, then the promotion
    assert type(model).__name__ == "CommandTagger" and list(model.classes_) == TAGS
    ask = X.iloc[ask_rows].copy()
    ask.insert(0, "id", ids[ask_rows])
    ask.to_csv(tmp_path / "ask.csv", index=False)
    code, out, err = cli(capsys, "--home", str(home.root), "predict", str(tmp_path / "ask.csv"))
    assert code == 0, err
    served = pd.read_csv(io.StringIO(out))
    own = model.predict_proba(X.iloc[ask_rows].reset_index(drop=True))  # the trainer's own predict
    for k, tag in enumerate(TAGS):
        np.testing.assert_allclose(served[f"p_{tag}"].to_numpy(dtype=float), own[:, k], rtol=1e-9, atol=1e-12)
    assert list(served["predicted_tags"]) == list(model.predict(X.iloc[ask_rows].reset_index(drop=True)))
    # evaluate --file: the figures of the trainer's predictions on a labeled file.
    gold_file = tmp_path / "gold_again.csv"
    frame = X.iloc[gold_rows].copy()
    frame.insert(0, "id", ids[gold_rows])
    frame["tags"] = tag_cells(Y[gold_rows], tags)
    frame.to_csv(gold_file, index=False)
    code, out, err = cli(capsys, "--home", str(home.root), "evaluate", "--file", str(gold_file), "--json")
    assert code == 0, err
    figures = json.loads(out)
    mine = model.predict(X.iloc[gold_rows].reset_index(drop=True))
    exact = np.mean((tagsets.encode(list(mine), TAGS) == Y[gold_rows]).all(axis=1))
    assert figures["n"] == 200 and figures["exact_match"] == pytest.approx(exact)
    # /predict: the same tags and probabilities, through the trainer's long-lived worker.
    from fastapi.testclient import TestClient

    from data_engine.ship.serve import create_app

    rows = X.iloc[ask_rows].to_dict(orient="records")
    with TestClient(create_app(home)) as api:
        body = api.post("/predict", json={"rows": rows}).json()
        worker = api.get("/health").json()["worker"]
    assert worker["state"] == "running" and worker["answered"] == 1
    for k, tag in enumerate(TAGS):
        np.testing.assert_allclose([p["probabilities"][tag] for p in body["predictions"]], own[:, k], atol=1e-6)
    assert [tagsets.canonical(p["tags"]) for p in body["predictions"]] == list(served["predicted_tags"])


def test_out_of_fold_from_the_trainer_equals_the_engines_k_fits_on_the_same_folds(tmp_path):
    """[model] out_of_fold = "trainer" for tags: one fit returns per-tag probabilities for the engine's
    seeded folds; the example trainer keeps the promise, so they equal K fit/predict calls on those folds."""
    from data_engine.mine.candidates import _trainer_out_of_fold
    from data_engine.tasks import task_for

    X, Y, tags = load_digit_tags()
    frame = X.iloc[:120].copy()
    frame.insert(0, "example_id", [f"d{i}" for i in range(120)])
    cfg = parse_config(tomllib.loads(_tags_config([sys.executable, str(EXAMPLE)], list(X.columns))))
    task = task_for(cfg.dataset)
    command, manifest = [sys.executable, str(EXAMPLE)], {"class_names": tags}
    own = _trainer_out_of_fold(task, {"command": CommandTagger(command, 120, manifest, "trainer")}, frame, Y[:120],
                               tags, cfg)["command"]
    engine = task.out_of_fold({"command": CommandTagger(command, 120, manifest)}, frame, Y[:120], tags,
                              folds=cfg.mining.folds, seed=cfg.mining.seed).member_probs["command"]
    assert own.shape == (120, 4)
    np.testing.assert_allclose(own, engine, atol=1e-9)


def test_the_docs_example_trainer_fits_and_predicts_tags(tmp_path):
    """The trainer printed in docs/own-model.md, run as written, on tag sets (fit, predict, out of fold)."""
    doc = (Path(__file__).resolve().parents[2] / "docs" / "own-model.md").read_text(encoding="utf-8")
    script = tmp_path / "doc_trainer.py"
    script.write_text(doc.split("## A complete example", 1)[1].split("```python\n", 1)[1].split("```", 1)[0],
                      encoding="utf-8")
    X, Y, tags = load_digit_tags()
    frame = X.iloc[:150].copy()
    frame.insert(0, "example_id", [f"d{i}" for i in range(150)])
    command = [sys.executable, str(script)]
    model = CommandTagger(command, timeout_s=120, tags=tuple(tags)).fit(frame, Y[:150])
    probs = model.predict_proba(X.iloc[150:300].reset_index(drop=True))
    assert ((probs >= 0.5) == (Y[150:300] > 0)).all(axis=1).mean() > 0.8  # held-out rows, whole tag sets right
    oof = CommandTagger(command, timeout_s=120, tags=tuple(tags), out_of_fold="trainer").fit_out_of_fold(
        frame, Y[:150], np.arange(150) % 3)
    assert oof.shape == (150, 4) and ((oof >= 0.5) == (Y[:150] > 0)).all(axis=1).mean() > 0.8
