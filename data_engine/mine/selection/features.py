"""The space selection strategies measure distances in: a pretrained embedding when the home has
an embedder (:mod:`data_engine.mine.embedders`, added by the representations work), else the
model's own dense feature space (:func:`data_engine.mine.models.feature_space`).

Large tables get the space as a :class:`RowSpace` (:func:`slice_space`): fitted on a seeded sample
of :data:`SPACE_FIT_ROWS` rows and computed :data:`SPACE_BLOCK_ROWS` rows at a time when read, so
that the dense float64 matrix of every row (at a million generated rows, +1.6 GiB in the mining
process: docs/mining.md) never exists at once.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Mapping

import numpy as np
import pandas as pd

from data_engine.mine.models import Schema, feature_space

# Above this many rows the fitted space is fitted on a seeded sample of this many rows: its scalers,
# medians, one-hot levels and text components are statistics of the columns, which 100,000 rows pin
# down (a level seen in fewer than MIN_CATEGORY_COUNT sample rows joins the infrequent column, as it
# would in a smaller table). The space only places rows for k-means (fitted on 50,000 rows,
# slices.FIT_ROWS); every labeled row is still embedded, assigned and tested, so the slice test's
# power is unchanged. Up to this size nothing changes (fitted on all rows at once, as before).
SPACE_FIT_ROWS = 100_000
SPACE_BLOCK_ROWS = 50_000


class RowSpace:
    """The N rows of ``frame`` in a fitted space, float64 of shape (N, D), computed when read:
    :meth:`take` some rows, or iterate :meth:`blocks` of :data:`SPACE_BLOCK_ROWS` rows in order.
    ``embed`` maps a frame of M rows to its (M, D) array."""

    def __init__(self, frame: pd.DataFrame, embed: Callable[[pd.DataFrame], np.ndarray]) -> None:
        self.frame = frame
        self.embed = embed

    def __len__(self) -> int:
        return len(self.frame)

    def take(self, rows: np.ndarray) -> np.ndarray:
        """(len(rows), D) float64: the rows numbered ``rows``."""
        return np.asarray(self.embed(self.frame.iloc[rows]), dtype=np.float64)

    def blocks(self) -> Iterator[np.ndarray]:
        """(at most SPACE_BLOCK_ROWS, D) float64 blocks of every row, in order."""
        for lo in range(0, len(self.frame), SPACE_BLOCK_ROWS):
            yield np.asarray(self.embed(self.frame.iloc[lo:lo + SPACE_BLOCK_ROWS]), dtype=np.float64)


def _space(schema: Mapping[str, str], modality: str) -> object:
    """An unfitted feature space (its text components capped at fit time by the rows and the fitted
    vocabulary: :class:`data_engine.mine.components.CappedSVD`)."""
    return feature_space(Schema.from_mapping(schema), modality)


def selection_embedding(frame: pd.DataFrame, schema: Mapping[str, str], modality: str,
                        embedding: np.ndarray | None = None) -> np.ndarray:
    """Float64 array of shape (N, D) for the N rows of ``frame`` (labeled and candidates together).

    ``embedding`` (shape (N, D)), when given, is a pretrained embedder's output and is returned as
    it is; otherwise the feature space is fitted on ``frame`` (unsupervised: no labels are read).
    A text column's components are capped by the rows and its fitted vocabulary (fewer terms than
    dimensions: it keeps what there is)."""
    if embedding is not None:
        if len(embedding) != len(frame):
            raise ValueError(f"embedding has {len(embedding)} rows, expected {len(frame)}")
        return np.asarray(embedding, dtype=np.float64)
    return np.asarray(_space(schema, modality).fit_transform(frame), dtype=np.float64)


def slice_space(labeled: pd.DataFrame, others: pd.DataFrame, schema: Mapping[str, str], modality: str,
                stored: str | None = None, seed: int = 0) -> tuple[np.ndarray | RowSpace, np.ndarray]:
    """The space of ``labeled`` (N rows) and ``others`` (M rows) together, as
    :func:`selection_embedding` gives it: ``(labeled's (N, D), others' (M, D))``, float64.

    ``stored`` names the column of per-row vectors both frames carry (then they are the space);
    else the feature space of ``schema`` is fitted (unsupervised). Up to :data:`SPACE_FIT_ROWS`
    rows in all, the arrays are :func:`selection_embedding`'s exactly. Above it, the labeled rows
    come as a :class:`RowSpace` computed block by block, the feature space fitted on a sample of
    :data:`SPACE_FIT_ROWS` rows of both frames drawn with ``seed`` (``others`` is small: the
    caller's sample of the unlabeled pool)."""
    cols = list(schema)
    n, m = len(labeled), len(others)
    if n + m <= SPACE_FIT_ROWS:
        both = pd.concat([labeled[cols], others[cols]], ignore_index=True)
        vectors = np.stack([*labeled[stored].to_numpy(), *others[stored].to_numpy()]) if stored else None
        space = selection_embedding(both, schema, modality, vectors)
        return space[:n], space[n:]
    if stored:
        def embed(frame: pd.DataFrame) -> np.ndarray:
            return np.stack(frame[stored].to_numpy()).astype(np.float64)
        return RowSpace(labeled, embed), embed(others) if m else np.empty((0, 0))
    pick = np.sort(np.random.default_rng(seed).choice(n + m, SPACE_FIT_ROWS, replace=False))
    sample = pd.concat([labeled[cols].iloc[pick[pick < n]], others[cols].iloc[pick[pick >= n] - n]], ignore_index=True)
    fitted = _space(schema, modality).fit(sample)
    del sample

    def transform(frame: pd.DataFrame) -> np.ndarray:
        return np.asarray(fitted.transform(frame[cols]), dtype=np.float64)
    return RowSpace(labeled, transform), transform(others) if m else np.empty((0, 0))
