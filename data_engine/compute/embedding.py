"""Embedding on the compute back-end: a per-row embedder's batches become independent tasks.

An embedder whose vectors depend on each row alone (``per_row``, e.g. ``e5-small``) is a pure
function of a batch of rows, so batches are mapped over the back-end (local processes or Dask
workers) and stacked in row order: the same vectors wherever they were computed. An embedder
fitted on the whole frame (``tfidf``) cannot be split and runs once, here.
"""

from __future__ import annotations

from collections.abc import Sequence
from functools import partial

import numpy as np
import pandas as pd

from data_engine.compute.backend import Backend, LocalBackend
from data_engine.mine.embedders.base import Embedder

# Rows per task: e5-small embeds about 60 texts/s per core here, so a batch is about 4 s of work,
# long next to a task's scheduling cost (milliseconds) and short enough to spread 100k texts.
EMBED_BATCH_ROWS = 256


def embed_frame(embedder: Embedder, frame: pd.DataFrame, columns: Sequence[str], *,
                compute: Backend | None = None, batch_rows: int = EMBED_BATCH_ROWS) -> np.ndarray:
    """``embedder.embed(frame, columns)``, in batches of ``batch_rows`` rows on ``compute``.

    Returns float32 of shape (N, D), one row per frame row, in order (default back-end: this
    process). Raises what the embedder raises (:class:`EngineError` for a missing column).
    """
    cols = list(columns)
    if not getattr(embedder, "per_row", False) or len(frame) <= batch_rows:
        return embedder.embed(frame, cols)
    return (compute or LocalBackend()).map_batches(partial(_embed_batch, embedder, cols), frame[cols],
                                                    batch_rows=batch_rows)


def _embed_batch(embedder: Embedder, columns: list[str], batch: pd.DataFrame) -> np.ndarray:
    """One task: the batch's vectors (module-level, so that it pickles by name)."""
    return embedder.embed(batch, columns)
