"""The engine's embedding of a benchmark data set, through the engine's own path and cache.

A benchmark that trains models outside an engine home (``bench active``) still has to measure
what the engine runs: with ``[mining] embedding = "auto"`` a text set is embedded by e5-small and
the served model and the selection strategies read those vectors. This module ingests the data
set into a throw-away home (so every row gets the ``feature_hash`` ingest gives it), reads the
vectors through :func:`~data_engine.mine.embedders.features.with_embedding` (the engine's cache),
and shares the benchmark embedding cache with ``bench detect`` (:func:`default_embedding_cache`).
"""

from __future__ import annotations

import os
import shutil
import tempfile
from pathlib import Path
from typing import Any

import numpy as np


def engine_embedding(data: Any, *, embedding: str = "auto", cache: Path | None = None) -> tuple[str, np.ndarray | None]:
    """The resolved embedder name for ``data`` (a :class:`~data_engine.bench.datasets.BenchDataset`)
    and its vectors, float32 of shape (N, D) in ``data.frame``'s row order, or None when the
    embedder is fitted on its corpus (``tfidf``: the model's own feature space, nothing to cache).

    ``cache``: a Parquet file of embeddings (as ``bench detect`` keeps them) read first; when rows
    had to be embedded, the file is rewritten through a temporary file and a rename, so a
    benchmark reading it at the same time never sees half a file. Raises EngineError when the
    data set does not ingest completely.
    """
    from data_engine.bench.detect import write_batch
    from data_engine.bench.homes import make_home
    from data_engine.errors import EngineError
    from data_engine.mine.embedders import configured_embedding, get_embedder
    from data_engine.mine.embedders.base import EMBEDDING_COLUMN
    from data_engine.mine.embedders.cache import export_embeddings, import_embeddings
    from data_engine.mine.embedders.features import with_embedding
    from data_engine.steps import ingest
    from data_engine.store.dataset import load_examples
    from data_engine.store.warehouse import open_warehouse

    workdir = Path(tempfile.mkdtemp(prefix="bench-embedding-"))
    try:
        home = make_home(workdir / "home", data, model="auto", n_jobs=1, budget=1, embedding=embedding)
        cfg = home.config
        name = configured_embedding(cfg)
        if not get_embedder(name).per_row:
            return name, None
        # Zero-padded ids keep load_examples' id order equal to the frame's row order.
        ids = np.array([f"ex{i:07d}" for i in range(len(data.frame))], dtype=object)
        path = write_batch(home, data, ids, data.labels)
        with open_warehouse(home) as con:
            ingested = ingest(con, home, path)
            if ingested.status != "ingested" or ingested.rows_ok != len(ids):
                raise EngineError(f"{data.name}: benchmark batch not fully ingested: {ingested.status} "
                                  f"({ingested.rows_ok} of {len(ids)} rows)")
            if cache is not None:
                import_embeddings(con, cache)
            frame = load_examples(con, cfg.dataset, subset="all")
            embedded, new = with_embedding(con, cfg, frame, data.schema)
            if cache is not None and new:
                tmp = cache.with_name(f".{cache.name}.{os.getpid()}.tmp")
                export_embeddings(con, tmp)
                os.replace(tmp, cache)
        if list(frame["example_id"]) != list(ids):
            raise EngineError(f"{data.name}: ingested rows do not match the data set's rows")
        return name, np.stack(embedded[EMBEDDING_COLUMN].to_numpy()).astype(np.float32)
    finally:
        shutil.rmtree(workdir, ignore_errors=True)
