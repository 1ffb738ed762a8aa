"""The inverted-file neighbour search against exact search: recall on rows with cluster
structure, its own recall estimate, exactness when every list is probed, the fall-back to the
graph on rows without structure, reproducibility and growth by new rows."""

from __future__ import annotations

import numpy as np
import pytest

from data_engine.bench.neighbours import flags
from data_engine.mine.detectors import neighbours as nb


def clustered(rows: int, dims: int, seed: int) -> np.ndarray:
    from sklearn.datasets import make_blobs

    return make_blobs(rows, n_features=dims, centers=40, cluster_std=1.0, center_box=(-10, 10),
                      random_state=seed)[0].astype(np.float32)


def exact_of(X: np.ndarray, rows: np.ndarray, k: int = 10) -> np.ndarray:
    return nb._drop_self(*nb._query(X, X[rows], k + 1), rows, k)[1]


@pytest.fixture(scope="module")
def blobs() -> tuple[np.ndarray, nb.Search, np.ndarray, np.ndarray]:
    """20,000 rows in 40 Gaussian clusters (16 dimensions), searched approximately, and the exact
    neighbours of 500 random rows other than the search's own sample."""
    X = clustered(20_000, 16, seed=11)
    found = nb.search_neighbours(X, k=10, exact_rows=1_000)
    queries = np.sort(np.random.default_rng(12).choice(len(X), 500, replace=False))
    return X, found, queries, exact_of(X, queries)


def test_the_inverted_file_finds_95_percent_of_the_true_neighbours_of_clustered_rows(blobs):
    X, found, queries, truth = blobs
    assert found.method == "ivf" and found.nprobe in nb.NPROBE_STEPS
    assert found.neighbours.indices.shape == (len(X), 10)
    assert (found.neighbours.indices != np.arange(len(X))[:, None]).all()
    assert nb.recall_at_k(found.neighbours.indices[queries], truth) >= 0.95


def test_rows_of_few_dimensions_without_clusters_are_searched_by_row_when_by_list_falls_short():
    # Standard normal in 8 dimensions: the lists nearest a row's own list centre miss the neighbours
    # across its borders (by list, 32 lists reach under 0.96 here), the lists nearest the row do not.
    import faiss

    from data_engine.mine.detectors.inverted_file import ROW_LISTS_PER_ROOT

    X = np.random.default_rng(21).standard_normal((20_000, 8)).astype(np.float32)
    found = nb.search_neighbours(X, k=10, exact_rows=1_000)
    assert found.method == "ivf" and found.probed_by == "rows"
    assert found.nprobe in {*nb.NPROBE_STEPS, *(s * ROW_LISTS_PER_ROOT for s in nb.NPROBE_STEPS)}
    assert "row lists" in found.seconds and "row probes" in found.seconds
    # The finer lists of the search by row are the ones kept: min(round(4 sqrt(20,000)), 20,000 // 39).
    assert faiss.deserialize_index(np.asarray(found.graph)).nlist == 512
    queries = np.sort(np.random.default_rng(22).choice(len(X), 500, replace=False))
    truth = exact_of(X, queries)
    assert nb.recall_at_k(found.neighbours.indices[queries], truth) >= 0.95
    i, d = found.neighbours.indices[queries], found.neighbours.distances[queries]
    np.testing.assert_allclose(d, np.linalg.norm(X[queries][:, None, :] - X[i], axis=2), rtol=1e-3, atol=1e-3)
    assert (found.neighbours.indices != np.arange(len(X))[:, None]).all()


def test_clustered_rows_are_searched_by_list(blobs):
    import faiss

    assert blobs[1].probed_by == "lists" and "row probes" not in blobs[1].seconds
    assert faiss.deserialize_index(np.asarray(blobs[1].graph)).nlist == round(np.sqrt(20_000))  # the lists by list


def test_the_inverted_file_reports_a_recall_that_agrees_with_an_independent_sample(blobs):
    X, found, queries, truth = blobs
    assert found.recall >= nb.TARGET_RECALL
    assert abs(found.recall - nb.recall_at_k(found.neighbours.indices[queries], truth)) < 0.02


def test_the_distances_are_the_true_distances_to_the_neighbours_found(blobs):
    X, found, queries, _ = blobs
    i, d = found.neighbours.indices[queries], found.neighbours.distances[queries]
    np.testing.assert_allclose(d, np.linalg.norm(X[queries][:, None, :] - X[i], axis=2), rtol=1e-3, atol=1e-3)
    assert (np.diff(d, axis=1) >= -1e-5).all()  # nearest first


def test_probing_every_list_is_exact_search(monkeypatch):
    monkeypatch.setattr(nb, "NPROBE_STEPS", (1, 10_000))
    X = np.random.default_rng(13).standard_normal((2_000, 6)).astype(np.float32)
    found = nb.search_neighbours(X, k=5, exact_rows=100, target_recall=1.0, method="ivf")
    assert found.nprobe == 45  # round(sqrt(2,000)) lists, all probed
    exact = nb.search_neighbours(X, k=5, exact_rows=len(X)).neighbours
    np.testing.assert_allclose(found.neighbours.distances, exact.distances, rtol=1e-4, atol=1e-5)
    assert found.recall == 1.0


def test_rows_without_structure_fall_back_to_the_graph_when_the_lists_fall_short(monkeypatch):
    monkeypatch.setattr(nb, "NPROBE_STEPS", (1, 2))
    X = np.random.default_rng(14).standard_normal((8_000, 16)).astype(np.float32)
    found = nb.search_neighbours(X, k=10, exact_rows=1_000)
    assert found.method == "hnsw" and found.nprobe is None
    assert found.recall >= nb.TARGET_RECALL or found.ef_search == nb.MAX_EF_SEARCH


def test_the_inverted_file_is_reproducible(blobs):
    X, found, _, _ = blobs
    again = nb.search_neighbours(X, k=10, exact_rows=1_000)
    np.testing.assert_array_equal(again.neighbours.indices, found.neighbours.indices)
    assert again.nprobe == found.nprobe and bytes(again.graph) == bytes(found.graph)


def test_an_unknown_method_is_refused_by_name():
    with pytest.raises(ValueError, match="'annoy'"):
        nb.search_neighbours(np.zeros((10, 2), np.float32), method="annoy")


def test_planted_extremes_and_copies_among_clusters_are_flagged_as_with_exact_neighbours():
    # Tolerance as for the graph: flags differ from exact ones on at most 0.1 % of rows.
    rng = np.random.default_rng(15)
    X = clustered(20_000, 16, seed=16)
    chosen = rng.choice(len(X), 150, replace=False)
    far, copy, source = chosen[:50], chosen[50:100], chosen[100:]
    X[far] *= 4
    X[copy] = X[source] + rng.normal(0, 1e-3, (50, 16)).astype(np.float32)
    approx = nb.search_neighbours(X, exact_rows=1_000)
    assert approx.method == "ivf"
    exact = nb.search_neighbours(X, exact_rows=len(X)).neighbours
    (outlier_a, copy_a), (outlier_e, copy_e) = flags(approx.neighbours), flags(exact)
    assert outlier_a[far].all() and copy_a[copy].all()
    assert (outlier_a != outlier_e).sum() <= 0.001 * len(X)
    assert (copy_a != copy_e).sum() <= 0.001 * len(X)


@pytest.mark.parametrize("method", ["ivf", "hnsw"])
def test_an_index_written_to_its_file_holds_the_bytes_kept_in_memory_and_grows_the_same(tmp_path, method):
    from data_engine.mine.detectors.faiss_calls import GraphFile

    X = clustered(3_000, 8, seed=15)
    in_memory = nb.search_neighbours(X[:2_500], k=5, exact_rows=100, method=method)
    on_disk = nb.search_neighbours(X[:2_500], k=5, exact_rows=100, method=method, graph_dir=tmp_path)
    assert isinstance(on_disk.graph, GraphFile) and on_disk.graph.path.parent == tmp_path
    assert on_disk.graph.path.read_bytes() == bytes(in_memory.graph)
    np.testing.assert_array_equal(on_disk.neighbours.indices, in_memory.neighbours.indices)
    index = nb.NeighbourIndex(np.arange(2_500).astype(str), X[:2_500], on_disk.neighbours, None, on_disk.graph,
                              on_disk.recall, on_disk.ef_search, on_disk.nprobe)
    grown = {}
    for where, graph in (("memory", in_memory.graph), ("file", on_disk.graph)):
        kept = nb.NeighbourIndex(index.keys, index.embedding, index.neighbours, None, graph, index.recall,
                                 index.ef_search, index.nprobe)
        grown[where] = nb.extend_index(kept, np.arange(2_500, 3_000).astype(str), X[2_500:], vectors=X[2_500:],
                                       graph_dir=tmp_path if where == "file" else None)
    np.testing.assert_array_equal(grown["file"].neighbours.indices, grown["memory"].neighbours.indices)
    assert grown["file"].graph.path.read_bytes() == bytes(grown["memory"].graph)
    assert sorted(p.name for p in tmp_path.iterdir()) == sorted(
        [on_disk.graph.path.name, grown["file"].graph.path.name])  # no temporary file left


def test_a_changed_graph_file_is_refused_not_read(tmp_path):
    X = clustered(2_500, 8, seed=16)
    found = nb.search_neighbours(X, k=5, exact_rows=100, method="hnsw", graph_dir=tmp_path)
    index = nb.NeighbourIndex(np.arange(len(X)).astype(str), X, found.neighbours, None, found.graph, found.recall,
                              found.ef_search)
    data = bytearray(found.graph.path.read_bytes())
    data[-1] ^= 1
    found.graph.path.write_bytes(bytes(data))
    with pytest.raises(ValueError, match="bytes changed"):
        nb.extend_index(index, np.array(["new"]), X[:1], vectors=X[:1])
    found.graph.path.unlink()
    with pytest.raises(ValueError, match="No such file"):
        nb.extend_index(index, np.array(["new"]), X[:1], vectors=X[:1])
