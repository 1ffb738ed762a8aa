"""Reading the dataset back out of the warehouse for models: features and the labels in force."""

from __future__ import annotations

from typing import Literal

import duckdb
import pandas as pd

from data_engine.store.config import DatasetConfig
from data_engine.store.images import absolute_image_paths, warehouse_home
from data_engine.store.schema import feature_types, load_classes, stored_columns
from data_engine.store.warehouse import quote_ident

Subset = Literal["train", "gold", "unlabeled", "all"]

__all__ = ["feature_types", "label_snapshot", "load_classes", "load_examples"]

_WHERE = {
    # Labeled, not discarded, not gold: what models learn from.
    "train": "NOT ce.is_gold AND cl.label IS NOT NULL",
    # Trusted evaluation data with a label.
    "gold": "ce.is_gold AND cl.label IS NOT NULL",
    # No label in force, not discarded, not gold: the stream the model scores.
    "unlabeled": "NOT ce.is_gold AND cl.example_id IS NULL",
    "all": "true",
}


def load_examples(con: duckdb.DuckDBPyConnection, ds: DatasetConfig, *, subset: Subset = "train") -> pd.DataFrame:
    """The current version of each example in ``subset``, ordered by ``example_id``.

    Columns: ``example_id``, ``version``, ``batch_id``, ``feature_hash``, ``is_gold``, the input
    columns (numeric as float64 with NaN for missing, categorical and text as object with None,
    image files as absolute paths),
    ``label`` (the label in force, None if unlabeled) and ``is_discarded``.
    """
    if subset not in _WHERE:
        raise ValueError(f"subset must be one of {', '.join(_WHERE)}")
    stored = stored_columns(con)
    inputs = [c for c in ds.input_columns if c in stored]
    cols = ", ".join(f"ce.{quote_ident(c)}" for c in inputs)
    cols = (cols + ", ") if cols else ""
    df = con.execute(
        "SELECT ce.example_id, ce.version, ce.batch_id, ce.feature_hash, ce.is_gold, "
        f"{cols}cl.label AS label, coalesce(cl.is_discarded, false) AS is_discarded "
        "FROM current_examples ce LEFT JOIN current_labels cl USING (example_id) "
        f"WHERE {_WHERE[subset]} ORDER BY ce.example_id"
    ).fetchdf()
    for c in inputs:
        if stored[c] == "vector":  # lists of floats: objects as DuckDB gives them
            df[c] = df[c].astype(object).where(df[c].notna(), None)
        elif stored[c] != "numeric":
            # Through a categorical, whose objects are taken from its categories: one Python string per
            # distinct value rather than one per row, the same values (the generated set at a million
            # rows: 497 -> 334 MiB held after the load).
            df[c] = df[c].astype("category").astype(object).where(df[c].notna(), None)
        if stored[c] == "image":
            # Models read the image file itself: the stored home-relative path made absolute.
            df[c] = absolute_image_paths(df[c], warehouse_home(con))
    return df


def label_snapshot(con: duckdb.DuckDBPyConnection) -> int:
    """The highest ``event_id`` in the label ledger (0 when empty): what a model or run has seen."""
    return int(con.execute("SELECT coalesce(max(event_id), 0) FROM label_events").fetchone()[0])
