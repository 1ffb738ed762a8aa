"""``near_duplicate``: exact copies (same input hash) and near copies (a very close neighbour; for
image files also a perceptual hash within a few bits or a close neighbour, confirmed by comparing
the images, see
:mod:`data_engine.mine.detectors.image_duplicates`)."""

from __future__ import annotations

import numpy as np
import pandas as pd

from data_engine.mine.detectors.base import (
    Detector,
    DetectorResult,
    MiningData,
    issues_frame,
    register_detector,
)
from data_engine.mine.detectors.image_duplicates import (
    COPY_MAX_DIFFERENCE,
    find_image_copies,
)

# cleanlab Datalab's default: a neighbour closer than this share of the median nearest-neighbour
# distance is a near duplicate.
NEAR_DUPLICATE_THRESHOLD = 0.13


@register_detector
class NearDuplicateDetector(Detector):
    """Flags examples with an exact or near copy anywhere in the data (across batches).

    Score (low = problem): duplicates whose labels disagree score in [0, 0.5), other duplicates in
    [0.5, 1), each by ``1 - exp(-d / median d)`` of the distance to the copy (cleanlab's transform),
    so contradictory copies come first in the review queue.
    """

    issue_name = "near_duplicate"
    needs_neighbours = True

    def __init__(self, *, threshold: float = NEAR_DUPLICATE_THRESHOLD) -> None:
        self.threshold = threshold

    def find_issues(self, data: MiningData) -> DetectorResult:
        """Judge all N examples; uses ``data.feature_hash`` and, if present, ``data.neighbours``."""
        n = len(data.example_ids)
        labels = data.labels
        if n == 0:
            empty = issues_frame(np.array([], object), np.array([], bool), np.array([]), np.array([], object))
            return DetectorResult(self.issue_name, empty, {"exact": 0, "near": 0, "labels_disagree": 0})
        # Exact copies: rows sharing a feature hash. The partner is the group's first member
        # (its second for the first member itself).
        groups = pd.Series(data.feature_hash, dtype=object).astype(str)
        codes, uniques = pd.factorize(groups)
        group_size = np.bincount(codes, minlength=len(uniques))[codes]
        order = np.argsort(codes, kind="stable")
        sorted_codes = codes[order]
        starts = np.r_[0, np.flatnonzero(sorted_codes[1:] != sorted_codes[:-1]) + 1]
        first = order[starts]
        second = np.where(starts + 1 < n, order[np.minimum(starts + 1, n - 1)], -1)
        second = np.where(np.bincount(codes, minlength=len(uniques)) > 1, second, -1)
        first, second = first[codes], second[codes]
        exact = group_size > 1
        partner = np.where(first == np.arange(n), second, first)
        distance = np.where(exact, 0.0, np.inf)
        # Labels disagree within an exact group when it holds two different labels.
        lab = pd.DataFrame({"g": codes, "y": np.where(labels >= 0, labels, np.nan)})
        n_labels = lab.groupby("g")["y"].nunique().reindex(range(len(uniques)), fill_value=0).to_numpy()
        disagree = exact & (n_labels[codes] > 1)
        median = 1.0
        near = np.zeros(n, dtype=bool)
        if data.neighbours is not None and n >= 3:
            nn_dist = data.neighbours.distances[:, 0]
            nn_idx = data.neighbours.indices[:, 0]
            positive = nn_dist[nn_dist > 0]
            median = float(max(np.median(positive) if len(positive) else 0.0, 100 * np.finfo(np.float64).eps))
            near = ~exact & (nn_dist < self.threshold * median)
            partner = np.where(near, nn_idx, partner)
            distance = np.where(near, nn_dist, distance)
            distance = np.where(exact | near, distance, nn_dist)
            both = near & (labels >= 0) & (labels[nn_idx] >= 0)
            disagree |= both & (labels != labels[nn_idx])
        by_image = np.zeros(n, dtype=bool)
        if data.image_hashes is not None or data.image_paths is not None:
            copies = find_image_copies(data.image_hashes, data.image_paths, data.neighbours, exclude=exact | near)
            by_image = copies.found
            near |= by_image
            partner = np.where(by_image, copies.partner, partner)
            # Placed inside the embedding's near band, closer for images that differ less.
            within = np.nan_to_num(copies.difference / COPY_MAX_DIFFERENCE, nan=1.0)
            distance = np.where(by_image, self.threshold * median * within, distance)
            other = labels[np.maximum(copies.partner, 0)]
            disagree |= by_image & (labels >= 0) & (other >= 0) & (labels != other)
        flags = exact | near
        closeness = 1.0 - np.exp(-np.where(np.isfinite(distance), distance, 1e6) / median)
        score = np.where(disagree, 0.5 * closeness, 0.5 + 0.5 * closeness)
        partner_id = np.where(partner >= 0, data.example_ids[np.maximum(partner, 0)], None)
        kind = np.where(exact, "exact duplicate of ", "near duplicate of ")
        reason = np.where(flags, kind + partner_id.astype(str), "no close copy")
        reason = np.where(disagree, reason + " with a different label ('" + data.class_names(labels) + "' vs '"
                          + data.class_names(labels[np.maximum(partner, 0)]) + "')", reason)
        found_by = np.where(exact, "same content", np.where(by_image, "image comparison",
                                                            np.where(near, "embedding", None)))
        detail = pd.DataFrame({
            "duplicate_of": np.where(flags, partner_id, None),
            "exact": exact,
            "found_by": found_by,
            "copies": np.where(exact, group_size, np.where(near, 2, 1)),
            "labels_disagree": disagree,
        })
        frame = issues_frame(data.example_ids, flags, score, reason, detail)
        summary = {"exact": int(exact.sum()), "near": int(near.sum()), "near_by_image": int(by_image.sum()),
                   "labels_disagree": int(disagree.sum()),
                   "median_nn_distance": median}
        return DetectorResult(self.issue_name, frame, summary)
