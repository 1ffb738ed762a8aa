"""``class_imbalance``: a dataset-level finding about the labeled class distribution."""

from __future__ import annotations

import numpy as np

from data_engine.mine.detectors.base import Detector, DetectorResult, MiningData, issues_frame, register_detector

# cleanlab Datalab's rule: a class is under-represented when its share is below this fraction of
# the share it would have if all K classes were equally common (1 / K).
IMBALANCE_THRESHOLD = 0.1


@register_detector
class ClassImbalanceDetector(Detector):
    """Counts labeled examples per class; reports minority classes as metadata, flags no rows."""

    issue_name = "class_imbalance"

    def __init__(self, *, threshold: float = IMBALANCE_THRESHOLD) -> None:
        self.threshold = threshold

    def find_issues(self, data: MiningData) -> DetectorResult:
        """Summarise the class counts of the labeled rows."""
        k = len(data.classes)
        # Labeled examples per class (tags: examples carrying each tag).
        counts = np.bincount(data.labels[data.labeled], minlength=k) if data.labels.ndim == 1 \
            else data.labels[data.labeled].sum(axis=0).astype(np.int64)
        total = int(counts.sum())
        share = counts / total if total else np.zeros(k)
        minority = [data.classes[i] for i in np.flatnonzero(share < self.threshold / max(k, 1))]
        positive = counts[counts > 0]
        summary = {
            "counts": {c: int(n) for c, n in zip(data.classes, counts)},
            "ratio_largest_to_smallest": float(positive.max() / positive.min()) if len(positive) else None,
            "minority_classes": minority,
            "is_issue": bool(minority),
        }
        empty = issues_frame(np.array([], object), np.array([], bool), np.array([]), np.array([], object))
        return DetectorResult(self.issue_name, empty, summary)
