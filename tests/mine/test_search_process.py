"""The neighbour search run in a process of its own finds what it finds in the mining process."""

from __future__ import annotations

import numpy as np

from data_engine.mine.detectors.faiss_calls import GraphFile
from data_engine.mine.detectors.neighbours import search_neighbours
from data_engine.mine.detectors.search_process import search_apart


def test_the_search_apart_gives_the_same_neighbours_recall_and_graph(tmp_path):
    X = np.random.default_rng(3).standard_normal((3_000, 8)).astype(np.float32)
    here = search_neighbours(X, k=5, seed=1, graph_dir=tmp_path / "here", exact_rows=500)
    apart = search_apart(search_neighbours, X, k=5, seed=1, graph_dir=tmp_path / "apart", exact_rows=500)
    assert apart.neighbours.indices.shape == (3_000, 5)
    np.testing.assert_array_equal(apart.neighbours.indices, here.neighbours.indices)
    np.testing.assert_array_equal(apart.neighbours.distances, here.neighbours.distances)
    assert apart.neighbours.distances.dtype == here.neighbours.distances.dtype
    assert apart.neighbours.indices.dtype == here.neighbours.indices.dtype
    assert (apart.recall, apart.ef_search, apart.nprobe) == (here.recall, here.ef_search, here.nprobe)
    assert isinstance(apart.graph, GraphFile) and apart.graph.sha256 == here.graph.sha256
    assert apart.graph.path == tmp_path / "apart" / here.graph.path.name
    assert apart.graph.path.read_bytes() == here.graph.path.read_bytes()
    # Only the graph stays beside it: the vectors and answers passed through a temporary directory.
    assert sorted(p.name for p in (tmp_path / "apart").iterdir()) == [here.graph.path.name]
