"""The champion re-scored on changed gold by the dataset's task, as the gate scores it: on a numbers
home the line gives the gate's MAE on the earlier and the new gold (classification's accuracy of
numbers compared as text would read 0 and mean nothing)."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from data_engine.bench.detect_regression import load_diabetes_frame
from data_engine.ship.evaluation import predict_gold
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
