"""The faiss calls of the neighbour search (:mod:`data_engine.mine.detectors.neighbours`): one thread,
squared distances turned into distances, and an index kept as bytes without a second copy or
written by faiss straight to its own file."""

from __future__ import annotations

import hashlib
import os
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

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


@dataclass(frozen=True)
class GraphFile:
    """A faiss index kept in its own file (``faiss.write_index``) beside the neighbour cache, and the
    sha256 of that file's bytes, checked before it is read back (:func:`open_graph`)."""

    path: Path
    sha256: str


def kept(holder: list[object], directory: Path | None) -> np.ndarray | GraphFile:
    """The one faiss index in ``holder``, kept: as bytes (:func:`serialised`) without a
    ``directory``, else written by faiss straight into a new file there, named by its sha256
    (``graph-<sha256>.faiss``); ``holder`` is emptied either way.

    A million rows' graph is about 500 MB: written straight to its file it never exists as bytes
    in memory, where :func:`serialised` reads it back for the cache's pickle. The sha256 is taken
    of the blocks as faiss writes them (``faiss.PyCallbackIOWriter``), so the file is not read back."""
    if directory is None:
        return serialised(holder)
    import faiss

    directory.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=".graph-", suffix=".tmp", dir=directory)
    digest = hashlib.sha256()
    try:
        with os.fdopen(fd, "wb") as fh:
            def write(block: bytes) -> int:
                digest.update(block)
                return fh.write(block)

            writer = faiss.PyCallbackIOWriter(write)
            faiss.write_index(holder.pop(), writer)
            del writer  # its destructor writes the last buffered block
        final = directory / f"graph-{digest.hexdigest()}.faiss"
        os.replace(tmp, final)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
    return GraphFile(final, digest.hexdigest())


def open_graph(graph: np.ndarray | GraphFile) -> object:
    """The faiss index kept by :func:`kept`. Raises ValueError when a kept file is missing or its
    bytes are not the ones written (the caller rebuilds the index).

    The file is read once: faiss reads it through ``faiss.PyCallbackIOReader`` while the sha256 is
    taken of the same blocks (and of any bytes after the index); the index is returned only when
    the digest is the one recorded. faiss 1.15 checks what it reads (``validate_HNSW`` and the
    like): of 40 files with one bit flipped, 29 raised a RuntimeError, 11 read and then failed the
    digest; none crashed. A RuntimeError on a file whose digest still matches is re-raised."""
    import faiss

    if not isinstance(graph, GraphFile):
        return faiss.deserialize_index(graph)
    digest = hashlib.sha256()
    try:
        fh = open(graph.path, "rb")
    except OSError as exc:
        raise ValueError(f"neighbour graph {graph.path}: {exc.strerror}") from None
    with fh:
        def read(size: int) -> bytes:
            block = fh.read(size)
            digest.update(block)
            return block

        reader = faiss.PyCallbackIOReader(read)
        try:
            index, failure = faiss.read_index(reader), None
        except RuntimeError as exc:  # what faiss raises for bytes it cannot read as an index
            index, failure = None, exc
        del reader
        for block in iter(lambda: fh.read(1 << 20), b""):
            digest.update(block)
    if digest.hexdigest() != graph.sha256:
        raise ValueError(f"neighbour graph {graph.path}: its bytes changed since it was written")
    if failure is not None:
        raise failure
    return index


def pad_answers(d: np.ndarray, i: np.ndarray, width: int) -> tuple[np.ndarray, np.ndarray]:
    """Results of fewer than ``width`` columns padded with infinite distance and row -1."""
    if d.shape[1] == width:
        return d, i
    fill = width - d.shape[1]
    return (np.hstack([d, np.full((len(d), fill), np.inf, np.float32)]),
            np.hstack([i, np.full((len(i), fill), -1, np.int64)]))


def drop_self(d: np.ndarray, i: np.ndarray, rows: np.ndarray, k: int) -> tuple[np.ndarray, np.ndarray]:
    """Remove each row's own entry (exact copies may come before it); keep ``k`` columns."""
    is_self = i == rows[:, None]
    # Rows where self is not among the results (many exact copies): drop the last column instead.
    missing = ~is_self.any(axis=1)
    is_self[missing, -1] = True
    keep = ~is_self
    return d[keep].reshape(len(rows), -1)[:, :k], i[keep].reshape(len(rows), -1)[:, :k]
