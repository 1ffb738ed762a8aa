"""The regression task plug-in, method by method, with values worked out by hand."""

from __future__ import annotations

import random

import numpy as np
import pandas as pd
import pytest

from data_engine.errors import EngineError
from data_engine.review.labelstudio.labeling import DISCARD_CHOICE, FROM_NAME, TO_NAME
from data_engine.store.config import parse_config
from data_engine.tasks import Regression, task_for
from data_engine.tasks.regression import decimals_of
from data_engine.tasks.regression_issues import flag_errors
from data_engine.tasks.regression_metrics import paired_regression_test, regression_metrics
from data_engine.tasks.regression_model import IntervalRegressor
from data_engine.tasks.regression_oof import error_weights, regression_out_of_fold, robust_scale, with_interval
from data_engine.tasks.regression_values import canonical_number

Z90 = 1.6448536269514722  # Φ⁻¹(0.95)


def _task(label_range: list[float] | None = None) -> Regression:
    ds = {"name": "t", "modality": "tabular", "label_column": "y", "feature_columns": ["x"], "task": "regression"}
    if label_range is not None:
        ds["label_range"] = label_range
    task = task_for(parse_config({"dataset": ds}).dataset)
    assert isinstance(task, Regression)
    return task


@pytest.mark.parametrize(("value", "stored"), [
    ("3", "3.0"), (" 2.50 ", "2.5"), (-0.0, "0.0"), (7, "7.0"), ("1e2", "100.0"), (0.1 + 0.2, "0.30000000000000004"),
])
def test_one_spelling_per_number(value: object, stored: str) -> None:
    assert canonical_number(value) == stored


@pytest.mark.parametrize("value", [True, "inf", "nan", "1,5", "abc", None, [1]])
def test_what_is_not_a_number_is_refused(value: object) -> None:
    with pytest.raises(EngineError, match="is not a"):
        canonical_number(value)


def test_encode_decode_round_trip() -> None:
    task = Regression()
    y = task.encode(["3.0", "0.1", "-2.5"], [])
    assert y.dtype == np.float64 and y.tolist() == [3.0, 0.1, -2.5]
    assert task.decode(y, []) == ["3.0", "0.1", "-2.5"]
    with pytest.raises(ValueError, match="label 'x' is not a number"):
        task.encode(["1.0", "x"], [])
    assert decimals_of(["3.25", "1.0", "1e-05", "120.0"]) == 5
    assert decimals_of(["3.0", "12.0"]) == 0


def test_error_weights_are_inverse_squared_mae() -> None:
    y = np.zeros(4)
    members = np.array([[1.0, -1.0, 1.0, -1.0], [2.0, -2.0, 2.0, -2.0]])  # MAE 1 and 2
    assert error_weights(members, y) == pytest.approx([0.8, 0.2])


def test_interval_from_robust_residual_scale() -> None:
    # Residuals -2..2: MAD 1, so s = 1.4826; the scaled residuals' robust scale is 1, so the
    # interval is ± z90 · 1.4826 around each prediction.
    pred = np.array([10.0, 20.0, 30.0, 40.0, 50.0])
    y = pred + np.array([-2.0, -1.0, 0.0, 1.0, 2.0])
    out = with_interval(pred, y)
    half = Z90 * 1.4826
    assert out[:, 0].tolist() == pred.tolist()
    assert out[:, 1] == pytest.approx(pred - half) and out[:, 2] == pytest.approx(pred + half)
    # A gross error does not widen it (the MAD ignores it): residual 1000 in place of 2.
    y2 = y.copy()
    y2[4] = pred[4] + 1000.0
    assert with_interval(pred, y2)[:, 2] - pred == pytest.approx(np.full(5, half))
    assert robust_scale(np.array([-2.0, -1.0, 0.0, 1.0, 1000.0])) == pytest.approx(1.4826)


def test_flag_rule_is_two_robust_sd() -> None:
    # An interval of ± z90 (sd 1): the flag interval is ± 2.
    pred = np.array([[0.0, -Z90, Z90]] * 4)
    assert flag_errors(np.array([1.9, -1.9, 2.1, -2.1]), pred).tolist() == [False, False, True, True]


def test_label_issues_flag_a_gross_error_with_words() -> None:
    rng = np.random.default_rng(0)
    pred_value = rng.uniform(0, 100, 200).round(1)
    y = (pred_value + rng.uniform(-1, 1, 200)).round(1)  # honest noise, no tails; one decimal as in a file
    y[7] = pred_value[7] + 40.0  # a gross value error
    pred = with_interval(pred_value, y)
    issues = Regression().label_issues(y, pred, [])
    assert np.flatnonzero(issues.is_issue).tolist() == [7]
    assert int(np.argmin(issues.scores)) == 7 and issues.scores.shape == (200,)
    assert issues.suggested[7] == canonical_number(round(pred_value[7], 1))
    lo, hi = (float(f"{v:.1f}") for v in pred[7, 1:])
    assert issues.detail[7] == f"given {y[7]:g}, predicted {pred_value[7]:g} [{lo:g}, {hi:g}]"
    assert issues.detail[0] == "value agrees with the model"
    assert issues.summary["flagged"] == 1


def test_out_of_fold_predictions_with_intervals() -> None:
    from sklearn.linear_model import Ridge
    from sklearn.neighbors import KNeighborsRegressor

    rng = np.random.default_rng(1)
    X = pd.DataFrame({"x": rng.uniform(-3, 3, 300)})
    y = 4.0 * X["x"].to_numpy() + rng.normal(0, 0.5, 300)
    oof = regression_out_of_fold({"linear": Ridge(), "knn": KNeighborsRegressor(10)}, X, y, folds=5, seed=0)
    assert oof.probs.shape == (300, 3) and oof.n_folds == 5 and set(np.unique(oof.folds)) == set(range(5))
    assert sum(oof.weights.values()) == pytest.approx(1.0) and oof.weights["linear"] > oof.weights["knn"]
    assert np.all(oof.probs[:, 1] < oof.probs[:, 0]) and np.all(oof.probs[:, 0] < oof.probs[:, 2])
    covered = np.mean((y >= oof.probs[:, 1]) & (y <= oof.probs[:, 2]))
    assert 0.85 <= covered <= 0.97  # nominal 0.9 on clean Gaussian noise
    assert np.mean(np.abs(oof.probs[:, 0] - y)) < 0.6


def test_review_config_and_answers() -> None:
    task = _task([0, 500])
    xml = task.labeling_config("<Text name='item' value='$text'/>", "", [], from_name=FROM_NAME, to_name=TO_NAME,
                               discard=DISCARD_CHOICE, partner_prefix="duplicate_")
    assert f'<Number name="{FROM_NAME}" toName="{TO_NAME}" step="any" min="0.0" max="500.0"/>' in xml
    assert f'<Choice value="{DISCARD_CHOICE}"/>' in xml and "$suggested_label" in xml and "$label_note" in xml
    filled = task.prediction_result("31.5", from_name=FROM_NAME, to_name=TO_NAME)
    assert filled == [{"from_name": FROM_NAME, "to_name": TO_NAME, "type": "number", "value": {"number": 31.5}}]
    assert task.answer_label(filled, from_name=FROM_NAME) == "31.5"
    discard = task.prediction_result(DISCARD_CHOICE, from_name=FROM_NAME, to_name=TO_NAME)
    assert task.answer_label(discard, from_name=FROM_NAME) == DISCARD_CHOICE
    # The discard wins over a number left in the field; malformed regions are ignored.
    assert task.answer_label(filled + discard, from_name=FROM_NAME) == DISCARD_CHOICE
    bad = [{"from_name": FROM_NAME, "type": "number", "value": {"number": "x"}}, "junk", {"value": 3}]
    assert task.answer_label(bad, from_name=FROM_NAME) is None
    assert task.answer_label([], from_name=FROM_NAME) is None


def test_consensus_of_numbers() -> None:
    task = Regression()
    assert task.consensus(["120", "121", "119.5"]) == "120.0"  # within 5 % of the median
    assert task.consensus(["120", "12"]) is None  # disagree: pending
    assert task.consensus([DISCARD_CHOICE, DISCARD_CHOICE, "5"]) == DISCARD_CHOICE
    assert task.consensus([DISCARD_CHOICE, "5"]) is None
    assert task.consensus(["0", "0.0"]) == "0.0"
    assert task.agreement(["120", "121", "12"], "120.0") == pytest.approx(2 / 3)


def test_oracle_and_wrong_answers() -> None:
    task = Regression()
    assert task.oracle_label(7) == "7.0" and task.oracle_label(" 2.50") == "2.5"
    with pytest.raises(ValueError, match="is not a number"):
        task.oracle_label("seven")
    wrong = float(task.wrong_answer("100.0", [], random.Random(0)))
    assert 50.0 <= wrong <= 150.0 and abs(wrong - 100.0) >= 10.0


def test_metrics_by_hand() -> None:
    m = Regression().metrics(np.array(["1.0", "2.0", "3.0"]), np.array([[1.0, 0, 2], [2.0, 1, 3], [5.0, 4, 6]]), [])
    assert m == pytest.approx({"mae": 2 / 3, "rmse": (4 / 3) ** 0.5, "r2": -1.0})
    assert regression_metrics(np.array([]), np.array([])) == {"mae": None, "rmse": None, "r2": None}
    assert not Regression().higher_is_better("mae") and Regression().higher_is_better("r2")


def test_paired_test_wilcoxon_on_absolute_errors() -> None:
    y = np.zeros(10)
    champ = np.arange(1.0, 11.0)  # errors 1..10
    cand = champ - 0.5  # every error smaller by 0.5
    d = paired_regression_test(y, cand, champ, "mae", alpha=0.05)
    assert d.method == "Wilcoxon signed-rank" and d.diff == pytest.approx(-0.5)
    assert d.p_better == pytest.approx(1 / 1024) and d.p_worse == pytest.approx(1.0)
    assert d.low == pytest.approx(-0.5) and d.high == pytest.approx(-0.5) and d.confidence == pytest.approx(0.9)
    same = paired_regression_test(y, champ, champ, "rmse", alpha=0.05)
    assert (same.diff, same.p_worse, same.p_better) == (0.0, 1.0, 1.0)
    worse = paired_regression_test(y, champ + 3.0, champ, "rmse", alpha=0.05)
    assert worse.diff > 0 and worse.p_worse == 0.0 and worse.p_better == 1.0
    r2 = paired_regression_test(np.arange(10.0), np.arange(10.0) + 1.0, np.arange(10.0), "r2", alpha=0.05)
    assert r2.diff == pytest.approx(-10 / 82.5) and r2.p_worse == 0.0
    with pytest.raises(ValueError, match="unknown regression metric"):
        paired_regression_test(y, cand, champ, "accuracy", alpha=0.05)


def test_outputs() -> None:
    task = Regression()
    assert task.predict_output(np.array([31.2345678, 25.0, 38.0]), []) == {
        "value": 31.2346, "lower": 25.0, "upper": 38.0, "coverage": 0.9}
    assert task.evaluate_output({"mae": 1.5, "rmse": 2.0, "r2": 0.5, "extra": 1}, 40) == {
        "mae": 1.5, "rmse": 2.0, "r2": 0.5, "n": 40}
    table = task.predict_table(np.array([[1.0, 0.5, 1.5]]), [])
    assert list(table) == ["predicted_value", "lower", "upper"]
    assert task.prediction_columns([]) == ["prediction", "lower", "upper"] and task.prediction_width([]) == 3


def test_served_model_carries_its_interval() -> None:
    from sklearn.linear_model import Ridge

    rng = np.random.default_rng(2)
    X = pd.DataFrame({"x": rng.uniform(-3, 3, 400)})
    y = 2.0 * X["x"].to_numpy() + rng.normal(0, 1.0, 400)
    model = IntervalRegressor(Ridge()).fit(X, y)
    low, high = model.interval_
    assert high == pytest.approx(-low) and high == pytest.approx(Z90, rel=0.15)  # noise sd 1
    pred = Regression().predict(model, X, [])
    assert pred.shape == (400, 3) and np.allclose(pred[:, 2] - pred[:, 0], high)


def test_external_predictions_are_checked() -> None:
    task = Regression()
    assert task.prediction_problem(np.array([[1.0, 0.5, 1.5], [2.0, 2.0, 2.0]])) is None
    assert task.prediction_problem(np.array([[1.0, 0.5, 1.5], [2.0, 2.5, 3.0]])) == (
        1, None, "the interval [2.5, 3] does not hold the prediction 2")
    assert task.prediction_problem(np.array([[np.nan, 0.5, 1.5]])) == (0, 0, "is not a number")


def test_mix_and_folds() -> None:
    task = Regression()
    y = np.zeros(4)
    mixed, weights = task.mix({"a": np.array([[1.0, 0, 0], [-1, 0, 0], [1, 0, 0], [-1, 0, 0]]),
                               "b": np.array([[2.0, 0, 0], [-2, 0, 0], [2, 0, 0], [-2, 0, 0]])}, y)
    assert weights == pytest.approx({"a": 0.8, "b": 0.2}) and mixed[:, 0] == pytest.approx([1.2, -1.2, 1.2, -1.2])
    folds, n, rare = task.fold_ids(np.arange(10.0), [], folds=5, seed=0)
    assert n == 5 and rare == () and sorted(np.bincount(folds).tolist()) == [2, 2, 2, 2, 2]


def test_the_gate_metric_is_the_tasks() -> None:
    from data_engine.errors import ConfigError
    from data_engine.mine.names import check_names
    from data_engine.tasks import gate_metric

    base = {"dataset": {"name": "t", "modality": "tabular", "label_column": "y", "feature_columns": ["x"],
                        "task": "regression"}}
    assert gate_metric(parse_config(base)) == "mae"
    assert gate_metric(parse_config({**base, "gate": {"metric": "r2"}})) == "r2"
    with pytest.raises(ConfigError, match="gate.metric = 'accuracy': not a metric of task 'regression' "
                                          r"\(one of 'mae', 'rmse', 'r2'\)"):
        check_names(parse_config({**base, "gate": {"metric": "accuracy"}}))
    classes = {"dataset": {**base["dataset"], "task": "classification"}}
    assert gate_metric(parse_config(classes)) == "accuracy"
