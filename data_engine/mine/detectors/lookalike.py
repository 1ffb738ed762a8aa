"""``lookalike``: examples that look like the ones reviewers discarded, and copies of reviewed ones.

Reviewers' verdicts so far (discarded versus reviewed and kept, whatever issue type sent the
example to review) train a logistic regression on each example's surface features
(:mod:`data_engine.mine.surface`), beside the modality's own embedding for columns those do not
read (image files, vector columns: ``MiningData.embedding``). Every unreviewed example gets an out-of-sample probability of
being discarded (the model never saw it); the reviewed ones get scikit-learn's
``cross_val_predict`` probabilities, on which the propagation threshold is chosen: the lowest
probability whose held-out precision reaches ``precision_target`` over at least ``min_count``
verdicts. Active learning: the ``ask`` unreviewed examples it is least sure of (scikit-activeml's
least-confident uncertainty) are flagged too, so the next reviews teach it the most.

Copies: an unreviewed exact copy (same feature hash) or near copy (nearest reviewed example in
surface space closer than cleanlab's near-duplicate share of the median distance) of an example a
reviewer discarded or relabeled is flagged with the partner's id and verdict.

Score (low = problem): ``1 - p(discard)`` for look-alikes and near copies, :data:`ASKED_SCORE`
for the asked ones, 0 for exact copies. No method in cleanlab, Label Studio or FiftyOne learns from verdicts this way; Tesla's data
engine calls it "find more like this", hence our own code on scikit-learn parts.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import pandas as pd

from data_engine.mine.detectors.base import Detector, DetectorResult, MiningData, fmt, issues_frame, register_detector
from data_engine.mine.detectors.near_duplicate import NEAR_DUPLICATE_THRESHOLD

# Fewer discards than this and the detector waits: a classifier on 2 discards learns noise.
MIN_DISCARDED = 5
# Weight of an unreviewed example as a presumed-kept one (see LookalikeDetector._fit_predict).
UNREVIEWED_WEIGHT = 0.05
# Unreviewed examples it asks about per run (active learning), on top of the confident look-alikes.
ASK_PER_RUN = 25
# ... and only where the model is unsure: below this probability of junk a question teaches it
# little (a new user's image files: 25 questions at p = 0.00 a run, all 25 answered "keep", ranked
# above the label flags). docs/review.md states the same band.
ASK_MIN_P = 0.1
# Score of an asked example: active learning pays off only if its questions are answered, so they
# rank with confident findings (priority = weight * (1 - score)).
ASKED_SCORE = 0.0
# Reviewed neighbours counted for the reason ("looks like N examples reviewers discarded").
REASON_NEIGHBOURS = 10
DEFAULT_PRECISION = 0.98
DEFAULT_MIN_COUNT = 30


@register_detector
class LookalikeDetector(Detector):
    """Learns what reviewers discard and finds more of it; carries verdicts to copies."""

    issue_name = "lookalike"
    # Part of the actor of propagated events: bump when scores change for the same verdicts.
    version = "1"

    def __init__(self, *, precision_target: float = DEFAULT_PRECISION, min_count: int = DEFAULT_MIN_COUNT,
                 ask: int = ASK_PER_RUN, seed: int = 0) -> None:
        self.precision_target = precision_target
        self.min_count = min_count
        self.ask = ask
        self.seed = seed

    @property
    def actor(self) -> str:
        """Who propagated events name as their actor."""
        return f"detector:{self.issue_name}@{self.version}"

    def find_issues(self, data: MiningData) -> DetectorResult:
        """Judge the unreviewed rows of ``data`` from ``data.verdicts``; needs ``data.inputs``."""
        verdicts = data.verdicts if data.verdicts is not None else pd.DataFrame()
        n_discarded = int(verdicts["is_discarded"].sum()) if len(verdicts) else 0
        summary: dict[str, Any] = {"actor": self.actor, "verdicts": len(verdicts), "discarded": n_discarded,
                                   "kept": len(verdicts) - n_discarded, "threshold": None,
                                   "estimated_precision": None, "flagged": 0, "asked": 0, "copies": 0}
        if data.inputs is None or not data.schema:
            return self._empty(summary | {"status": "no input columns"})
        # Without verdicts nothing is judged: the ids are not matched against none (a frame of every id,
        # about 30 MB at a million rows, for the same result).
        if len(verdicts) == 0:
            return self._empty(summary | {"status": "waiting for verdicts"})
        reviewed = set(verdicts["example_id"])
        rows = np.flatnonzero(~pd.Series(data.example_ids).isin(reviewed).to_numpy())
        if len(rows) == 0:
            return self._empty(summary | {"status": "waiting for verdicts"})
        X, features = self._features(data, rows, verdicts)
        summary["features"] = features
        if X is None:
            return self._empty(summary | {"status": f"no features: {features}"})
        Xv, Xc = X[: len(verdicts)], X[len(verdicts):]
        y = verdicts["is_discarded"].to_numpy(dtype=bool)
        ids = data.example_ids[rows]
        copy_partner, copy_kind = self._copies(data, rows, verdicts, Xv, Xc)
        if n_discarded < MIN_DISCARDED:
            p = np.zeros(len(rows))
            summary["status"] = f"waiting for {MIN_DISCARDED} discarded examples"
        else:
            p, heldout = self._fit_predict(Xv, y, Xc)
            # The verdicts come from the queue, which over-samples junk, so this estimate can be
            # optimistic; the audited share of each propagation measures the precision reached.
            threshold, precision, count = choose_threshold(heldout, y, self.precision_target, self.min_count)
            summary.update(status="trained", threshold=threshold, estimated_precision=precision,
                           heldout_above_threshold=count, heldout_auc=_auc(heldout, y))
        near = self._discarded_neighbours(Xv, Xc, y)
        asked = np.zeros(len(rows), bool)
        if summary["status"] == "trained" and self.ask > 0:
            from skactiveml.pool import uncertainty_scores

            unsure = uncertainty_scores(np.column_stack([1 - p, p]), method="least_confident")
            candidates = np.flatnonzero((p >= ASK_MIN_P) & (p < 0.5))
            asked[candidates[np.argsort(-unsure[candidates], kind="stable")[: self.ask]]] = True
        lookalike = p >= 0.5
        is_copy = copy_partner >= 0
        flags = lookalike | asked | is_copy
        # Exact copies come first; near copies rank as the look-alikes they are.
        score = np.where(copy_kind == "exact", 0.0, np.where(asked, ASKED_SCORE, 1 - p))
        partner_ids = np.where(is_copy, verdicts["example_id"].to_numpy(dtype=object)[np.maximum(copy_partner, 0)], None)
        verdict = np.where(verdicts["is_discarded"].to_numpy(bool), "discard",
                           verdicts["label"].astype(object).fillna("").astype(str).to_numpy(dtype=object))
        partner_verdict = np.where(is_copy, verdict[np.maximum(copy_partner, 0)], None)
        said = np.where(partner_verdict == "discard", "which a reviewer discarded",
                        "which a reviewer labeled '" + partner_verdict.astype(str) + "'")
        reason = np.where(
            is_copy, copy_kind.astype(object) + " copy of " + partner_ids.astype(str) + ", " + said,
            np.where(lookalike, "looks like " + near.astype(str) + " examples reviewers discarded (p = " + fmt(p) + ")",
                     np.where(asked, "the look-alike model is unsure (p = " + fmt(p) + "): a verdict teaches it most",
                              "unlike what reviewers discarded")))
        detail = pd.DataFrame({"p_discard": np.round(p, 4), "asked": asked, "discarded_neighbours": near,
                               "partner_id": partner_ids, "partner_verdict": partner_verdict,
                               "copy": np.where(is_copy, copy_kind, None)})
        summary.update(flagged=int(lookalike.sum()), asked=int(asked.sum()), copies=int(is_copy.sum()),
                       exact_copies=int((copy_kind == "exact").sum()))
        return DetectorResult(self.issue_name, issues_frame(ids, flags, score, reason, detail), summary)

    def _features(self, data: MiningData, rows: np.ndarray, verdicts: pd.DataFrame) -> tuple[Any, str]:
        """Features of the V verdicts then the M candidates (``rows``), sparse of shape (V + M, F),
        and what they are; (None, why) when there are none.

        Surface features (:mod:`data_engine.mine.surface`) of the columns they read, beside the
        modality's own embedding (``data.embedding``, standardised) where they miss columns: an
        image file or a vector column has no surface the text or reading statistics see.
        """
        import scipy.sparse as sp
        from sklearn.preprocessing import StandardScaler

        from data_engine.mine.embedders.base import EMBEDDING_COLUMN
        from data_engine.mine.surface import SURFACE_KINDS, surface_features

        read = {c: k for c, k in data.schema.items() if k in SURFACE_KINDS}
        unread = [c for c in data.schema if c not in read]
        blocks, names = [], []
        if read:
            cols = list(read)
            frame = pd.concat([verdicts[cols], data.inputs.iloc[rows][cols]], ignore_index=True)
            blocks.append(surface_features(frame, read, data.modality))
            names.append("surface")
        if unread:
            if data.embedding is None or EMBEDDING_COLUMN not in verdicts.columns:
                return None, f"no embedding for column(s) {', '.join(unread)}"
            vectors = np.vstack([np.stack(verdicts[EMBEDDING_COLUMN].to_numpy()), data.embedding[rows]])
            blocks.append(sp.csr_matrix(StandardScaler().fit_transform(vectors.astype(np.float64))))
            names.append(f"{data.embedding_name} embedding")
        X = sp.hstack(blocks, format="csr") if blocks else sp.csr_matrix((len(verdicts) + len(rows), 0))
        if X.shape[1] == 0:
            return None, "the input columns give no features"
        return X, " + ".join(names)

    def _empty(self, summary: dict[str, Any]) -> DetectorResult:
        empty = issues_frame(np.array([], object), np.array([], bool), np.array([]), np.array([], object))
        return DetectorResult(self.issue_name, empty, summary)

    def _fit_predict(self, Xv: Any, y: np.ndarray, Xc: Any) -> tuple[np.ndarray, np.ndarray]:
        """Out-of-sample p(discard) for the M candidates, shape (M,), and the V verdicts, shape (V,).

        Positive-unlabeled learning with cross-fitting: the verdicts (discarded = 1, kept = 0) and
        the unreviewed examples (0, at :data:`UNREVIEWED_WEIGHT`) train a logistic regression in
        K stratified folds (scikit-learn ``cross_val_predict``), each row scored by the model
        that did not see it. Unreviewed rows as light negatives let a few discards be learned
        before any kept verdict exists (the first queue is mostly junk); measured on the
        sentiment benchmark, weight 0.05 ranked the junk better than 0.2 or 1.
        """
        import scipy.sparse as sp
        from sklearn.linear_model import LogisticRegression
        from sklearn.model_selection import StratifiedKFold, cross_val_predict

        X = sp.vstack([Xv, Xc], format="csr")
        target = np.r_[y.astype(np.int64), np.zeros(Xc.shape[0], np.int64)]
        weight = np.r_[np.ones(len(y)), np.full(Xc.shape[0], UNREVIEWED_WEIGHT)]
        model = LogisticRegression(C=4.0, class_weight="balanced", max_iter=2000)
        cv = StratifiedKFold(n_splits=int(min(5, y.sum())), shuffle=True, random_state=self.seed)
        p = cross_val_predict(model, X, target, cv=cv, method="predict_proba", params={"sample_weight": weight})[:, 1]
        return p[len(y):], p[: len(y)]

    def _discarded_neighbours(self, Xv: Any, Xc: Any, y: np.ndarray) -> np.ndarray:
        """Per candidate, how many of its ``REASON_NEIGHBOURS`` nearest reviewed examples were discarded."""
        from sklearn.neighbors import NearestNeighbors

        k = min(REASON_NEIGHBOURS, Xv.shape[0])
        idx = NearestNeighbors(n_neighbors=k, metric="cosine").fit(Xv).kneighbors(Xc, return_distance=False)
        return y[idx].sum(axis=1).astype(np.int64)

    def _copies(self, data: MiningData, rows: np.ndarray, verdicts: pd.DataFrame, Xv: Any,
                Xc: Any) -> tuple[np.ndarray, np.ndarray]:
        """Per candidate, the index of a reviewed example it copies whose verdict changed something
        (discarded, or relabeled outside low-dimensional tabular data), else -1; and 'exact' | 'near' | ''."""
        n = len(rows)
        partner = np.full(n, -1, dtype=np.int64)
        kind = np.full(n, "", dtype=object)
        relabeled = verdicts["label"].astype(object).to_numpy() != verdicts["given_label"].astype(object).to_numpy()
        # In low-dimensional tabular data identical rows legitimately differ in outcome: a relabeled
        # passenger says nothing about the label of an identical one (a discarded row still does).
        changed = verdicts["is_discarded"].to_numpy(bool) | (relabeled & (not data.low_dimensional))
        if not changed.any():
            return partner, kind
        hashes = pd.Series(np.flatnonzero(changed), index=verdicts["feature_hash"].astype(str).to_numpy()[changed])
        hashes = hashes[~hashes.index.duplicated(keep="last")]
        exact = pd.Series(data.feature_hash[rows]).astype(str).map(hashes)
        hit = exact.notna().to_numpy()
        partner[hit] = exact[hit].astype(np.int64).to_numpy()
        kind[hit] = "exact"
        from sklearn.neighbors import NearestNeighbors

        dist, idx = NearestNeighbors(n_neighbors=1, metric="cosine").fit(Xv[changed]).kneighbors(Xc)
        dist, idx = dist[:, 0], np.flatnonzero(changed)[idx[:, 0]]
        positive = dist[dist > 0]
        median = float(np.median(positive)) if len(positive) else 0.0
        near = ~hit & (dist <= NEAR_DUPLICATE_THRESHOLD * median)
        partner[near] = idx[near]
        kind[near] = "near"
        return partner, kind


def choose_threshold(heldout: np.ndarray, discarded: np.ndarray, target: float, min_count: int, *,
                     min_kept: int = 0) -> tuple[float | None, float | None, int]:
    """The lowest p(discard) threshold whose held-out precision reaches ``target``.

    ``heldout``: shape (V,), out-of-fold p(discard) of the reviewed examples; ``discarded``: shape
    (V,) bool, their verdicts. Precision at t = discarded share among verdicts with p >= t; only
    thresholds with at least ``min_count`` such verdicts (and t >= 0.5) count, and none while
    fewer than ``min_kept`` verdicts are kept ones. Returns (threshold, its precision, its count),
    or (None, None, 0) when no threshold qualifies.
    """
    if int((~discarded.astype(bool)).sum()) < min_kept:
        return None, None, 0
    order = np.argsort(-heldout, kind="stable")
    p, d = heldout[order], discarded[order].astype(np.float64)
    counts = np.arange(1, len(p) + 1)
    precision = np.cumsum(d) / counts
    # A threshold sits at a distinct probability: take the last row of each run of ties.
    last = np.r_[p[1:] != p[:-1], True]
    ok = last & (counts >= min_count) & (precision >= target) & (p >= 0.5)
    if not ok.any():
        return None, None, 0
    i = int(np.flatnonzero(ok)[-1])
    return float(p[i]), round(float(precision[i]), 4), int(counts[i])


def _auc(scores: np.ndarray, y: np.ndarray) -> float | None:
    from sklearn.metrics import roc_auc_score

    return round(float(roc_auc_score(y, scores)), 4) if 0 < y.sum() < len(y) else None
