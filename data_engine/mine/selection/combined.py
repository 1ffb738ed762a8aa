"""Uncertainty within diversity: the default (:class:`DiverseMiniBatchStrategy`) and the former one.

Pure margin sampling fills a batch with near-copies of the model's worst confusion (on the digits
from 100 labels it fell 2.5 points below random; docs/mining.md); pure diversity spends labels on
what the model already knows. Both strategies here spread the batch over the model's doubts.
``diverse_minibatch`` (the default) clusters the candidates, weighted by doubt and by distance to
the labeled examples, and takes the example nearest each centroid (scikit-activeml's ``Clue``).
``diverse_margin`` keeps the more doubtful half of the candidates (margin uncertainty at or above
its median) and spreads the batch over them with k-center greedy (the core-set approach, Sener &
Savarese 2018, from scikit-activeml); its filter-then-spread mix is hand-written because
scikit-activeml's combined strategies refit their own estimator, while the engine has one
calibrated served model for the whole pool. Measurements: docs/mining.md (`data-engine bench active`).
"""

from __future__ import annotations

import numpy as np
from skactiveml.base import SkactivemlClassifier
from skactiveml.pool import Clue
from sklearn.metrics import pairwise_distances_argmin_min

from data_engine.mine.selection.base import SelectionPool, SelectionStrategy, register_strategy
from data_engine.mine.selection.diversity import DiversityStrategy
from data_engine.mine.selection.uncertainty import most_uncertain

# Share of the candidates, the most uncertain, that the batch is spread over.
DOUBTFUL_SHARE = 0.5


@register_strategy
class DiverseMarginStrategy(SelectionStrategy):
    """k-center greedy over the more uncertain half of the candidates (the default until the
    sentences were measured in their e5 embedding; see :class:`DiverseMiniBatchStrategy`)."""

    name = "diverse_margin"
    needs_model = True

    def __init__(self, *, doubtful_share: float = DOUBTFUL_SHARE) -> None:
        self.doubtful_share = doubtful_share

    def select(self, pool: SelectionPool, budget: int) -> np.ndarray:
        """Up to ``budget`` candidates, in k-center greedy order."""
        assert pool.probs is not None, "needs_model strategies run only with probabilities"
        budget = min(budget, pool.size)
        scores = pool.uncertainty("margin_sampling")
        doubtful = np.sort(most_uncertain(scores, max(budget, int(np.ceil(self.doubtful_share * pool.size)))))
        sub = SelectionPool(pool.embedding[doubtful], pool.probs[doubtful], pool.labeled_embedding, seed=pool.seed,
                            task=pool.task)
        return doubtful[DiversityStrategy().select(sub, budget)]


class _Precomputed(SkactivemlClassifier):
    """scikit-activeml's classifier interface over outputs the engine already has: ``predict_proba``
    returns the served model's probabilities, the sample weights and the embedding of the candidates
    (in the candidates' order), the tuple form ``Clue`` reads (see ``Clue.query``). Never fitted."""

    def __init__(self, probs: np.ndarray | None = None, weights: np.ndarray | None = None,
                 embedding: np.ndarray | None = None, classes: np.ndarray | None = None) -> None:
        super().__init__(classes=classes, missing_label=np.nan)
        self.probs, self.weights, self.embedding = probs, weights, embedding

    def fit(self, X: np.ndarray, y: np.ndarray, sample_weight: np.ndarray | None = None) -> "_Precomputed":
        raise NotImplementedError("precomputed outputs are not refitted")

    def predict_proba(self, X: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        assert self.probs is not None and len(X) == len(self.probs), "called on the candidates it was built for"
        return self.probs, self.weights, self.embedding


@register_strategy
class DiverseMiniBatchStrategy(SelectionStrategy):
    """Diverse mini-batch active learning (Zhdanov 2019) with a coverage term (the default).

    Weighted k-means of the candidates' embedding into ``budget`` clusters, each candidate weighted
    by its margin uncertainty times its distance to the nearest labeled example; the batch is the
    candidate nearest each centroid. The clustering and picking are scikit-activeml's ``Clue``
    (uncertainty-weighted k-means, Prabhu et al. 2021), handed the engine's own probabilities and
    these weights instead of refitting a model. Why this mix, measured with `bench active`
    (docs/mining.md): k-center greedy (:class:`DiverseMarginStrategy`) picks the outskirts of a
    space, which helped the digits' SVM but, in the e5 sentence embedding, chose odd sentences and
    fell below random; centroids pick examples typical of a region; the uncertainty weight pulls
    them to the model's doubts and the distance weight to regions no label covers yet.
    """

    name = "diverse_minibatch"
    needs_model = True

    def select(self, pool: SelectionPool, budget: int) -> np.ndarray:
        """Up to ``budget`` candidates, one per cluster."""
        assert pool.probs is not None, "needs_model strategies run only with probabilities"
        budget = min(budget, pool.size)
        if budget < 1:
            return np.empty(0, dtype=np.int64)
        X = np.asarray(pool.embedding, dtype=np.float64)
        # The task's uncertainty (per tag for tags, the interval for numbers), handed to Clue as
        # the sample weights so Clue never derives its own from rows that are not distributions.
        weights = pool.uncertainty("margin_sampling")
        if len(pool.labeled):
            nearest = pairwise_distances_argmin_min(X, np.asarray(pool.labeled, dtype=np.float64))[1]
            weights = weights * nearest
        probs = np.asarray(pool.probs, dtype=np.float64)
        clf = _Precomputed(probs, weights, X, classes=np.arange(probs.shape[1]))
        clue = Clue(method="margin_sampling", random_state=pool.seed,
                    cluster_algo_dict={"n_init": 1, "random_state": pool.seed})
        # Clue reads labels only to tell candidates from labeled rows: every row here is a candidate.
        picked = clue.query(X, np.full(pool.size, np.nan), clf, fit_estimator=False, batch_size=budget)
        return np.asarray(picked, dtype=np.int64)
