"""The detectors' input of a mining run (:func:`data_engine.mine.run.run_mining`): the state's
training and unlabeled frames side by side, their keys, the nearest-neighbour index kept between
runs, the modality's own vectors where surface features miss input columns, and the slimmer state
the run keeps after the neighbour stage."""

from __future__ import annotations

import dataclasses
import hashlib
import json
import logging
from pathlib import Path
from typing import Any

import duckdb
import numpy as np
import pandas as pd

from data_engine.compute.backend import Backend, engine_backend
from data_engine.mine.detectors import MiningData
from data_engine.mine.embedders.base import EMBEDDING_COLUMN
from data_engine.mine.embedders.features import model_inputs
from data_engine.mine.predictions import PredictionState
from data_engine.store.cache import load_cache, save_cache
from data_engine.store.config import EngineConfig
from data_engine.store.home import Home
from data_engine.tasks import task_for

log = logging.getLogger(__name__)


def mining_data(state: PredictionState, cfg: EngineConfig, *, with_neighbours: bool = True,
                home: Home | None = None, con: duckdb.DuckDBPyConnection | None = None,
                compute: Backend | None = None, verdicts: pd.DataFrame | None = None) -> MiningData:
    """Assemble the detectors' input: training rows first, then unlabeled rows, their input
    columns (a copy of the table, which ``lookalike``, the label detector's span boundary check and
    installed detectors read), and ``verdicts`` (:func:`data_engine.mine.runs.reviewed_examples`).

    With a ``home``, the neighbour index is kept in ``HOME/models/mining`` and a run that only
    adds examples embeds and searches just the new ones (see :func:`current_neighbours`). For
    image files, the rows' paths and (with ``con``) their stored perceptual hashes go along.
    """
    frames = [state.train, state.unlabeled]
    n_train, n_unl = len(state.train), len(state.unlabeled)
    neighbours = None
    if with_neighbours and n_train + n_unl >= 3:
        # First: the ids as Python strings (about 65 MB at a million rows) need not exist during the search.
        neighbours = current_neighbours(state, cfg, home, compute)
    ids = np.concatenate([f["example_id"].astype(str).to_numpy(dtype=object) for f in frames])
    # The stored uint64 hashes themselves (8 bytes a row), not a Python string of each (about 70).
    hashes = np.concatenate([f["feature_hash"].to_numpy(dtype=np.uint64) for f in frames])
    # Unlabeled rows: -1 for class indices (in every cell of a tag row), NaN for numbers (a
    # regression label may be -1).
    unlabeled = np.nan if state.labels.dtype.kind == "f" else -1
    labels = np.concatenate([state.labels, np.full((n_unl, *state.labels.shape[1:]), unlabeled, dtype=state.labels.dtype)])
    probs = np.vstack([state.oof_probs, state.unlabeled_probs]) if n_unl else state.oof_probs
    oos = np.concatenate([np.ones(n_train, bool), np.zeros(n_unl, bool)])
    image_paths = image_hashes = None
    if cfg.dataset.image_column:
        from data_engine.store.images import perceptual_hashes

        col = cfg.dataset.image_column
        image_paths = np.concatenate([f[col].astype(str).to_numpy(dtype=object) for f in frames])
        image_hashes = perceptual_hashes(con, image_paths) if con is not None else None
    inputs = both_frames(state, list(state.schema))
    return MiningData(ids, labels, tuple(state.classes), probs, oos, hashes, neighbours, state.rare_classes,
                      image_hashes, image_paths, inputs=inputs, schema=dict(state.schema),
                      modality=cfg.dataset.modality, verdicts=verdicts, task=task_for(cfg.dataset))


def slim_state(state: PredictionState) -> PredictionState:
    """``state`` whose training frame keeps only what the run reads after its neighbour stage:
    ``example_id`` and ``version`` (the issues, the queue, second opinions), and with unlabeled rows
    the input columns and an attached embedding too (the queue's selection reads a sample of labeled
    rows beside the candidates, :mod:`data_engine.mine.plan`). Same rows; the frame's columns are not
    copied (pandas copies on write). About 150 MB of the generated set's 17 columns at a million rows."""
    keep = ["example_id", "version"]
    if len(state.unlabeled):
        keep += [c for c in model_inputs(state.train, state.schema) if c not in keep]
    return dataclasses.replace(state, train=state.train[keep])


def both_frames(state: PredictionState, cols: list[str]) -> pd.DataFrame:
    """Columns ``cols`` of the training rows, then of the unlabeled rows (N rows, a RangeIndex).

    With no unlabeled row this is the training frame's own columns: pandas copies on write, so no
    column is copied (``pd.concat`` with the empty frame copied every column, about 120 MB for the
    generated set's nine input columns at a million rows).
    """
    if len(state.unlabeled) == 0:
        return state.train[cols]
    return pd.concat([state.train[cols], state.unlabeled[cols]], ignore_index=True)


def example_keys(state: PredictionState) -> np.ndarray:
    """``<example_id>@<version>`` of the training rows, then the unlabeled rows: fixed-width numpy
    strings, shape (N,), the neighbour index's keys (a Python string each would be about 65 MB at a
    million rows, held through the search)."""
    return np.concatenate([(f["example_id"].astype(str) + "@" + f["version"].astype(str)).to_numpy(dtype=str)
                           for f in (state.train, state.unlabeled)])


def with_own_embedding(con: duckdb.DuckDBPyConnection, state: PredictionState, data: MiningData) -> MiningData:
    """``data`` with the modality's own vectors of its examples and verdicts where surface features
    miss input columns (see :func:`data_engine.mine.embedders.features.own_embedding`); unchanged otherwise."""

    from data_engine.mine.embedders.features import own_embedding

    frames = [pd.concat([state.train, state.unlabeled], ignore_index=True), data.verdicts]
    found = own_embedding(con, frames, state.schema, state.embedding)
    if found is None:
        return data
    name, (rows, verdict_vectors) = found
    verdicts = data.verdicts.assign(**{EMBEDDING_COLUMN: list(verdict_vectors)})
    return dataclasses.replace(data, embedding=rows, embedding_name=name, verdicts=verdicts)


def current_neighbours(state: PredictionState, cfg: EngineConfig, home: Home | None,
                       compute: Backend | None = None) -> Any:
    """Nearest neighbours of the current examples (training rows, then unlabeled rows).

    The index from the last run is re-used when it holds exactly these example versions, and
    extended when they are a superset of its rows; anything else rebuilds it. With a ``home`` an
    approximate index (faiss) is written by faiss into its own file beside the cache's pickle,
    ``graph-<sha256>.faiss``, whose sha256 the signed pickle records.
    """
    from data_engine.mine.detectors.faiss_calls import GraphFile
    from data_engine.mine.detectors.neighbours import align_index, build_index, extend_index

    cols = model_inputs(state.train, state.schema)
    keys = example_keys(state)
    frame = both_frames(state, cols)
    # A per-row embedding is attached by refresh_predictions; without one, tfidf is fitted here.
    vectors = np.stack(frame[EMBEDDING_COLUMN].to_numpy()) if EMBEDDING_COLUMN in frame.columns else None
    digest = hashlib.sha256(json.dumps([state.schema, cfg.dataset.modality, cfg.mining.seed,
                                        state.embedding]).encode()).hexdigest()[:20]
    path = Path(home.models) / "mining" / f"neighbours-{digest}.joblib" if home is not None else None
    graph_dir = path.parent if path is not None else None
    index = old_graph = None
    if path is not None and path.exists():
        try:
            # Unpickled only when its keyed sha256 matches (store.cache.load_cache); else rebuilt.
            index = load_cache(home, path)
        except Exception as exc:  # a damaged cache is rebuilt, never trusted
            log.warning("neighbour cache %s unreadable (%s); rebuilding", path, exc)
    if index is not None:
        if isinstance(index.graph, GraphFile):  # a copied or moved home reads (and later removes) its own file
            index.graph = GraphFile(path.parent / index.graph.path.name, index.graph.sha256)
        old_graph = index.graph
        found = align_index(index, keys)
        if found is not None:
            return found
        known = pd.Index(index.keys)
        is_new = ~pd.Index(keys).isin(known)
        if pd.Index(keys).isin(known).sum() == len(index.keys) and is_new.any():
            try:
                with engine_backend(cfg, compute) as backend:
                    index = extend_index(index, keys[is_new], frame[is_new], compute=backend,
                                         vectors=None if vectors is None else vectors[is_new], graph_dir=graph_dir)
            except ValueError as exc:  # its graph file missing or changed: rebuilt, never trusted
                log.warning("neighbour graph unreadable (%s); rebuilding", exc)
                index = None
        else:
            index = None
    if index is None:
        with engine_backend(cfg, compute) as backend:
            index = build_index(keys, frame, state.schema, cfg.dataset.modality, seed=cfg.mining.seed,
                                compute=backend, vectors=vectors, graph_dir=graph_dir)
    if path is not None:
        save_cache(home, index, path)
        if isinstance(old_graph, GraphFile) and old_graph != index.graph:
            old_graph.path.unlink(missing_ok=True)  # the replaced index's graph; nothing refers to it now
    return align_index(index, keys)
