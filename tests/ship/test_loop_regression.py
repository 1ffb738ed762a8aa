"""The whole loop on numbers: scikit-learn's diabetes set (bundled) with gross value errors injected
goes ingest -> mine -> review (in-memory Label Studio, simulated reviewer from oracle.jsonl) -> pull
-> retrain -> paired gate (Wilcoxon on MAE) -> serve, and the flags beat cleanlab's own call."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from data_engine.bench.detect_regression import inject_value_errors, load_diabetes_frame, run_regression_detect_benchmark
from data_engine.steps import ingest_step
from data_engine.review.labelstudio.fake import FakeReviewClient
from data_engine.review.oracle import oracle_path, read_oracle
from data_engine.review.pull import pull_verdicts
from data_engine.review.push import push_queue
from data_engine.review.simulate import simulate_reviews
from data_engine.ship.files import evaluate_file, predict_file
from data_engine.ship.step import ship_step
from data_engine.steps import mine_step
from data_engine.store.warehouse import open_warehouse
from data_engine.tasks import task_for
from tests.homes import make_home

ROUNDS = 3


def _config(features: list[str], budget: int) -> str:
    return f"""[dataset]
name = "numbers"
modality = "tabular"
id_column = "id"
label_column = "target"
feature_columns = {json.dumps(features)}
task = "regression"

[mining]
n_jobs = 1

[review]
budget = {budget}
"""


def _home(root: Path, name: str, labels: np.ndarray, X: pd.DataFrame, y: np.ndarray, train: np.ndarray,
          gold: np.ndarray, budget: int):
    home = make_home(root, _config(list(X.columns), budget), name=name)
    ids = np.array([f"p{i:04d}" for i in range(len(y))], dtype=object)
    (home.landing / "gold").mkdir(exist_ok=True)
    for part, values, path in ((train, labels, home.landing / "train.csv"), (gold, y[gold], home.landing / "gold" / "gold.csv")):
        frame = X.iloc[part].copy()
        frame.insert(0, "id", ids[part])
        frame["target"] = values
        frame.to_csv(path, index=False)
    ingest_step(home, [home.landing / "train.csv"])
    ingest_step(home, [home.landing / "gold" / "gold.csv"])
    (home.root / "oracle.jsonl").write_text(
        "".join(json.dumps({"id": i, "label": float(v)}) + "\n" for i, v in zip(ids[train], y[train])), encoding="utf-8")
    return home


def run_loop(root: Path, X: pd.DataFrame, y: np.ndarray, *, seed: int, rounds: int,
             reviews_per_error: float = 1.5) -> dict:
    """A fifth of ``y`` as gold, 15 % gross value errors in the rest; the clean reference and
    ``rounds`` rounds of mine -> review (fake server, perfect simulated reviewer) -> pull -> ship,
    each round's budget an equal share of ``reviews_per_error`` reviews per injected error."""
    gold = np.arange(0, len(y), 5)
    train = np.setdiff1d(np.arange(len(y)), gold)
    noisy, injected = inject_value_errors(y[train], 0.15, seed=seed)
    budget = int(reviews_per_error * len(injected)) // rounds
    home = _home(root, "noisy", noisy, X, y, train, gold, budget)
    clean = _home(root, "clean", y[train], X, y, train, gold, budget)
    with open_warehouse(clean) as con:
        clean_step = ship_step(con, clean)
    with open_warehouse(home) as con:
        first = ship_step(con, home)
    client, task = FakeReviewClient(), task_for(home.config.dataset)
    verdicts, reviews = [], 0
    for _ in range(rounds):
        mine_step(home)
        with open_warehouse(home) as con:
            pushed = push_queue(con, client, home.config)
        reviews += simulate_reviews(client, pushed.project_id, read_oracle(oracle_path(home), task), [],
                                    accuracy=1.0, label_task=task).answered
        with open_warehouse(home) as con:
            pull_verdicts(con, client, home.config)
            verdicts.append(ship_step(con, home).verdict)
    noisy_mae, clean_mae = first.verdict.candidate.metric("mae"), clean_step.verdict.candidate.metric("mae")
    final_mae = evaluate_file(home, home.landing / "gold" / "gold.csv").evaluation.metric("mae")
    return {"home": home, "first": first, "verdicts": verdicts, "reviews": reviews, "injected": len(injected),
            "noisy_mae": noisy_mae, "clean_mae": clean_mae, "final_mae": final_mae,
            "recovered": (noisy_mae - final_mae) / (noisy_mae - clean_mae)}


@pytest.fixture(scope="module")
def loop(tmp_path_factory: pytest.TempPathFactory) -> dict:
    X, y = load_diabetes_frame()
    return run_loop(tmp_path_factory.mktemp("regression-loop"), X, y, seed=0, rounds=ROUNDS)


def test_the_gate_compares_mae_with_wilcoxon(loop) -> None:
    first, verdicts = loop["first"], loop["verdicts"]
    assert first.verdict.promote and first.verdict.reason.startswith("first model: no champion yet; mae ")
    assert "gold recall" not in first.verdict.reason  # numbers have no classes to name
    better = verdicts[0]
    assert better.metric == "mae" and better.promote
    assert better.reason.startswith("better beyond what gold resolves (alpha 0.05)")
    assert "Wilcoxon signed-rank" in better.reason and better.headline.diff < 0


def test_the_loop_on_diabetes_closes_four_fifths_of_the_gap(loop) -> None:
    # Measured: MAE on gold 47.15 as landed, 41.70 on the true labels, 42.48 after three rounds of
    # 26 reviews (86 % of the gap) for 53 injected errors. Before spare reviews went down the
    # ranking past the flags the loop stopped at 41 reviews and 43.54 (66 %): the errors left had
    # landed within two robust sd of the prediction.
    assert loop["reviews"] <= 1.5 * loop["injected"]
    assert loop["recovered"] >= 0.8
    home = loop["home"]
    with open_warehouse(home, read_only=True) as con:
        ranked = con.execute("SELECT count(*) FROM review_queue WHERE selection = 'ranked'").fetchone()[0]
    assert ranked > 0  # the flags alone left budget unused


def _wine_alcohol() -> tuple[pd.DataFrame, np.ndarray]:
    """scikit-learn's bundled wine set as a regression nobody tuned to: alcohol from the other 12 measurements."""
    from sklearn.datasets import load_wine

    data = load_wine(as_frame=True).data
    return data.drop(columns=["alcohol"]).rename(columns=lambda c: c.replace("/", "_")), data["alcohol"].to_numpy(float)


def test_the_loop_on_wine_alcohol_closes_the_gap_within_the_budget(tmp_path: Path) -> None:
    """Held-out real data (142 training rows, 21 errors). Measured: MAE 0.534 as landed, 0.435 on
    the true labels, 0.427 after three rounds of 10 reviews (108 %; before the ranked reviews:
    26 reviews, 100 %)."""
    X, y = _wine_alcohol()
    result = run_loop(tmp_path, X, y, seed=0, rounds=3)
    assert result["reviews"] <= 1.5 * result["injected"]
    assert result["recovered"] >= 0.8


def test_the_loop_on_friedman3_closes_the_gap_within_the_budget(tmp_path: Path) -> None:
    """Held-out data (the flag rule was chosen on diabetes and Friedman #1): scikit-learn's
    generated Friedman #3, 700 rows. Measured: MAE 0.184 as landed, 0.091 on the true labels,
    0.091 after one round of 126 reviews for 84 injected errors (101 % of the gap; before the
    ranked reviews, with a budget of 80: 80 reviews, 0.103, 88 %)."""
    from sklearn.datasets import make_friedman3

    X, y = make_friedman3(700, noise=0.1, random_state=11)
    X = pd.DataFrame(X, columns=[f"x{i}" for i in range(4)])
    result = run_loop(tmp_path, X, y, seed=1, rounds=1)
    assert result["reviews"] <= 1.5 * result["injected"]
    assert result["recovered"] >= 0.8


def test_served_numbers_with_intervals(loop) -> None:
    home = loop["home"]
    frame, rejected, version = predict_file(home, home.landing / "gold" / "gold.csv")
    assert not rejected and list(frame.columns[:4]) == ["id", "predicted_value", "lower", "upper"]
    assert (frame["lower"] < frame["predicted_value"]).all() and (frame["predicted_value"] < frame["upper"]).all()
    out = evaluate_file(home, home.landing / "gold" / "gold.csv").to_json(task_for(home.config.dataset))
    assert list(out)[:4] == ["mae", "rmse", "r2", "n"] and out["n"] == 89


def test_flags_at_least_as_good_as_cleanlab() -> None:
    result = run_regression_detect_benchmark(noise=0.1, seed=0, n_jobs=1)
    engine, baseline = result["engine"], result["baseline"]
    # Measured: engine flags F1 0.576 (22 flagged), first 44: 0.659; CleanLearning 0.0 (nothing
    # flagged), first 44: 0.591.
    assert engine["f1"] >= baseline["f1"] and engine["top_k_precision"] >= baseline["top_k_precision"]
