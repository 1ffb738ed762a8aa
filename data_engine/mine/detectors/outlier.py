"""``outlier``: examples unlike the rest, by their distance to their nearest neighbours."""

from __future__ import annotations

import numpy as np
import pandas as pd

from data_engine.mine.detectors.base import Detector, DetectorResult, MiningData, fmt, issues_frame, register_detector

# cleanlab Datalab's default for feature-based outliers: an example is an outlier when its mean
# neighbour distance exceeds Q3 + (1 / threshold - 1) * IQR of all mean distances.
OUTLIER_THRESHOLD = 0.37037
# When most distances are equal (a grid, repeated values) the IQR is 0 and the rule above would
# flag anything a hair above the third quartile; an outlier must also be this many times farther
# from its neighbours than the median example.
MIN_DISTANCE_RATIO = 2.0


def typical_distance(mean_distance: np.ndarray) -> float:
    """The median of the rows' mean neighbour distances (shape (N,)), kept above zero."""
    return float(max(np.median(mean_distance), 100 * np.finfo(np.float64).eps))


def outlier_limit(mean_distance: np.ndarray, *, threshold: float = OUTLIER_THRESHOLD) -> float:
    """The mean neighbour distance above which a row is an outlier, from all rows' mean distances
    (shape (N,), the unit of the embedding): Datalab's Q3 + (1 / threshold - 1) * IQR, and at least
    :data:`MIN_DISTANCE_RATIO` times the median."""
    q1, q3 = np.percentile(mean_distance, [25, 75])
    return float(max(q3 + (1.0 / threshold - 1.0) * (q3 - q1), MIN_DISTANCE_RATIO * typical_distance(mean_distance)))


@register_detector
class OutlierDetector(Detector):
    """Scores every example (labeled or not) by its mean distance to its k nearest neighbours.

    The score is cleanlab's ``transform_distances_to_scores`` (exp(-d / median d)); the flag uses
    Datalab's interquartile rule so a dataset without outliers flags none.
    """

    issue_name = "outlier"
    needs_neighbours = True

    def __init__(self, *, threshold: float = OUTLIER_THRESHOLD) -> None:
        self.threshold = threshold

    def find_issues(self, data: MiningData) -> DetectorResult:
        """Judge all N examples; needs ``data.neighbours``."""
        return self._judge(data, flagged_only=False)

    def find_flagged(self, data: MiningData) -> DetectorResult:
        """:meth:`find_issues` with its flagged rows only, the others never worded: a million rows'
        reasons, their formatted distances and JSON details were the detectors stage's largest
        transient after the label rows (docs/mining.md)."""
        return self._judge(data, flagged_only=True)

    def _judge(self, data: MiningData, *, flagged_only: bool) -> DetectorResult:
        """Every row judged; the rows returned are all N, or the flagged ones with ``flagged_only``."""
        from cleanlab.outlier import transform_distances_to_scores

        if data.neighbours is None or len(data.example_ids) < 3:
            empty = issues_frame(np.array([], object), np.array([], bool), np.array([]), np.array([], object))
            return DetectorResult(self.issue_name, empty, {"skipped": "too few examples for neighbours"})
        mean_dist = data.neighbours.distances.mean(axis=1)
        scale = typical_distance(mean_dist)
        score = transform_distances_to_scores(mean_dist, t=1, scaling_factor=scale)
        limit = outlier_limit(mean_dist, threshold=self.threshold)
        flags = mean_dist > limit
        summary = {"flagged": int(flags.sum()), "distance_limit": float(limit), "median_distance": scale}
        # The rows returned (all, or the flagged ones): every array below is of these rows only.
        if flagged_only:
            rows = np.flatnonzero(flags)
            mean_dist, score, flags, ids = mean_dist[rows], score[rows], flags[rows], data.example_ids[rows]
        else:
            ids = data.example_ids
        reason = np.where(flags, "far from other examples: mean neighbour distance " + fmt(mean_dist / scale, "%.1f")
                          + "x the typical", "typical")
        detail = pd.DataFrame({"mean_distance": np.round(mean_dist, 5)})
        frame = issues_frame(ids, flags, score, reason, detail)
        return DetectorResult(self.issue_name, frame, summary, flagged=summary["flagged"] if flagged_only else None)
