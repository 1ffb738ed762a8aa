"""Paired comparisons of two models on the same gold examples: what a gold set of size N can resolve.

Two models scored on the same examples are compared pair by pair, so only the examples on which
they differ carry information (the paired design removes the variance the two share):

- accuracy (and a class's recall, and a slice's accuracy): McNemar's exact test. Of the ``m``
  discordant examples (one model right, the other wrong), the candidate wins ``b`` and loses
  ``c``; if the models were equally good, ``c ~ Binomial(m, 1/2)``. The interval of the accuracy
  difference ``(b - c) / n`` is the Clopper-Pearson interval of the win share ``b / m``, scaled by
  ``m / n`` (exact, conditional on ``m``; it inverts the same binomial test, so "the interval lies
  below 0" and "the test says worse" are the same statement). Source: McNemar (1947); Fagerland,
  Lydersen & Laake, "The McNemar test for binary matched-pairs data" (BMC Med Res Methodol 2013).
- macro-F1 (not a mean over examples, so no binomial test applies): a paired bootstrap. Gold
  examples are resampled with replacement and both models' macro-F1 computed on each resample
  (``scipy.stats.bootstrap(paired=True)``); the percentile interval of the difference and the
  share of resamples on the other side of 0 (Efron & Tibshirani 1993, ch. 15-16).

Both give one-sided p-values for "the candidate is worse" and "the candidate is better", and a
two-sided interval at ``1 - 2 alpha`` (the interval that matches one-sided tests at ``alpha``).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import numpy as np

# Bootstrap resamples: 2,000 puts the Monte Carlo error of a p-value near 0.05 at about 0.005.
BOOTSTRAP_SAMPLES = 2000
# Resamples held in memory at once (each is N x K booleans per model).
_BOOTSTRAP_BATCH = 200


@dataclass(frozen=True)
class PairedDiff:
    """Candidate minus champion on ``n`` paired gold examples.

    ``diff`` is in metric units (0.01 = one point); ``low``/``high`` bound it at ``confidence``;
    ``p_worse``/``p_better`` are one-sided p-values; ``wins``/``losses`` count the examples only
    the candidate / only the champion gets right (``None`` for the bootstrap).
    """

    n: int
    diff: float
    low: float
    high: float
    p_worse: float
    p_better: float
    confidence: float
    method: str
    wins: int | None = None
    losses: int | None = None

    def describe(self, metric: str) -> str:
        """One phrase: difference, interval, p-values and size."""
        example = "gold example" if self.wins == 1 else "gold examples"
        counts = f"; {self.wins} {example} only the candidate gets right, {self.losses} only the champion" \
            if self.wins is not None else ""
        # Two one-sided tests, not two probabilities: each p-value is small only when gold shows that
        # direction. They need not sum to 1: a resample (or a count) exactly at no difference supports both nulls.
        ps = ("no gold example tells the two apart, so no test" if self.p_worse == self.p_better == 1.0
              else f"one-sided p-values: {self.p_worse:.3g} for worse, {self.p_better:.3g} for better")
        return (f"{metric} {self.diff:+.4f} ({self.confidence:.0%} CI [{self.low:+.4f}, {self.high:+.4f}], "
                f"{self.method} {ps}, n = {self.n}{counts})")


def mcnemar(cand_correct: np.ndarray, champ_correct: np.ndarray, *, alpha: float) -> PairedDiff:
    """McNemar's exact test of two models' correctness on the same examples.

    ``cand_correct``, ``champ_correct``: shape (N,) bool, whether each model got each example right.
    The difference is in accuracy (a share in [-1, 1]).
    """
    from scipy.stats import binomtest

    cand = np.asarray(cand_correct, dtype=bool)
    champ = np.asarray(champ_correct, dtype=bool)
    n = len(cand)
    wins = int(np.sum(cand & ~champ))
    losses = int(np.sum(~cand & champ))
    m = wins + losses
    confidence = 1.0 - 2.0 * alpha
    if m == 0:  # the two agree on every example's correctness: no evidence either way
        return PairedDiff(n, 0.0, 0.0, 0.0, 1.0, 1.0, confidence, "McNemar exact", 0, 0)
    test = binomtest(wins, m, 0.5)
    ci = test.proportion_ci(confidence_level=confidence, method="exact")
    scale = m / n
    return PairedDiff(
        n=n, diff=(wins - losses) / n, low=scale * (2 * ci.low - 1), high=scale * (2 * ci.high - 1),
        p_worse=float(binomtest(losses, m, 0.5, alternative="greater").pvalue),
        p_better=float(binomtest(wins, m, 0.5, alternative="greater").pvalue),
        confidence=confidence, method="McNemar exact", wins=wins, losses=losses,
    )


def macro_f1_rows(y_true: np.ndarray, y_pred: np.ndarray, n_classes: int) -> np.ndarray:
    """Macro-F1 of each row: ``y_true``, ``y_pred`` of shape (B, N), class codes in [0, K); shape (B,).

    Averaged over all ``n_classes`` classes, F1 = 0 for a class with no true and no predicted
    example (scikit-learn's ``f1_score(labels=..., average="macro", zero_division=0)``).
    """
    f1 = np.zeros(y_true.shape[0])
    for k in range(n_classes):
        t, p = y_true == k, y_pred == k
        tp = np.sum(t & p, axis=-1)
        denom = np.sum(t, axis=-1) + np.sum(p, axis=-1)
        f1 += np.divide(2.0 * tp, denom, out=np.zeros(len(f1)), where=denom > 0)
    return f1 / n_classes


def bootstrap_macro_f1(y_true: np.ndarray, cand_pred: np.ndarray, champ_pred: np.ndarray, *, alpha: float,
                       classes: list[str] | None = None, n_resamples: int = BOOTSTRAP_SAMPLES,
                       seed: int = 0) -> PairedDiff:
    """Paired bootstrap of the macro-F1 difference (candidate minus champion).

    ``y_true``, ``cand_pred``, ``champ_pred``: shape (N,), labels. ``classes``: the classes macro-F1
    averages over (default: those in ``y_true``). Seeded, so the same inputs give the same verdict.
    """
    from scipy.stats import bootstrap

    y_true = np.asarray(y_true).astype(str)
    classes = sorted(set(y_true)) if classes is None else list(classes)
    index = {c: i for i, c in enumerate(classes)}

    def codes(a: np.ndarray) -> np.ndarray:
        return np.array([index.get(str(v), -1) for v in a], dtype=np.int64)  # -1: a class outside the average

    yt, pc, ph = codes(y_true), codes(cand_pred), codes(champ_pred)
    k = len(classes)
    observed = float(macro_f1_rows(yt[None], pc[None], k)[0] - macro_f1_rows(yt[None], ph[None], k)[0])
    n = len(yt)
    confidence = 1.0 - 2.0 * alpha
    if n < 2 or np.array_equal(pc, ph):
        return PairedDiff(n, observed, observed, observed, 1.0, 1.0, confidence, "paired bootstrap")

    def statistic(t: np.ndarray, c: np.ndarray, h: np.ndarray, axis: int = -1) -> np.ndarray:
        t, c, h = (np.atleast_2d(a) for a in (t, c, h))
        return macro_f1_rows(t, c, k) - macro_f1_rows(t, h, k)

    res = bootstrap((yt, pc, ph), statistic, paired=True, vectorized=True, n_resamples=n_resamples,
                    batch=_BOOTSTRAP_BATCH, confidence_level=confidence, method="percentile",
                    random_state=np.random.default_rng(seed))
    dist = np.asarray(res.bootstrap_distribution)
    return PairedDiff(
        n=n, diff=observed, low=float(res.confidence_interval.low), high=float(res.confidence_interval.high),
        p_worse=float(np.mean(dist >= 0)), p_better=float(np.mean(dist <= 0)), confidence=confidence,
        method="paired bootstrap",
    )


def bootstrap_over_examples(statistic: Callable[[np.ndarray], np.ndarray], n: int, observed: float, *, alpha: float,
                            identical: bool = False, n_resamples: int = BOOTSTRAP_SAMPLES, seed: int = 0) -> PairedDiff:
    """Paired bootstrap of a difference over ``n`` examples resampled with replacement.

    ``statistic(idx)``: the candidate-minus-champion difference for each resample of example
    indices ``idx`` of shape (B, n); returns shape (B,). ``observed``: the difference on all examples;
    ``identical``: the two models' predictions are the same (no resampling then). Percentile
    interval at ``1 - 2 alpha`` and one-sided p-values (``scipy.stats.bootstrap``; Efron & Tibshirani
    1993); seeded, so the same inputs give the same verdict. Resampling indices keeps each example's
    rows paired across the models (a multi-label row of tags, an NER text's entity counts).
    """
    from scipy.stats import bootstrap

    confidence = 1.0 - 2.0 * alpha
    if n < 2 or identical:
        return PairedDiff(n, observed, observed, observed, 1.0, 1.0, confidence, "paired bootstrap")

    def batched(idx: np.ndarray, axis: int = -1) -> np.ndarray:
        return statistic(np.atleast_2d(idx).astype(np.int64))

    res = bootstrap((np.arange(n),), batched, vectorized=True, n_resamples=n_resamples, batch=_BOOTSTRAP_BATCH,
                    confidence_level=confidence, method="percentile", random_state=np.random.default_rng(seed))
    dist = np.asarray(res.bootstrap_distribution)
    return PairedDiff(
        n=n, diff=observed, low=float(res.confidence_interval.low), high=float(res.confidence_interval.high),
        p_worse=float(np.mean(dist >= 0)), p_better=float(np.mean(dist <= 0)), confidence=confidence,
        method="paired bootstrap",
    )


def holm(p_values: list[float]) -> list[float]:
    """Holm's step-down adjustment of ``p_values`` (family-wise error control); same order as given.

    Written here because scipy has only the FDR adjustment (``false_discovery_control``), and a gate
    that refuses when *any* class looks worse needs the family-wise rate (Holm 1979).
    """
    m = len(p_values)
    order = np.argsort(p_values, kind="stable")
    adjusted = np.empty(m)
    running = 0.0
    for rank, i in enumerate(order):
        running = max(running, min(1.0, (m - rank) * p_values[i]))
        adjusted[i] = running
    return adjusted.tolist()
