"""The faiss calls of the neighbour search (:mod:`data_engine.mine.detectors.neighbours`): one thread,
squared distances turned into distances, and an index turned into bytes without a second copy."""

from __future__ import annotations

import os
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager

import numpy as np


@contextmanager
def one_faiss_thread() -> Iterator[None]:
    """Run faiss on one thread (reproducible, and faster on a busy machine: see the neighbours module)."""
    import faiss

    threads = faiss.omp_get_max_threads()
    faiss.omp_set_num_threads(1)
    try:
        yield
    finally:
        faiss.omp_set_num_threads(threads)


def add_rows(index: object, X: np.ndarray) -> None:
    """Insert rows ``X`` (shape (M, d), float32) into the faiss ``index`` (graph or inverted file)."""
    with one_faiss_thread():
        index.add(X)


def hnsw_query(hnsw: object, queries: np.ndarray, k: int, ef: int) -> tuple[np.ndarray, np.ndarray]:
    """Euclidean distances (float32) and row numbers (int64) of the ``k`` nearest rows in the graph,
    shapes (Q, k), with beam width ``ef`` (at least ``k``)."""
    import faiss

    params = faiss.SearchParametersHNSW()
    params.efSearch = max(ef, k)
    with one_faiss_thread():
        d2, i = hnsw.search(queries, k, params=params)
    # faiss returns squared L2 distances; -1 marks a missing result (only with fewer than k rows).
    return np.sqrt(np.maximum(d2, 0, out=d2), out=d2).astype(np.float32, copy=False), i.astype(np.int64, copy=False)


def ivf_query(ivf: object, queries: np.ndarray, k: int, nprobe: int) -> tuple[np.ndarray, np.ndarray]:
    """Euclidean distances (float32) and row numbers of the ``k`` nearest rows in the inverted
    file, shapes (Q, k), probing the ``nprobe`` lists nearest each query."""
    import faiss

    params = faiss.SearchParametersIVF()
    params.nprobe = nprobe
    with one_faiss_thread():
        d2, i = ivf.search(queries, k, params=params)
    return np.sqrt(np.maximum(d2, 0, out=d2), out=d2).astype(np.float32, copy=False), i.astype(np.int64, copy=False)


def serialised(holder: list[object]) -> np.ndarray:
    """The bytes of the one faiss index in ``holder`` (uint8, shape (B,)), the same bytes as
    ``faiss.serialize_index``; ``holder`` is emptied, so the index is freed before the bytes are read.

    ``faiss.serialize_index`` writes into a C++ vector and copies it into a numpy array while the
    index lives: three copies of a million rows' graph (about 500 MB each) at once. Written to a
    temporary file, then read back after the index is gone, at most one exists at a time."""
    import faiss

    with tempfile.TemporaryDirectory(prefix="neighbour-index-") as tmp:
        path = os.path.join(tmp, "index.faiss")
        faiss.write_index(holder.pop(), path)
        return np.fromfile(path, dtype=np.uint8)
