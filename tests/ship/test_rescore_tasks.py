"""The champion re-scored on changed gold by the dataset's task, as the gate scores it: on a numbers
home the line gives the gate's MAE on the earlier and the new gold (classification's accuracy of
numbers compared as text would read 0 and mean nothing), on a tags home micro-F1, on a spans home
entity F1 on the gold the gate scores (without gold examples copied in training)."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from data_engine.bench.detect_regression import load_diabetes_frame
from data_engine.ship.evaluation import predict_gold
from data_engine.ship.leakage import scored_gold
from data_engine.ship.registry import current_champion, get_model
from data_engine.ship.scoring import rescore_champion
from data_engine.ship.step import ship_step
from data_engine.steps import ingest_step
from data_engine.store.warehouse import open_warehouse
from tests.homes import make_home


def _write(path: Path, X: pd.DataFrame, ids: np.ndarray, y: np.ndarray) -> Path:
    frame = X.copy()
    frame.insert(0, "id", ids)
    frame["target"] = y
    path.parent.mkdir(parents=True, exist_ok=True)
    frame.to_csv(path, index=False)
    return path


def test_a_numbers_champion_is_rescored_on_relabelled_gold_with_the_gates_mae(tmp_path):
    X, y = load_diabetes_frame()
    ids = np.array([f"p{i:04d}" for i in range(len(y))], dtype=object)
    gold = np.arange(0, len(y), 5)
    train = np.setdiff1d(np.arange(len(y)), gold)
    config = f"""[dataset]
name = "numbers"
modality = "tabular"
id_column = "id"
label_column = "target"
feature_columns = {json.dumps(list(X.columns))}
task = "regression"

[mining]
n_jobs = 1
"""
    home = make_home(tmp_path, config, name="numbers")
    ingest_step(home, [_write(home.landing / "train.csv", X.iloc[train], ids[train], y[train])])
    ingest_step(home, [_write(home.landing / "gold" / "gold.csv", X.iloc[gold], ids[gold], y[gold])])
    with open_warehouse(home) as con:
        ship_step(con, home)
        champion = current_champion(con)
        assert champion is not None and champion.version == 1
        # The gate scored the champion on this gold: nothing to re-score.
        assert rescore_champion(con, home) is None
    # Gold relabelled in place: the same ids, 10 values moved up by 100.
    moved = y[gold].copy()
    moved[:10] += 100.0
    ingest_step(home, [_write(home.landing / "gold" / "gold-2.csv", X.iloc[gold], ids[gold], moved)])
    with open_warehouse(home) as con:
        result = rescore_champion(con, home)
        pred = np.asarray(predict_gold(home, champion, X.iloc[gold].reset_index(drop=True)), dtype=float)
        mae_before, mae_after = float(np.mean(np.abs(pred - y[gold]))), float(np.mean(np.abs(pred - moved)))
        assert mae_after > mae_before + 4
        assert result is not None and result.line.endswith(
            f"champion v1 re-scored on {len(gold)} gold examples: mae {mae_before:.4f} -> {mae_after:.4f}")
        assert "10 label(s) changed in place" in result.line
        assert get_model(con, 1).metrics["mae"] == pytest.approx(mae_after)


def _tags_home(tmp_path: Path):
    from tests import multilabel_support

    data = multilabel_support.table(400, n_tags=3, noise=0.0, seed=0)
    X = data.frame.drop(columns=["id", "tags"])
    config = f"""[dataset]
name = "rows"
modality = "tabular"
id_column = "id"
label_column = "target"
feature_columns = {json.dumps(list(X.columns))}
task = "multilabel"
classes = {json.dumps(data.tags)}

[mining]
n_jobs = 1
"""
    return make_home(tmp_path, config, name="rows"), data, X


def test_a_tags_champion_is_rescored_on_relabelled_gold_with_the_gates_micro_f1(tmp_path):
    from data_engine.tasks import Multilabel

    home, data, X = _tags_home(tmp_path)
    ids = data.frame["id"].to_numpy(dtype=object)
    tags = np.array([json.dumps(sorted(t), separators=(",", ":")) for t in data.frame["tags"]], dtype=object)
    gold = np.arange(0, 400, 4)
    train = np.setdiff1d(np.arange(400), gold)
    ingest_step(home, [_write(home.landing / "train.csv", X.iloc[train], ids[train], tags[train])])
    ingest_step(home, [_write(home.landing / "gold" / "gold.csv", X.iloc[gold], ids[gold], tags[gold])])
    with open_warehouse(home) as con:
        ship_step(con, home)
        champion = current_champion(con)
        assert champion is not None and champion.version == 1 and rescore_champion(con, home) is None
    # Gold relabelled in place: 10 examples lose every tag (labeled with the empty set).
    moved = tags[gold].copy()
    changed = [i for i, t in enumerate(moved) if t != "[]"][:10]
    moved[changed] = "[]"
    ingest_step(home, [_write(home.landing / "gold" / "gold-2.csv", X.iloc[gold], ids[gold], moved)])
    with open_warehouse(home) as con:
        result = rescore_champion(con, home)
        pred = np.asarray(predict_gold(home, champion, X.iloc[gold].reset_index(drop=True)), dtype=object)
        before = Multilabel().metrics(tags[gold], pred, data.tags)["micro_f1"]
        after = Multilabel().metrics(moved, pred, data.tags)["micro_f1"]
        assert (round(before, 4), round(after, 4)) == (0.84, 0.8084)
        assert result is not None and "10 label(s) changed in place" in result.line
        assert result.line.endswith(f"champion v1 re-scored on 100 gold examples: micro_f1 {before:.4f} -> {after:.4f}")
        assert get_model(con, 1).metrics["micro_f1"] == pytest.approx(after)


def test_a_spans_champion_is_rescored_on_relabelled_gold_with_the_gates_f1(tmp_path):
    from data_engine.demo.entities import inject_errors, make_texts
    from data_engine.tasks import NER

    config = {"dataset": {"name": "news", "modality": "text", "task": "ner", "id_column": "id",
                          "label_column": "spans", "text_column": "text", "feature_columns": [],
                          "classes": ["LOC", "ORG", "PER"]},
              "gate": {"metric": "f1"}, "mining": {"n_jobs": 1}}
    home = make_home(tmp_path, config)

    def land(name: str, rows: list[tuple[str, str]], prefix: str) -> Path:
        path = home.landing / name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text("".join(json.dumps({"id": f"{prefix}{i}", "text": t, "spans": json.loads(s)}) + "\n"
                                for i, (t, s) in enumerate(rows)), encoding="utf-8")
        return path

    train = inject_errors(make_texts(200, seed=31), rate=0.05, seed=32)
    ingest_step(home, [land("train.jsonl", [(e.text, e.given_label) for e in train], "n")])
    gold = [(e.text, e.true_label) for e in inject_errors(make_texts(60, seed=33), rate=0.0)]
    ingest_step(home, [land("gold/gold.jsonl", gold, "g")])
    with open_warehouse(home) as con:
        ship_step(con, home)
        champion = current_champion(con)
        assert champion is not None and champion.version == 1 and rescore_champion(con, home) is None
    # Gold relabelled in place: the first 10 examples with an entity lose every span.
    changed = [i for i, (_, s) in enumerate(gold) if s != "[]"][:10]
    moved = [(t, "[]" if i in changed else s) for i, (t, s) in enumerate(gold)]
    ingest_step(home, [land("gold/gold-2.jsonl", moved, "g")])
    with open_warehouse(home) as con:
        result = rescore_champion(con, home)
        # Generated sentences repeat: the gold examples with a copy in training are left out, as the gate does.
        scored, leaked = scored_gold(con, home.config)
        assert leaked == 7 and len(scored) == 53
        pred = np.asarray(predict_gold(home, champion, scored), dtype=object)
        earlier = {f"gold:g{i}": s for i, (_, s) in enumerate(gold)}
        y_before = np.array([earlier[i] for i in scored["example_id"]], dtype=object)
        before = NER().metrics(y_before, pred, ["LOC", "ORG", "PER"])["f1"]
        after = NER().metrics(scored["label"].astype(str).to_numpy(), pred, ["LOC", "ORG", "PER"])["f1"]
        assert (round(before, 4), round(after, 4)) == (0.9677, 0.8966)
        assert result is not None and "10 label(s) changed in place" in result.line
        assert result.line.endswith(f"champion v1 re-scored on 53 gold examples (left out 7 gold example(s) with an "
                                    f"exact or near copy in the training data, as the gate does): f1 {before:.4f} -> "
                                    f"{after:.4f}")
        assert get_model(con, 1).metrics["f1"] == pytest.approx(after)
