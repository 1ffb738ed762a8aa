"""The review budget between fixing labels and growing the labeled set, by expected gain per review.

Written by hand: no library prices a label fix against a new label. The estimate, in points of the
task's share of examples right per review (:meth:`data_engine.tasks.base.Task.oof_share`: accuracy for
classes, exact match for tags, spans and boxes, labels within the out-of-fold interval for numbers;
"accuracy" below):

* a **new label** gains the learning curve's recent slope: accuracy gained per added label between
  the last evaluated models (the gold figure against training size, ``models.metrics``, where the task
  stores it: :attr:`~data_engine.tasks.base.Task.share_metric`). Without two
  such points it takes the power-law prior: if the error falls as ``n**-ALPHA`` (learning curves of
  most models, Hestness et al. 2017), one more label gains ``ALPHA * error / n``;
* a **fix** of issue type ``t`` gains ``rate_t * FIX_WORTH`` times that prior: ``rate_t`` is the
  share of flagged examples reviewers confirmed (smoothed, :func:`data_engine.mine.weights.confirmation_rates`),
  and a confirmed fix both removes a wrong label and adds a right one (``FIX_WORTH = 2`` labels).

Every flagged issue type first gets its part of ``MIN_FIX_SHARE`` of the budget, so its
confirmation rate keeps being measured (also when a better type could take every review); then
the types whose fix gains at least as much as a new label get their flagged examples (best
first, up to the budget). The rest grows the labeled set, as far as there are unlabeled examples;
a share no new example can take goes to the remaining flags, best type first (a review of a flag
gains something, an unspent review nothing: on fully labeled data a low confirmation rate used to
leave most of the budget unspent). With clean given labels,
reviewers reject confident learning's few flags, ``rate_label`` falls and the flags stop taking
reviews; before any verdict they tie with new labels and take only as many slots as there are flags.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import duckdb
import numpy as np

# Exponent of the power-law learning curve (error ~ n ** -ALPHA) used before the engine has measured
# its own curve; 0.5 is the classic rate of a well-specified model (and a middle value of the
# exponents Hestness et al. report).
ALPHA = 0.5


# A confirmed fix is worth this many new labels: a wrong label removed plus a right one added.
FIX_WORTH = 2.0


# Issue types whose fixes gain less than a new label still get this share of the budget (at least
# one review while they have flags), so their confirmation rate keeps being measured.
MIN_FIX_SHARE = 0.05


# Evaluated models read for the learning curve's recent slope.
CURVE_POINTS = 4


@dataclass(frozen=True)
class BudgetSplit:
    """How one queue's budget is shared; gains are in points (0-100) of ``figure`` per review."""

    budget: int
    fix: dict[str, int]
    grow: int
    gain_per_new_label: float
    gain_per_fix: dict[str, float]
    confirmation_rates: dict[str, float]
    curve_source: str
    learning_curve: list[tuple[int, float]] = field(default_factory=list)
    # Reviews the queue could not use (fewer open flags and new examples than the budget) and why;
    # set by the planner from the queue it built (data_engine.mine.plan.plan_queue).
    unused: int = 0
    short_reason: str = ""
    # What the gains are points of (:attr:`data_engine.tasks.base.Task.share_points`).
    figure: str = "accuracy points"

    @property
    def n_fix(self) -> int:
        """Reviews given to label issues (all fix types)."""
        return sum(self.fix.values())

    def as_metadata(self) -> dict[str, Any]:
        """Plain JSON-able values for Dagster metadata and `review status`."""
        return {"budget": self.budget, "fix": self.fix, "grow": self.grow,
                "gain_per_new_label_points": round(self.gain_per_new_label, 5),
                "gain_per_fix_points": {k: round(v, 5) for k, v in self.gain_per_fix.items()},
                "confirmation_rates": {k: round(v, 4) for k, v in self.confirmation_rates.items()},
                "curve_source": self.curve_source,
                "learning_curve": [[n, round(a, 4)] for n, a in self.learning_curve],
                "queued": self.n_fix + self.grow, "unused": self.unused, "short_reason": self.short_reason,
                "gain_figure": self.figure}


def learning_curve(con: duckdb.DuckDBPyConnection, metric: str | None = "accuracy",
                   points: int = CURVE_POINTS) -> list[tuple[int, float]]:
    """The newest ``points`` evaluated models as (training size, gold ``metric`` in [0, 1]), oldest first:
    ``metric`` is the ``models.metrics`` key holding the task's share of examples right
    (:attr:`data_engine.tasks.base.Task.share_metric`); ``[]`` when None (no model stores it)."""
    if metric is None:
        return []
    rows = con.execute(
        "SELECT train_size, TRY_CAST(json_extract(metrics, ?) AS DOUBLE) AS acc FROM models "
        "WHERE metrics IS NOT NULL AND acc IS NOT NULL ORDER BY version DESC LIMIT ?", [f"$.{metric}", points]).fetchall()
    return [(int(n), float(a)) for n, a in reversed(rows)]


def prior_gain(accuracy: float, n_labeled: int) -> float:
    """Accuracy points one more label gains on a power-law curve: ``100 * ALPHA * (1 - accuracy) / n``."""
    return 100.0 * ALPHA * max(1.0 - accuracy, 0.0) / max(n_labeled, 1)


def curve_gain(curve: Sequence[tuple[int, float]]) -> float | None:
    """Least-squares slope of accuracy (points) per added label over ``curve``; None without two
    distinct training sizes. Clipped at 0: a noisy drop says new labels gain nothing now, not less."""
    sizes = np.array([n for n, _ in curve], dtype=float)
    if len(np.unique(sizes)) < 2:
        return None
    acc = np.array([a for _, a in curve], dtype=float) * 100.0
    slope = float(np.polyfit(sizes, acc, 1)[0])
    return max(slope, 0.0)


def split_budget(budget: int, flagged: Mapping[str, int], rates: Mapping[str, float], *, accuracy: float,
                 n_labeled: int, curve: Sequence[tuple[int, float]] = (), n_candidates: int | None = None,
                 ranking_rate: float | None = None, figure: str = "accuracy points") -> BudgetSplit:
    """Share ``budget`` reviews between fixes (per issue type, ``flagged`` examples available) and new labels.

    ``rates``: confirmation rate per issue type in [0, 1]; ``accuracy``: the current model's
    accuracy in [0, 1] (gold, else out-of-fold); ``n_labeled``: labels in force; ``curve``: (training
    size, accuracy) of recent models; ``n_candidates``: unlabeled examples available (None = no limit).
    ``ranking_rate``: for a task whose reviews go on past its label flags down the label quality
    ranking (:attr:`data_engine.tasks.base.Task.reviews_past_flags`), the confirmation rate of that
    ranking (the ``label`` type's); the reviews no new example can take then go only to the flags
    of types confirmed at least as often, and the rest is left ``unused`` for the ranking (see
    :func:`flags_before_ranking`). ``figure``: what ``accuracy`` is, as the gains are named
    (:attr:`BudgetSplit.figure`). See the module docstring for the estimate.
    """
    label_value = prior_gain(accuracy, n_labeled)
    measured = curve_gain(curve)
    g_new = label_value if measured is None else measured
    source = "power-law prior" if measured is None else f"learning curve over {len(curve)} models"
    gains = {t: rates.get(t, 0.5) * FIX_WORTH * label_value for t in flagged}
    order = sorted((t for t in gains if flagged[t] > 0), key=lambda t: (-gains[t], t))
    # Every flagged type first gets its part of the measuring share, even when a better type could
    # take the whole budget: a type no reviewer ever sees keeps its prior rate for good (a detector
    # that learns from verdicts, like the look-alikes of discarded examples, would never start).
    measuring = min(budget, max(len(order), math.floor(MIN_FIX_SHARE * budget))) if order else 0
    fix: dict[str, int] = {}
    for i, t in enumerate(order):
        share = measuring // len(order) + (1 if i < measuring % len(order) else 0)
        fix[t] = min(int(flagged[t]), share)
    left = budget - sum(fix.values())
    # Then types worth more than a new label, best first, up to their flags (for a task that reviews
    # past its label flags, only the types the ranking does not out-confirm: with nothing to grow,
    # every type is worth more than the new label no example can give).
    for t in flags_before_ranking(order, rates, ranking_rate):
        if gains[t] >= g_new and g_new >= 0 and left > 0:
            more = min(int(flagged[t]) - fix[t], left)
            fix[t] += more
            left -= more
    grow = left if n_candidates is None else min(left, n_candidates)
    # What no new example can take goes to the remaining flags, best type first (for a task that
    # reviews past its label flags, only the types the ranking does not out-confirm).
    left -= grow
    for t in flags_before_ranking(order, rates, ranking_rate):
        more = min(int(flagged[t]) - fix[t], left)
        fix[t] += more
        left -= more
    fix = {t: n for t, n in fix.items() if n > 0}
    return BudgetSplit(budget, {t: n for t, n in fix.items()}, grow, g_new, gains, dict(rates), source, list(curve),
                       unused=left, figure=figure)


def flags_before_ranking(types: Sequence[str], rates: Mapping[str, float], ranking_rate: float | None) -> list[str]:
    """The issue types (in the order of ``types``) whose remaining flags take spare reviews before the
    label quality ranking past the label flags: all of them when ``ranking_rate`` is None (no
    ranking), else ``label`` and the types confirmed at least as often as the ranking (``rates``,
    a type without a rate at :data:`~data_engine.mine.weights.PRIOR_RATE`).

    Why: the ranking past the flags continues the ``label`` type (its verdicts count as ``label``
    ones), so its expected yield is that type's confirmation rate. On fully labeled tag sets the
    outlier flags (confirmed 2 times in 21 in the second round on the breast-cancer tags) took the
    reviews the ranking would have spent at a third of them confirmed.
    """
    from data_engine.mine.weights import PRIOR_RATE

    if ranking_rate is None:
        return list(types)
    return [t for t in types if t == "label" or rates.get(t, PRIOR_RATE) >= ranking_rate]
