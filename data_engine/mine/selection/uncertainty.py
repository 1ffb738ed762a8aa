"""Uncertainty sampling: the candidates the served model is least sure of.

The scores are scikit-activeml's ``uncertainty_scores`` (pool-based uncertainty sampling, Settles
2009) on the calibrated probabilities the engine already has; its ``UncertaintySampling.query``
would refit the model, which the engine has fitted once for the whole pool.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, ClassVar

import numpy as np

from data_engine.mine.selection.base import SelectionPool, SelectionStrategy, register_strategy

if TYPE_CHECKING:
    from data_engine.tasks import Task


def uncertainty(probs: np.ndarray, method: str = "margin_sampling", task: "Task | None" = None) -> np.ndarray:
    """Uncertainty per row of ``probs`` (shape (N, W): the ``task``'s predictions), higher = less
    sure; shape (N,).

    ``method``: scikit-activeml's ``margin_sampling`` (1 - gap between the two likeliest classes),
    ``entropy`` (nats) or ``least_confident`` (1 - top probability); the ``task`` (None = single-label
    classification) says what they mean for its predictions
    (:meth:`~data_engine.tasks.Task.selection_uncertainty`: per tag for tags, the interval for numbers)."""
    from data_engine.tasks import Classification

    return (task or Classification()).selection_uncertainty(probs, method)


def most_uncertain(scores: np.ndarray, budget: int) -> np.ndarray:
    """Indices of the ``budget`` highest scores, highest first (ties by index)."""
    return np.argsort(-scores, kind="stable")[:budget]


class _Uncertainty(SelectionStrategy):
    needs_model = True
    method: ClassVar[str]

    def select(self, pool: SelectionPool, budget: int) -> np.ndarray:
        """The ``budget`` candidates with the highest uncertainty."""
        return most_uncertain(pool.uncertainty(self.method), budget)


@register_strategy
class MarginStrategy(_Uncertainty):
    """Smallest margin between the two likeliest classes first."""

    name = "margin"
    method = "margin_sampling"


@register_strategy
class EntropyStrategy(_Uncertainty):
    """Highest predictive entropy first."""

    name = "entropy"
    method = "entropy"
