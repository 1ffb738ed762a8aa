"""Which numeric labels are likely wrong: cleanlab's regression label quality scores and the flag rule.

Scores: ``cleanlab.regression.rank.get_label_quality_scores(labels, predictions)`` (its default
"outre" method: the residual of each given value from its out-of-fold prediction, judged against
the residuals of its neighbours), in [0, 1], low = suspect. They rank; cleanlab's ``rank`` module
makes no yes/no call of its own (``CleanLearning`` does, by refitting the model many times).

The flag rule (documented in docs/mining.md): an example is flagged when its given value lies
outside its **flag interval**, ``prediction ± FLAG_Z / z · half-width`` of the out-of-fold
interval (:mod:`data_engine.tasks.regression_oof`), i.e. more than ``FLAG_Z`` = 2 robust standard
deviations from the prediction (a clean Gaussian residual lies beyond it 4.6 % of the time). The
queue orders flagged examples by cleanlab's score, lowest first. Chosen on diabetes and Friedman #1
(10 % gross value errors, seeds 0-2; F1 of the flags at 3 / 2.5 / 2 sd: diabetes 0.13-0.31 /
0.34-0.53 / 0.58-0.69, Friedman 0.85-0.86 / 0.89-0.96 / 0.87-0.94: on data a model explains only
half of, like diabetes, three sd misses most errors). Measured on data it was not chosen on
(seeds 3-5; diabetes, make_regression, Friedman #3): flag F1 0.61-0.76, 0.90-0.94, 0.67-0.80,
against cleanlab's CleanLearning call 0.20-0.60, 0-0.18, 0-0.18 (docs/mining.md).
"""

from __future__ import annotations

import numpy as np
from scipy.stats import norm

from data_engine.tasks.regression_oof import INTERVAL_COVERAGE

# Robust standard deviations a given value must lie from its prediction to be flagged (see above).
FLAG_Z = 2.0


def label_quality_scores(y: np.ndarray, prediction: np.ndarray) -> np.ndarray:
    """cleanlab's regression label quality scores: ``y``, ``prediction`` shape (n,); returns (n,) in [0, 1]."""
    from cleanlab.regression.rank import get_label_quality_scores

    # No cleanlab_copies_released here: cleanlab's regression scores do not go through cleanlab.filter
    # (no _reduce_issues, no module globals kept).
    return np.asarray(get_label_quality_scores(np.asarray(y, dtype=np.float64),
                                               np.asarray(prediction, dtype=np.float64)), dtype=np.float64)


def flag_interval(pred: np.ndarray, *, coverage: float = INTERVAL_COVERAGE) -> tuple[np.ndarray, np.ndarray]:
    """The flag interval of each example: ``pred`` (n, 3) out-of-fold prediction, lower, upper at
    ``coverage``; returns (lower, upper), each (n,), ``FLAG_Z`` robust standard deviations wide each side."""
    z = float(norm.ppf(0.5 + coverage / 2))
    centre = pred[:, 0]
    half = (pred[:, 2] - pred[:, 1]) / 2 * (FLAG_Z / z)
    return centre - half, centre + half


def flag_errors(y: np.ndarray, pred: np.ndarray) -> np.ndarray:
    """The flag rule: (n,) bool, the given value ``y`` (n,) outside :func:`flag_interval` of ``pred`` (n, 3)."""
    lo, hi = flag_interval(pred)
    return (y < lo) | (y > hi)
