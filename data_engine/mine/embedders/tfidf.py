"""``tfidf``: the engine's classical feature space, fitted on the frame it embeds.

Numbers imputed (with missing indicators) and standardised (image pixels keep their common scale),
categories one-hot encoded, each text column TF-IDF (word and character n-grams) reduced by
truncated SVD to :data:`TEXT_DIMENSIONS` and L2-normalised; the whole reduced by PCA to at most
:data:`MAX_DIMENSIONS`. Fitted once, :meth:`TfidfEmbedder.transform` embeds later rows the same way.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from typing import TYPE_CHECKING

if TYPE_CHECKING:
    import numpy as np
    import pandas as pd

from data_engine.mine.embedders.base import Embedder, check_columns, register_embedder

# Dense feature spaces are reduced to this many principal components (distance computations cost
# grows with dimension; more components add little to "is this example unusual / a copy").
MAX_DIMENSIONS = 32
# Text is embedded by TF-IDF and truncated SVD to this many dimensions, then L2-normalised.
TEXT_DIMENSIONS = 64
# Larger frames fit the embedder on a seeded sample of this many rows (as the fold models'
# data_engine.tasks.oof.MAX_FIT_ROWS) and embed all rows in blocks of EMBED_BLOCK_ROWS.
FIT_ROWS = 200_000
EMBED_BLOCK_ROWS = 100_000


@register_embedder
class TfidfEmbedder(Embedder):
    """Classical features: scaled numbers, one-hot categories, TF-IDF + SVD of text, then PCA.

    Options: ``schema`` ``{column: 'numeric' | 'categorical' | 'text'}`` (default: numeric dtype
    columns numeric, others text), ``modality`` (pixels of "image" are not standardised), ``seed``.
    """

    name = "tfidf"
    modalities = ("text", "tabular", "image")
    version = "1"
    per_row = False

    def __init__(self, *, schema: Mapping[str, str] | None = None, modality: str = "tabular", seed: int = 0) -> None:
        self.schema = dict(schema) if schema is not None else None
        self.modality = modality
        self.seed = seed

    def describe(self, schema: Mapping[str, str], modality: str) -> str:
        """"tfidf" when a text column is embedded; without one, the features actually used (the
        numbers or pixels, the one-hot categories) and the PCA: no TF-IDF is computed."""
        kinds = set(schema.values())
        if "text" in kinds:
            return self.name
        parts = (["pixel values" if modality == "image" else "standardised numbers"] if "numeric" in kinds else []) + (
            ["one-hot categories"] if "categorical" in kinds else [])
        if not parts:
            return self.name
        return f"{' and '.join(parts)}, reduced by PCA to at most {MAX_DIMENSIONS} dimensions; no text column, so no TF-IDF"

    def embed(self, frame: pd.DataFrame, columns: Sequence[str]) -> np.ndarray:
        """Fit on ``frame`` (N rows) and return its embedding, float32 of shape (N, d), d <= 64 per text column."""
        return self.fit_transform(frame, columns)

    def fit_transform(self, frame: pd.DataFrame, columns: Sequence[str] | None = None) -> np.ndarray:
        """Fit on ``frame`` and embed it, float32 of shape (N, d).

        Above :data:`FIT_ROWS` rows the embedder is fitted on a seeded random sample of that many
        rows (``seed``) and every row is then embedded :data:`EMBED_BLOCK_ROWS` at a time, so that the
        dense one-hot and text features exist for one block, not the whole table (at a million
        generated rows: a dense float matrix of every one-hot column for every row). Up to ``FIT_ROWS``
        rows nothing changes: fitted and embedded at once, as before.
        """
        import numpy as np

        n = len(frame)
        if n <= FIT_ROWS:
            return self._fit_transform(frame, columns)
        rows = np.sort(np.random.default_rng(self.seed).choice(n, FIT_ROWS, replace=False))
        first = self._fit_transform(frame.iloc[rows], columns)
        out = np.empty((n, first.shape[1]), dtype=np.float32)
        del first
        for lo in range(0, n, EMBED_BLOCK_ROWS):
            out[lo:lo + EMBED_BLOCK_ROWS] = self.transform(frame.iloc[lo:lo + EMBED_BLOCK_ROWS])
        return out

    def _fit_transform(self, frame: pd.DataFrame, columns: Sequence[str] | None) -> np.ndarray:
        """Fit on all of ``frame`` and embed it, float32 of shape (N, d)."""
        import numpy as np
        import pandas as pd
        from sklearn.compose import ColumnTransformer
        from sklearn.decomposition import PCA
        from sklearn.pipeline import make_pipeline
        from sklearn.preprocessing import Normalizer

        from data_engine.mine.components import CappedSVD
        from data_engine.mine.features import numeric_block, one_hot, text_features

        from data_engine.mine.embedders.image import image_block

        cols = check_columns(frame, columns if columns is not None else list(self.schema or frame.columns), self.name)
        schema = self.schema or {c: "numeric" if pd.api.types.is_numeric_dtype(frame[c]) else "text" for c in cols}
        numeric = [c for c in cols if schema[c] == "numeric"]
        categorical = [c for c in cols if schema[c] == "categorical"]
        n = len(frame)
        parts: list[tuple[str, Any, Any]] = []
        if numeric:
            parts.append(("num", numeric_block(scale=self.modality != "image"), numeric))
        if categorical:
            parts.append(("cat", one_hot(sparse=True), categorical))
        for i, col in enumerate(c for c in cols if schema[c] == "text"):
            # Few distinct texts may have fewer n-grams than dimensions: CappedSVD caps by the fitted vocabulary.
            parts.append((f"text{i}", make_pipeline(text_features(char=True),
                                                   CappedSVD(TEXT_DIMENSIONS, random_state=self.seed), Normalizer()), col))
        for i, col in enumerate(c for c in cols if schema[c] == "image"):
            parts.append((f"image{i}", image_block(scale=True), [col]))
        self.columns_ = ColumnTransformer(parts, sparse_threshold=0.0)
        X = np.asarray(self.columns_.fit_transform(frame), dtype=np.float32)
        self.pca_ = None
        if X.shape[1] > MAX_DIMENSIONS and n > MAX_DIMENSIONS:
            self.pca_ = PCA(MAX_DIMENSIONS, svd_solver="randomized", random_state=self.seed)
            X = self.pca_.fit_transform(X).astype(np.float32)
        return X

    def transform(self, frame: pd.DataFrame) -> np.ndarray:
        """Embed new rows the way the fitted rows were, float32 of shape (M, d)."""
        import numpy as np

        X = np.asarray(self.columns_.transform(frame), dtype=np.float32)
        return X if self.pca_ is None else self.pca_.transform(X).astype(np.float32)
