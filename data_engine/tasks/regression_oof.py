"""Out-of-fold predictions of a number, with a per-example interval, from several regressors.

Every labeled example is predicted by models that never saw it (shuffled K-fold; the folds are
fitted in parallel by the compute back-end, as for classes in :mod:`data_engine.tasks.oof`). The
members' out-of-fold predictions are mixed by their out-of-fold error, and each example gets an
interval from the out-of-fold residuals:

- **Mixture weights**: ``w_m ∝ 1 / MAE_m²``, MAE_m the member's out-of-fold mean absolute error
  (inverse-variance weighting with the MAE as the error's scale). The absolute error, not the
  squared one: the labels being checked hold gross errors, and one wrong value 100 times too large
  would otherwise decide the weights alone.
- **Interval**: residual-based, in the spirit of CV+ (Barber, Candès, Ramdas & Tibshirani,
  "Predictive inference with the jackknife+", Ann. Statist. 2021), made robust to label errors and
  local: each example's scale is ``v_i = sqrt(s² + d_i²)``, ``s`` the robust scale of the mixed
  out-of-fold residuals (1.4826 × their median absolute deviation, which gross errors up to half
  the data do not inflate) and ``d_i`` the weighted spread of the members' predictions for that
  example (where the models disagree the value is less certain); the residuals divided by ``v_i``
  are scaled again robustly (``k``) so the interval ``prediction ± z · k · v_i`` covers the
  nominal share of the clean examples (``z`` the normal quantile; Gaussian residuals assumed for
  the bulk). Written here because scikit-learn has no conformal interval and MAPIE is not a
  dependency; the formula is four lines.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import numpy as np
import pandas as pd

from data_engine.compute.backend import Backend, LocalBackend
from data_engine.errors import EngineError
from data_engine.tasks.oof import OOFResult, single_threaded

# The share of clean examples an interval is meant to cover.
INTERVAL_COVERAGE = 0.9
# 1 / Φ⁻¹(0.75): turns a median absolute deviation into a normal standard deviation.
MAD_TO_SD = 1.4826
# Residual scales are floored here (relative to the labels' spread): identical labels must not
# give zero-width intervals and divisions by zero.
MIN_SCALE = 1e-9


def assign_regression_folds(n: int, *, folds: int, seed: int) -> tuple[np.ndarray, int]:
    """Shuffled K-fold ids for ``n`` examples: shape (n,) ints in [0, n_folds), and n_folds
    (``folds``, or ``n`` when fewer examples). Raises EngineError below two labeled examples."""
    from sklearn.model_selection import KFold

    if n < 2:
        raise EngineError("out-of-fold predictions need at least two labeled examples")
    n_folds = int(min(folds, n))
    fold_of = np.empty(n, dtype=np.int32)
    for k, (_, test) in enumerate(KFold(n_splits=n_folds, shuffle=True, random_state=seed).split(np.zeros(n))):
        fold_of[test] = k
    return fold_of, n_folds


def _fit_predict_values(estimator: Any, X_train: pd.DataFrame, y_train: np.ndarray, X_test: pd.DataFrame) -> np.ndarray:
    """Fit a regressor on the training part; its predictions for the test part, shape (len(X_test),)."""
    with single_threaded():
        estimator.fit(X_train, y_train)
        return np.asarray(estimator.predict(X_test), dtype=np.float64).reshape(-1)


def robust_scale(values: np.ndarray) -> float:
    """1.4826 × the median absolute deviation of ``values`` (shape (n,)): a standard deviation that
    up to half the values being gross errors does not move (Hampel 1974)."""
    values = np.asarray(values, dtype=np.float64)
    return float(MAD_TO_SD * np.median(np.abs(values - np.median(values)))) if len(values) else 0.0


def error_weights(member_predictions: np.ndarray, y: np.ndarray) -> np.ndarray:
    """Convex weights of M members from their out-of-fold error: ``w ∝ 1 / MAE²``.

    ``member_predictions``: (M, n); ``y``: (n,) given labels. Returns (M,), non-negative, summing to 1.
    """
    mae = np.mean(np.abs(member_predictions - y[None, :]), axis=1)
    inv = 1.0 / np.maximum(mae, MIN_SCALE) ** 2
    return inv / inv.sum()


def with_interval(prediction: np.ndarray, y: np.ndarray, spread: np.ndarray | None = None, *,
                  coverage: float = INTERVAL_COVERAGE) -> np.ndarray:
    """``(prediction, lower, upper)`` per example, shape (n, 3), from out-of-fold ``prediction`` (n,),
    the given labels ``y`` (n,) and the members' spread ``spread`` (n,) (None: no spread), by the
    module docstring's robust residual rule at ``coverage``."""
    from scipy.stats import norm

    residual = y - prediction
    floor = MIN_SCALE * max(1.0, float(np.ptp(y)) if len(y) else 1.0)
    s = max(robust_scale(residual), floor)
    d = np.zeros_like(prediction) if spread is None else spread
    v = np.sqrt(s ** 2 + d ** 2)
    k = max(robust_scale(residual / v), MIN_SCALE)
    half = float(norm.ppf(0.5 + coverage / 2)) * k * v
    return np.column_stack([prediction, prediction - half, prediction + half])


def mix_predictions(member_pred: np.ndarray, y: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """The members' out-of-fold values ``member_pred`` (M, n) mixed by :func:`error_weights` on labels
    ``y`` (n,): ``(prediction, lower, upper)`` (n, 3) by :func:`with_interval` with the members'
    weighted spread, and the weights (M,)."""
    w = error_weights(member_pred, y)
    mixed = w @ member_pred
    spread = np.sqrt(np.maximum(w @ (member_pred - mixed) ** 2, 0.0)) if len(member_pred) > 1 else None
    return with_interval(mixed, y, spread), w


def regression_out_of_fold(members: Mapping[str, Any], X: pd.DataFrame, y: np.ndarray, *, folds: int = 5,
                           seed: int = 0, n_jobs: int = 1, compute: Backend | None = None) -> OOFResult:
    """Out-of-fold predictions of several regressors on the same folds, mixed by :func:`error_weights`.

    ``members``: name -> unfitted scikit-learn regressor; ``X``: (n, D) input columns; ``y``: (n,)
    float labels. Returns an :class:`OOFResult` whose ``probs`` is (n, 3): prediction, lower,
    upper (:func:`with_interval`); ``member_probs`` each member's own (n, 3); ``weights`` the mixture.
    All (member, fold) fits go to ``compute`` at once (default: ``n_jobs`` local processes).
    Raises EngineError on a length mismatch, a non-finite label or fewer than two examples.
    """
    from sklearn.base import clone

    y = np.asarray(y, dtype=np.float64).reshape(-1)
    if len(X) != len(y):
        raise EngineError(f"{len(X)} feature rows but {len(y)} labels")
    if not np.all(np.isfinite(y)):
        raise EngineError("regression labels must be finite numbers")
    if not members:
        raise EngineError("out-of-fold predictions need at least one model member")
    fold_of, n_folds = assign_regression_folds(len(y), folds=folds, seed=seed)
    X = X.reset_index(drop=True)
    splits = [(np.flatnonzero(fold_of != k), np.flatnonzero(fold_of == k)) for k in range(n_folds)]
    names = list(members)
    jobs = [(name, k) for name in names for k in range(n_folds)]
    compute = compute or LocalBackend(n_jobs)
    parts = compute.starmap(_fit_predict_values, [(clone(members[name]), X.iloc[splits[k][0]], y[splits[k][0]],
                                                   X.iloc[splits[k][1]]) for name, k in jobs],
                            description="out-of-fold fits", unit="fits")
    member_pred = np.empty((len(names), len(y)), dtype=np.float64)
    for (name, k), part in zip(jobs, parts):
        member_pred[names.index(name), splits[k][1]] = part
    mixed, w = mix_predictions(member_pred, y)
    return OOFResult(probs=mixed, folds=fold_of, rare_classes=(), n_folds=n_folds,
                     weights={name: float(v) for name, v in zip(names, w)},
                     member_probs={name: with_interval(member_pred[i], y) for i, name in enumerate(names)})
