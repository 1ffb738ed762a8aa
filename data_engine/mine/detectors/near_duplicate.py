"""``near_duplicate``: exact copies (same input hash) and near copies (a very close neighbour; for
image files also a perceptual hash within a few bits or a close neighbour, confirmed by comparing
the images, see
:mod:`data_engine.mine.detectors.image_duplicates`).

Copies are review items by the evidence that a label is wrong, not by being copies: a copy whose
label differs from its copies' is flagged when its label is more likely wrong than right by the mean
of the model's out-of-fold probability of that label and the share of its copies that carry it (the
copies' own agreement); in low-dimensional tabular data (``MiningData.low_dimensional``) identical rows arise legitimately (two third-class passengers of one age and
fare), and a set label (tags, entity spans, boxes) copied with the same set is one example twice, so
there copies with agreeing labels are a data-set fact in the summary (``copies_fact``), not review items, unless reviewers' verdicts on such flags show they pay (``copies_pay``, decided by
:func:`agreeing_copies_pay`)."""

from __future__ import annotations

import duckdb
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


# Agreeing copies pay when reviewers confirmed at least this share of them: a confirmed fix is worth
# two new labels (data_engine.mine.budget.FIX_WORTH), so below one half a review of such a copy
# gains less than a new label would.
PAYING_RATE = 0.5


# Verdicts on agreeing copies needed before their rate is trusted.
MIN_COPY_VERDICTS = 20


@register_detector
class NearDuplicateDetector(Detector):
    """Flags examples with an exact or near copy anywhere in the data (across batches).

    Score (low = problem): a copy whose label disagrees with its copies' scores the evidence that its
    label is right (see the module docstring; flagged below 0.5); other copies score in [0.5, 1) by
    ``1 - exp(-d / median d)`` of the distance to the copy (cleanlab's transform), so contradictory
    copies come first in the review queue.
    """

    issue_name = "near_duplicate"
    needs_neighbours = True

    def __init__(self, *, threshold: float = NEAR_DUPLICATE_THRESHOLD, copies_pay: bool = False) -> None:
        self.threshold = threshold
        self.copies_pay = copies_pay

    def find_issues(self, data: MiningData) -> DetectorResult:
        """Judge all N examples; uses ``data.feature_hash`` and, if present, ``data.neighbours``."""
        return self._judge(data, flagged_only=False)

    def find_flagged(self, data: MiningData) -> DetectorResult:
        """:meth:`find_issues` with its flagged rows only, the others never worded (their reasons and
        JSON details were about 0.2 GB at a million rows)."""
        return self._judge(data, flagged_only=True)

    def _judge(self, data: MiningData, *, flagged_only: bool) -> DetectorResult:
        """Every row judged; the rows returned are all N, or the flagged ones with ``flagged_only``."""
        n = len(data.example_ids)
        labels = data.label_codes
        if n == 0:
            empty = issues_frame(np.array([], object), np.array([], bool), np.array([]), np.array([], object))
            return DetectorResult(self.issue_name, empty, {"exact": 0, "near": 0, "labels_disagree": 0})
        # Exact copies: rows sharing a feature hash. The partner is the group's first member
        # (its second for the first member itself).
        # Integer hashes (the warehouse's uint64) are grouped as they are; others by their text.
        hashes = np.asarray(data.feature_hash)
        codes, uniques = pd.factorize(hashes if hashes.dtype.kind in "iu" else pd.Series(hashes, dtype=object).astype(str))
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
        # Labels disagree within an exact group when it holds two different labels. Only exact copies'
        # groups can (every member of a group of two or more is an exact copy): grouped alone, not all N rows.
        ex = np.flatnonzero(exact)
        lab = pd.DataFrame({"g": codes[ex], "y": np.where(labels[ex] >= 0, labels[ex], np.nan)})
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
        is_copy = exact | near
        closeness = 1.0 - np.exp(-np.where(np.isfinite(distance), distance, 1e6) / median)
        # Evidence that a disagreeing copy's label is right: the model's out-of-fold probability
        # of it and the share of its copies (itself included) that carry it, averaged.
        share = _label_share(codes, labels, exact, near, partner)
        p_label = data.label_probability()
        label_right = np.where(np.isfinite(p_label), 0.5 * (p_label + share), share)
        low_dim = data.low_dimensional
        # A set label (tags, entity spans, boxes) copied with the same set is the same example twice: the
        # copies agree, so neither label is more suspect than the other (a trial's reviewers confirmed 1 of
        # 39 such NER flags). One class per example keeps queueing them outside low-dimensional data.
        set_label = data.task.column_labels == "tags"
        agreeing_flagged = self.copies_pay or not (low_dim or set_label)
        # Without a probability of the label (span and box sets) a pair's tie (share 0.5) is not
        # evidence for either label, but one of them is wrong: both are reviewed.
        tie_flagged = set_label & ~np.isfinite(p_label) & (share <= 0.5)
        flags = np.where(disagree, (label_right < 0.5) | tie_flagged, is_copy & agreeing_flagged)
        score = np.clip(np.where(disagree, label_right, 0.5 + 0.5 * closeness), 0.0, 1.0)
        del closeness, share, p_label, label_right, distance  # (N,) arrays read by nothing past here
        summary = self._summary(data, codes, group_size, exact, near, by_image, disagree, flags, median)
        # The rows returned (all, or the flagged ones): every array below is of these rows only.
        rows = np.flatnonzero(flags) if flagged_only else np.arange(n)
        exact, near, by_image, disagree, is_copy = exact[rows], near[rows], by_image[rows], disagree[rows], is_copy[rows]
        partner, group_size = partner[rows], group_size[rows]
        partner_id = np.where(partner >= 0, data.example_ids[np.maximum(partner, 0)], None)
        # Worded for the copies only (the rest share one string): wording every row made arrays of N
        # new strings, about 0.6 GB at a million rows.
        reason = np.full(len(rows), "no close copy", dtype=object)
        at = np.flatnonzero(is_copy)
        reason[at] = np.where(exact[at], "exact duplicate of ", "near duplicate of ") + partner_id[at].astype(str)
        at = np.flatnonzero(disagree)
        reason[at] = (reason[at] + " with a different label ('" + data.label_names(rows[at]) + "' vs '"
                      + data.label_names(np.maximum(partner, 0)[at]) + "')")
        found_by = np.where(exact, "same content", np.where(by_image, "image comparison",
                                                            np.where(near, "embedding", None)))
        detail = pd.DataFrame({
            "duplicate_of": np.where(is_copy, partner_id, None),
            "exact": exact,
            "found_by": found_by,
            "copies": np.where(exact, group_size, np.where(near, 2, 1)),
            "labels_disagree": disagree,
        })
        frame = issues_frame(data.example_ids[rows], flags[rows], score[rows], reason, detail)
        return DetectorResult(self.issue_name, frame, summary, flagged=int(flags.sum()) if flagged_only else None)

    def _summary(self, data: MiningData, codes: np.ndarray, group_size: np.ndarray, exact: np.ndarray,
                 near: np.ndarray, by_image: np.ndarray, disagree: np.ndarray, flags: np.ndarray,
                 median: float) -> dict:
        """The run's figures of the check, from its (N,) arrays."""
        is_copy = exact | near
        low_dim = data.low_dimensional
        set_label = data.task.column_labels == "tags"
        n = len(codes)
        summary = {"exact": int(exact.sum()), "near": int(near.sum()), "near_by_image": int(by_image.sum()),
                   "labels_disagree": int(disagree.sum()), "disagree_flagged": int((disagree & flags).sum()),
                   "median_nn_distance": median}
        if low_dim or set_label:
            agreeing = is_copy & ~disagree
            why = ("low-dimensional tabular data: identical rows are common and not errors by themselves"
                   if low_dim else f"copies with the same {data.task.name} label are the same example twice, "
                   "not a sign of a wrong label")
            summary["copies_fact"] = {
                "rows_with_copies": int(is_copy.sum()), "exact_groups": int((np.bincount(codes) > 1).sum()),
                "largest_group": int(group_size.max()) if n else 0, "agreeing_rows": int(agreeing.sum()),
                "queued_for_review": bool(self.copies_pay),
                "note": (why + "; copies with agreeing labels are " + ("queued: reviewers confirmed enough of them"
                                                               if self.copies_pay else "not queued for review"))}
        return summary


def _label_share(codes: np.ndarray, labels: np.ndarray, exact: np.ndarray, near: np.ndarray,
                 partner: np.ndarray) -> np.ndarray:
    """Per example (N,): the share of its labeled copies, itself included, that carry its label (an
    exact group's members, or the pair with a near copy); 1 without labeled copies."""
    n = len(labels)
    share = np.ones(n)
    # Every member of an exact group is an exact copy, so the labeled rows of the groups read are the
    # labeled exact copies: grouped alone, not all N rows (whose grouping and index were +160 MB at a
    # million rows).
    rows = np.flatnonzero(exact & (labels >= 0))
    lab = pd.DataFrame({"g": codes[rows], "y": labels[rows]})
    if len(lab):
        per_label = lab.groupby(["g", "y"]).size()
        per_group = lab.groupby("g").size()
        keys = pd.MultiIndex.from_arrays([codes[rows], labels[rows]])
        share[rows] = per_label.reindex(keys).to_numpy() / per_group.reindex(codes[rows]).to_numpy()
    pair = near & (labels >= 0) & (partner >= 0)
    other = labels[np.maximum(partner, 0)]
    share[pair] = np.where(other[pair] < 0, 1.0, np.where(other[pair] == labels[pair], 1.0, 0.5))
    return share


def agreeing_copies_pay(con: duckdb.DuckDBPyConnection) -> bool:
    """Whether reviewers confirmed at least :data:`PAYING_RATE` of at least :data:`MIN_COPY_VERDICTS`
    reviewed ``near_duplicate`` flags of copies whose labels agreed (``issues.detail.labels_disagree``
    false), over all runs."""
    confirmed, reviewed = con.execute(
        "SELECT count(*) FILTER (WHERE v.outcome = 'confirmed'), count(*) FROM review_verdicts v "
        "JOIN issues i ON i.run_id = v.run_id AND i.example_id = v.example_id "
        "AND i.issue_type = 'near_duplicate' AND i.is_issue "
        "WHERE list_contains(v.issue_types, 'near_duplicate') "
        "AND NOT coalesce(TRY_CAST(json_extract(i.detail, '$.labels_disagree') AS BOOLEAN), false)").fetchall()[0]
    return reviewed >= MIN_COPY_VERDICTS and confirmed / reviewed >= PAYING_RATE
