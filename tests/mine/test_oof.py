"""Out-of-fold probabilities: never in-sample, all classes present, rare classes survive."""

from __future__ import annotations

import warnings

import numpy as np
import pandas as pd
import pytest
from sklearn.linear_model import LogisticRegression
from sklearn.neighbors import KNeighborsClassifier

from data_engine.errors import EngineError
from data_engine.tasks.oof import (
    MIN_PROBABILITY,
    RareClassWarning,
    assign_folds,
    ensemble_out_of_fold_probabilities,
    fit_subset,
    mixture_weights,
    out_of_fold_probabilities,
)


def frame(n: int, seed: int = 0) -> pd.DataFrame:
    return pd.DataFrame(np.random.default_rng(seed).normal(size=(n, 3)), columns=["a", "b", "c"])


def test_predictions_are_out_of_sample():
    # Random labels: a 1-nearest-neighbour model is perfect in-sample and at chance out of it.
    X = frame(300)
    y = np.random.default_rng(1).integers(0, 2, 300)
    result = out_of_fold_probabilities(KNeighborsClassifier(1), X, y, 2, folds=5, seed=0)
    accuracy = (result.probs.argmax(axis=1) == y).mean()
    assert accuracy < 0.65
    assert result.probs.shape == (300, 2)
    np.testing.assert_allclose(result.probs.sum(axis=1), 1.0)
    assert sorted(np.unique(result.folds)) == [0, 1, 2, 3, 4]


def test_folds_are_stratified_and_reproducible():
    y = np.repeat([0, 1, 2], [50, 30, 20])
    folds, n_folds, rare = assign_folds(y, 3, folds=5, seed=3)
    assert n_folds == 5 and rare == ()
    counts = pd.crosstab(folds, y).to_numpy()
    assert (counts == np.array([10, 6, 4])).all()
    again, _, _ = assign_folds(y, 3, folds=5, seed=3)
    np.testing.assert_array_equal(folds, again)


def test_parallel_folds_give_the_same_result():
    X = frame(120)
    y = (X["a"] > 0).astype(int).to_numpy()
    one = out_of_fold_probabilities(LogisticRegression(), X, y, 2, n_jobs=1)
    two = out_of_fold_probabilities(LogisticRegression(), X, y, 2, n_jobs=2)
    np.testing.assert_allclose(one.probs, two.probs)


def test_rare_class_warns_and_keeps_all_columns():
    X = frame(62)
    y = np.r_[np.zeros(30, int), np.ones(30, int), [2, 2]]
    with pytest.warns(RareClassWarning, match="fewer labeled examples than the 5 folds"):
        result = out_of_fold_probabilities(LogisticRegression(), X, y, 4, folds=5)
    assert result.rare_classes == (2,)
    assert result.probs.shape == (62, 4)
    assert (result.probs[:, 3] == 0).all()  # a class nobody labeled gets probability 0
    np.testing.assert_allclose(result.probs.sum(axis=1), 1.0)


def test_a_singleton_class_does_not_crash():
    X = frame(41)
    y = np.r_[np.zeros(20, int), np.ones(20, int), [2]]
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RareClassWarning)
        result = out_of_fold_probabilities(LogisticRegression(), X, y, 3, folds=5)
    # Its own fold never saw the class: probability 0 there, which the label detector must tolerate.
    assert result.probs[40, 2] == 0.0


def test_folds_shrink_when_no_class_has_enough_examples():
    X = frame(6)
    y = np.array([0, 0, 0, 1, 1, 1])
    with pytest.warns(RareClassWarning):
        result = out_of_fold_probabilities(LogisticRegression(), X, y, 2, folds=5)
    assert result.n_folds == 3


@pytest.mark.parametrize("labels, message", [
    (np.zeros(10, int), "at least two classes"),
    (np.array([0, 1]), "at least two labeled examples of some class"),
    (np.array([0, 1, 5, 1]), r"class indices in \[0, 2\)"),
])
def test_unusable_labels_raise_engine_errors(labels, message):
    with pytest.raises(EngineError, match=message):
        out_of_fold_probabilities(LogisticRegression(), frame(len(labels)), labels, 2)


def test_mixture_weights_favour_the_member_that_explains_the_labels():
    rng = np.random.default_rng(0)
    y = rng.integers(0, 2, 500)
    good = np.where(y[:, None] == np.arange(2), 0.9, 0.1)
    useless = np.full((500, 2), 0.5)
    w = mixture_weights(np.stack([useless, good]), y)
    assert w[1] > 0.95 and np.isclose(w.sum(), 1.0)
    # Two equally good members share the weight.
    np.testing.assert_allclose(mixture_weights(np.stack([good, good]), y), [0.5, 0.5])


def test_mixture_weights_take_the_em_steps_of_the_responsibilities():
    # The EM step as it is usually written (responsibilities r_ij = w_j g_ij / sum_l w_l g_il, then
    # w_j = mean_i r_ij), on three members of random quality: the same weights step by step.
    rng = np.random.default_rng(5)
    n, k = 2_000, 4
    y = rng.integers(0, k, n)
    probs = rng.dirichlet(np.full(k, 0.7), size=(3, n))
    probs[0, np.arange(n), y] += 0.5  # one member knows the labels better
    probs[0] /= probs[0].sum(axis=1, keepdims=True)
    given = np.clip(probs[:, np.arange(n), y], MIN_PROBABILITY, 1.0).T
    w = np.full(3, 1 / 3)
    for steps in range(1, 31):
        resp = given * w
        resp /= resp.sum(axis=1, keepdims=True)
        w = resp.mean(axis=0)
        np.testing.assert_allclose(mixture_weights(probs, y, iterations=steps), w, rtol=1e-12, atol=1e-15)
    assert w[0] == w.max() and np.isclose(w.sum(), 1.0)


def test_ensemble_out_of_fold_uses_shared_folds_and_reports_weights():
    X = frame(150)
    y = (X["a"] + 0.1 * X["b"] > 0).astype(int).to_numpy()
    members = {"linear": LogisticRegression(), "knn": KNeighborsClassifier(5)}
    result = ensemble_out_of_fold_probabilities(members, X, y, 2, folds=3, n_jobs=2)
    single = out_of_fold_probabilities(LogisticRegression(), X, y, 2, folds=3)
    np.testing.assert_array_equal(result.folds, single.folds)
    assert set(result.weights) == {"linear", "knn"} and np.isclose(sum(result.weights.values()), 1.0)
    assert result.weights["linear"] > result.weights["knn"]  # the true boundary is linear
    np.testing.assert_allclose(result.probs.sum(axis=1), 1.0)


def test_fold_models_learn_from_a_capped_sample_that_keeps_small_classes():
    labels = np.r_[np.zeros(9000, int), np.ones(1000, int)]
    rows = np.arange(10_000)
    kept = fit_subset(rows, labels, max_rows=3000, seed=0)
    assert (labels[kept] == 1).sum() == 1000  # a class under SMALL_CLASS_ROWS is kept whole
    assert 2300 < (labels[kept] == 0).sum() < 3100
    assert len(np.unique(kept)) == len(kept)
    np.testing.assert_array_equal(fit_subset(rows[:500], labels, max_rows=3000, seed=0), rows[:500])


def test_held_out_rows_predicted_in_blocks_equal_one_block(monkeypatch):
    import data_engine.tasks.oof as oof

    X = frame(600, seed=3)
    y = np.random.default_rng(3).integers(0, 3, 600)
    members = {"linear": LogisticRegression(), "knn": KNeighborsClassifier(5)}
    whole = ensemble_out_of_fold_probabilities(members, X, y, 4, folds=5, seed=1)
    monkeypatch.setattr(oof, "PREDICT_BLOCK_ROWS", 7)  # every fold's 120 held-out rows in 18 blocks
    blocked = ensemble_out_of_fold_probabilities(members, X, y, 4, folds=5, seed=1)
    np.testing.assert_array_equal(blocked.probs, whole.probs)
    assert (blocked.probs[:, 3] == 0).all()  # a class no fold saw keeps its column, at 0


def test_fold_calls_are_made_only_when_handed_out():
    from data_engine.compute.backend import LazyCalls, LocalBackend

    made: list[int] = []

    def make(i: int) -> tuple[int, int]:
        made.append(i)
        return (i, 2)

    calls = LazyCalls(3, make)
    assert len(calls) == 3 and made == []
    assert calls[-1] == (2, 2) and calls[0:2] == [(0, 2), (1, 2)] and made == [2, 0, 1]
    with pytest.raises(IndexError):
        calls[3]
    made.clear()
    assert LocalBackend(1).starmap(pow, calls) == [0, 1, 4] and made == [0, 1, 2]
