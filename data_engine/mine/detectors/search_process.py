"""The approximate neighbour search of a large table, run in a process of its own.

At a million rows the search's faiss index (the HNSW graph at 48 links a row and its copy of the
vectors: about 490 MiB), its exact sample and its (N, k) answers came on top of everything the mining
process holds through its neighbour stage (the table, the predictions, the runtime's retained memory:
about 1.2 GiB there, docs/mining.md), making that stage the run's peak. In a fresh process they are
freed with it. The search is the same call (:func:`~data_engine.mine.detectors.neighbours.search_neighbours`,
the graph built by faiss on one thread, seeded), so the neighbours, the recall and the graph file are the same.

The vectors go to the search and the neighbours come back through ``.npy`` files in a temporary
directory beside the graph: a pickle through the process pipe would hold a second copy of each in
both processes while it is sent. The process is started with ``spawn`` (Python's
:mod:`multiprocessing`), so it shares no memory with the mining process and imports only what the
search needs.
"""

from __future__ import annotations

import dataclasses
import tempfile
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np

from data_engine.mine.detectors.base import Neighbours

# Searches of more rows than this run apart: below it the graph is under 50 MiB, less than the
# imports of the process (about 200 MiB) and its start (a few seconds).
APART_ROWS = 100_000


def search_apart(search: Callable[..., Any], X: np.ndarray, *, k: int, seed: int, graph_dir: Path,
                 exact_rows: int | None = None) -> Any:
    """``search`` (:func:`~data_engine.mine.detectors.neighbours.search_neighbours`, passed in: that
    module imports this one) of ``X`` (shape (N, d), float32) with the index written into
    ``graph_dir``, run in a new process; returns its ``Search`` (the neighbours read back, shapes
    (N, k)). Errors of the search are raised here."""
    import multiprocessing
    from concurrent.futures import ProcessPoolExecutor

    graph_dir.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(prefix=".search-", dir=graph_dir) as tmp:
        np.save(Path(tmp) / "vectors.npy", X)
        with ProcessPoolExecutor(1, mp_context=multiprocessing.get_context("spawn")) as pool:
            found = pool.submit(_search_files, search, tmp, k, seed, str(graph_dir), exact_rows).result()
        distances = np.load(Path(tmp) / "distances.npy")
        indices = np.load(Path(tmp) / "indices.npy")
    return dataclasses.replace(found, neighbours=Neighbours(distances, indices))


def _search_files(search: Callable[..., Any], tmp: str, k: int, seed: int, graph_dir: str,
                  exact_rows: int | None) -> Any:
    """In the search's process: the vectors from ``tmp``, the neighbours written there, the rest returned."""
    found = search(np.load(Path(tmp) / "vectors.npy"), k=k, seed=seed, graph_dir=Path(graph_dir),
                              exact_rows=exact_rows)
    np.save(Path(tmp) / "distances.npy", found.neighbours.distances)
    np.save(Path(tmp) / "indices.npy", found.neighbours.indices)
    empty = Neighbours(np.empty((0, 0), np.float32), np.empty((0, 0), np.int64))
    return dataclasses.replace(found, neighbours=empty)
