"""The default strategy: uncertainty within diversity.

Pure margin sampling fills a batch with near-copies of the model's one worst confusion (on the
digits, 100 picks out of the 1/7 and 8/9 borders); pure diversity ignores what the model already
knows. This strategy takes the ``PREFILTER`` x budget most uncertain candidates (margin), clusters
them into ``budget`` groups on the embedding with k-means, and from each group picks its most
uncertain member, so every pick is a doubt of the model and no two come from the same spot.
scikit-activeml's ``Clue`` weights k-means by uncertainty over the whole pool instead; it needs a
scikit-activeml estimator to refit, while the engine has one calibrated served model already, and
on the benchmarks (docs/mining.md) the pre-filtered form kept margin's gain.
"""

from __future__ import annotations

import numpy as np
from sklearn.cluster import KMeans

from data_engine.mine.selection.base import SelectionPool, SelectionStrategy, register_strategy
from data_engine.mine.selection.uncertainty import most_uncertain, uncertainty

# Candidates kept per batch slot before clustering. Measured with `data-engine bench active`.
PREFILTER = 3


@register_strategy
class DiverseMarginStrategy(SelectionStrategy):
    """Most uncertain candidate of each k-means cluster among the most uncertain (the default)."""

    name = "diverse_margin"
    needs_model = True

    def __init__(self, *, prefilter: float = PREFILTER) -> None:
        self.prefilter = prefilter

    def select(self, pool: SelectionPool, budget: int) -> np.ndarray:
        """Up to ``budget`` candidates, most uncertain first."""
        assert pool.probs is not None, "needs_model strategies run only with probabilities"
        budget = min(budget, pool.size)
        scores = uncertainty(pool.probs, "margin_sampling")
        shortlist = most_uncertain(scores, int(np.ceil(self.prefilter * budget)))
        if budget < 2 or len(shortlist) <= budget:
            return shortlist[:budget]
        groups = KMeans(n_clusters=budget, n_init=1, random_state=pool.seed).fit_predict(
            pool.embedding[shortlist].astype(np.float64))
        # shortlist is sorted by uncertainty, so the first row of each group is its most uncertain.
        _, first = np.unique(groups, return_index=True)
        picked = shortlist[np.sort(first)]
        if len(picked) < budget:  # k-means may leave a cluster empty: fill from the shortlist's order
            rest = shortlist[~np.isin(shortlist, picked)]
            picked = np.concatenate([picked, rest[: budget - len(picked)]])
        return picked
