"""The noise rate is printed as an estimate with a 95 % bootstrap interval, not as a fact."""

from __future__ import annotations

from types import SimpleNamespace

import numpy as np
import pytest
from sklearn.datasets import make_blobs
from sklearn.linear_model import LogisticRegression
from sklearn.model_selection import cross_val_predict

from data_engine.mine.noise import estimate_noise, noise_interval, noise_wording


def _state(noise: float, seed: int, n: int = 1500, k: int = 4) -> SimpleNamespace:
    """Separable blobs with ``noise`` of the labels flipped uniformly, and 5-fold out-of-fold probabilities."""
    x, y = make_blobs(n_samples=n, centers=k, cluster_std=1.0, center_box=(-20, 20), random_state=seed)
    rng = np.random.default_rng(seed)
    flip = rng.random(n) < noise
    given = np.where(flip, (y + rng.integers(1, k, n)) % k, y)
    probs = cross_val_predict(LogisticRegression(max_iter=500), x, given, cv=5, method="predict_proba")
    return SimpleNamespace(labels=given, oof_probs=probs, classes=[str(c) for c in range(k)]), flip.mean()


@pytest.mark.parametrize("noise,seed", [(0.2, 0), (0.2, 1), (0.35, 2)])
def test_interval_covers_the_true_rate_of_separable_data(noise: float, seed: int) -> None:
    state, true_rate = _state(noise, seed)
    rate, _, _ = estimate_noise(state)
    low, high = noise_interval(state, seed=0)
    assert low < rate < high
    assert low <= true_rate <= high, (low, true_rate, high)
    assert high - low < 0.08  # 1,500 examples resolve the rate to a few points
    # Deterministic for a seed.
    assert noise_interval(state, seed=0) == (low, high)


def test_wording_says_estimate_interval_and_bias() -> None:
    text = noise_wording(0.336, (0.31, 0.36))
    assert text.startswith("estimated label noise: 33.6% (95 % bootstrap interval 31.0%-36.0%)")
    assert "estimate" in text and "runs high" in text
    assert "not available" in noise_wording(None, None)


def test_one_class_has_no_interval() -> None:
    state = SimpleNamespace(labels=np.zeros(10, dtype=int), oof_probs=np.full((10, 2), 0.5), classes=["a", "b"])
    assert noise_interval(state) is None


def test_interval_contains_its_estimate_with_many_small_classes() -> None:
    # A regression-like target taken as classes (a new user's diabetes trial: 214 classes in 442
    # rows): resampled draws repeat rows, so their rates sit away from the full-data rate, and an
    # interval around the draws' mean printed "64.5% (59.7%-62.6%)".
    rng = np.random.default_rng(0)
    n, k = 442, 214
    labels = np.concatenate([np.arange(k), rng.integers(0, k, n - k)])
    probs = rng.dirichlet(np.full(k, 0.3), size=n)
    state = SimpleNamespace(labels=labels, oof_probs=probs, classes=[str(c) for c in range(k)])
    rate, _, _ = estimate_noise(state)
    low, high = noise_interval(state, seed=0)
    assert low <= rate <= high, (low, rate, high)
