"""``label``: likely label errors by the task's label check (confident learning, cleanlab)."""

from __future__ import annotations

import numpy as np
import pandas as pd

from data_engine.mine.detectors.base import Detector, DetectorResult, MiningData, issues_frame, register_detector


@register_detector
class LabelDetector(Detector):
    """Flags labeled examples whose out-of-sample predictions contradict the given label.

    The check is the task's (:meth:`data_engine.tasks.Task.label_issues`; for classification
    :func:`cleanlab.filter.find_label_issues` plus labels the model plainly contradicts, scored by
    :func:`cleanlab.rank.get_label_quality_scores`).
    """

    issue_name = "label"

    def find_issues(self, data: MiningData) -> DetectorResult:
        """Judge every labeled row with out-of-sample predictions."""
        rows = np.flatnonzero(data.labeled & data.has_probs & data.out_of_sample)
        # Every row judged (``rows`` is sorted and unique): the columns themselves, not a copy of them.
        inputs = None if data.inputs is None else data.inputs if len(rows) == len(data.inputs) \
            else data.inputs.iloc[rows].reset_index(drop=True)
        found = data.task.label_issues(data.labels[rows], data.probs[rows], data.classes, inputs)
        if found.skipped:
            empty = issues_frame(np.array([], object), np.array([], bool), np.array([]), np.array([], object))
            return DetectorResult(self.issue_name, empty, {"skipped": found.skipped})
        detail = pd.DataFrame({"given": data.task.decode(data.labels[rows], data.classes),
                               "suggested": found.suggested, "suggested_score": np.round(found.suggested_score, 4)})
        frame = issues_frame(data.example_ids[rows], found.is_issue, found.scores, np.asarray(found.detail, object),
                             detail)
        return DetectorResult(self.issue_name, frame, dict(found.summary))
