"""``column``: vectors the user supplies (their own model's embeddings), read from the input columns.

Either one column of kind ``vector`` (a Parquet list column or a JSONL array, declared with
``[dataset] column_types = {emb = "vector"}``; ingest checks every row is a list of finite numbers
of one length) or one numeric column per dimension.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    import numpy as np
    import pandas as pd

from data_engine.errors import EngineError
from data_engine.mine.embedders.base import Embedder, as_matrix, check_columns, register_embedder


@register_embedder
class ColumnEmbedder(Embedder):
    """The user's vectors as they are: a ``vector`` column, or the numeric columns side by side."""

    name = "column"
    modalities = ("text", "tabular", "image")
    version = "1"

    def input_columns(self, schema: Mapping[str, str]) -> list[str]:
        """The ``vector`` columns if any, else the numeric ones."""
        vectors = [c for c, k in schema.items() if k == "vector"]
        return vectors or [c for c, k in schema.items() if k == "numeric"]

    def embed(self, frame: pd.DataFrame, columns: Sequence[str]) -> np.ndarray:
        """Float32 of shape (N, D): the rows' vectors (list cells) or numeric columns.

        Raises EngineError naming the column and row of a missing, ragged or non-numeric vector.
        """
        import numpy as np

        cols = check_columns(frame, columns, self.name)
        if len(frame) and any(_is_sequence(frame[c].iloc[0]) for c in cols):
            parts = [_stack(frame[c], c) for c in cols]
            return as_matrix(np.hstack(parts) if parts else parts, len(frame), self.name)
        try:
            X = frame[cols].apply(lambda s: s.astype(float)).to_numpy(dtype=np.float32)
        except (TypeError, ValueError):
            raise EngineError(f"embedding 'column': columns {', '.join(cols)} must be numeric or hold lists "
                              "of numbers (declare a list column with column_types = {name = \"vector\"})") from None
        return as_matrix(X, len(frame), self.name)


def _is_sequence(value: Any) -> bool:
    import numpy as np

    return isinstance(value, (list, tuple, np.ndarray))


def _stack(values: pd.Series, column: str) -> np.ndarray:
    """One list cell per row -> (N, D) float32; raise EngineError on a missing or ragged row."""
    import numpy as np

    cells = values.to_numpy(dtype=object)
    lengths = np.fromiter((len(v) if _is_sequence(v) else -1 for v in cells), dtype=np.int64, count=len(cells))
    bad = np.flatnonzero(lengths != lengths[0]) if len(cells) else np.array([], int)
    if len(cells) and (lengths[0] < 1 or len(bad)):
        row = int(bad[0]) if len(bad) else 0
        raise EngineError(f"embedding 'column': column {column!r}, row {row + 1}: expected a list of "
                          f"{lengths[0]} numbers, got {_describe(cells[row])}")
    try:
        return np.stack([np.asarray(v, dtype=np.float32) for v in cells]) if len(cells) else np.zeros((0, 0), np.float32)
    except (TypeError, ValueError):
        raise EngineError(f"embedding 'column': column {column!r} holds a list with a non-number") from None


def _describe(value: Any) -> str:
    return f"{len(value)} numbers" if _is_sequence(value) else repr(value)[:40]
