"""The space selection strategies measure distances in: a pretrained embedding when the home has
an embedder (:mod:`data_engine.mine.embedders`, added by the representations work), else the
model's own dense feature space (:func:`data_engine.mine.models.feature_space`)."""

from __future__ import annotations

from collections.abc import Mapping

import numpy as np
import pandas as pd

from data_engine.mine.models import Schema, feature_space


def selection_embedding(frame: pd.DataFrame, schema: Mapping[str, str], modality: str,
                        embedding: np.ndarray | None = None) -> np.ndarray:
    """Float64 array of shape (N, D) for the N rows of ``frame`` (labeled and candidates together).

    ``embedding`` (shape (N, D)), when given, is a pretrained embedder's output and is returned as
    it is; otherwise the feature space is fitted on ``frame`` (unsupervised: no labels are read).
    The text space's truncated SVD needs more terms than dimensions; with fewer it keeps what
    there is."""
    if embedding is not None:
        if len(embedding) != len(frame):
            raise ValueError(f"embedding has {len(embedding)} rows, expected {len(frame)}")
        return np.asarray(embedding, dtype=np.float64)
    space = feature_space(Schema.from_mapping(schema), modality)
    for name, step, _ in space.transformers:
        if name.startswith("text"):
            # A tiny vocabulary cannot fill TEXT_SPACE_DIMENSIONS components.
            step.set_params(truncatedsvd__n_components=max(1, min(step[1].n_components, len(frame) - 1)))
    return np.asarray(space.fit_transform(frame), dtype=np.float64)
