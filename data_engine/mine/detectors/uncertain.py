"""``uncertain``: unlabeled examples the model is least sure of (what to label next)."""

from __future__ import annotations

import numpy as np
import pandas as pd

from data_engine.mine.detectors.base import Detector, DetectorResult, MiningData, fmt, issues_frame, register_detector

# Margin between the two most likely classes below which an unlabeled example is worth a label.
UNCERTAIN_MARGIN = 0.2


@register_detector
class UncertainDetector(Detector):
    """Scores unlabeled examples by the task's certainty (:meth:`data_engine.tasks.Task.certainty`,
    1 - uncertainty; for classes the margin between the top two class probabilities).

    Margin sampling is the standard active-learning criterion; for class probabilities the
    entropy is kept in the detail.
    """

    issue_name = "uncertain"

    def __init__(self, *, margin: float = UNCERTAIN_MARGIN) -> None:
        self.margin = margin

    def find_issues(self, data: MiningData) -> DetectorResult:
        """Judge unlabeled rows that have predicted probabilities."""
        rows = np.flatnonzero(~data.labeled & data.has_probs)
        probs = data.probs[rows]
        margin = data.task.certainty(probs) if len(rows) else np.ones(0)
        flags = margin < self.margin
        best = np.asarray(data.task.best(probs, data.classes)[0], dtype=object)
        reason = np.where(flags, "model unsure: '" + best + "' leads by " + fmt(margin), "model is confident")
        columns = {"margin": np.round(margin, 4)}
        if data.task.has_classes:
            columns["entropy"] = np.round(_entropy(probs), 4)
        detail = pd.DataFrame({**columns, "suggested": best})
        frame = issues_frame(data.example_ids[rows], flags, margin, reason, detail)
        return DetectorResult(self.issue_name, frame, {"unlabeled_scored": int(len(rows)), "flagged": int(flags.sum())})


def _entropy(probs: np.ndarray) -> np.ndarray:
    """Normalised entropy (in [0, 1]) of each row of class probabilities ``probs`` (N, K); shape (N,)."""
    k = probs.shape[1]
    with np.errstate(divide="ignore", invalid="ignore"):
        plogp = np.where(probs > 0, probs * np.log(np.where(probs > 0, probs, 1.0)), 0.0)
    return -plogp.sum(axis=1) / np.log(max(k, 2))
