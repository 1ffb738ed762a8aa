"""Out-of-fold (out-of-sample) predicted probabilities by stratified K-fold cross-validation.

Every labeled example is predicted by a model that never saw it, which is what confident learning
needs. The folds are independent, so they are fitted in parallel by the compute back-end
(:mod:`data_engine.compute`: joblib processes here, or tasks on a Dask cluster); every fit caps
native thread pools at one thread so that cores are not oversubscribed. Folds and seeds are fixed
before the fits are handed out, so where they run does not change the result.
"""

from __future__ import annotations

import warnings
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pandas as pd

from data_engine.compute.backend import Backend, LazyCalls, LocalBackend
from data_engine.errors import EngineError


def single_threaded() -> Any:
    """A context capping OpenMP/BLAS pools at one thread.

    Parallelism comes from fitting folds in separate processes. Measured here, a
    HistGradientBoosting fit with two OpenMP threads on a busy two-core machine took ten times
    longer than with one (threads spin waiting for each other), so each worker keeps to one.
    """
    from threadpoolctl import threadpool_limits

    return threadpool_limits(limits=1)


# Fold models learn from at most this many rows (see fit_subset); 200,000 rows keep every class
# of a 10-class problem well represented while a million-row fold fits in minutes on two cores.
MAX_FIT_ROWS = 200_000
# A fold model predicts its held-out rows this many at a time (see _fit_predict); a set of up to
# five times this many rows is predicted in one block, as before the blocks.
PREDICT_BLOCK_ROWS = 100_000
# Classes with fewer rows than this in a fold's training part are never subsampled.
SMALL_CLASS_ROWS = 2_000


class RareClassWarning(UserWarning):
    """Some classes have fewer labeled examples than there are folds."""


@dataclass(frozen=True)
class OOFResult:
    """Out-of-fold predictions.

    probs : np.ndarray of shape (N, K)
        Predicted probabilities, columns in the dataset's class order; a class absent from a
        fold's training part gets probability 0 in that fold.
    folds : np.ndarray of shape (N,)
        The fold each example was held out in.
    rare_classes : tuple of int
        Classes with fewer labeled examples than folds (their predictions are less reliable).
    n_folds : int
        Folds actually used (fewer than asked when no class has enough examples).
    weights : dict of str to float
        For an ensemble, each member's weight in ``probs`` (see :func:`mixture_weights`).
    member_probs : dict of str to np.ndarray of shape (N, K)
        For an ensemble, each member's own out-of-fold probabilities (the served model's
        candidates are scored on them, :mod:`data_engine.mine.candidates`).
    """

    probs: np.ndarray
    folds: np.ndarray
    rare_classes: tuple[int, ...]
    n_folds: int
    weights: dict[str, float] = field(default_factory=dict)
    member_probs: dict[str, np.ndarray] = field(default_factory=dict)


def assign_folds(labels: np.ndarray, n_classes: int, *, folds: int, seed: int) -> tuple[np.ndarray, int, tuple[int, ...]]:
    """Stratified fold ids for ``labels`` (shape (N,), ints in [0, K)).

    Returns the fold of each example (shape (N,)), the number of folds used and the rare classes.
    Classes with fewer than ``folds`` examples are warned about (their examples are spread over
    as many folds as they have members); if even the largest class has fewer than ``folds``
    examples, the number of folds drops to that size.
    """
    from sklearn.model_selection import StratifiedKFold

    labels = np.asarray(labels)
    if labels.ndim != 1 or len(labels) == 0:
        raise EngineError("out-of-fold predictions need at least one labeled example")
    counts = np.bincount(labels, minlength=n_classes)
    present = np.flatnonzero(counts)
    if len(present) < 2:
        raise EngineError("out-of-fold predictions need labeled examples of at least two classes")
    n_folds = int(min(folds, counts.max()))
    if n_folds < 2:
        raise EngineError("out-of-fold predictions need at least two labeled examples of some class")
    rare = tuple(int(c) for c in present[counts[present] < folds])
    if rare:
        msg = (f"{len(rare)} class(es) have fewer labeled examples than the {folds} folds "
               f"(smallest: {int(counts[present].min())}); their out-of-fold predictions come from models "
               f"that saw few or none of them, so label issues in them are less reliable")
        # A warning for the caller to show or not (the mining summary lists these classes and
        # `mine` says it once); a log line here printed on every call of a run.
        warnings.warn(msg, RareClassWarning, stacklevel=2)
    with warnings.catch_warnings():
        # The same fact as RareClassWarning, in scikit-learn's words.
        warnings.filterwarnings("ignore", message="The least populated class", category=UserWarning)
        splitter = StratifiedKFold(n_splits=n_folds, shuffle=True, random_state=seed)
        fold_of = np.empty(len(labels), dtype=np.int32)
        for k, (_, test) in enumerate(splitter.split(np.zeros(len(labels)), labels)):
            fold_of[test] = k
    return fold_of, n_folds, rare


def _fit_predict(estimator: Any, X_train: pd.DataFrame, y_train: np.ndarray, X_test: pd.DataFrame,
                 n_classes: int) -> np.ndarray:
    """Fit on the training part, return probabilities of the test part in all ``n_classes`` columns."""
    full = np.zeros((len(X_test), n_classes), dtype=np.float64)
    with single_threaded():
        estimator.fit(X_train, y_train)
        columns = np.asarray(estimator.classes_, dtype=int)
        # In blocks of rows: the features a pipeline makes of the rows it predicts (one-hot
        # categories, text n-grams) then take memory for one block, not for a whole fold.
        for lo in range(0, len(X_test), PREDICT_BLOCK_ROWS):
            full[lo:lo + PREDICT_BLOCK_ROWS, columns] = estimator.predict_proba(X_test.iloc[lo:lo + PREDICT_BLOCK_ROWS])
    return full


def fit_subset(train: np.ndarray, labels: np.ndarray, *, max_rows: int, seed: int) -> np.ndarray:
    """The rows of ``train`` (indices, shape (M,)) a fold model learns from: all of them up to
    ``max_rows``, else a seeded random share, always keeping every row of a small class.

    Fold models on a million rows cost far more than the label-error check gains from them;
    capping the rows they learn from keeps the cost of a fold linear in the rows it predicts.
    """
    if len(train) <= max_rows:
        return train
    y = labels[train]
    counts = np.bincount(y)
    rng = np.random.default_rng(seed)
    keep = (rng.random(len(train)) < max_rows / len(train)) | (counts[y] < SMALL_CLASS_ROWS)
    return train[keep]


def out_of_fold_probabilities(estimator: Any, X: pd.DataFrame, labels: np.ndarray, n_classes: int, *,
                              folds: int = 5, seed: int = 0, n_jobs: int = 1,
                              compute: Backend | None = None) -> OOFResult:
    """Stratified K-fold out-of-fold probabilities.

    Parameters
    ----------
    estimator : scikit-learn classifier (unfitted; cloned per fold)
    X : pd.DataFrame of shape (N, D)
        The input columns the estimator reads.
    labels : np.ndarray of shape (N,)
        Given labels as ints in [0, K).
    n_classes : int
        K, the number of classes of the dataset (columns of the result).
    folds, seed, n_jobs
        Number of folds, shuffling seed, parallel fold fits (when ``compute`` is not given).
    compute : Backend, optional
        Where the fold fits run (default: ``n_jobs`` local processes).

    Returns
    -------
    OOFResult
    """
    from sklearn.base import clone

    labels = _checked_labels(X, labels, n_classes)
    fold_of, n_folds, rare = assign_folds(labels, n_classes, folds=folds, seed=seed)
    X = X.reset_index(drop=True)
    splits = _splits(fold_of, n_folds, labels, seed)
    compute = compute or LocalBackend(n_jobs)
    # Each call's rows are copied only when it is handed out (LazyCalls), not all folds' at once.
    calls = LazyCalls(len(splits), lambda k: (clone(estimator), X.iloc[splits[k][0]], labels[splits[k][0]],
                                              X.iloc[splits[k][1]], n_classes))
    parts = compute.starmap(_fit_predict, calls, description="out-of-fold fits", unit="fits")
    probs = np.empty((len(labels), n_classes), dtype=np.float64)
    for (_, test), part in zip(splits, parts):
        probs[test] = part
    return OOFResult(probs=probs, folds=fold_of, rare_classes=rare, n_folds=n_folds)


def _splits(fold_of: np.ndarray, n_folds: int, labels: np.ndarray, seed: int) -> list[tuple[np.ndarray, np.ndarray]]:
    """(rows to fit, rows to predict) per fold."""
    return [(fit_subset(np.flatnonzero(fold_of != k), labels, max_rows=MAX_FIT_ROWS, seed=seed + k),
             np.flatnonzero(fold_of == k)) for k in range(n_folds)]


# EM iterations for the mixture weights; the log-likelihood is concave in the weights, and 200
# steps move them by less than 1e-4 on the benchmark sets.
MIXTURE_ITERATIONS = 200
# Probabilities are floored here before taking likelihoods: one member's hard zero must not veto it.
MIN_PROBABILITY = 1e-6


def mixture_weights(member_probs: np.ndarray, labels: np.ndarray, *, iterations: int = MIXTURE_ITERATIONS) -> np.ndarray:
    """Convex weights of M members that maximise the out-of-fold likelihood of the given labels.

    Parameters
    ----------
    member_probs : np.ndarray of shape (M, N, K)
        Each member's out-of-fold probabilities.
    labels : np.ndarray of shape (N,)
        Given labels (class indices).

    Returns
    -------
    np.ndarray of shape (M,), non-negative, summing to 1.

    Written by hand (EM for the weights of a fixed mixture, a few vectorised lines) because
    scikit-learn's stacking fits a meta-model with nested cross-validation, K times the cost. On
    noisy labels the likelihood still ranks members by how well they model the data: with 20 %
    flipped labels the weights went to the linear member on the generated tabular set (F1 of the
    label flags 0.76 with equal weights, 0.86 weighted) and stayed mixed on digits (0.948 -> 0.955).
    """
    m, n = member_probs.shape[0], member_probs.shape[1]
    if m == 1 or n == 0:
        return np.full(m, 1.0 / m)
    given = np.ascontiguousarray(np.clip(member_probs[:, np.arange(n), labels], MIN_PROBABILITY, 1.0),
                                 dtype=np.float64)  # (M, N)
    w = np.full(m, 1.0 / m)
    inverse = np.empty(n)
    for _ in range(iterations):
        # The EM step w_j <- w_j * mean_i(g_ij / sum_l w_l g_il) as two matrix-vector products into
        # one buffer: the responsibilities written out as an (N, M) array each step took 9.4 s of 200
        # steps at a million rows (allocating them), this 0.5 s.
        np.dot(w, given, out=inverse)  # each row's likelihood under the mixture, shape (N,)
        np.reciprocal(inverse, out=inverse)
        w = w * (given @ inverse) / n
    return w


def ensemble_out_of_fold_probabilities(members: Mapping[str, Any], X: pd.DataFrame, labels: np.ndarray,
                                       n_classes: int, *, folds: int = 5, seed: int = 0,
                                       n_jobs: int = 1, compute: Backend | None = None) -> OOFResult:
    """Out-of-fold probabilities of several estimators on the same folds, mixed by :func:`mixture_weights`.

    ``members``: name -> unfitted estimator. All (member, fold) fits are handed to ``compute``
    at once (default: ``n_jobs`` local processes).
    """
    from sklearn.base import clone

    labels = _checked_labels(X, labels, n_classes)
    fold_of, n_folds, rare = assign_folds(labels, n_classes, folds=folds, seed=seed)
    X = X.reset_index(drop=True)
    splits = _splits(fold_of, n_folds, labels, seed)
    names = list(members)
    tasks = [(name, k) for name in names for k in range(n_folds)]
    # Each task gets only its own rows: a worker never holds the whole table.
    compute = compute or LocalBackend(n_jobs)
    # Rows are copied only when a call is handed out (LazyCalls): this process holds the calls in flight.
    calls = LazyCalls(len(tasks), lambda j: (clone(members[tasks[j][0]]), X.iloc[splits[tasks[j][1]][0]],
                                             labels[splits[tasks[j][1]][0]], X.iloc[splits[tasks[j][1]][1]], n_classes))
    parts = compute.starmap(_fit_predict, calls, description="out-of-fold fits", unit="fits")
    member_probs = np.empty((len(names), len(labels), n_classes), dtype=np.float64)
    for (name, k), part in zip(tasks, parts):
        member_probs[names.index(name), splits[k][1]] = part
    w = mixture_weights(member_probs, labels)
    probs = np.tensordot(w, member_probs, axes=1)
    return OOFResult(probs=probs, folds=fold_of, rare_classes=rare, n_folds=n_folds,
                     weights={name: float(v) for name, v in zip(names, w)},
                     member_probs={name: member_probs[i] for i, name in enumerate(names)})


def _checked_labels(X: pd.DataFrame, labels: np.ndarray, n_classes: int) -> np.ndarray:
    """``labels`` (shape (N,)) as int64 class indices, checked against ``X``'s rows and ``n_classes``."""
    labels = np.asarray(labels, dtype=np.int64)
    if len(X) != len(labels):
        raise EngineError(f"{len(X)} feature rows but {len(labels)} labels")
    if labels.min(initial=0) < 0 or labels.max(initial=0) >= n_classes:
        raise EngineError(f"labels must be class indices in [0, {n_classes})")
    return labels


def shuffled_folds(n: int, folds: int, seed: int, noun: str) -> tuple[np.ndarray, int, tuple[int, ...]]:
    """The fold of each of ``n`` examples (shape (n,)) by a seeded shuffle, the number of folds (at
    most one example per fold, at least two) and ``()`` (no rare classes): the folds of labels that are
    sets (spans, boxes), which no stratification fits. Raises ``EngineError`` for fewer than two ``noun``."""
    if n < 2:
        raise EngineError(f"out-of-fold predictions need at least two labeled {noun}")
    k = max(2, min(int(folds), n))
    rng = np.random.default_rng(seed)
    fold_of = np.empty(n, dtype=np.int64)
    fold_of[rng.permutation(n)] = np.arange(n) % k
    return fold_of, k, ()


def _fit_predict_packed(estimator: Any, X_train: pd.DataFrame, y_train: np.ndarray, X_test: pd.DataFrame) -> np.ndarray:
    """Fit on the training rows, return the test rows' packed predictions (``predict_proba``)."""
    with single_threaded():
        return estimator.fit(X_train, y_train).predict_proba(X_test)


def out_of_fold_packed(members: Mapping[str, Any], X: pd.DataFrame, y: np.ndarray, types: Any,
                       fold_of: np.ndarray, n_folds: int, *, width: int, compute: Backend | None = None,
                       n_jobs: int = 1, noun: str = "examples") -> OOFResult:
    """Out-of-fold packed predictions (each row ``width`` numbers: per-token tags, scored boxes) of each
    member on ``X`` (n rows) with set labels ``y`` (n, ...): each fold's rows predicted by a copy
    fitted on the other folds, every copy given the dataset's classes ``types`` (its ``tags``
    parameter) so the columns line up. Members are averaged with equal weights. Fits run on
    ``compute`` (default ``n_jobs`` local processes).

    Returns an :class:`OOFResult` with ``probs`` (n, width)."""
    from sklearn.base import clone

    if len(X) != len(y):
        raise EngineError(f"{len(X)} {noun} but {len(y)} labels")
    X = X.reset_index(drop=True)
    y = np.asarray(y)
    names = list(members)
    splits = [(np.flatnonzero(fold_of != k), np.flatnonzero(fold_of == k)) for k in range(n_folds)]
    calls = [(name, k) for name in names for k in range(n_folds)]
    compute = compute or LocalBackend(n_jobs)
    parts = compute.starmap(_fit_predict_packed, [(clone(members[name]).set_params(tags=tuple(types)),
                                                   X.iloc[splits[k][0]], y[splits[k][0]], X.iloc[splits[k][1]])
                                                  for name, k in calls], description="out-of-fold fits", unit="fits")
    member_probs = {name: np.empty((len(X), width), dtype=np.float64) for name in names}
    for (name, k), part in zip(calls, parts):
        member_probs[name][splits[k][1]] = part
    probs = np.mean([member_probs[m] for m in names], axis=0)
    return OOFResult(probs=probs, folds=fold_of, rare_classes=(), n_folds=n_folds,
                     weights={m: 1.0 / len(names) for m in names}, member_probs=member_probs)
