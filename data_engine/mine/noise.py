"""The dataset's noise estimate: cleanlab's joint distribution of given and true labels, and its plot."""

from __future__ import annotations

import io

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

    present = np.unique(state.labels)
    if len(present) < 2 or len(state.labels) < 2:
        return None, None, []
    remap = np.full(len(state.classes), -1)
    remap[present] = np.arange(len(present))
    probs = state.oof_probs[:, present]
    totals = probs.sum(axis=1, keepdims=True)
    probs = np.where(totals > 0, probs / np.where(totals > 0, totals, 1.0), 1.0 / len(present))
    joint = estimate_joint(remap[state.labels], probs)
    return float(1.0 - np.trace(joint)), joint, [state.classes[i] for i in present]


def noise_plot(joint: np.ndarray, classes: list[str], noise_rate: float | None) -> bytes:
    """A PNG heat map of the estimated joint of given (rows) and true (columns) labels."""
    import matplotlib

    matplotlib.use("Agg")
    from matplotlib import pyplot as plt

    k = len(classes)
    size = min(10.0, 2.5 + 0.35 * k)
    fig, ax = plt.subplots(figsize=(size, size * 0.85), dpi=100)
    try:
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
        fig.tight_layout()
        out = io.BytesIO()
        fig.savefig(out, format="png")
        return out.getvalue()
    finally:
        plt.close(fig)
