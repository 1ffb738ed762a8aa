"""The neighbour searches of all rows run side by side on threads and give the same neighbours,
distance for distance, as on one thread (graph and inverted file alike)."""

from __future__ import annotations

import threading
from collections.abc import Iterator

import numpy as np
import pytest

from data_engine.mine.detectors import inverted_file
from data_engine.mine.detectors import neighbours as nb
from data_engine.mine.detectors.search_threads import search_threads, side_by_side


@pytest.fixture
def omp_threads() -> Iterator[object]:
    """faiss's OpenMP thread limit of this thread, set by the test and restored after it."""
    import faiss

    before = faiss.omp_get_max_threads()
    yield faiss.omp_set_num_threads
    faiss.omp_set_num_threads(before)


def test_calls_run_at_once_each_with_faiss_on_one_thread():
    import faiss

    # Both calls must be inside at the same time to pass the barrier: one after the other, the
    # first would wait alone and time out.
    barrier = threading.Barrier(2, timeout=30)
    seen: list[tuple[int, int]] = []

    def search(item: int) -> None:
        barrier.wait()
        seen.append((threading.get_ident(), faiss.omp_get_max_threads()))

    side_by_side(search, [0, 1], threads=2)
    assert len({ident for ident, _ in seen}) == 2
    assert [threads for _, threads in seen] == [1, 1]


def test_an_error_of_one_call_is_raised():
    def search(item: int) -> None:
        if item == 3:
            raise ValueError("block 3 failed")

    with pytest.raises(ValueError, match="block 3 failed"):
        side_by_side(search, range(6), threads=2)


def test_the_thread_count_follows_the_openmp_limit(omp_threads):
    omp_threads(1)
    assert search_threads() == 1
    omp_threads(3)
    assert search_threads() == 3


@pytest.mark.parametrize("method", ["hnsw", "ivf", "ivf by row"])
def test_two_threads_find_the_same_neighbours_as_one(method, omp_threads, monkeypatch):
    from sklearn.datasets import make_blobs

    if method == "ivf by row":  # 8 dimensions without clusters: the lists are probed row by row
        X = np.random.default_rng(5).standard_normal((12_000, 8)).astype(np.float32)
    else:
        X = make_blobs(12_000, n_features=16, centers=30, random_state=5)[0].astype(np.float32)
    # Blocks of 1,000 rows: twelve blocks of the graph or row-by-row search share the two threads.
    monkeypatch.setattr(nb, "SEARCH_BLOCK_ROWS", 1_000)
    monkeypatch.setattr(inverted_file, "QUERY_BLOCK_ROWS", 1_000)
    calls: list[int] = []
    real = nb.side_by_side
    for module in (nb, inverted_file):
        monkeypatch.setattr(module, "side_by_side", lambda search, items, **kw: calls.append(search_threads())
                            or real(search, items, **kw))
    found = {}
    for threads in (1, 2):
        omp_threads(threads)
        found[threads] = nb.search_neighbours(X, k=10, exact_rows=1_000, method=method.split()[0])
    assert found[1].probed_by == {"hnsw": None, "ivf": "lists", "ivf by row": "rows"}[method]
    assert calls[0] == 1 and calls[-1] == 2
    assert found[1].recall >= 0.95 and found[1].recall == found[2].recall
    np.testing.assert_array_equal(found[1].neighbours.indices, found[2].neighbours.indices)
    np.testing.assert_array_equal(found[1].neighbours.distances, found[2].neighbours.distances)
