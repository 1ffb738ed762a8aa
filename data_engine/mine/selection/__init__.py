"""What to label next: selection strategies as plug-ins (see :mod:`data_engine.mine.selection.base`)
and :func:`select_examples`, which adds the random explore share and the cold start.

Strategies: ``margin``, ``entropy`` (uncertainty), ``diversity`` (k-center greedy), ``typicality``
(TypiClust), ``cold_start`` (TypiClust, used while no model exists), ``diverse_minibatch`` (the
default: uncertainty- and coverage-weighted clusters), ``diverse_margin`` (k-center greedy over the
doubtful half) and ``random``.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from data_engine.errors import EngineError
from data_engine.mine.selection.base import STRATEGIES, SelectionPool, SelectionStrategy, register_strategy
from data_engine.mine.selection.combined import DiverseMarginStrategy
from data_engine.mine.selection.diversity import ColdStartStrategy, DiversityStrategy, TypicalityStrategy
from data_engine.mine.selection.uncertainty import EntropyStrategy, MarginStrategy, uncertainty

__all__ = [
    "DEFAULT_STRATEGY", "STRATEGIES", "ColdStartStrategy", "DiverseMarginStrategy", "DiversityStrategy",
    "EntropyStrategy", "MarginStrategy", "RandomStrategy", "Selection", "SelectionPool", "SelectionStrategy",
    "TypicalityStrategy", "get_strategy", "register_strategy", "select_examples", "uncertainty",
]

DEFAULT_STRATEGY = "diverse_minibatch"


@register_strategy
class RandomStrategy(SelectionStrategy):
    """Uniformly at random: the baseline every other strategy is measured against."""

    name = "random"

    def select(self, pool: SelectionPool, budget: int) -> np.ndarray:
        """``min(budget, N)`` distinct candidates drawn with the pool's seed."""
        return np.random.default_rng(pool.seed).permutation(pool.size)[:budget]


def get_strategy(name: str) -> SelectionStrategy:
    """A strategy instance by name; raise EngineError naming the known ones."""
    return STRATEGIES.get_piece(name)()


@dataclass(frozen=True)
class Selection:
    """Chosen candidates: ``indices`` (shape (B,), into the pool), ``explore`` (shape (B,), bool:
    picked at random for the explore share) and the strategy that actually ran."""

    indices: np.ndarray
    explore: np.ndarray
    strategy: str


def select_examples(pool: SelectionPool, budget: int, *, strategy: str = DEFAULT_STRATEGY,
                    explore_share: float = 0.0) -> Selection:
    """Choose up to ``budget`` candidates: ``round(explore_share * budget)`` uniformly at random, the
    rest by ``strategy`` (``cold_start`` instead when the strategy needs a model and ``pool.probs``
    is None). The random share keeps the gain over random sampling measurable on real reviews:
    its examples are labeled like the others, so the served model's accuracy on them against the
    strategy's picks is an unbiased comparison.

    Raises EngineError for an unknown strategy or an explore share outside [0, 1].
    """
    if not 0.0 <= explore_share <= 1.0:
        raise EngineError(f"review.explore_share = {explore_share}: must be between 0 and 1")
    chosen = get_strategy(strategy)
    if chosen.needs_model and pool.probs is None:
        chosen = get_strategy("cold_start")
    budget = min(max(budget, 0), pool.size)
    n_explore = int(round(explore_share * budget)) if budget > 1 else 0
    picked = np.asarray(chosen.select(pool, budget - n_explore), dtype=np.int64) if budget > n_explore else \
        np.empty(0, np.int64)
    rest = np.setdiff1d(np.arange(pool.size), picked)
    rng = np.random.default_rng(pool.seed + 1)
    explore = rng.choice(rest, size=min(n_explore, len(rest)), replace=False) if n_explore else np.empty(0, np.int64)
    indices = np.concatenate([picked, explore.astype(np.int64)])
    return Selection(indices, np.r_[np.zeros(len(picked), bool), np.ones(len(explore), bool)], chosen.name)
