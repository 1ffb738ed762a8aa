"""Rows an approximate neighbour search left far from all others are searched again exactly, so
the outlier check's flags stand on exact distances (docs/mining.md, "Searching on every core")."""

from __future__ import annotations

import numpy as np
import pytest

from data_engine.mine.detectors import far_rows as far_rows_module
from data_engine.mine.detectors import neighbours as nb
from data_engine.mine.detectors.far_rows import farthest_named, far_rows, list_bounds, lists_within, nearest_of_both
from data_engine.mine.detectors.far_rows import search_far_rows_exactly
from data_engine.mine.detectors.outlier import outlier_limit


def exact(X: np.ndarray, k: int = 10) -> tuple[np.ndarray, np.ndarray]:
    return nb._drop_self(*nb._query(X, X, k + 1), np.arange(len(X)), k)


def rows_with_answers(seed: int, rows: int) -> tuple:
    """A generator, ``rows`` standard-normal rows in 8 dimensions, their exact neighbours (distances,
    row numbers) and copies of those to break."""
    rng = np.random.default_rng(seed)
    X = rng.standard_normal((rows, 8)).astype(np.float32)
    d_true, i_true = exact(X)
    return rng, X, d_true, i_true, d_true.copy(), i_true.copy()


def inverted_file(X: np.ndarray, n_lists: int, seed: int = 0) -> object:
    """A faiss inverted file of ``n_lists`` lists holding every row of ``X`` under its row number."""
    import faiss

    kmeans = faiss.Kmeans(X.shape[1], n_lists, niter=10, seed=seed)
    kmeans.train(X)
    lists = faiss.IndexIVFFlat(kmeans.index, X.shape[1], n_lists)
    lists.add(X)
    return lists


# Each check runs against every row and pruned by an inverted file's lists: the same exact answers.
SEARCHES = pytest.mark.parametrize("pruned", [False, True], ids=["every row", "lists"])


@pytest.fixture(autouse=True)
def outer_rows_in_small_lists(monkeypatch):
    """Radii over 90 % of the members: the tests' lists of 40-100 rows then have outer rows too
    (at 99 % a list needs 100 members for one)."""
    monkeypatch.setattr(far_rows_module, "CORE_SHARE", 0.9)


def test_far_rows_are_those_above_the_outlier_limit_and_unfinished_ones():
    mean = np.array([1.0] * 96 + [1.05, 3.0, 10.0, np.inf])
    assert 1.05 < outlier_limit(mean[np.isfinite(mean)]) < 3.0
    np.testing.assert_array_equal(far_rows(mean), [97, 98, 99])
    np.testing.assert_array_equal(far_rows(mean, np.array([0, 98, 5, 99])), [1, 3])


@SEARCHES
def test_wrong_far_answers_become_the_exact_ones_and_the_rest_stay(pruned):
    rng, X, d_true, i_true, d, i = rows_with_answers(3, 3_000)
    # A failed walk: 25 rows given the farthest rows from them as "neighbours".
    broken = rng.choice(len(X), 25, replace=False)
    for r in broken:
        far = np.argsort(-((X - X[r]) ** 2).sum(axis=1))[:10]
        i[r], d[r] = far[::-1], np.sqrt(((X[far] - X[r]) ** 2).sum(axis=1))[::-1]
    mean = d.mean(axis=1)
    searched = search_far_rows_exactly(X, d, i, mean, lists=inverted_file(X, 50) if pruned else None)
    # The broken rows, and every row above the limit taken on the corrected distances.
    assert 25 <= searched < 200
    corrected = mean.copy()
    corrected[broken] = d_true[broken].mean(axis=1)
    assert searched >= len(far_rows(corrected))
    np.testing.assert_array_equal(i, i_true)
    np.testing.assert_allclose(d, d_true, rtol=1e-5, atol=1e-5)


@SEARCHES
def test_new_rows_of_a_grown_index_are_checked_against_all_rows(pruned):
    rng = np.random.default_rng(4)
    X = rng.standard_normal((2_000, 6)).astype(np.float32)
    d_true, i_true = exact(X)
    new = np.arange(1_900, 2_000)
    d, i = d_true[new].copy(), i_true[new].copy()
    d[7], i[7] = d[7] + 50.0, (i[7] + 1) % 2_000
    mean = np.concatenate([d_true[:1_900].mean(axis=1), d.mean(axis=1)])
    assert search_far_rows_exactly(X, d, i, mean, new, lists=inverted_file(X, 40) if pruned else None) == 1
    np.testing.assert_array_equal(i, i_true[new])


def test_the_graph_search_ends_with_exact_neighbours_for_its_outliers():
    rng = np.random.default_rng(5)
    X = rng.standard_normal((25_000, 16)).astype(np.float32)
    X[:40] *= 4.0  # planted extremes
    found = nb.search_neighbours(X, k=10, exact_rows=1_000, method="hnsw")
    assert "far rows" in found.seconds
    d = found.neighbours.distances
    limit = outlier_limit(d.mean(axis=1))
    flagged = np.flatnonzero(d.mean(axis=1) > limit)
    assert set(range(40)) <= set(flagged)
    truth = nb._drop_self(*nb._query(X, X[flagged], 11), flagged, 10)
    np.testing.assert_array_equal(found.neighbours.indices[flagged], truth[1])


@SEARCHES
def test_rows_above_the_limit_taken_anew_on_the_corrected_distances_are_checked_too(pruned):
    rng, X, d_true, i_true, d, i = rows_with_answers(6, 2_000)
    # A fifth of the rows with answers far off lift the quartiles, so the first limit is high; once
    # they are corrected the limit falls, and rows between the two limits must be checked as well.
    broken = rng.choice(len(X), 400, replace=False)
    d[broken] += 100.0
    first = outlier_limit(d.mean(axis=1))
    final = outlier_limit(d_true.mean(axis=1))
    assert final < first
    between = np.setdiff1d(np.argsort(d_true.mean(axis=1))[:200], broken)[:10]
    d[between] += (final + first) / 2 - d_true[between].mean(axis=1, keepdims=True)
    i[between] = (i[between] + 1) % len(X)
    assert (d[between].mean(axis=1) < first).all() and (d[between].mean(axis=1) > final).all()
    search_far_rows_exactly(X, d, i, d.mean(axis=1), lists=inverted_file(X, 40) if pruned else None)
    np.testing.assert_array_equal(i[between], i_true[between])
    np.testing.assert_array_equal(i[broken], i_true[broken])


def clustered_with_far_rows(seed: int) -> np.ndarray:
    """6,000 rows in 30 clusters, the first 20 far from every cluster."""
    rng = np.random.default_rng(seed)
    centres = rng.normal(scale=20.0, size=(30, 6))
    X = (centres[rng.integers(0, 30, 6_000)] + rng.standard_normal((6_000, 6))).astype(np.float32)
    X[:20] = rng.normal(scale=60.0, size=(20, 6))
    return X


def test_the_lists_bound_where_a_rows_exact_neighbours_can_be():
    # Clustered rows and a few far from every cluster: a far row's neighbours lie in few lists.
    X = clustered_with_far_rows(7)
    lists = inverted_file(X, 60, seed=1)
    centre, whole, none = list_bounds(lists, core=1.0)
    assert centre.shape == (60, 6) and whole.shape == (60,) and len(none) == 0
    # Whole radii: every member lies within its list's radius, and some member on it.
    _, own = lists.quantizer.search(X, 1)
    gap = np.sqrt(((X - centre[own[:, 0]]) ** 2).sum(axis=1))
    assert (gap <= whole[own[:, 0]] * (1 + 1e-6)).all()
    np.testing.assert_allclose(whole, [gap[own[:, 0] == c].max(initial=0.0) for c in range(60)], rtol=1e-5)
    # The nearest 95 % of each list's members: the rest are outer rows.
    centre, radius, outer = list_bounds(lists, core=0.95)
    beyond = np.flatnonzero(gap > radius[own[:, 0]])
    np.testing.assert_array_equal(outer, beyond)
    assert 0.04 * len(X) < len(outer) < 0.07 * len(X)
    assert (radius <= whole).all() and (radius < whole).any()
    d_true, i_true = exact(X)
    rows = np.arange(40)
    # The approximate k-th distance of a bad search: larger than the true one.
    probed = lists_within(X[rows], d_true[rows, -1] * 1.5, centre, radius)
    assert probed.shape == (40, 60)
    for r in rows:  # each true neighbour's list is kept, or the neighbour is an outer row
        assert set(own[np.setdiff1d(i_true[r], outer), 0]) <= set(probed[r][probed[r] >= 0])
    assert (probed >= 0).mean() < 0.5  # and most lists are not
    assert (lists_within(X[:2], np.array([np.inf, 1.0]), centre, radius)[0] >= 0).all()


def test_a_search_by_inverted_file_ends_with_exact_neighbours_for_its_outliers():
    rng = np.random.default_rng(8)
    X = rng.standard_normal((30_000, 8)).astype(np.float32)
    X[:30] *= 5.0  # planted extremes
    found = nb.search_neighbours(X, k=10, exact_rows=1_000, method="ivf")
    assert found.method == "ivf" and found.graph is not None
    d = found.neighbours.distances
    flagged = np.flatnonzero(d.mean(axis=1) > outlier_limit(d.mean(axis=1)))
    assert set(range(30)) <= set(flagged)
    truth = nb._drop_self(*nb._query(X, X[flagged], 11), flagged, 10)
    np.testing.assert_array_equal(found.neighbours.indices[flagged], truth[1])
    np.testing.assert_allclose(d[flagged], truth[0], rtol=1e-5, atol=1e-5)


def test_two_answers_merge_into_the_nearest_rows_each_once():
    d2 = np.array([[0.0, 1.0, 4.0, 9.0], [0.0, 2.0, np.inf, np.inf]], dtype=np.float32)
    i = np.array([[5, 3, 8, 2], [7, 1, -1, -1]])
    d2_more = np.array([[1.0, 3.0], [2.0, 5.0]], dtype=np.float32)
    i_more = np.array([[3, 11], [1, 12]])  # 3 and 1 were found by both
    d, found = nearest_of_both(d2, i, d2_more, i_more)
    np.testing.assert_array_equal(found, [[5, 3, 11, 8], [7, 1, 12, -1]])
    np.testing.assert_array_equal(d, [[0.0, 1.0, 3.0, 4.0], [0.0, 2.0, 5.0, np.inf]])


@pytest.mark.parametrize("offset", [0.0, 1e4], ids=["near the origin", "far from it"])
def test_far_rows_missing_their_nearest_neighbour_get_it_back_from_few_lists(offset):
    # A search that found the 2nd to 11th nearest rows of each far row, not the nearest: its reach
    # is barely above the true one, so the lists really prune, and the nearest must still be found.
    # Far from the origin, float32 matrix-product distances round by more than the gaps between rows.
    X = clustered_with_far_rows(9) + np.float32(offset)
    d_true, i_true = exact(X)
    d11, i11 = nb._drop_self(*nb._query(X, X, 12), np.arange(len(X)), 11)
    d, i = d_true.copy(), i_true.copy()
    d[:20], i[:20] = d11[:20, 1:], i11[:20, 1:]
    lists = inverted_file(X, 60, seed=2)
    centre, radius, outer = list_bounds(lists)
    assert len(outer) > 0
    reach = farthest_named(X, X[:20], i[:20])
    np.testing.assert_allclose(reach, d11[:20, -1], rtol=1e-3)
    assert (lists_within(X[:20], reach, centre, radius) >= 0).mean() < 0.5
    mean = d.mean(axis=1)
    assert set(range(20)) <= set(far_rows(mean))
    search_far_rows_exactly(X, d, i, mean, lists=lists)
    np.testing.assert_array_equal(i[:20], i_true[:20])


def test_new_far_rows_joining_a_kept_inverted_file_get_exact_neighbours(tmp_path):
    # The second mining run: new rows join the kept lists, and those far from all are searched
    # exactly by the grown lists (extend_index), the index then kept in its file.
    rng = np.random.default_rng(10)
    X = rng.standard_normal((26_000, 8)).astype(np.float32)
    X[25_000:25_030] *= 5.0  # planted extremes among the new rows
    found = nb.search_neighbours(X[:25_000], k=10, exact_rows=1_000, method="ivf", graph_dir=tmp_path)
    assert found.method == "ivf" and found.probed_by == "rows"  # the finer lists by row are the ones kept
    index = nb.NeighbourIndex(np.arange(25_000).astype(str), X[:25_000], found.neighbours, None, found.graph,
                              found.recall, found.ef_search, found.nprobe)
    grown = nb.extend_index(index, np.arange(25_000, 26_000).astype(str), X[25_000:], vectors=X[25_000:],
                            graph_dir=tmp_path)
    d = grown.neighbours.distances
    flagged = np.flatnonzero(d.mean(axis=1) > outlier_limit(d.mean(axis=1)))
    new = flagged[flagged >= 25_000]
    assert set(range(25_000, 25_030)) <= set(new)
    truth = nb._drop_self(*nb._query(X, X[new], 11), new, 10)
    np.testing.assert_array_equal(grown.neighbours.indices[new], truth[1])
    assert grown.graph.path.exists()
    # Every new row, far or not, probes the kept lists nearest itself: their recall as the first run's.
    added = np.arange(25_000, 26_000)
    exact = nb._drop_self(*nb._query(X, X[added], 11), added, 10)[1]
    assert nb.recall_at_k(grown.neighbours.indices[added], exact) >= 0.95
