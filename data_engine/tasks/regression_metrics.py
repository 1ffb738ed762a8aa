"""The figures of a regressor on gold (MAE, RMSE, R²) and the gate's paired test of two regressors.

Metrics are scikit-learn's (``mean_absolute_error``, ``root_mean_squared_error``, ``r2_score``).
MAE and RMSE are errors (lower is better); R² is a score (higher is better).

Paired test (candidate minus champion on the same gold examples, as :mod:`data_engine.tasks.paired`
does for classes; both one-sided p-values, the interval at ``1 - 2 alpha``):

- MAE: the Wilcoxon signed-rank test of the per-example absolute errors ``|e_cand| - |e_champ|``
  (``scipy.stats.wilcoxon``; Wilcoxon 1945), examples with equal errors dropped (``zero_method
  = "wilcox"``), which asks whether one model's errors are systematically larger; the interval is
  the paired bootstrap percentile interval of the MAE difference (the same resampling as below).
- RMSE and R² (not means of per-example terms a rank test could compare): the paired bootstrap of
  the difference, gold examples resampled with replacement (Efron & Tibshirani 1993, ch. 15-16),
  p-values the share of resamples on the other side of 0.
"""

from __future__ import annotations

import numpy as np

from data_engine.tasks.paired import BOOTSTRAP_SAMPLES, PairedDiff

METRICS = ("mae", "rmse", "r2")
LOWER_IS_BETTER = frozenset({"mae", "rmse"})


def regression_metrics(y_true: np.ndarray, pred: np.ndarray) -> dict[str, float | None]:
    """``{"mae", "rmse", "r2"}`` of predictions ``pred`` (n,) against ``y_true`` (n,), floats; each
    None when n = 0 (R² also when n < 2: it is undefined for one example)."""
    from sklearn.metrics import mean_absolute_error, r2_score, root_mean_squared_error

    y_true = np.asarray(y_true, dtype=np.float64)
    pred = np.asarray(pred, dtype=np.float64)
    if len(y_true) == 0:
        return dict.fromkeys(METRICS)
    return {"mae": float(mean_absolute_error(y_true, pred)), "rmse": float(root_mean_squared_error(y_true, pred)),
            "r2": float(r2_score(y_true, pred)) if len(y_true) > 1 else None}


def _metric_rows(metric: str, y: np.ndarray, pred: np.ndarray) -> np.ndarray:
    """``metric`` of each row of (B, n) arrays ``y`` and ``pred``: shape (B,)."""
    err = pred - y
    if metric == "mae":
        return np.mean(np.abs(err), axis=-1)
    if metric == "rmse":
        return np.sqrt(np.mean(err ** 2, axis=-1))
    total = np.sum((y - y.mean(axis=-1, keepdims=True)) ** 2, axis=-1)
    # A resample whose gold values are all equal has no R²; it then counts as no difference (0 / 0 -> 0).
    return 1.0 - np.divide(np.sum(err ** 2, axis=-1), total, out=np.ones(len(total)), where=total > 0)


def paired_regression_test(y_true: np.ndarray, cand_pred: np.ndarray, champ_pred: np.ndarray, metric: str, *,
                           alpha: float, n_resamples: int = BOOTSTRAP_SAMPLES, seed: int = 0) -> PairedDiff:
    """The gate's paired test of ``metric`` ("mae", "rmse" or "r2"), candidate minus champion, on the
    same n gold examples: ``y_true``, ``cand_pred``, ``champ_pred`` shape (n,) floats. ``diff`` is in
    the metric's units; ``p_worse`` the one-sided p-value that the candidate is worse (a larger error,
    a smaller R²). Seeded, so the same inputs give the same verdict. Raises ValueError for another metric.
    """
    from scipy.stats import wilcoxon

    if metric not in METRICS:
        raise ValueError(f"unknown regression metric {metric!r} (one of {', '.join(METRICS)})")
    y = np.asarray(y_true, dtype=np.float64)
    cand = np.asarray(cand_pred, dtype=np.float64)
    champ = np.asarray(champ_pred, dtype=np.float64)
    n = len(y)
    confidence = 1.0 - 2.0 * alpha
    observed = float(_metric_rows(metric, y[None], cand[None])[0] - _metric_rows(metric, y[None], champ[None])[0]) \
        if n else 0.0
    method = "Wilcoxon signed-rank" if metric == "mae" else "paired bootstrap"
    if n < 2 or np.array_equal(cand, champ):
        return PairedDiff(n, observed, observed, observed, 1.0, 1.0, confidence, method)
    rng = np.random.default_rng(seed)
    idx = rng.integers(0, n, size=(n_resamples, n))
    dist = _metric_rows(metric, y[idx], cand[idx]) - _metric_rows(metric, y[idx], champ[idx])
    low, high = (float(v) for v in np.quantile(dist, [alpha, 1.0 - alpha]))
    worse_side = dist > 0 if metric in LOWER_IS_BETTER else dist < 0
    if metric == "mae":
        d = np.abs(cand - y) - np.abs(champ - y)
        if not np.any(d != 0):
            return PairedDiff(n, observed, low, high, 1.0, 1.0, confidence, method)
        p_worse = float(wilcoxon(d, zero_method="wilcox", alternative="greater").pvalue)
        p_better = float(wilcoxon(d, zero_method="wilcox", alternative="less").pvalue)
    else:
        p_worse, p_better = float(np.mean(~worse_side)), float(np.mean(worse_side))
        # Resamples exactly at 0 count on both sides (as the classification bootstrap does).
        ties = float(np.mean(dist == 0))
        p_worse, p_better = min(1.0, p_worse), min(1.0, p_better + ties)
    return PairedDiff(n=n, diff=observed, low=low, high=high, p_worse=p_worse, p_better=p_better,
                      confidence=confidence, method=method)
