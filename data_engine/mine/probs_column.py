"""Class probabilities as stored in the warehouse: one list column of K floats per row.

Shared by the mining predictions (``predictions``) and the served-model candidates
(``candidate_predictions``), which store the same (N, K) arrays.
"""

from __future__ import annotations

from typing import Any

import duckdb
import numpy as np
import pandas as pd

from data_engine.errors import EngineError


def probs_arrow(probs: np.ndarray) -> Any:
    """A (N, K) array as an Arrow list column (no Python object per row)."""
    import pyarrow as pa

    n, k = probs.shape
    offsets = pa.array(np.arange(0, n * k + 1, k, dtype=np.int32))
    return pa.ListArray.from_arrays(offsets, pa.array(probs.ravel().astype(np.float64)))


def fetch_probs(con: duckdb.DuckDBPyConnection, sql: str, params: list[Any], k: int) -> tuple[np.ndarray, pd.DataFrame]:
    """Run ``sql`` selecting ``row_index``, ``fold`` and ``probs``; return probs (M, K) and the other columns."""
    table = con.sql(sql, params=params).to_arrow_table()
    probs_col = table.column("probs").combine_chunks()
    values = probs_col.flatten().to_numpy(zero_copy_only=False)
    lengths = probs_col.value_lengths().to_numpy(zero_copy_only=False)
    if len(lengths) and not (lengths == k).all():
        raise EngineError(f"stored predictions have {int(lengths.min())}-{int(lengths.max())} classes, expected {k}; "
                          "the class list changed: run `data-engine mine --force`")
    rest = table.drop_columns(["probs"]).to_pandas()
    return values.reshape(len(rest), k), rest
