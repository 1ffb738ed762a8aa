"""Embedding on the compute back-end: a per-row embedder's batches become independent tasks.

An embedder whose vectors depend on each row alone (``per_row``, e.g. ``e5-small``) is a pure
function of a batch of rows, so batches are mapped over the back-end and stacked in row order:
the same vectors wherever they were computed. On a Dask cluster this is how the embeddings cache
(:func:`data_engine.mine.embedders.cache.cached_embedding`) embeds the rows it has not seen; with
``scheduler = "local"`` the cache embeds in this process, as it always did. An embedder fitted on
the whole frame (``tfidf``) cannot be split and runs once, here.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from functools import partial
from typing import Any, Protocol

import numpy as np
import pandas as pd

from data_engine.compute.backend import LOCAL, Backend, LocalBackend, engine_backend

# Rows per call into the embedder (one task on a cluster): large enough to amortise the call, small
# enough that a progress bar moves.
EMBED_BATCH_ROWS = 256


class Embedder(Protocol):
    """What this module needs of an embedder (:class:`data_engine.mine.embedders.base.Embedder`
    satisfies it; the compute layer sits below the stages and does not import them)."""

    per_row: bool

    def embed(self, frame: pd.DataFrame, columns: Sequence[str]) -> np.ndarray:
        """Float32 of shape (N, D), one row per frame row."""
        ...


def embed_frame(embedder: Embedder, frame: pd.DataFrame, columns: Sequence[str], *,
                compute: Backend | None = None, batch_rows: int = EMBED_BATCH_ROWS) -> np.ndarray:
    """``embedder.embed(frame, columns)``, in batches of ``batch_rows`` rows on ``compute``.

    Returns float32 of shape (N, D), one row per frame row, in order (default back-end: this
    process). Raises what the embedder raises (:class:`EngineError` for a missing column).
    """
    cols = list(columns)
    if not embedder.per_row or len(frame) <= batch_rows:
        return embedder.embed(frame, cols)
    return (compute or LocalBackend()).map_batches(partial(_embed_batch, embedder, cols), frame[cols],
                                                    batch_rows=batch_rows)


def _embed_batch(embedder: Embedder, columns: list[str], batch: pd.DataFrame) -> np.ndarray:
    """One task: the batch's vectors (module-level, so that it pickles by name)."""
    return embedder.embed(batch, columns)


def cluster_embed_rows(cfg: Any, embedder: Embedder, columns: Sequence[str],
                       compute: Backend | None = None) -> Callable[[pd.DataFrame], np.ndarray] | None:
    """The ``embed_rows`` the embeddings cache should use: batches on the Dask cluster of ``compute``
    (or of ``cfg``'s ``[compute] scheduler``, connected only when rows need embedding), or None to
    embed in this process (a local back-end)."""
    if isinstance(compute, LocalBackend) or (compute is None and cfg.compute.scheduler == LOCAL):
        return None

    def embed_rows(rows: pd.DataFrame) -> np.ndarray:
        with engine_backend(cfg, compute) as backend:
            return embed_frame(embedder, rows, columns, compute=backend, batch_rows=EMBED_BATCH_ROWS)

    return embed_rows
