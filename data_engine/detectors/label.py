"""``label``: likely label errors by confident learning (cleanlab)."""

from __future__ import annotations

import numpy as np
import pandas as pd

from data_engine.detectors.base import Detector, DetectorResult, MiningData, fmt, issues_frame, register_detector

# cleanlab's default pruning; on digits with 20 % flips it gave the best F1 of the three
# filters for the default ensemble (see docs/mining.md).
FILTER_BY = "prune_by_noise_rate"


@register_detector
class LabelDetector(Detector):
    """Flags labeled examples whose out-of-sample probabilities contradict the given label.

    Uses :func:`cleanlab.filter.find_label_issues` for the flags and
    :func:`cleanlab.rank.get_label_quality_scores` (self-confidence) for the score, with
    ``n_jobs=1``: cleanlab's multiprocessing path fails inside Dagster's spawned step processes.
    """

    issue_name = "label"

    def __init__(self, *, filter_by: str = FILTER_BY) -> None:
        self.filter_by = filter_by

    def find_issues(self, data: MiningData) -> DetectorResult:
        """Judge every labeled row with out-of-sample probabilities."""
        from cleanlab.filter import find_label_issues
        from cleanlab.rank import get_label_quality_scores

        rows = np.flatnonzero(data.labeled & data.has_probs & data.out_of_sample)
        labels = data.labels[rows]
        present = np.unique(labels)
        if len(present) < 2:
            empty = issues_frame(np.array([], object), np.array([], bool), np.array([]), np.array([], object))
            return DetectorResult(self.issue_name, empty, {"skipped": "needs labeled examples of two classes"})
        # cleanlab wants every class of pred_probs to occur among the labels: keep the classes
        # present and renormalise (a class with no labeled example cannot be a label error).
        remap = np.full(len(data.classes), -1)
        remap[present] = np.arange(len(present))
        probs = data.probs[np.ix_(rows, present)]
        totals = probs.sum(axis=1, keepdims=True)
        probs = np.where(totals > 0, probs / np.where(totals > 0, totals, 1.0), 1.0 / len(present))
        given = remap[labels]
        flags = find_label_issues(given, probs, filter_by=self.filter_by, n_jobs=1)
        quality = get_label_quality_scores(given, probs, method="self_confidence")
        suggested = present[probs.argmax(axis=1)]
        suggested_p = probs.max(axis=1)
        given_names = data.class_names(labels)
        suggested_names = data.class_names(suggested)
        reason = np.where(
            flags,
            "given '" + given_names + "' (p=" + fmt(quality) + "), model suggests '" + suggested_names
            + "' (p=" + fmt(suggested_p) + ")",
            "label agrees with the model",
        )
        detail = pd.DataFrame({"given": given_names, "suggested": suggested_names,
                               "suggested_score": np.round(suggested_p, 4)})
        frame = issues_frame(data.example_ids[rows], flags, quality, reason, detail)
        summary = {"examples": int(len(rows)), "flagged": int(flags.sum()), "filter_by": self.filter_by}
        return DetectorResult(self.issue_name, frame, summary)
