"""Selection strategies (what to label next), the budget split between fixes and new examples, ActiveLab."""

from __future__ import annotations

import numpy as np
import pytest

from data_engine.errors import EngineError
from data_engine.mine.activelab import activelab_choice
from data_engine.mine.budget import MIN_FIX_SHARE, curve_gain, prior_gain, split_budget
from data_engine.mine.selection import STRATEGIES, SelectionPool, get_strategy, select_examples, uncertainty


def blobs_pool(seed: int = 0) -> SelectionPool:
    """Ten blobs of 30 candidates; the model is unsure only between blobs 0 and 1."""
    rng = np.random.default_rng(seed)
    centres = rng.normal(0, 10, (10, 4))
    group = np.repeat(np.arange(10), 30)
    emb = centres[group] + rng.normal(0, 0.5, (300, 4))
    probs = np.full((300, 3), 0.02)
    probs[:, 0] = 0.96
    unsure = group < 2
    probs[unsure] = [0.5, 0.49, 0.01]
    probs[unsure, 0] += rng.uniform(0, 0.01, unsure.sum())
    probs /= probs.sum(axis=1, keepdims=True)
    return SelectionPool(emb, probs, centres[:1] + 0.1, seed=seed)


@pytest.mark.parametrize("name", sorted(STRATEGIES))
def test_every_strategy_returns_distinct_candidates(name: str) -> None:
    pool = blobs_pool()
    picked = get_strategy(name).select(pool, 25)
    assert len(picked) == 25 and len(set(picked.tolist())) == 25
    assert picked.min() >= 0 and picked.max() < pool.size
    # More than the pool asks for the whole pool, never an error.
    small = SelectionPool(pool.embedding[:5], pool.probs[:5], pool.labeled_embedding, seed=1)
    assert sorted(get_strategy(name).select(small, 9).tolist()) == [0, 1, 2, 3, 4]


def test_margin_takes_the_one_confusion_and_diversity_spreads() -> None:
    pool = blobs_pool()
    group = np.repeat(np.arange(10), 30)
    assert set(group[get_strategy("margin").select(pool, 10)]) <= {0, 1}
    assert len(set(group[get_strategy("diversity").select(pool, 10)])) >= 8
    assert len(set(group[get_strategy("typicality").select(pool, 10)])) >= 8


def test_default_spreads_the_batch_over_the_doubtful_half() -> None:
    pool = blobs_pool()
    group = np.repeat(np.arange(10), 30)
    picked = get_strategy("diverse_margin").select(pool, 10)
    doubtful = np.argsort(-uncertainty(pool.probs), kind="stable")[:150]
    # Only doubts of the model (the more uncertain half) ...
    assert set(picked.tolist()) <= set(doubtful.tolist())
    # ... spread over every region they come from but the one already labeled (blob 0), not ten
    # copies of the one confusion (margin's batch).
    assert set(group[picked]) == set(group[doubtful]) - {0} and len(set(group[picked])) >= 3
    assert set(group[get_strategy("margin").select(pool, 10)]) <= {0, 1}


def test_default_weights_clusters_by_doubt_and_by_distance_to_the_labels() -> None:
    group = np.repeat(np.arange(10), 30)
    for seed in range(3):
        pool = blobs_pool(seed)
        # The model doubts blobs 0 and 1, but blob 0 holds the labeled example: blob 1 weighs most.
        small = group[get_strategy("diverse_minibatch").select(pool, 5)]
        assert 1 in small and 0 not in small
        # A larger batch still spans every blob (a centroid in each), not 20 copies of blob 1 ...
        counts = np.bincount(group[get_strategy("diverse_minibatch").select(pool, 20)], minlength=10)
        assert (counts > 0).all()
        # ... but spends the most labels where the model doubts and nothing labeled is near.
        assert counts[1] == counts.max() and counts[1] >= 5 and counts[0] <= 2


def test_explore_share_is_random_and_disjoint_and_cold_start_needs_no_model() -> None:
    pool = blobs_pool()
    sel = select_examples(pool, 40, explore_share=0.1)
    assert len(sel.indices) == 40 and len(set(sel.indices.tolist())) == 40 and sel.explore.sum() == 4
    assert sel.strategy == "diverse_minibatch"
    cold = select_examples(SelectionPool(pool.embedding, None, None, seed=3), 20)
    assert cold.strategy == "cold_start" and len(set(cold.indices.tolist())) == 20
    with pytest.raises(EngineError, match="explore_share"):
        select_examples(pool, 10, explore_share=1.5)
    with pytest.raises(EngineError, match="unknown selection strategy"):
        select_examples(pool, 10, strategy="bald")


def test_budget_split_false_flags_of_clean_labels_do_not_eat_the_budget() -> None:
    # Cold start: no verdicts (rate = prior) and four flags: they take four slots, the rest grows.
    split = split_budget(100, {"label": 4}, {"label": 0.5}, accuracy=0.9, n_labeled=100)
    assert split.fix == {"label": 4} and split.grow == 96
    # Reviewers rejected most label flags (clean labels): only the measuring share stays.
    split = split_budget(100, {"label": 60, "outlier": 30}, {"label": 0.1, "outlier": 0.05}, accuracy=0.9,
                         n_labeled=100)
    assert split.n_fix <= max(2, int(MIN_FIX_SHARE * 100)) and split.grow == 100 - split.n_fix
    assert split.fix["label"] >= 1  # still measured
    # Noisy labels that reviewers confirm take the budget first.
    split = split_budget(100, {"label": 60}, {"label": 0.8}, accuracy=0.9, n_labeled=1000)
    assert split.fix == {"label": 60} and split.grow == 40


def test_budget_split_reads_the_learning_curve() -> None:
    assert curve_gain([(100, 0.90)]) is None
    assert curve_gain([(100, 0.90), (200, 0.95)]) == pytest.approx(0.05)
    assert curve_gain([(100, 0.95), (200, 0.90)]) == 0.0
    # A flat measured curve makes fixes (even at a middling confirmation rate) worth more than new labels.
    flat = split_budget(50, {"label": 20}, {"label": 0.4}, accuracy=0.9, n_labeled=500,
                        curve=[(400, 0.9), (500, 0.9)])
    assert flat.fix == {"label": 20} and flat.curve_source.startswith("learning curve")
    steep = split_budget(50, {"label": 20}, {"label": 0.4}, accuracy=0.9, n_labeled=500,
                         curve=[(400, 0.8), (500, 0.9)])
    assert steep.fix["label"] < 20
    assert prior_gain(0.9, 100) == pytest.approx(0.05)


def test_activelab_sends_disputed_labels_back_and_new_examples_otherwise() -> None:
    rng = np.random.default_rng(0)
    probs = np.full((40, 3), 0.05)
    probs[np.arange(40), np.arange(40) % 3] = 0.9
    votes = np.full((40, 3), np.nan)
    votes[:, 0] = np.arange(40) % 3
    votes[:, 1] = np.arange(40) % 3
    votes[:5, 1] = (np.arange(5) + 1) % 3  # five examples the two annotators disagree on
    unsure = rng.dirichlet(np.ones(3) * 20, 100)  # new examples the model is unsure of
    known = np.tile([0.999, 0.0005, 0.0005], (100, 1))  # new examples the model already knows
    choice = activelab_choice(votes, probs, known, 10)
    assert set(choice.relabel.tolist()) == set(range(5))
    assert choice.n_new == 10 - len(choice.relabel)
    # Agreed, confident labels never beat unsure new examples.
    agreed = votes.copy()
    agreed[:5, 1] = agreed[:5, 0]
    assert activelab_choice(agreed, probs, unsure, 10).n_new == 10


def test_budget_split_measures_every_flagged_type_even_when_one_could_take_all() -> None:
    # Label flags confirmed often enough to fill the budget alone; look-alikes, never reviewed yet,
    # still get a measuring share (ties broken by gain, then name, as before, but no type starves).
    split = split_budget(50, {"label": 400, "lookalike": 30}, {"label": 0.8, "lookalike": 0.5},
                         accuracy=0.9, n_labeled=3000)
    assert split.fix["lookalike"] >= 1 and split.fix["label"] == 50 - split.fix["lookalike"]
    assert split.grow == 0
