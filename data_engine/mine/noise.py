"""The dataset's noise estimate: cleanlab's joint distribution of given and true labels, and its plot."""

from __future__ import annotations

import io
from collections.abc import Callable
from typing import Any

import numpy as np

from data_engine.mine.predictions import PredictionState

# The noise-matrix plot labels its axes only up to this many classes.
PLOT_MAX_LABELED_CLASSES = 30


def estimate_noise(state: PredictionState) -> tuple[float | None, np.ndarray | None, list[str]]:
    """cleanlab's estimate of the joint distribution of given and true labels.

    Returns the noise rate (1 - trace of the joint: the share of labels estimated wrong), the
    joint of shape (K', K') over the K' classes that have labeled examples, and those classes.
    """
    from cleanlab.count import estimate_joint

    prepared = _present(state)
    if prepared is None:
        return None, None, []
    present, labels, probs = prepared
    joint = estimate_joint(labels, probs)
    return float(1.0 - np.trace(joint)), joint, [state.classes[i] for i in present]


def _present(state: PredictionState) -> tuple[np.ndarray, np.ndarray, np.ndarray] | None:
    """The classes with labeled examples (K',), the labels re-indexed over them (N,) and the
    out-of-fold probabilities restricted to them and renormalised (N, K'); None under two classes
    or for labels that are not class indices (numbers)."""
    if state.labels.dtype.kind not in "iu" or state.labels.ndim != 1:
        return None  # a joint of given and true classes exists only for one class per example
    present = np.unique(state.labels)
    if len(present) < 2 or len(state.labels) < 2:
        return None
    remap = np.full(len(state.classes), -1)
    remap[present] = np.arange(len(present))
    probs = state.oof_probs[:, present]
    totals = probs.sum(axis=1, keepdims=True)
    probs = np.where(totals > 0, probs / np.where(totals > 0, totals, 1.0), 1.0 / len(present))
    return present, remap[state.labels], probs


# Bootstrap draws of the noise rate: up to this many, fewer on large data (about 2e7 probability
# cells read in all: a 100k x 10 run pays about 0.4 s), never fewer than BOOTSTRAP_MIN_DRAWS.
BOOTSTRAP_MAX_DRAWS = 200
BOOTSTRAP_MIN_DRAWS = 20
BOOTSTRAP_CELLS = 2e7
INTERVAL_LEVEL = 0.95


def noise_interval(state: PredictionState, *, seed: int = 0) -> tuple[float, float] | None:
    """A 95 % bootstrap interval of :func:`estimate_noise`'s rate: (low, high) as shares in [0, 1].

    Method: the examples are resampled with replacement within each given class (a stratified
    bootstrap, so no class vanishes from a draw), the joint is re-estimated on each draw with
    cleanlab's ``estimate_joint`` on the same out-of-fold probabilities, and the interval is the
    normal bootstrap interval around the estimate itself (the rate on all examples ± 1.96 standard
    deviations of the draws, clipped to [0, 1]; Efron & Tibshirani 1993, ch. 13), which stays stable
    with the few draws a large data set gets and always contains the rate it qualifies (the draws'
    own mean can sit away from it when the estimator is biased on resamples, which carry repeats). It measures the sampling error of the
    estimate only: the models' own mistakes also count as noise (a weak model reads hard examples
    as mislabeled), a bias no resampling shows. None when the rate itself cannot be estimated.
    """
    from cleanlab.count import estimate_joint

    prepared = _present(state)
    if prepared is None:
        return None
    present, labels, probs = prepared
    n, k = len(labels), len(present)
    draws = int(np.clip(BOOTSTRAP_CELLS // max(n * k, 1), BOOTSTRAP_MIN_DRAWS, BOOTSTRAP_MAX_DRAWS))
    rng = np.random.default_rng(seed)
    members = [np.flatnonzero(labels == c) for c in range(k)]
    rates = np.empty(draws)
    for b in range(draws):
        rows = np.concatenate([rng.choice(m, size=len(m), replace=True) for m in members])
        rates[b] = 1.0 - np.trace(estimate_joint(labels[rows], probs[rows]))
    from scipy.stats import norm

    z = float(norm.ppf(0.5 + INTERVAL_LEVEL / 2))
    rate = 1.0 - float(np.trace(estimate_joint(labels, probs)))
    sd = float(rates.std(ddof=1))
    return max(0.0, rate - z * sd), min(1.0, rate + z * sd)


def noise_wording(rate: float | None, interval: tuple[float, float] | None) -> str:
    """The noise rate as a person should read it: an estimate, with its interval and its bias."""
    if rate is None:
        return "estimated label noise: not available (fewer than two classes labeled)"
    around = (f" (95 % bootstrap interval {interval[0]:.1%}-{interval[1]:.1%})" if interval is not None else "")
    return (f"estimated label noise: {rate:.1%}{around}; an estimate from the models' out-of-fold "
            "probabilities: examples the models cannot tell apart count as noise too, so with a weak model "
            "it runs high")


def png_plot(figsize: tuple[float, float], draw: Callable[[Any, Any], None]) -> bytes:
    """A PNG (100 dpi) of one matplotlib figure of ``figsize`` inches that ``draw(fig, ax)`` fills;
    the figure is closed whatever happens."""
    import matplotlib

    matplotlib.use("Agg")
    from matplotlib import pyplot as plt

    fig, ax = plt.subplots(figsize=figsize, dpi=100)
    try:
        draw(fig, ax)
        fig.tight_layout()
        out = io.BytesIO()
        fig.savefig(out, format="png")
        return out.getvalue()
    finally:
        plt.close(fig)


def noise_plot(joint: np.ndarray, classes: list[str], noise_rate: float | None) -> bytes:
    """A PNG heat map of the estimated joint of given (rows) and true (columns) labels."""
    k = len(classes)
    size = min(10.0, 2.5 + 0.35 * k)

    def draw(fig: Any, ax: Any) -> None:
        image = ax.imshow(joint, cmap="viridis")
        fig.colorbar(image, ax=ax, fraction=0.046, pad=0.04, label="share of examples")
        if k <= PLOT_MAX_LABELED_CLASSES:
            short = [c if len(c) <= 12 else c[:11] + "…" for c in classes]
            ax.set_xticks(range(k), short, rotation=60, ha="right", fontsize=8)
            ax.set_yticks(range(k), short, fontsize=8)
        ax.set_xlabel("estimated true label")
        ax.set_ylabel("given label")
        rate = "n/a" if noise_rate is None else f"{noise_rate:.1%}"
        ax.set_title(f"Estimated joint of given and true labels (noise rate {rate})", fontsize=10)

    return png_plot((size, size * 0.85), draw)
