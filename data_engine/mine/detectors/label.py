"""``label``: likely label errors by confident learning (cleanlab)."""

from __future__ import annotations

import numpy as np
import pandas as pd

from data_engine.mine.detectors.base import Detector, DetectorResult, MiningData, fmt, issues_frame, register_detector

# cleanlab's default pruning; on digits with 20 % flips it gave the best F1 of the three
# filters for the default ensemble (see docs/mining.md).
FILTER_BY = "prune_by_noise_rate"
# Confident learning counts an example as mislabeled only if the model's probability of another
# class clears that class's threshold (its mean self-confidence). Once most errors are corrected the
# thresholds rise towards 1 and it stops flagging plain contradictions: on digits with 27 errors
# left after a simulated loop, it flagged 10 of them with the default ensemble's probabilities,
# while 21 had p(given) < 0.05 and another class preferred (25 such labels in all). So a label the
# model prefers another class to, and gives less than this probability, is flagged too. Measured over the
# demo's loop (3 seeds, 20 % noise): errors left after the loop 18-22 -> 5-10, reviews per true
# error 0.95-0.97 -> 1.01-1.03 (0.2 here left 4-6 for 1.09-1.12).
CONTRADICTED_BELOW = 0.05


@register_detector
class LabelDetector(Detector):
    """Flags labeled examples whose out-of-sample probabilities contradict the given label.

    Uses :func:`cleanlab.filter.find_label_issues` for the flags (plus labels the model plainly
    contradicts, see :data:`CONTRADICTED_BELOW`) and
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
        learned = find_label_issues(given, probs, filter_by=self.filter_by, n_jobs=1)
        quality = get_label_quality_scores(given, probs, method="self_confidence")
        contradicted = (probs.argmax(axis=1) != given) & (quality < CONTRADICTED_BELOW)
        flags = learned | contradicted
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
        summary = {"examples": int(len(rows)), "flagged": int(flags.sum()), "filter_by": self.filter_by,
                   "flagged_by_confident_learning": int(learned.sum()),
                   "flagged_as_contradicted_only": int((contradicted & ~learned).sum())}
        return DetectorResult(self.issue_name, frame, summary)
