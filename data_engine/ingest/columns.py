"""Matching a file's columns to the configured ones, before any row is validated.

A column that differs from a configured one only by case or surrounding spaces (``Label`` for
``label``) is read as that column and the batch says so; two file columns that could both be it,
or a header naming a column twice, are an error naming them. Every other file column is ignored,
and listed by the name the file uses. Renames happen on the scratch relation ``raw_rows`` (a
catalog change; no row is copied).
"""

from __future__ import annotations

from dataclasses import dataclass

import duckdb

from data_engine.ingest.readers import RawTable, UnreadableFile
from data_engine.ingest.redact import preview
from data_engine.store.config import DatasetConfig
from data_engine.store.values import normalized_sql
from data_engine.store.warehouse import quote_ident

# The id column of a dataset without one (ids derived from content); reserved in raw_rows.
CONTENT_ID = "__content_id"


@dataclass(frozen=True)
class ColumnMatch:
    """The file's columns as the dataset sees them."""

    present: frozenset[str]           # configured columns the file has (after mapping)
    renamed: dict[str, str]           # {file's name: configured name}
    ignored: tuple[str, ...]          # file columns no configured column reads, as the file spells them


def shown_columns(columns: tuple[str, ...] | list[str], limit: int = 20) -> str:
    """A file's column names for an error message: the first ``limit``, then how many more."""
    # A header may be anything (a token file landed by mistake is all header): names as previews.
    shown = ", ".join(f"'{preview(c)}'" for c in columns[:limit]) or "none"
    return shown + (f", ... ({len(columns) - limit} more)" if len(columns) > limit else "")


def match_columns(con: duckdb.DuckDBPyConnection, ds: DatasetConfig, raw: RawTable) -> ColumnMatch:
    """Map the file's columns to ``ds``'s; raise :class:`UnreadableFile` for missing, ambiguous or
    doubled columns. Renames the mapped columns of ``raw_rows`` in place."""
    wanted = [c for c in (ds.id_column, *ds.input_columns, ds.label_column) if c is not None]
    by_key: dict[str, list[str]] = {}
    for col in raw.columns:
        by_key.setdefault(col.strip().lower(), []).append(col)
    renamed: dict[str, str] = {}
    for col in wanted:
        if col in raw.columns:
            continue
        found = by_key.get(col.lower(), [])
        if len(found) > 1:
            raise UnreadableFile(
                f"columns {', '.join(map(repr, found))} all match {col!r} except for case or spaces; keep one"
            )
        if found:
            renamed[found[0]] = col
    required = [c for c in (ds.id_column, *ds.input_columns) if c is not None]
    have = (set(raw.columns) | set(renamed.values()))
    missing = [c for c in required if c not in have]
    if missing:
        shown = shown_columns(raw.columns)
        # None of them at all usually means no header row or another delimiter: say so.
        hint = "; is the header row missing, or the delimiter not a comma?" if len(missing) == len(required) else ""
        raise UnreadableFile(
            f"missing required column(s) {', '.join(repr(c) for c in missing)} (the file has: {shown}){hint}"
        )
    if raw.duplicates:
        # After the missing-columns check: a file without a header row repeats data values in it.
        raise UnreadableFile(
            f"the header names a column twice ({', '.join(map(repr, raw.duplicates))}); rename or remove one of them"
        )
    _rename(con, renamed)
    ignored = tuple(c for c in raw.columns if c not in wanted and c not in renamed)
    return ColumnMatch(frozenset(c for c in wanted if c in have), renamed, ignored)


def _rename(con: duckdb.DuckDBPyConnection, renamed: dict[str, str]) -> None:
    """Rename columns of ``raw_rows`` (or of the table its view reads); via a scratch name because
    DuckDB's names are case-insensitive (``Label`` to ``label`` is otherwise "already exists")."""
    if not renamed:
        return
    is_view = con.execute(
        "SELECT count(*) FROM duckdb_views() WHERE temporary AND view_name = 'raw_rows'"
    ).fetchone()[0]
    table = "raw_read" if is_view else "raw_rows"
    for i, (old, new) in enumerate(renamed.items()):
        con.execute(f"ALTER TABLE {table} RENAME COLUMN {quote_ident(old)} TO {quote_ident(f'__renaming{i}')}")
        con.execute(f"ALTER TABLE {table} RENAME COLUMN {quote_ident(f'__renaming{i}')} TO {quote_ident(new)}")


def add_content_ids(con: duckdb.DuckDBPyConnection, ds: DatasetConfig, types: dict[str, str]) -> None:
    """Give ``raw_rows`` the column :data:`CONTENT_ID` for a dataset without an id column.

    The id is ``c`` + 16 hex digits of the md5 of the row's input values (numbers as numbers, so
    ``1`` and ``1.0`` agree; text normalised like labels), the label left out: the same inputs are
    the same example in every file, and a changed label is a new version of it. The k-th repeat of
    the same inputs within one file gets ``#k`` (k >= 2), so repeats are kept, not merged. Editing
    an input value makes a new example (the old one stays as it was). md5, not DuckDB's hash(),
    because ids must stay the same across DuckDB versions.
    """
    parts = []
    for col in ds.input_columns:
        q = quote_ident(col)
        if types.get(col) == "numeric":
            parts.append(f"coalesce(TRY_CAST(trim({q}) AS DOUBLE)::VARCHAR, '')")
        else:
            parts.append(f"coalesce({normalized_sql(q)}, '')")
    digest = f"'c' || left(md5(concat_ws(chr(31), {', '.join(parts)})), 16)"
    con.execute(
        f"CREATE TEMP TABLE raw_keyed AS SELECT *, __h || CASE WHEN __k > 1 THEN '#' || __k ELSE '' END "
        f"AS {quote_ident(CONTENT_ID)} FROM ("
        f"  SELECT *, row_number() OVER (PARTITION BY __h ORDER BY __row) AS __k FROM ("
        f"    SELECT *, {digest} AS __h FROM raw_rows)) ORDER BY __row"
    )
    con.execute("ALTER TABLE raw_keyed DROP COLUMN __h")
    con.execute("ALTER TABLE raw_keyed DROP COLUMN __k")
    kind = con.execute(
        "SELECT count(*) FROM duckdb_views() WHERE temporary AND view_name = 'raw_rows'"
    ).fetchone()[0]
    con.execute(f"DROP {'VIEW' if kind else 'TABLE'} raw_rows")
    con.execute("ALTER TABLE raw_keyed RENAME TO raw_rows")
