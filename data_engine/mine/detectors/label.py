"""``label``: likely label errors by the task's label check (confident learning, cleanlab)."""

from __future__ import annotations

import numpy as np
import pandas as pd

from data_engine.mine.detectors.base import Detector, DetectorResult, MiningData, issues_frame, reason_column, \
    register_detector
from data_engine.tasks.label_issues import release_cleanlab_copies


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
        # Every row judged (``rows`` is sorted and unique): the arrays themselves, not copies of them (the
        # (N, K) predictions' copy was 80 MB at a million rows and ten classes). The task's check reads
        # them; a read-only view makes sure it cannot change the predictions the later stages read.
        every = len(rows) == len(data.example_ids)
        labels = data.labels.view() if every else data.labels[rows]
        probs = data.probs.view() if every else data.probs[rows]
        labels.flags.writeable = probs.flags.writeable = False
        inputs = None if data.inputs is None else data.inputs if every \
            else data.inputs.iloc[rows].reset_index(drop=True)
        found = data.task.label_issues(labels, probs, data.classes, inputs)
        del probs, inputs
        release_cleanlab_copies()  # a plug-in task's call of cleanlab leaves its copy too
        if found.skipped:
            empty = issues_frame(np.array([], object), np.array([], bool), np.array([]), np.array([], object))
            return DetectorResult(self.issue_name, empty, {"skipped": found.skipped})
        # Every row of this result is kept (a million at a million labeled rows): the check's reasons become
        # the frame's own Arrow string column here, and the check's result (its list of a Python string per
        # row) goes before the frame is built; the details are built a block at a time (``issues_frame``),
        # not as a whole frame of names beside the frame being built (docs/mining.md). The same rows as before.
        summary, suggested, suggested_score = dict(found.summary), found.suggested, found.suggested_score
        flags, scores, reasons = found.is_issue, found.scores, reason_column(found.detail)
        del found
        task, classes = data.task, data.classes

        def detail(part: slice) -> pd.DataFrame:
            return pd.DataFrame({"given": task.decode(labels[part], classes), "suggested": suggested[part],
                                 "suggested_score": np.round(suggested_score[part], 4)})

        frame = issues_frame(data.example_ids if every else data.example_ids[rows], flags, scores, reasons, detail)
        return DetectorResult(self.issue_name, frame, summary)
