"""A user's file read and validated like a landed batch, but kept out of the warehouse.

For scoring files a person brings (``data-engine evaluate --file``, ``data-engine predict``): the
same readers (:func:`read_raw`) and the same row validation (:func:`~data_engine.ingest.validate.validate`) as ingestion,
run on a private in-memory DuckDB, so a bad row is named with the same reason it would get in
the quarantine, and the warehouse is only read (for the schema and classes), never written.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path

import duckdb
import pandas as pd

from data_engine.errors import EngineError
from data_engine.ingest.columns import CONTENT_ID, add_content_ids, match_columns, shown_columns
from data_engine.ingest.readers import ROW_COLUMN, UnreadableFile, file_format, read_raw
from data_engine.ingest.validate import GOLD_ID_PREFIX, validate
from data_engine.ingest.unknown_labels import unknown_labels
from data_engine.store.config import DatasetConfig
from data_engine.store.values import normalized_sql
from data_engine.store.warehouse import quote_ident


@dataclass(frozen=True)
class CheckedFile:
    """The good rows of a file and the rows set aside.

    ``frame``: one row per good data row, in file order: ``row_number`` (1-based, the header is not a
    row), ``example_id``, ``feature_hash`` (uint64, as ingest computes it), the input columns (numeric float64 with NaN, others object with None) and
    ``label`` when the file has the label column. ``rejected``: ``[(row_number, reason), ...]``.
    """

    path: Path
    frame: pd.DataFrame
    rows_in: int
    has_label: bool
    rejected: list[tuple[int, str]] = field(default_factory=list)
    # {old name: rows} read under the class's current name (a file written before `classes rename`).
    renamed_labels: dict[str, int] = field(default_factory=dict)
    # {label: rows} rejected because the label is not one of the classes (a row each in ``rejected``).
    unknown_labels: dict[str, int] = field(default_factory=dict)


def read_checked(path: Path, ds: DatasetConfig, schema: dict[str, str], classes: list[str], *,
                 need_label: bool, renamed: Mapping[str, str] | None = None) -> CheckedFile:
    """Read ``path`` (CSV/Parquet/JSONL) with the dataset's id, input columns ``schema``
    (``{column: 'numeric' | 'categorical' | 'text'}``) and, if ``need_label``, its label column.

    Raises :class:`EngineError` naming the file when it cannot be read or lacks a required column,
    or when no row is usable; bad rows are returned in ``rejected``, never silently dropped.
    ``renamed``: ``{old name: current name}`` of classes renamed since (``classes rename``): a label
    with an old name is read under the current one and counted in ``renamed_labels``.
    """
    renamed = {k: v for k, v in (renamed or {}).items() if v in classes and k not in classes}
    path = Path(path)
    if not path.is_file():
        raise EngineError(f"{path}: no such file")
    con = duckdb.connect(":memory:")
    try:
        # The validation checks labels against this table, as it does in the warehouse.
        con.execute("CREATE TABLE dataset_classes (class_label VARCHAR, position INTEGER)")
        if classes:  # a task without classes (numbers) has none to check against
            con.executemany("INSERT INTO dataset_classes VALUES (?, ?)", [[c, i] for i, c in enumerate(classes)])
        con.execute("SET preserve_insertion_order = true")  # row numbers come from the read order
        try:
            raw = read_raw(con, path, file_format(path), ds)
        except UnreadableFile as exc:
            raise EngineError(f"{path}: {exc}") from None
        # Columns match as in ingest (`Label` is read as `label`): a file ingest takes is scored too.
        keys = {c.strip().lower() for c in raw.columns}
        required = ([ds.id_column] if ds.id_column else []) + [*schema] + ([ds.label_column] if need_label else [])
        missing = [c for c in required if c not in raw.columns and c.lower() not in keys]
        if missing:
            raise EngineError(f"{path}: missing required column(s) {', '.join(repr(c) for c in missing)} "
                              f"(the file has: {shown_columns(raw.columns)})")
        try:
            match = match_columns(con, ds, raw)
        except UnreadableFile as exc:
            raise EngineError(f"{path}: {exc}") from None
        columns = tuple(match.renamed.get(c, c) for c in raw.columns)
        has_label = ds.label_column in columns
        types = {**schema, ds.label_column: "label"}
        if ds.id_column is None:  # ids from each row's content, as ingest derives them
            add_content_ids(con, ds, types)
        moved = _read_renamed(con, ds.label_column, renamed) if has_label and renamed else {}
        # The vector check reads the stored dimension from `examples`: here, none is stored yet.
        con.execute("CREATE TABLE examples AS SELECT * FROM raw_rows LIMIT 0")
        validate(con, ds, ds.id_column or CONTENT_ID, types, columns, has_label, bool(classes), need_label)
        # The feature hash as ingest computes it (validate's ``__fh``): the key of stored embeddings.
        cols = ", ".join(["__row AS row_number", "example_id", "__fh AS feature_hash", *(quote_ident(c) for c in schema)]
                         + ([f"{quote_ident(ds.label_column)} AS label"] if has_label else []))
        frame = con.execute(f"SELECT {cols} FROM good ORDER BY {ROW_COLUMN}").fetchdf()
        if need_label:  # validation puts rows that must carry a label in the gold id space
            frame["example_id"] = frame["example_id"].str.removeprefix(GOLD_ID_PREFIX)
        unknown = unknown_labels(con, ds) if has_label and classes else {}
        rejected = con.execute(
            "SELECT __row, reason FROM rejected UNION ALL "
            "SELECT __row, 'unreadable row: ' || reason FROM raw_rejects ORDER BY 1"
        ).fetchall()
    finally:
        con.close()
    for col, kind in schema.items():
        if kind != "numeric":
            frame[col] = frame[col].astype(object).where(frame[col].notna(), None)
    if frame.empty:
        first = f"; row {rejected[0][0]}: {rejected[0][1]}" if rejected else ""
        raise EngineError(f"{path}: no usable rows ({len(rejected)} rejected{first})")
    return CheckedFile(path, frame, raw.rows + raw.rejects, has_label, [(int(r), str(why)) for r, why in rejected],
                       renamed_labels=moved, unknown_labels=unknown)


def _read_renamed(con: duckdb.DuckDBPyConnection, label_column: str, renamed: Mapping[str, str]) -> dict[str, int]:
    """Make ``raw_rows`` read each label that is an old class name (``renamed``: ``{old: current}``,
    compared normalised) as the current name, in this private copy only; return ``{old: (current, rows)}``."""
    is_view = con.execute(
        "SELECT count(*) FROM duckdb_views() WHERE temporary AND view_name = 'raw_rows'").fetchone()[0]
    con.execute(f"ALTER {'VIEW' if is_view else 'TABLE'} raw_rows RENAME TO raw_before_renames")
    con.execute("CREATE TEMP TABLE class_renames (old VARCHAR, new VARCHAR)")
    con.executemany("INSERT INTO class_renames VALUES (?, ?)", [[k, v] for k, v in renamed.items()])
    label = quote_ident(label_column)
    norm = normalized_sql(label)
    con.execute(f"CREATE TEMP VIEW raw_rows AS SELECT * REPLACE (coalesce("
                f"(SELECT new FROM class_renames WHERE old = {norm}), {label}) AS {label}) FROM raw_before_renames")
    rows = con.execute(f"SELECT {norm}, count(*) FROM raw_before_renames WHERE {norm} IN (SELECT old FROM class_renames) "
                       "GROUP BY 1 ORDER BY 2 DESC, 1").fetchall()
    return {str(k): (renamed[str(k)], int(n)) for k, n in rows}
