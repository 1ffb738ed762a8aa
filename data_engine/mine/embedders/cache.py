"""Embeddings computed once per content version and kept in the warehouse table ``embeddings``.

Rows are keyed by the embedder (``name@version``), the input columns embedded and the example's
``feature_hash`` (the hash of its input columns, written by ingest): mining again reads stored
vectors, a new batch embeds only content not seen before, and a relabelled example is not
re-embedded. Embedders fitted on their corpus (``per_row = False``, e.g. ``tfidf``) are not cached.

:func:`embed_in_batches` is the pure part (a batch of rows in, vectors out, with progress), so a
scheduler such as Dask can run it as a task; :func:`cached_embedding` adds the warehouse around it.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Callable, Sequence
from pathlib import Path

import duckdb
import numpy as np
import pandas as pd

from data_engine.compute.embedding import EMBED_BATCH_ROWS
from data_engine.errors import EngineError
from data_engine.mine.embedders.base import Embedder, as_matrix
from data_engine.progress import Progress, progress

log = logging.getLogger(__name__)

# Rows embedded between writes to the warehouse: an interrupted run keeps what it embedded.
STORE_CHUNK_ROWS = 4096


def embed_in_batches(embedder: Embedder, frame: pd.DataFrame, columns: Sequence[str], *,
                     batch_rows: int = EMBED_BATCH_ROWS, bar: Progress | None = None) -> np.ndarray:
    """``embedder.embed`` over ``frame`` in batches of ``batch_rows``, advancing ``bar`` (a new one if None).

    Returns float32 of shape (N, D), rows in frame order. A pure function of its inputs, so a
    batch can be embedded in any process (e.g. as a Dask task).
    """
    if bar is None:
        with progress(f"embedding ({embedder.name})", len(frame)) as own:
            return embed_in_batches(embedder, frame, columns, batch_rows=batch_rows, bar=own)
    if not embedder.per_row or len(frame) <= batch_rows:
        X = as_matrix(embedder.embed(frame, columns), len(frame), embedder.name)
        bar.advance(len(frame))
        return X
    parts = []
    for lo in range(0, len(frame), batch_rows):
        part = frame.iloc[lo:lo + batch_rows]
        parts.append(as_matrix(embedder.embed(part, columns), len(part), embedder.name))
        bar.advance(len(part))
    return np.vstack(parts)


def cached_embedding(con: duckdb.DuckDBPyConnection, embedder: Embedder, frame: pd.DataFrame,
                     columns: Sequence[str], *, hashes: np.ndarray | None = None,
                     embed_rows: Callable[[pd.DataFrame], np.ndarray] | None = None) -> tuple[np.ndarray, int]:
    """The embedding of every row of ``frame``, float32 of shape (N, D), and how many rows were newly embedded.

    ``hashes`` (shape (N,), unsigned 64-bit) identify each row's content; by default the frame's
    ``feature_hash`` column. Stored vectors are read; the rest are embedded (one row per distinct
    hash) and stored. ``embed_rows`` embeds up to :data:`STORE_CHUNK_ROWS` rows at a time (default:
    :func:`embed_in_batches` here; a scheduler may map the batches elsewhere, e.g. on a Dask
    cluster). Raises EngineError when stored vectors disagree in dimension with new ones.
    """
    if not embedder.per_row:
        return as_matrix(embedder.embed(frame, columns), len(frame), embedder.name), len(frame)
    if hashes is None:
        if "feature_hash" not in frame.columns:
            raise EngineError("cached embedding needs the examples' feature_hash column")
        hashes = frame["feature_hash"].to_numpy()
    hashes = np.asarray(hashes, dtype=np.uint64)
    unique, first, inverse = np.unique(hashes, return_index=True, return_inverse=True)
    key, cols = embedder.cache_key, json.dumps(list(columns))
    stored = _stored_vectors(con, key, cols, unique)
    todo = np.flatnonzero(~np.isin(unique, stored.index.to_numpy(dtype=np.uint64))) if len(stored) else np.arange(len(unique))
    vectors: dict[str, np.ndarray] = {}
    if len(todo):
        log.info("embedding %d new of %d distinct contents with %s", len(todo), len(unique), key)
        with progress(f"embedding ({embedder.name})", len(todo)) as bar:
            for lo in range(0, len(todo), STORE_CHUNK_ROWS):
                chunk = todo[lo:lo + STORE_CHUNK_ROWS]
                rows = frame.iloc[first[chunk]]
                if embed_rows is None:
                    X = embed_in_batches(embedder, rows, columns, bar=bar)
                else:
                    X = as_matrix(embed_rows(rows), len(rows), embedder.name)
                    bar.advance(len(rows))
                _store_vectors(con, key, cols, unique[chunk], X)
                vectors.update(zip(chunk.tolist(), X))
    dims = {len(v) for v in vectors.values()} | ({stored.iloc[0].shape[0]} if len(stored) else set())
    if len(dims) > 1:
        # Stored vectors are keyed by the embedder's version: an embedder whose output changed
        # without a new version is a programming error, said plainly rather than mixed silently.
        raise EngineError(f"stored embeddings of {key} have {sorted(dims)} dimensions; the embedder's output "
                          "changed without a new version")
    if not len(unique):
        return np.zeros((0, dims.pop() if dims else 0), dtype=np.float32), 0
    out = np.empty((len(unique), dims.pop()), dtype=np.float32)
    if len(stored):
        pos = np.searchsorted(unique, stored.index.to_numpy(dtype=np.uint64))
        out[pos] = np.stack(stored.to_numpy())
    for i, v in vectors.items():
        out[i] = v
    return out[inverse.ravel()], len(todo)


def _stored_vectors(con: duckdb.DuckDBPyConnection, key: str, cols: str, unique: np.ndarray) -> pd.Series:
    """Stored vectors among ``unique`` hashes: a Series of float32 arrays indexed by hash."""
    import pyarrow as pa

    con.register("_wanted_hashes", pa.table({"content_hash": pa.array(unique, pa.uint64())}))
    try:
        table = con.sql(
            "SELECT e.content_hash, e.vector FROM embeddings e JOIN _wanted_hashes w USING (content_hash) "
            "WHERE e.embedder = ? AND e.columns = ?", params=[key, cols]).to_arrow_table()
    finally:
        con.unregister("_wanted_hashes")
    if table.num_rows == 0:
        return pd.Series([], dtype=object)
    vec = table.column("vector").combine_chunks()
    d = int(vec.value_lengths()[0].as_py())
    flat = vec.flatten().to_numpy(zero_copy_only=False).astype(np.float32)
    if len(flat) != d * table.num_rows:
        raise EngineError(f"stored embeddings of {key} differ in dimension; the embedder's output changed "
                          "without a new version")
    matrix = flat.reshape(table.num_rows, d)
    return pd.Series(list(matrix), index=table.column("content_hash").to_numpy())


def _store_vectors(con: duckdb.DuckDBPyConnection, key: str, cols: str, hashes: np.ndarray, X: np.ndarray) -> None:
    """Insert vectors ``X`` (shape (M, D)) for content ``hashes`` (shape (M,)); existing keys are kept."""
    import pyarrow as pa

    n, d = X.shape
    offsets = pa.array(np.arange(0, n * d + 1, d, dtype=np.int32))
    table = pa.table({"content_hash": pa.array(hashes, pa.uint64()),
                      "vector": pa.ListArray.from_arrays(offsets, pa.array(X.ravel(), pa.float32()))})
    con.register("_new_vectors", table)
    try:
        con.execute("INSERT INTO embeddings (embedder, columns, content_hash, vector) "
                    "SELECT ?, ?, content_hash, vector FROM _new_vectors ON CONFLICT DO NOTHING", [key, cols])
    finally:
        con.unregister("_new_vectors")


def export_embeddings(con: duckdb.DuckDBPyConnection, path: Path) -> None:
    """Write the stored embeddings to a Parquet file (a benchmark keeps them across fresh homes)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    con.execute(f"COPY (SELECT embedder, columns, content_hash, vector FROM embeddings) TO '{_sql_path(path)}' "
                "(FORMAT parquet)")


def import_embeddings(con: duckdb.DuckDBPyConnection, path: Path) -> int:
    """Add the embeddings of a Parquet file written by :func:`export_embeddings`; return the rows read."""
    if not path.is_file():
        return 0
    return int(con.execute(
        "INSERT INTO embeddings (embedder, columns, content_hash, vector) SELECT embedder, columns, content_hash, "
        f"vector FROM read_parquet('{_sql_path(path)}') ON CONFLICT DO NOTHING").fetchone()[0])


def _sql_path(path: Path) -> str:
    """A file path as a SQL string literal's content (COPY takes no parameters)."""
    return str(path).replace("'", "''")
