"""The labels of a batch quarantined as not one of the classes, each with its row count: what ingest
and ``evaluate --file`` name, with the fix (its own module: it asks the task how a cell holds several
classes, and the class store sits below the task plug-ins)."""

from __future__ import annotations

import duckdb

from data_engine.store.classes import CONTROL_CHARACTER, NOT_A_CLASS
from data_engine.store.config import DatasetConfig
from data_engine.store.values import normalized_sql
from data_engine.store.warehouse import json_path
from data_engine.tasks import task_for


def unknown_labels(con: duckdb.DuckDBPyConnection, ds: DatasetConfig) -> dict[str, int]:
    """``{label: rows}`` of the batch being validated whose label (normalised) was quarantined as not
    one of the classes, most rows first; for a cell of several tags (multi-label, entity types), each
    tag that is not a class, alone. Read from the temp table ``rejected`` (the bad rows only,
    each with the row as read in ``raw``: see data_engine.ingest.validate), so it costs nothing
    for a batch without such rows. A label holding a control character is left out: ``classes add``
    refuses such a name (:data:`~data_engine.store.classes.CONTROL_CHARACTER`), so it is not advised."""
    cell = f"json_extract_string(raw, {json_path(ds.label_column)})"
    tags = task_for(ds).cell_classes_sql(cell)
    if tags is None:
        rows = con.execute(
            f"SELECT {normalized_sql(cell)} AS label, count(*) AS n FROM rejected WHERE contains(reason, ?) "
            "AND NOT regexp_matches(label, ?) GROUP BY label ORDER BY n DESC, label",
            [NOT_A_CLASS, CONTROL_CHARACTER]).fetchall()
    else:  # a cell of several tags: each tag that is not a class, alone, with the rows that carry it
        rows = con.execute(
            f"SELECT t AS label, count(DISTINCT __row) AS n FROM (SELECT __row, unnest({tags}) AS t FROM rejected "
            "WHERE contains(reason, ?)) WHERE t <> '' AND NOT regexp_matches(t, ?) "
            "AND t NOT IN (SELECT class_label FROM dataset_classes) GROUP BY label ORDER BY n DESC, label",
            [NOT_A_CLASS, CONTROL_CHARACTER]).fetchall()
    return {str(k): int(n) for k, n in rows if k is not None}
