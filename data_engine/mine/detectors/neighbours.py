"""Feature space and nearest neighbours shared by the ``outlier`` and ``near_duplicate`` detectors.

The space is the ``[mining] embedding``: a per-row embedder's stored vectors (e5-small for text,
the user's own vectors with ``column``), or the ``tfidf`` embedder fitted on the rows here.

Exact neighbour search is used up to :data:`EXACT_SEARCH_ROWS` examples. Beyond that, scikit-learn
offers no approximate search, and exact search does not scale: measured here, a KD-tree answered
100,000 queries in 8 dimensions in 165 s, so a million rows would take most of an hour. Above the
limit the rows are first partitioned by k-means (scikit-learn's ``MiniBatchKMeans``) into blocks of
about :data:`BLOCK_ROWS` and neighbours are searched exactly within each block: time and memory grow
linearly with rows (N x BLOCK_ROWS distances, one block at a time), at the price of missing a
neighbour that sits across a block boundary.

The blocks are independent: their searches are handed to the compute back-end
(:mod:`data_engine.compute`) as one task per block, each fed only its block's rows, so they run on
local processes or Dask workers with the same result.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd

from data_engine.compute.backend import Backend, LocalBackend
from data_engine.mine.detectors.base import Neighbours
from data_engine.mine.embedders.tfidf import TfidfEmbedder

NEIGHBOURS_K = 10
EXACT_SEARCH_ROWS = 20_000
BLOCK_ROWS = 2_000


@dataclass
class NeighbourIndex:
    """Rows embedded so far and their neighbours, kept between mining runs.

    keys : np.ndarray of shape (N,), "example_id@version" of each row
    embedding : np.ndarray of shape (N, d)
    neighbours : Neighbours over the N rows
    blocks : np.ndarray of shape (N,) or None, the k-means block of each row (blocked search)
    """

    keys: np.ndarray
    embedding: np.ndarray
    neighbours: Neighbours
    embedder: TfidfEmbedder | None
    blocks: np.ndarray | None = None
    kmeans: Any = None


def build_index(keys: np.ndarray, frame: pd.DataFrame, schema: dict[str, str], modality: str, *,
                k: int = NEIGHBOURS_K, seed: int = 0, compute: Backend | None = None,
                vectors: np.ndarray | None = None) -> NeighbourIndex:
    """Find every row's neighbours: in ``vectors`` (shape (N, d), a per-row embedding) if given,
    else in the ``tfidf`` embedding of ``frame`` fitted here; blocks are searched on ``compute``."""
    embedder = None
    if vectors is None:
        embedder = TfidfEmbedder(schema=schema, modality=modality, seed=seed)
        X = embedder.fit_transform(frame)
    else:
        X = np.ascontiguousarray(vectors, dtype=np.float32)
    found, blocks, km = _search(X, k=k, seed=seed, compute=compute)
    return NeighbourIndex(_key_array(keys), X, found, embedder, blocks, km)


def extend_index(index: NeighbourIndex, keys: np.ndarray, frame: pd.DataFrame, *,
                 compute: Backend | None = None, vectors: np.ndarray | None = None) -> NeighbourIndex | None:
    """Add new rows: their ``vectors`` (shape (M, d)) or, for a tfidf index, ``frame`` embedded
    with the fitted embedder; search their neighbours only (blocks on ``compute``).

    Costs in proportion to the new rows (times :data:`BLOCK_ROWS` for blocked search). The old
    rows keep their neighbours (a new row closer to an old one than its neighbours is seen from
    the new row's side). Returns None when the index must be rebuilt instead (an exact index
    that would outgrow :data:`EXACT_SEARCH_ROWS`).
    """
    n_old, n_new = len(index.keys), len(frame)
    k = index.neighbours.indices.shape[1]
    X_new = index.embedder.transform(frame) if index.embedder is not None else np.asarray(vectors, np.float32)
    X = np.vstack([index.embedding, X_new])
    new_rows = np.arange(n_old, n_old + n_new)
    if index.kmeans is None:
        if n_old + n_new > EXACT_SEARCH_ROWS:
            return None
        d, i = _query(X, X_new, min(k + 1, len(X)), one_thread=False)
        d, i = _drop_self(d, i, new_rows, k)
        blocks = None
    else:
        new_blocks = index.kmeans.predict(X_new)
        blocks = np.concatenate([index.blocks, new_blocks])
        d = np.empty((n_new, k), dtype=np.float32)
        i = np.empty((n_new, k), dtype=np.int64)
        # The blocks that received new rows, each searched exactly (one task per block).
        work = []
        for b in np.unique(new_blocks):
            members = np.flatnonzero(blocks == b)
            work.append((members if len(members) > k else np.arange(len(X)), new_rows[new_blocks == b]))
        found = (compute or LocalBackend()).starmap(
            _query, [(X[ref], X[queries], min(k + 1, len(ref))) for ref, queries in work])
        for (ref, queries), (bd, bi) in zip(work, found):
            bd, bi = _drop_self(bd, ref[bi], queries, k)
            d[queries - n_old], i[queries - n_old] = bd, bi
    neighbours = Neighbours(np.vstack([index.neighbours.distances, d]), np.vstack([index.neighbours.indices, i]))
    keys_all = np.concatenate([index.keys, _key_array(keys)])
    return NeighbourIndex(keys_all, X, neighbours, index.embedder, blocks, index.kmeans)


def _key_array(keys: np.ndarray) -> np.ndarray:
    """Keys as fixed-width numpy strings: pickled as one buffer, not a million Python objects."""
    return np.asarray(keys, dtype=str)


def align_index(index: NeighbourIndex, keys: np.ndarray) -> Neighbours | None:
    """The index's neighbours for rows ``keys`` (shape (N,)) in that order, or None unless the
    index holds exactly these rows."""
    keys = _key_array(keys)
    if len(keys) != len(index.keys):
        return None
    pos = pd.Index(index.keys).get_indexer(keys)
    if (pos < 0).any():
        return None
    current_of = np.empty(len(keys), dtype=np.int64)
    current_of[pos] = np.arange(len(keys))
    return Neighbours(index.neighbours.distances[pos], current_of[index.neighbours.indices[pos]])


def find_neighbours(X: np.ndarray, *, k: int = NEIGHBOURS_K, seed: int = 0,
                    compute: Backend | None = None) -> Neighbours:
    """The ``k`` nearest other rows of every row of ``X`` (shape (N, d)), Euclidean.

    Exact below :data:`EXACT_SEARCH_ROWS` rows, within k-means blocks above (see module doc), the
    blocks searched as tasks on ``compute`` (default: in this process).
    """
    return _search(X, k=k, seed=seed, compute=compute)[0]


def _search(X: np.ndarray, *, k: int, seed: int, compute: Backend | None) -> tuple[Neighbours, np.ndarray | None, Any]:
    """Neighbours of all rows, with the block of each row and the k-means model (None if exact)."""
    n = len(X)
    k = max(1, min(k, n - 1))
    if n <= EXACT_SEARCH_ROWS:
        return _exact(X, k), None, None
    from sklearn.cluster import MiniBatchKMeans

    n_blocks = max(2, n // BLOCK_ROWS)
    km = MiniBatchKMeans(n_clusters=n_blocks, random_state=seed, batch_size=4096, n_init=1,
                         max_iter=20, compute_labels=False)
    sample = np.random.default_rng(seed).choice(n, size=min(n, 50 * n_blocks), replace=False)
    km.fit(X[sample])
    block = km.predict(X)
    distances = np.empty((n, k), dtype=np.float32)
    indices = np.empty((n, k), dtype=np.int64)
    order = np.argsort(block, kind="stable")
    bounds = np.r_[0, np.flatnonzero(np.diff(block[order])) + 1, n]
    groups = [order[lo:hi] for lo, hi in zip(bounds[:-1], bounds[1:])]
    # Blocks too small to hold k others search the whole data for their few rows, here.
    small = [rows for rows in groups if len(rows) <= k]
    large = [rows for rows in groups if len(rows) > k]
    for rows in small:
        part = _query(X, X[rows], k + 1)
        distances[rows], indices[rows] = _drop_self(part[0], part[1], rows, k)
    # The other blocks (about N / BLOCK_ROWS of them): one exact, vectorised search per block.
    found = (compute or LocalBackend()).starmap(_query, [(X[rows], X[rows], k + 1) for rows in large],
                                                description="neighbour search", unit="blocks")
    for rows, (d, i) in zip(large, found):
        d, i = _drop_self(d, i, np.arange(len(rows)), k)
        distances[rows] = d
        indices[rows] = rows[i]
    return Neighbours(distances, indices), block, km


def _exact(X: np.ndarray, k: int) -> Neighbours:
    # In this process on every back-end: its native threads may use all cores, as before.
    d, i = _query(X, X, k + 1, one_thread=False)
    return Neighbours(*_drop_self(d, i, np.arange(len(X)), k))


def _query(ref: np.ndarray, queries: np.ndarray, k: int, one_thread: bool = True) -> tuple[np.ndarray, np.ndarray]:
    """Distances (float32) and row numbers in ``ref`` of the ``k`` nearest rows of ``ref`` to each
    query row, shapes (Q, k). A task keeps to one native thread (parallelism is over tasks, and the
    result then does not depend on the worker it ran on)."""
    from contextlib import nullcontext

    from sklearn.neighbors import NearestNeighbors

    from data_engine.tasks.oof import single_threaded

    with single_threaded() if one_thread else nullcontext():
        nn = NearestNeighbors(n_neighbors=min(k, len(ref)), algorithm="brute").fit(ref)
        d, i = nn.kneighbors(queries)
    return d.astype(np.float32), i


def _drop_self(d: np.ndarray, i: np.ndarray, rows: np.ndarray, k: int) -> tuple[np.ndarray, np.ndarray]:
    """Remove each row's own entry (exact copies may come before it); keep ``k`` columns."""
    is_self = i == rows[:, None]
    # Rows where self is not among the results (many exact copies): drop the last column instead.
    missing = ~is_self.any(axis=1)
    is_self[missing, -1] = True
    keep = ~is_self
    return d[keep].reshape(len(rows), -1)[:, :k], i[keep].reshape(len(rows), -1)[:, :k]
