"""Exporting the training data with the labels in force: "my data with the corrected labels".

One row per current training example (gold examples are never exported: they are the yardstick,
not training data), in the order the files landed. Columns:

* the dataset's own columns under the config's names: the id column (``example_id`` when the
  dataset has none: the engine's content ids), the input columns and the label column;
* ``label_source``: what set the label in force (``ingest``, ``review``, ``consensus``, ``rule``,
  ``propagated``; empty for an unlabeled example);
* ``label_event_id``: the ledger event of that label, and ``label_snapshot``: the ledger's highest
  event id when the export ran (the same in every row; a model trained on the same snapshot saw
  the same labels);
* with ``include_discarded``: ``discarded`` (true for an example a reviewer or a rule discarded; its
  label is then empty). Without it, discarded examples are left out.

Unlabeled examples are exported with an empty label: the export is the whole training set, the
file a person would have written had they fixed the labels by hand.

Values come back typed as they were read: numbers as numbers (a number column whose every value is
whole is written as integers, so ``3`` does not come back as ``3.0``), labels and ids as integers
when every one of them is a plain integer (the digits' ``7``, a passenger id), image columns as the
reference the landed file gave (not the engine's stored copy). The writing is DuckDB's ``COPY``.
"""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path
from typing import Literal

import duckdb

from data_engine.errors import EngineError
from data_engine.store.config import DatasetConfig
from data_engine.store.dataset import label_snapshot
from data_engine.store.schema import stored_columns
from data_engine.store.warehouse import quote_ident

ExportFormat = Literal["csv", "parquet", "jsonl"]
FORMATS: tuple[ExportFormat, ...] = ("csv", "parquet", "jsonl")
_COPY_OPTIONS = {"csv": "FORMAT csv, HEADER", "parquet": "FORMAT parquet", "jsonl": "FORMAT json"}
# The id column's name when the dataset has none (ids derived from content).
CONTENT_ID_COLUMN = "example_id"
# The engine's columns beside the dataset's, in this order.
META_COLUMNS = ("label_source", "label_event_id", "label_snapshot", "discarded")
# Integers a double holds exactly (2**53): beyond it a whole-valued column stays a double.
_EXACT_INTEGER = 2 ** 53


@dataclass(frozen=True)
class ExportResult:
    """What an export wrote."""

    path: Path
    format: str
    rows: int
    labeled: int
    unlabeled: int
    discarded: int
    label_snapshot: int
    sources: dict[str, int] = field(default_factory=dict)

    def summary(self) -> str:
        """One line for a person."""
        by_source = ", ".join(f"{k}={v}" for k, v in sorted(self.sources.items())) or "none"
        discarded = f", {self.discarded} discarded (marked)" if self.discarded else ""
        return (f"exported {self.rows} example(s) to {self.path} ({self.format}): {self.labeled} labeled "
                f"(label source: {by_source}), {self.unlabeled} unlabeled{discarded}; "
                f"label snapshot {self.label_snapshot}")


def format_for(path: Path | None, fmt: str | None) -> ExportFormat:
    """The format named by ``fmt``, else by ``path``'s extension (``.csv``, ``.parquet``, ``.jsonl``),
    else csv. Raise :class:`EngineError` for an unknown one or a contradiction."""
    by_suffix = {".csv": "csv", ".parquet": "parquet", ".pq": "parquet", ".jsonl": "jsonl", ".ndjson": "jsonl"}
    guessed = by_suffix.get(path.suffix.lower()) if path is not None else None
    if fmt is None:
        return guessed or "csv"
    if fmt not in FORMATS:
        raise EngineError(f"unknown export format {fmt!r}; use one of {', '.join(FORMATS)}")
    if guessed is not None and guessed != fmt:
        raise EngineError(f"--format {fmt} but {path} ends in {path.suffix}; make them agree")
    return fmt  # type: ignore[return-value]


def export_query(con: duckdb.DuckDBPyConnection, ds: DatasetConfig, *,
                 include_discarded: bool = False) -> tuple[str, list[object]]:
    """The SELECT (and its parameters) of the exported rows; see the module docstring for its columns.

    Raise :class:`EngineError` when nothing has been ingested yet, or when a dataset column is named
    like one of the engine's columns (:data:`META_COLUMNS`).
    """
    stored = stored_columns(con)
    if not stored:
        raise EngineError("nothing to export: no file has been ingested yet (`data-engine ingest FILE`)")
    id_name = ds.id_column or CONTENT_ID_COLUMN
    clash = sorted({id_name, *ds.input_columns, ds.label_column} & set(META_COLUMNS))
    if clash:
        raise EngineError(f"dataset column {clash[0]!r} has the name of a column the export adds "
                          f"({', '.join(META_COLUMNS)}); rename it in the file and [dataset]")
    scope = "NOT ce.is_gold" + ("" if include_discarded else " AND NOT coalesce(cl.is_discarded, false)")
    base = ("FROM current_examples ce LEFT JOIN current_labels cl USING (example_id) "
            "JOIN batches b USING (batch_id)")
    ids = "ce.example_id"
    label = "cl.label"
    integer_ids = _all_integers(con, f"SELECT {ids} AS v {base} WHERE {scope}")
    select = [f"{ids}::BIGINT AS {quote_ident(id_name)}" if integer_ids else f"{ids} AS {quote_ident(id_name)}"]
    for col in ds.input_columns:
        if col not in stored:
            continue
        q = f"ce.{quote_ident(col)}"
        kind = stored[col]
        if kind == "numeric" and _whole(con, base, scope, q):
            select.append(f"{q}::BIGINT AS {quote_ident(col)}")
        elif kind == "image":
            # What the landed file said; the stored copy's path if the reference was not recorded.
            select.append(f"coalesce(src.source, {q}) AS {quote_ident(col)}")
        else:
            select.append(f"{q} AS {quote_ident(col)}")
    integer_classes = _all_integers(con, "SELECT class_label AS v FROM dataset_classes")
    select.append(f"{label}::BIGINT AS {quote_ident(ds.label_column)}" if integer_classes else
                  f"{label} AS {quote_ident(ds.label_column)}")
    select += ["cl.source AS label_source", "cl.event_id AS label_event_id", "?::BIGINT AS label_snapshot"]
    if include_discarded:
        select.append("coalesce(cl.is_discarded, false) AS discarded")
    join_images = ("LEFT JOIN image_sources src ON src.batch_id = ce.batch_id AND src.row_number = ce.row_number"
                   if any(stored.get(c) == "image" for c in ds.input_columns) else "")
    sql = (f"SELECT {', '.join(select)} {base} {join_images} WHERE {scope} "
           "ORDER BY b.received_at, ce.batch_id, ce.row_number, ce.example_id")
    return sql, [label_snapshot(con)]


def export_training_data(con: duckdb.DuckDBPyConnection, ds: DatasetConfig, out: Path, fmt: ExportFormat, *,
                         include_discarded: bool = False) -> ExportResult:
    """Write the training data with the labels in force to ``out`` (replaced if it exists) in ``fmt``.

    Raise :class:`EngineError` for an unknown format, an unwritable path, or nothing to export.
    """
    if fmt not in FORMATS:
        raise EngineError(f"unknown export format {fmt!r}; use one of {', '.join(FORMATS)}")
    out = Path(out)
    if out.is_dir():
        raise EngineError(f"{out} is a folder; give a file name (e.g. {out / ('export.' + fmt)})")
    if not out.parent.is_dir():
        raise EngineError(f"no such folder: {out.parent}")
    sql, params = export_query(con, ds, include_discarded=include_discarded)
    # Written next to the target and moved into place: a failed export never leaves half a file.
    tmp = out.with_name(f".{out.name}.tmp")
    try:
        con.execute(f"COPY ({sql}) TO ? ({_COPY_OPTIONS[fmt]})", [*params, str(tmp)])
        tmp.replace(out)
    except (duckdb.IOException, OSError) as exc:
        tmp.unlink(missing_ok=True)
        raise EngineError(f"cannot write {out}: {exc}") from None
    counts = con.execute(
        f"SELECT label_source, {'discarded' if include_discarded else 'false'}, count(*) FROM ({sql}) GROUP BY ALL",
        params).fetchall()
    sources: Counter[str] = Counter()
    labeled = unlabeled = discarded = 0
    for source, is_discarded, n in counts:
        if is_discarded:
            discarded += n
        elif source is None:
            unlabeled += n
        else:
            labeled += n
            sources[source] += n
    return ExportResult(out, fmt, labeled + unlabeled + discarded, labeled, unlabeled, discarded,
                        int(params[0]), dict(sources))


def _whole(con: duckdb.DuckDBPyConnection, base: str, scope: str, expr: str) -> bool:
    """True when every exported value of the number column ``expr`` is a whole number a double holds exactly."""
    return bool(con.execute(
        f"SELECT coalesce(bool_and({expr} = trunc({expr}) AND abs({expr}) < {_EXACT_INTEGER}), false) "
        f"{base} WHERE {scope}").fetchone()[0])


def _all_integers(con: duckdb.DuckDBPyConnection, values_sql: str) -> bool:
    """True when the text values ``v`` of ``values_sql`` are all plain integers in the engine's spelling
    (``7``, ``-3``; not ``007``, which would lose its zeros) and there is at least one."""
    plain, n = con.execute(
        f"SELECT coalesce(bool_and(TRY_CAST(v AS BIGINT)::VARCHAR = v), false), count(v) FROM ({values_sql})"
    ).fetchone()
    return bool(plain and n)
