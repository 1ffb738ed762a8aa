"""Strategies on the embedding alone: diversity (core-set) and typicality (TypiClust).

Both come from scikit-activeml: ``k_greedy_center`` (the core-set approach, Sener & Savarese 2018:
each pick is the candidate farthest from everything labeled or picked) and ``TypiClust`` (Hacohen
et al. 2022, "Active learning on a budget": k-means into labeled + budget clusters, then the most
typical example, the densest, of each largest uncovered cluster). TypiClust was made for the cold
start, so it is the cold-start strategy too.
"""

from __future__ import annotations

import numpy as np
from skactiveml.pool import TypiClust, k_greedy_center
from sklearn.cluster import KMeans

from data_engine.mine.selection.base import SelectionPool, SelectionStrategy, register_strategy


class _OnEmbedding(SelectionStrategy):
    """A scikit-activeml query over labeled + candidate rows (labeled first, NaN = unlabeled)."""

    def select(self, pool: SelectionPool, budget: int) -> np.ndarray:
        """Up to ``budget`` candidates, in the library's pick order."""
        budget = min(budget, pool.size)
        if budget < 1:
            return np.empty(0, dtype=np.int64)
        labeled = pool.labeled
        X = np.vstack([labeled, pool.embedding]).astype(np.float64)
        y = np.concatenate([np.zeros(len(labeled)), np.full(pool.size, np.nan)])
        picked = self._query(X, y, np.arange(len(labeled), len(X)), budget, pool.seed)
        return np.asarray(picked, dtype=np.int64) - len(labeled)

    def _query(self, X: np.ndarray, y: np.ndarray, candidates: np.ndarray, budget: int, seed: int) -> np.ndarray:
        raise NotImplementedError


@register_strategy
class DiversityStrategy(_OnEmbedding):
    """k-center greedy on the embedding: spread the batch over what nobody has labeled yet."""

    name = "diversity"

    def _query(self, X: np.ndarray, y: np.ndarray, candidates: np.ndarray, budget: int, seed: int) -> np.ndarray:
        return k_greedy_center(X, y, batch_size=budget, random_state=seed, mapping=candidates)[0]


@register_strategy
class TypicalityStrategy(_OnEmbedding):
    """TypiClust: one typical (dense-region) example from each large cluster not yet covered."""

    name = "typicality"

    def _query(self, X: np.ndarray, y: np.ndarray, candidates: np.ndarray, budget: int, seed: int) -> np.ndarray:
        # n_init=1: TypiClust clusters labeled + budget points once per call; one k-means++ start
        # is what the paper uses and keeps a 10,000-row pool under a second.
        strategy = TypiClust(random_state=seed, cluster_algo=KMeans, cluster_algo_dict={"n_init": 1},
                             k=min(20, max(1, len(X) - 1)))
        return strategy.query(X, y, batch_size=budget, candidates=candidates)


@register_strategy
class ColdStartStrategy(TypicalityStrategy):
    """Before any model exists: diverse, typical examples (TypiClust)."""

    name = "cold_start"
