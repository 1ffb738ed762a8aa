"""The default strategy: uncertainty within diversity.

Pure margin sampling fills a batch with near-copies of the model's worst confusion (on the digits
from 100 labels it fell 2.5 points below random; docs/mining.md); pure diversity spends labels on
what the model already knows. This strategy keeps the more doubtful half of the candidates (margin
uncertainty at or above its median) and spreads the batch over them with k-center greedy (the
core-set approach, Sener & Savarese 2018, from scikit-activeml): each pick is the doubtful
candidate farthest from everything labeled or already picked, so every pick is a doubt of the
model and no two come from the same spot. The filter-then-spread mix is hand-written because
scikit-activeml's combined strategies (``Clue``, ``Badge``) refit a scikit-activeml estimator,
while the engine has one calibrated served model for the whole pool. The share kept and the
alternatives tried are in docs/mining.md (`data-engine bench active`).
"""

from __future__ import annotations

import numpy as np

from data_engine.mine.selection.base import SelectionPool, SelectionStrategy, register_strategy
from data_engine.mine.selection.diversity import DiversityStrategy
from data_engine.mine.selection.uncertainty import most_uncertain, uncertainty

# Share of the candidates, the most uncertain, that the batch is spread over.
DOUBTFUL_SHARE = 0.5


@register_strategy
class DiverseMarginStrategy(SelectionStrategy):
    """k-center greedy over the more uncertain half of the candidates (the default)."""

    name = "diverse_margin"
    needs_model = True

    def __init__(self, *, doubtful_share: float = DOUBTFUL_SHARE) -> None:
        self.doubtful_share = doubtful_share

    def select(self, pool: SelectionPool, budget: int) -> np.ndarray:
        """Up to ``budget`` candidates, in k-center greedy order."""
        assert pool.probs is not None, "needs_model strategies run only with probabilities"
        budget = min(budget, pool.size)
        scores = uncertainty(pool.probs, "margin_sampling")
        doubtful = np.sort(most_uncertain(scores, max(budget, int(np.ceil(self.doubtful_share * pool.size)))))
        sub = SelectionPool(pool.embedding[doubtful], pool.probs[doubtful], pool.labeled_embedding, seed=pool.seed)
        return doubtful[DiversityStrategy().select(sub, budget)]
