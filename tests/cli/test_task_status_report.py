"""``deploy status`` and ``report`` on numbers and on tags: the served-model choice and the gold
figures carry the task's own metrics (MAE/RMSE/R²; micro/macro-F1 and exact match), not accuracy.

Both commands crashed: a regression candidate has no accuracy (``float(None)`` reading the choice
back) and a multi-label one's micro-F1 was dropped when the choice was read back.
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from data_engine.cli import main
from data_engine.mine.candidates import ServedChoice
from data_engine.ship.registry import latest_model
from data_engine.ship.step import ship_step
from data_engine.steps import ingest_step
from data_engine.store.warehouse import open_warehouse
from tests.homes import make_home

N, GOLD = 150, 40


def _frame(task: str, seed: int) -> tuple[pd.DataFrame, str]:
    """Two informative features and a label of the task's kind; the label column's config lines."""
    rng = np.random.default_rng(seed)
    x = rng.normal(size=(N + GOLD, 2))
    frame = pd.DataFrame({"id": [f"r{i:03d}" for i in range(N + GOLD)], "a": x[:, 0], "b": x[:, 1]})
    if task == "regression":
        frame["label"] = np.round(3 * x[:, 0] - 2 * x[:, 1] + rng.normal(0, 0.3, len(x)), 3)
        return frame, 'task = "regression"'
    tags = [[t for t, on in (("red", x[i, 0] > 0), ("big", x[i, 1] > 0)) if on] for i in range(len(x))]
    frame["label"] = [json.dumps(t) for t in tags]
    return frame, 'task = "multilabel"\nclasses = ["red", "big"]'


@pytest.mark.parametrize("task,metric,others", [("regression", "mae", ("rmse", "r2")),
                                                ("multilabel", "micro_f1", ("macro_f1", "exact_match"))])
def test_status_and_report_print_the_task_metrics(tmp_path: Path, capsys: pytest.CaptureFixture[str], task: str,
                                                  metric: str, others: tuple[str, ...]) -> None:
    frame, lines = _frame(task, seed=3)
    home = make_home(tmp_path, f"""[dataset]
name = "t"
modality = "tabular"
id_column = "id"
label_column = "label"
feature_columns = ["a", "b"]
{lines}

[mining]
n_jobs = 1
""", name=task)
    (home.landing / "gold").mkdir(exist_ok=True)
    frame.iloc[:N].to_csv(home.landing / "train.csv", index=False)
    frame.iloc[N:].to_csv(home.landing / "gold" / "gold.csv", index=False)
    ingest_step(home, [home.landing / "train.csv"])
    ingest_step(home, [home.landing / "gold" / "gold.csv"])
    with open_warehouse(home) as con:
        ship_step(con, home)
        record = latest_model(con)
    choice = ServedChoice.from_dict(record.params["served_choice"])
    assert choice.metric == metric and len(choice.candidates) >= 2
    assert all(np.isfinite(c.metric(metric)) for c in choice.candidates)
    assert choice.best is not None and choice.best.name == choice.chosen
    if task == "regression":  # lower MAE is better: the chosen one has the smallest
        assert not choice.higher_is_better
        assert choice.score_of(choice.chosen) == min(c.metric("mae") for c in choice.candidates)

    capsys.readouterr()
    assert main(["--home", str(home.root), "deploy", "status"]) == 0
    out = capsys.readouterr().out
    assert f"out-of-fold {metric}" in out and f"gold {metric} " in out
    assert all(f"{name} " in out for name in others), out

    assert main(["--home", str(home.root), "report"]) == 0
    out = capsys.readouterr().out
    assert f"gold {metric}" in out and "gold accuracy" not in out
    champion_line = next(line for line in out.splitlines() if line.strip().startswith("v1"))
    assert "n/a" not in champion_line.split()[3], out
    assert f"out-of-fold {metric}" in out and "best candidate" in out

    assert main(["--home", str(home.root), "report", "--json"]) == 0
    data = json.loads(capsys.readouterr().out)
    assert data["gold_metric"] == metric and data["rows"][0]["gold_score"] is not None
