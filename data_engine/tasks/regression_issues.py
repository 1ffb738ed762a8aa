"""Which numeric labels are likely wrong: cleanlab's regression label quality scores and the flag rule.

Scores: ``cleanlab.regression.rank.get_label_quality_scores(labels, predictions)`` (its default
"outre" method: the residual of each given value from its out-of-fold prediction, judged against
the residuals of its neighbours), in [0, 1], low = suspect. They rank; cleanlab's ``rank`` module
makes no yes/no call of its own (``CleanLearning`` does, by refitting the model many times).

The flag rule (documented in docs/mining.md): an example is flagged when its given value lies
outside its **flag interval**, ``prediction ± FLAG_Z / z · half-width`` of the out-of-fold
interval (:mod:`data_engine.tasks.regression_oof`), i.e. more than ``FLAG_Z`` robust standard
deviations from the prediction: 3, the conventional three-sigma rule (a clean Gaussian residual
lies beyond it 0.27 % of the time). Gross value errors (a price typed with an extra digit, a unit
mix-up) are far outside; honest noise is not. The queue orders flagged examples by cleanlab's
score, lowest first.
"""

from __future__ import annotations

import numpy as np
from scipy.stats import norm

from data_engine.tasks.regression_oof import INTERVAL_COVERAGE

# Robust standard deviations a given value must lie from its prediction to be flagged.
FLAG_Z = 3.0


def label_quality_scores(y: np.ndarray, prediction: np.ndarray) -> np.ndarray:
    """cleanlab's regression label quality scores: ``y``, ``prediction`` shape (n,); returns (n,) in [0, 1]."""
    from cleanlab.regression.rank import get_label_quality_scores

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
