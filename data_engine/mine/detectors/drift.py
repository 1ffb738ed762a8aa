"""``drift``: unlabeled rows of a drifted batch that look most unlike the training data in force (the
rows worth a label: the model has seen nothing like them)."""

from __future__ import annotations

import numpy as np
import pandas as pd

from data_engine.mine.detectors.base import Detector, DetectorResult, MiningData, fmt, issues_frame, register_detector

# A row is flagged when the domain classifier gives it at least this out-of-fold probability of
# being a batch row (0.5: it leans to "new"); the queue ranks the flags by that probability.
NEW_LOOKING = 0.5


@register_detector
class DriftDetector(Detector):
    """Judges the examples of batches found drifted at ingest (:mod:`data_engine.ingest.batch_drift`)
    by their stored domain-classifier score (Rabanser et al. 2019, "Failing loudly": the classifier's
    most confident rows are the most atypical ones); score = 1 - that probability."""

    issue_name = "drift"

    def __init__(self, *, threshold: float = NEW_LOOKING) -> None:
        self.threshold = threshold

    def find_issues(self, data: MiningData) -> DetectorResult:
        """Judge the unlabeled rows with a stored drift score (none before a drifted batch lands)."""
        known = data.drift_scores or {}
        # Unlabeled rows only: a drifted batch's labeled rows are already training data (their labels
        # are the label detector's to judge); asking for a label they have spends a review on nothing.
        rows = np.flatnonzero([str(e) in known for e in data.example_ids] & ~data.labeled)
        newness = np.array([known[str(e)] for e in data.example_ids[rows]], float)
        flags = newness >= self.threshold
        reason = np.where(flags, "unlike the training data (domain classifier: " + fmt(newness) + " new)",
                          "like the training data")
        detail = pd.DataFrame({"newness": np.round(newness, 4)})
        frame = issues_frame(data.example_ids[rows], flags, 1.0 - newness, reason, detail)
        return DetectorResult(self.issue_name, frame, {"scored": int(len(rows)), "flagged": int(flags.sum())})
