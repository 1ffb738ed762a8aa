"""The approximate (HNSW) neighbour search against exact search: recall on data without cluster
structure, its own recall estimate, and the outlier and near-duplicate flags built on it."""

from __future__ import annotations

import numpy as np
import pytest

from data_engine.bench.neighbours import flags, old_blocks, planted
from data_engine.mine.detectors import neighbours as nb


@pytest.fixture(scope="module")
def structureless() -> tuple[np.ndarray, nb.Search, np.ndarray, np.ndarray]:
    """30,000 standard-normal rows in 16 dimensions, searched approximately (the exact-search
    limit lowered so the HNSW path runs), and the exact neighbours of 500 random rows."""
    X = np.random.default_rng(3).standard_normal((30_000, 16)).astype(np.float32)
    found = nb.search_neighbours(X, k=10, exact_rows=1_000)
    queries = np.sort(np.random.default_rng(4).choice(len(X), 500, replace=False))
    truth = nb._drop_self(*nb._query(X, X[queries], 11), queries, 10)[1]
    return X, found, queries, truth


def test_approximate_search_finds_95_percent_of_the_true_neighbours_without_cluster_structure(structureless):
    X, found, queries, truth = structureless
    assert found.graph is not None  # the approximate path ran
    assert found.neighbours.indices.shape == (len(X), 10)
    assert (found.neighbours.indices != np.arange(len(X))[:, None]).all()
    assert nb.recall_at_k(found.neighbours.indices[queries], truth) >= 0.95


def test_the_search_reports_a_recall_that_agrees_with_an_independent_sample(structureless):
    X, found, queries, truth = structureless
    measured = nb.recall_at_k(found.neighbours.indices[queries], truth)
    assert found.recall >= nb.TARGET_RECALL or found.ef_search == nb.MAX_EF_SEARCH
    assert abs(found.recall - measured) < 0.02


def test_the_former_blocks_missed_most_neighbours_here(structureless):
    # The defect the HNSW search fixes: exact search inside k-means blocks of ~2,000 rows.
    X, _, queries, truth = structureless
    assert nb.recall_at_k(old_blocks(X, k=10)[queries], truth) < 0.6


def test_the_search_widens_its_beam_until_the_target_recall_is_reached():
    X = np.random.default_rng(5).standard_normal((6_000, 24)).astype(np.float32)
    low = nb.search_neighbours(X, exact_rows=100, target_recall=0.5, method="hnsw")
    high = nb.search_neighbours(X, exact_rows=100, target_recall=1.0, method="hnsw")
    assert low.ef_search == nb.EF_SEARCH
    assert low.recall < 1.0  # so the second search had to widen
    assert high.ef_search > low.ef_search and high.recall > low.recall


def test_the_search_is_reproducible():
    X = np.random.default_rng(6).standard_normal((5_000, 8)).astype(np.float32)
    a = nb.search_neighbours(X, exact_rows=100, method="hnsw")
    b = nb.search_neighbours(X, exact_rows=100, method="hnsw")
    np.testing.assert_array_equal(a.neighbours.indices, b.neighbours.indices)


def test_planted_extremes_and_near_copies_are_flagged_as_with_exact_neighbours():
    # Tolerance: flags from approximate neighbours differ from exact ones on at most 0.1 % of rows.
    X, far, copy = planted(20_000, dims=16, seed=7)
    approx = nb.search_neighbours(X, exact_rows=1_000).neighbours
    exact = nb.search_neighbours(X, exact_rows=len(X)).neighbours
    (outlier_a, copy_a), (outlier_e, copy_e) = flags(approx), flags(exact)
    assert outlier_a[far].all() and copy_a[copy].all()
    assert outlier_e[far].all() and copy_e[copy].all()
    assert (outlier_a != outlier_e).sum() <= 0.001 * len(X)
    assert (copy_a != copy_e).sum() <= 0.001 * len(X)


def test_the_beam_is_the_narrowest_step_that_reaches_the_target_on_the_sample():
    # The beam is chosen on the sample rows alone (the search of all rows runs once, with it):
    # the recall at the chosen beam reaches the target and the step before it does not.
    import faiss

    X = np.random.default_rng(8).standard_normal((8_000, 24)).astype(np.float32)
    graph = faiss.deserialize_index(nb.search_neighbours(X, exact_rows=100, method="hnsw").graph)
    sample = np.sort(np.random.default_rng(9).choice(len(X), 300, replace=False))
    truth = nb._drop_self(*nb._query(X, X[sample], 11), sample, 10)[1]

    def recall_at(ef: int) -> float:
        return nb.recall_at_k(nb._drop_self(*nb._hnsw_query(graph, X[sample], 11, ef), sample, 10)[1], truth)

    steps = [ef for ef in nb.EF_STEPS if ef > 10]
    target = (recall_at(steps[0]) + 1.0) / 2  # above what the narrowest beam finds
    ef = nb.beam_for_recall(graph, X, sample, truth, target)
    assert ef > steps[0]
    assert recall_at(ef) >= target
    assert recall_at(steps[steps.index(ef) - 1]) < target
