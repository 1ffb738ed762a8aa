"""Gold leakage: gold examples with an exact or near copy among the training examples.

A gold example the model was trained on (or on a copy of it) measures memory, not generalisation,
so the gate and the champion's re-score score gold without them (:func:`scored_gold`) and say how
many they left out.

Exact copies share the input hash (``feature_hash``, as the ``near_duplicate`` detector's exact
copies); near copies are closer to a training example than ``NEAR_DUPLICATE_THRESHOLD`` times the
median nearest-neighbour distance among training examples (the detector's rule, applied across
the gold/training line), in the dense space the distance-based members read
(:func:`data_engine.mine.models.feature_space`, fitted on the training examples). Image files are
compared as the near-duplicate detector compares them (:func:`image_copies_in_training`): a perceptual
hash within a few bits, or a close neighbour in the image embedding (read from the warehouse's
embedding store, so a training image is not embedded again and a gold image once), each confirmed by
comparing the two images; a resized, re-encoded or shifted copy is found that way, where the embedding
distance rule alone misses it.
"""

from __future__ import annotations

from collections.abc import Mapping

import duckdb
import numpy as np
import pandas as pd

from data_engine.mine.detectors.near_duplicate import NEAR_DUPLICATE_THRESHOLD
from data_engine.store.config import EngineConfig

# Training rows the median nearest-neighbour distance is measured on at most (a random sample).
MEDIAN_SAMPLE = 5000


def leaked_gold(gold: pd.DataFrame, train: pd.DataFrame, schema: Mapping[str, str], modality: str = "tabular",
                *, seed: int = 0) -> np.ndarray:
    """Which of the ``gold`` rows (N) have an exact or near copy among the ``train`` rows (M); shape (N,), bool.

    Both frames carry ``feature_hash`` and the input columns of ``schema`` (name -> kind); image columns
    are compared by hash only here (see :func:`image_copies_in_training`)."""
    from sklearn.neighbors import NearestNeighbors

    from data_engine.mine.models import Schema, feature_space

    leaked = gold["feature_hash"].astype(str).isin(set(train["feature_hash"].astype(str))).to_numpy() \
        if len(gold) and len(train) else np.zeros(len(gold), dtype=bool)
    kinds = Schema.from_mapping(dict(schema))
    if len(train) < 3 or not len(gold) or kinds.image or not (kinds.numeric or kinds.categorical or kinds.text):
        return leaked
    cols = list(kinds.numeric + kinds.categorical + kinds.text)
    space = feature_space(Schema(kinds.numeric, kinds.categorical, kinds.text), modality).fit(train[cols])
    ref = np.asarray(space.transform(train[cols]), dtype=np.float64)
    gold_x = np.asarray(space.transform(gold[cols]), dtype=np.float64)
    index = NearestNeighbors(n_neighbors=2).fit(ref)
    rng = np.random.default_rng(seed)
    sample = ref if len(ref) <= MEDIAN_SAMPLE else ref[rng.choice(len(ref), MEDIAN_SAMPLE, replace=False)]
    own = index.kneighbors(sample)[0][:, 1]  # the nearest other training row
    positive = own[own > 0]
    median = float(np.median(positive)) if len(positive) else 0.0
    if median <= 0:
        return leaked
    nearest = index.kneighbors(gold_x, n_neighbors=1)[0][:, 0]
    return leaked | (nearest < NEAR_DUPLICATE_THRESHOLD * median)


def scored_gold(con: duckdb.DuckDBPyConnection, cfg: EngineConfig) -> tuple[pd.DataFrame, int]:
    """The gold examples a model is scored on, and how many were left out: the labeled gold
    (:func:`data_engine.ship.evaluation.load_gold`) without those with a copy among the training
    examples (:func:`without_leaked_gold`). The one selection of the gate
    (:func:`data_engine.ship.gate.run_gate`) and of the champion's re-score on changed gold
    (:func:`data_engine.ship.scoring.rescore_champion`), so both figures are on the same rows."""
    from data_engine.ship.evaluation import load_gold

    return without_leaked_gold(con, cfg, load_gold(con, cfg))


def without_leaked_gold(con: duckdb.DuckDBPyConnection, cfg: EngineConfig,
                        gold: pd.DataFrame) -> tuple[pd.DataFrame, int]:
    """``gold`` without the examples that have a copy among the training examples, and how many were left out."""
    from data_engine.ship.training import input_schema
    from data_engine.store.dataset import load_examples

    if gold.empty:
        return gold, 0
    train = load_examples(con, cfg.dataset, subset="train")
    train = train[~train["is_discarded"].astype(bool)]  # a discarded example is not trained on
    schema = {c: k for c, k in input_schema(con, cfg).items() if c in gold.columns and c in train.columns}
    leaked = leaked_gold(gold, train, schema, cfg.dataset.modality, seed=cfg.mining.seed)
    if cfg.dataset.image_column and cfg.dataset.image_column in schema and len(train) >= 3:
        leaked = leaked | image_copies_in_training(con, cfg, gold, train, cfg.dataset.image_column)
    return gold[~leaked].reset_index(drop=True), int(leaked.sum())


def image_copies_in_training(con: duckdb.DuckDBPyConnection, cfg: EngineConfig, gold: pd.DataFrame,
                             train: pd.DataFrame, column: str) -> np.ndarray:
    """Which of the ``gold`` rows (N) have a near copy among the ``train`` rows (M, at least 3) by their
    image files (``column``, absolute paths); shape (N,), bool.

    The near-duplicate detector's image rule (:func:`data_engine.mine.detectors.image_duplicates.find_image_copies`)
    over the gold and training rows together: candidates by perceptual hash and among each gold image's
    nearest training images in the image embedding, confirmed by comparing the two images; a gold row
    counts when its confirmed partner is a training row. Training rows are given their nearest other
    training image only for the typical distance the candidates are measured against."""
    from sklearn.neighbors import NearestNeighbors

    from data_engine.mine.detectors.base import Neighbours
    from data_engine.mine.detectors.image_duplicates import ALIGNED_NEIGHBOURS, find_image_copies
    from data_engine.mine.embedders import configured_embedding
    from data_engine.mine.embedders.features import own_embedding
    from data_engine.store.images import perceptual_hashes

    n = len(gold)
    if not n:
        return np.zeros(0, dtype=bool)
    schema = {column: "image"}
    _, (gold_x, train_x) = own_embedding(con, [gold, train], schema, configured_embedding(cfg))
    k = min(ALIGNED_NEIGHBOURS, len(train) - 1)
    index = NearestNeighbors(n_neighbors=k + 1).fit(np.asarray(train_x, dtype=np.float64))
    g_dist, g_idx = index.kneighbors(np.asarray(gold_x, dtype=np.float64), n_neighbors=k)
    t_dist, t_idx = index.kneighbors(np.asarray(train_x, dtype=np.float64))
    neighbours = Neighbours(np.vstack([g_dist, t_dist[:, 1:]]), np.vstack([g_idx, t_idx[:, 1:]]) + n)
    paths = np.concatenate([gold[column].astype(str).to_numpy(dtype=object),
                            train[column].astype(str).to_numpy(dtype=object)])
    copies = find_image_copies(perceptual_hashes(con, paths), list(paths), neighbours,
                               exclude=np.arange(len(paths)) >= n)
    return copies.partner[:n] >= n
