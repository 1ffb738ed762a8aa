"""Every selection strategy runs for every task, on the task's own predictions.

Per-tag probabilities do not sum to 1 and a regression prediction is (value, lower, upper): the
default strategy used to score them as one class distribution and crashed (multi-label ``mine``
with ``diverse_minibatch`` and any unlabeled row).
"""

from __future__ import annotations

import numpy as np
import pytest

from data_engine.mine.selection import STRATEGIES, SelectionPool, get_strategy, select_examples
from data_engine.tasks import TASKS

N, D = 40, 5


def _predictions(task: str, rng: np.random.Generator) -> np.ndarray:
    """Predictions in the shape each task stores them, for N unlabeled rows."""
    if task == "multilabel":
        return rng.uniform(0.0, 1.0, (N, 4))  # one independent probability per tag
    if task == "regression":
        value = rng.normal(10.0, 3.0, N)
        half = rng.uniform(0.5, 4.0, N)
        return np.stack([value, value - half, value + half], axis=1)
    if task == "ner":
        pytest.skip("token predictions are not one row per text in a selection pool")
    if task == "detection":  # scored box sets packed one row per image (tasks/box_pack)
        from data_engine.tasks.box_pack import pack
        from data_engine.tasks.box_issues import ScoredBox
        from data_engine.tasks.boxes import Box

        return pack([[ScoredBox(Box(str(rng.choice(["disc", "square"])), *rng.uniform(0, 40, 4)), float(rng.uniform()))
                      for _ in range(rng.integers(0, 4))] for _ in range(N)], ["disc", "square"])
    return rng.dirichlet(np.ones(3), N)


@pytest.mark.parametrize("task", sorted(TASKS))
@pytest.mark.parametrize("strategy", sorted(STRATEGIES))
def test_every_strategy_runs_for_every_task(strategy: str, task: str) -> None:
    rng = np.random.default_rng(0)
    probs = _predictions(task, rng)
    pool = SelectionPool(rng.normal(size=(N, D)), probs, rng.normal(size=(10, D)), seed=1, task=TASKS[task]())
    picked = select_examples(pool, 8, strategy=strategy, explore_share=0.0)
    assert len(picked.indices) == 8
    assert len(set(picked.indices.tolist())) == 8
    assert picked.indices.min() >= 0 and picked.indices.max() < N


def test_tags_uncertainty_is_the_mean_over_tags() -> None:
    """Per tag: margin 1 - |p - (1 - p)|; the example's figure is the mean over its tags."""
    probs = np.array([[0.5, 0.0, 1.0], [0.9, 0.1, 0.5], [0.99, 0.99, 0.01]])
    pool = SelectionPool(np.zeros((3, 2)), probs, task=TASKS["multilabel"]())
    expected = (1.0 - np.abs(2 * probs - 1)).mean(axis=1)
    np.testing.assert_allclose(pool.uncertainty("margin_sampling"), expected)
    # margin: the example unsure about two tags first, the sure one last
    assert get_strategy("margin").select(pool, 3).tolist() == [1, 0, 2]


def test_numbers_rank_by_interval_width() -> None:
    """Regression: the widest interval (relative to the typical one) is the least sure, for every method."""
    probs = np.array([[5.0, 4.0, 6.0], [5.0, 0.0, 10.0], [5.0, 4.5, 5.5]])
    pool = SelectionPool(np.zeros((3, 2)), probs, task=TASKS["regression"]())
    for name in ("margin", "entropy"):
        assert get_strategy(name).select(pool, 3).tolist() == [1, 0, 2]
