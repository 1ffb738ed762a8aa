"""``uncertain``: unlabeled examples the model is least sure of (what to label next)."""

from __future__ import annotations

import numpy as np
import pandas as pd

from data_engine.mine.detectors.base import Detector, DetectorResult, MiningData, fmt, issues_frame, register_detector

# Margin between the two most likely classes below which an unlabeled example is worth a label.
UNCERTAIN_MARGIN = 0.2


@register_detector
class UncertainDetector(Detector):
    """Scores unlabeled examples by the margin between their top two class probabilities.

    Margin sampling is the standard active-learning criterion; entropy is kept in the detail.
    """

    issue_name = "uncertain"

    def __init__(self, *, margin: float = UNCERTAIN_MARGIN) -> None:
        self.margin = margin

    def find_issues(self, data: MiningData) -> DetectorResult:
        """Judge unlabeled rows that have predicted probabilities."""
        rows = np.flatnonzero(~data.labeled & data.has_probs)
        probs = data.probs[rows]
        k = probs.shape[1]
        if k >= 2 and len(rows):
            top2 = -np.partition(-probs, 1, axis=1)[:, :2]
            margin = top2[:, 0] - top2[:, 1]
        else:
            margin = np.ones(len(rows))
        with np.errstate(divide="ignore", invalid="ignore"):
            plogp = np.where(probs > 0, probs * np.log(np.where(probs > 0, probs, 1.0)), 0.0)
        entropy = -plogp.sum(axis=1) / np.log(max(k, 2))
        flags = margin < self.margin
        best = data.class_names(probs.argmax(axis=1) if len(rows) else np.array([], int))
        reason = np.where(flags, "model unsure: '" + best + "' leads by " + fmt(margin), "model is confident")
        detail = pd.DataFrame({"margin": np.round(margin, 4), "entropy": np.round(entropy, 4), "suggested": best})
        frame = issues_frame(data.example_ids[rows], flags, margin, reason, detail)
        return DetectorResult(self.issue_name, frame, {"unlabeled_scored": int(len(rows)), "flagged": int(flags.sum())})
