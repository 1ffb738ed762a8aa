"""The selection-strategy plug-in contract: what a strategy reads, what it returns, and the registry.

A strategy picks which unlabeled examples to label next (pool-based active learning). It sees the
candidates' embedding (a pretrained embedder's when the home has one, else the model's own feature
space, :mod:`data_engine.mine.selection.features`), the labeled examples' embedding, and the served
model's calibrated probabilities for the candidates (None before any model exists).
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from dataclasses import dataclass
from typing import TYPE_CHECKING, ClassVar

import numpy as np

from data_engine.plugins import Registry

if TYPE_CHECKING:
    from data_engine.tasks import Task


@dataclass(frozen=True)
class SelectionPool:
    """What a strategy chooses from.

    embedding : np.ndarray of shape (N, D), float; the N candidate (unlabeled) examples
    probs : np.ndarray of shape (N, K) or None; the served model's calibrated class probabilities
    labeled_embedding : np.ndarray of shape (M, D); the examples already labeled (M may be 0)
    seed : int; every random choice (k-means starts, ties, the explore share) derives from it
    task : the dataset's task (None = single-label classification); ``probs`` are its predictions
        and its :meth:`~data_engine.tasks.Task.selection_uncertainty` scores them
    """

    embedding: np.ndarray
    probs: np.ndarray | None = None
    labeled_embedding: np.ndarray | None = None
    seed: int = 0
    task: "Task | None" = None

    def __post_init__(self) -> None:
        n = len(self.embedding)
        if self.embedding.ndim != 2:
            raise ValueError(f"SelectionPool.embedding must be 2-D, got shape {self.embedding.shape}")
        if self.probs is not None and len(self.probs) != n:
            raise ValueError(f"SelectionPool.probs has {len(self.probs)} rows, expected {n}")
        if self.labeled_embedding is not None and self.labeled_embedding.shape[1:] != self.embedding.shape[1:]:
            raise ValueError("SelectionPool.labeled_embedding must have the candidates' width")

    @property
    def size(self) -> int:
        """Number of candidates N."""
        return len(self.embedding)

    def uncertainty(self, method: str = "margin_sampling") -> np.ndarray:
        """The task's uncertainty of each candidate's prediction, shape (N,), higher = less sure."""
        from data_engine.tasks import Classification

        assert self.probs is not None, "needs_model strategies run only with probabilities"
        return (self.task or Classification()).selection_uncertainty(self.probs, method)

    @property
    def labeled(self) -> np.ndarray:
        """The labeled examples' embedding, shape (M, D) (empty when none)."""
        if self.labeled_embedding is None:
            return np.empty((0, self.embedding.shape[1]), dtype=self.embedding.dtype)
        return self.labeled_embedding


class SelectionStrategy(ABC):
    """One way to choose examples. Subclasses set ``name`` and implement :meth:`select`."""

    name: ClassVar[str]
    # Whether the strategy reads model probabilities (without a model, the cold start runs instead).
    needs_model: ClassVar[bool] = False

    @abstractmethod
    def select(self, pool: SelectionPool, budget: int) -> np.ndarray:
        """Indices into the pool's candidates (shape (min(budget, N),), distinct), best first."""


# The strategies by name: the built-ins and those of the ``data_engine.strategies`` entry points.
STRATEGIES: Registry[type[SelectionStrategy]] = Registry("selection strategy", "data_engine.strategies",
                                                         name_attr="name", base=SelectionStrategy)


def register_strategy(cls: type[SelectionStrategy]) -> type[SelectionStrategy]:
    """Class decorator adding a strategy to :data:`STRATEGIES` under its ``name``."""
    return STRATEGIES.register(cls)
