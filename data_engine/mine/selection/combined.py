"""The default strategy: uncertainty within diversity.

Pure margin sampling fills a batch with near-copies of the model's worst confusion (on the digits
from 100 labels it fell 2.5 points below random; docs/mining.md); pure diversity ignores what the
model already knows. This strategy clusters labeled and candidate examples together with k-means
into ``labeled + budget`` groups (TypiClust's clustering, Hacohen et al. 2022), skips groups that
already hold a labeled example, and from each remaining group, largest first, picks the candidate
with the highest typicality x uncertainty: a doubt of the model (margin) in a dense region rather
than an outlier, and never two from the same spot.

scikit-activeml's ``TypiClust`` picks by typicality alone and its ``Clue`` clusters the whole pool
weighted by uncertainty; neither mixes the two inside a cluster, and both would refit the model
the engine has already fitted and calibrated once for the whole pool, hence this hand-written mix
of their parts (k-means from scikit-learn, uncertainty from scikit-activeml).
"""

from __future__ import annotations

import numpy as np
from sklearn.cluster import KMeans
from sklearn.neighbors import NearestNeighbors

from data_engine.mine.selection.base import SelectionPool, SelectionStrategy, register_strategy
from data_engine.mine.selection.uncertainty import most_uncertain, uncertainty

# Neighbours whose mean distance defines typicality (TypiClust uses 20; clusters here are small).
TYPICALITY_NEIGHBOURS = 10


# Added to the uncertainty so a cluster the model is sure about still yields its most typical member.
UNCERTAINTY_FLOOR = 0.05


def typicality(embedding: np.ndarray, k: int = TYPICALITY_NEIGHBOURS) -> np.ndarray:
    """TypiClust's typicality of each row of ``embedding`` (shape (N, D)): the inverse mean distance
    to its ``k`` nearest other rows; shape (N,), higher = denser region. Ones for a single row."""
    if len(embedding) < 2:
        return np.ones(len(embedding))
    k = min(k, len(embedding) - 1)
    dist, _ = NearestNeighbors(n_neighbors=k + 1).fit(embedding).kneighbors(embedding)
    return 1.0 / (dist[:, 1:].mean(axis=1) + 1e-7)


@register_strategy
class DiverseMarginStrategy(SelectionStrategy):
    """One candidate per uncovered cluster, by typicality x margin uncertainty (the default)."""

    name = "diverse_margin"
    needs_model = True

    def select(self, pool: SelectionPool, budget: int) -> np.ndarray:
        """Up to ``budget`` candidates, largest uncovered cluster first."""
        assert pool.probs is not None, "needs_model strategies run only with probabilities"
        budget = min(budget, pool.size)
        scores = uncertainty(pool.probs, "margin_sampling")
        if budget < 1:
            return np.empty(0, dtype=np.int64)
        labeled = pool.labeled
        X = np.vstack([labeled, pool.embedding]).astype(np.float64)
        n_clusters = min(len(labeled) + budget, len(X))
        groups = KMeans(n_clusters=n_clusters, n_init=1, random_state=pool.seed).fit_predict(X)
        covered = set(groups[: len(labeled)].tolist())
        cand_groups = groups[len(labeled):]
        ids, sizes = np.unique(cand_groups, return_counts=True)
        picked: list[int] = []
        for g in ids[np.argsort(-sizes, kind="stable")]:
            if g in covered or len(picked) == budget:
                continue
            members = np.flatnonzero(cand_groups == g)
            value = typicality(pool.embedding[members]) * (scores[members] + UNCERTAINTY_FLOOR)
            picked.append(int(members[np.argmax(value)]))
        if len(picked) < budget:  # fewer uncovered clusters than slots: the most uncertain of the rest
            rest = most_uncertain(np.where(np.isin(np.arange(pool.size), picked), -np.inf, scores), budget - len(picked))
            picked += rest.tolist()
        return np.asarray(picked, dtype=np.int64)
