"""Reading a landed file into a DuckDB temp relation of text columns, one row per data row.

Every reader produces the temp relation ``raw_rows`` (a table, or a view over the CSV as read)
with all columns as VARCHAR plus ``__row`` (the 1-based data row number in the file: the header
is not a row; for JSONL, the line number) and the temp table
``raw_rejects(__row, raw, reason)`` of rows that could not even be split into columns.
Reading everything as text first lets the validator name the exact value that is wrong, instead
of a reader failing the whole file on the first bad cell. Loads stay inside DuckDB's own readers.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import duckdb

from data_engine.errors import EngineError
from data_engine.store.warehouse import quote_ident

FORMATS = {".csv": "csv", ".tsv": "csv", ".txt": "csv", ".parquet": "parquet", ".pq": "parquet",
           ".jsonl": "jsonl", ".ndjson": "jsonl"}


# The engine's own column in raw_rows: the file's row number.
ROW_COLUMN = "__row"


class UnreadableFile(EngineError):
    """The file cannot be read at all; the whole batch is rejected with this reason."""


@dataclass(frozen=True)
class RawTable:
    """What was read: the file's columns (in order) and the row counts."""

    columns: tuple[str, ...]
    rows: int
    rejects: int


def file_format(path: Path) -> str:
    """The reader for ``path``, by its suffix; raise :class:`UnreadableFile` for others."""
    fmt = FORMATS.get(path.suffix.lower())
    if fmt is None:
        raise UnreadableFile(
            f"unsupported file type {path.suffix or '(none)'!r}; expected one of {', '.join(sorted(FORMATS))}"
        )
    return fmt


def read_raw(con: duckdb.DuckDBPyConnection, path: Path, fmt: str) -> RawTable:
    """Load ``path`` into the temp relations ``raw_rows`` and ``raw_rejects``.

    Call this outside an open transaction: a DuckDB error while reading aborts a transaction, and
    rows read inside one get transaction-local row ids (so ``__row`` would be wrong).
    """
    drop_scratch(con)
    if path.stat().st_size == 0:
        raise UnreadableFile("the file is empty")
    if fmt in ("csv", "jsonl"):
        _check_text(path)
    try:
        if fmt == "csv":
            _read_csv(con, path)
        elif fmt == "parquet":
            _read_parquet(con, path)
        else:
            _read_jsonl(con, path)
    except duckdb.Error as exc:
        raise UnreadableFile(_first_line(exc)) from None
    columns = tuple(
        r[0] for r in con.execute(
            "SELECT column_name FROM information_schema.columns WHERE table_name = 'raw_rows' "
            "AND column_name <> '__row' ORDER BY ordinal_position"
        ).fetchall()
    )
    rows = con.execute("SELECT count(*) FROM raw_rows").fetchone()[0]
    rejects = con.execute("SELECT count(*) FROM raw_rejects").fetchone()[0]
    return RawTable(columns, rows, rejects)


# Scratch relations of one read/validate cycle (temp tables or views), dropped before and after.
SCRATCH = ("raw_rows", "raw_read", "raw_rejects", "rej_adj", "raw_lines", "reject_errors", "reject_scans",
           "dup_ids", "rejected", "good", "staged", "raw_rows_images", "image_checks", "image_rejects")


def drop_scratch(con: duckdb.DuckDBPyConnection) -> None:
    """Drop the temp relations of a previous read (views before the tables they read)."""
    kinds = dict(con.execute(
        "SELECT view_name, 'VIEW' FROM duckdb_views() WHERE temporary UNION ALL "
        "SELECT table_name, 'TABLE' FROM duckdb_tables() WHERE temporary"
    ).fetchall())
    for name in sorted(SCRATCH, key=lambda n: kinds.get(n) != "VIEW"):
        if name in kinds:
            con.execute(f"DROP {kinds[name]} IF EXISTS {quote_ident(name)}")


def _check_text(path: Path) -> None:
    """Reject UTF-16/32 and binary files up front with a reason a person understands.

    DuckDB would read them as garbage columns ("missing required column '\\x00i\\x00d'").
    """
    with path.open("rb") as fh:
        head = fh.read(1 << 16)
    if head.startswith((b"\xff\xfe", b"\xfe\xff")):
        raise UnreadableFile("the file is UTF-16 (or UTF-32) encoded; save it as UTF-8")
    nul = head.find(b"\x00")
    if nul >= 0:
        raise UnreadableFile(f"binary data, not text: a NUL byte at offset {nul} (expected UTF-8 text)")


def _read_csv(con: duckdb.DuckDBPyConnection, path: Path) -> None:
    # header=true always: a file without a header then shows up as "missing required columns"
    # instead of silently becoming column0, column1, ...
    con.execute(
        "CREATE TEMP TABLE raw_read AS SELECT * FROM read_csv(?, header = true, all_varchar = true, "
        "store_rejects = true, auto_detect = true)",
        [str(path)],
    )
    # A file column named like the engine's row number column is dropped (it cannot be a dataset
    # column: the config reserves the name).
    for (name,) in con.execute(
        "SELECT column_name FROM information_schema.columns WHERE table_name = 'raw_read' AND lower(column_name) = ?",
        [ROW_COLUMN],
    ).fetchall():
        con.execute(f"ALTER TABLE raw_read DROP COLUMN {quote_ident(name)}")
    bad_encoding = con.execute(
        "SELECT line - 1, column_name FROM reject_errors WHERE error_type = 'INVALID ENCODING' ORDER BY line LIMIT 1"
    ).fetchone()
    if bad_encoding:
        # One row in another encoding means the whole file is (Latin-1, Windows-1252, ...): storing
        # the other rows would split one file into an ingested part and a part to re-send.
        where = f" (first on data row {bad_encoding[0]}" + (f", column {bad_encoding[1]!r})" if bad_encoding[1] else ")")
        raise UnreadableFile(f"the file is not UTF-8 encoded{where}; save it as UTF-8")
    # DuckDB counts records in `line` with the header as 1: data row = line - 1.
    con.execute(
        "CREATE TEMP TABLE raw_rejects AS SELECT line - 1 AS __row, first(csv_line) AS raw, "
        "string_agg(DISTINCT error_type || coalesce(' (' || column_name || ')', '') || ': ' || error_message, '; ') AS reason "
        "FROM reject_errors GROUP BY line"
    )
    # raw_read keeps file order (insertion order is preserved) and, read outside a transaction,
    # row ids 0..n-1; the base is subtracted anyway so the numbering never depends on that.
    base = con.execute("SELECT coalesce(min(rowid), 0) FROM raw_read").fetchone()[0]
    if con.execute("SELECT count(*) FROM raw_rejects").fetchone()[0] == 0:
        # A view, not a copy: the common case pays nothing for the row numbers.
        con.execute(f"CREATE TEMP VIEW raw_rows AS SELECT *, rowid - {int(base)} + 1 AS __row FROM raw_read")
        return
    # The k-th parsed row is data row k + (number of rejected records before it). With the rejects
    # at rows R_1 < R_2 < ..., reject j lies before parsed row k exactly when R_j - (j - 1) <= k:
    # an ASOF join on that non-decreasing key finds the count (the largest j) for every row at once.
    con.execute(
        "CREATE TEMP TABLE rej_adj AS SELECT adj, max(j) AS j FROM ("
        "  SELECT __row - (row_number() OVER (ORDER BY __row) - 1) AS adj, row_number() OVER (ORDER BY __row) AS j"
        "  FROM raw_rejects) GROUP BY adj"
    )
    con.execute(
        "CREATE TEMP TABLE raw_rows AS SELECT r.* EXCLUDE (__row), r.__row + coalesce(a.j, 0) AS __row "
        f"FROM (SELECT *, rowid - {int(base)} + 1 AS __row FROM raw_read) r "
        "ASOF LEFT JOIN rej_adj a ON r.__row >= a.adj ORDER BY r.__row"
    )
    con.execute("DROP TABLE raw_read")
    con.execute("DROP TABLE rej_adj")


def _read_parquet(con: duckdb.DuckDBPyConnection, path: Path) -> None:
    # Nested parquet values become their text form, so the validator can show and name them.
    con.execute(
        "CREATE TEMP TABLE raw_rows AS SELECT COLUMNS(lambda c: lower(c) NOT IN ('file_row_number', '__row'))::VARCHAR, "
        "file_row_number + 1 AS __row FROM read_parquet(?, file_row_number = true)",
        [str(path)],
    )
    con.execute("CREATE TEMP TABLE raw_rejects (__row BIGINT, raw VARCHAR, reason VARCHAR)")


def _read_jsonl(con: duckdb.DuckDBPyConnection, path: Path) -> None:
    # read_json would fail the whole file on one malformed line, or (ignore_errors) drop it
    # silently; reading lines as text keeps every line accountable.
    con.execute(
        "CREATE TEMP TABLE raw_lines AS SELECT * FROM ("
        "  SELECT unnest(lines) AS line, generate_subscripts(lines, 1) AS __row"
        "  FROM (SELECT string_split(replace(content, chr(13), ''), chr(10)) AS lines FROM read_text(?))"
        ") WHERE trim(line) <> ''",
        [str(path)],
    )
    con.execute(
        "CREATE TEMP TABLE raw_rejects AS SELECT __row, line AS raw, "
        "CASE WHEN NOT json_valid(line) THEN 'not valid JSON' ELSE 'not a JSON object' END AS reason "
        "FROM raw_lines WHERE NOT json_valid(line) OR json_type(line) <> 'OBJECT'"
    )
    keys = [
        r[0] for r in con.execute(
            "SELECT k FROM (SELECT unnest(json_keys(line)) AS k, __row FROM raw_lines "
            "WHERE json_valid(line) AND json_type(line) = 'OBJECT') WHERE lower(k) <> ? GROUP BY k ORDER BY min(__row), k",
            [ROW_COLUMN],
        ).fetchall()
    ]
    if not keys:
        con.execute("CREATE TEMP TABLE raw_rows (__row BIGINT)")
        con.execute("DROP TABLE raw_lines")
        return
    selects = ", ".join(
        f"json_extract_string(line, {_json_path(k)}) AS {quote_ident(k)}" for k in keys
    )
    con.execute(
        f"CREATE TEMP TABLE raw_rows AS SELECT {selects}, __row FROM raw_lines "
        "WHERE json_valid(line) AND json_type(line) = 'OBJECT' ORDER BY __row"
    )
    con.execute("DROP TABLE raw_lines")


def _json_path(key: str) -> str:
    """A SQL string literal holding the JSON path of a top-level key (keys may hold any character)."""
    escaped = key.replace("\\", "\\\\").replace('"', '\\"')
    literal = ("$.\"" + escaped + "\"").replace("'", "''")
    return f"'{literal}'"


def _first_line(exc: BaseException) -> str:
    """The first line of a DuckDB error, without its error-class prefix."""
    text = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
    for prefix in ("Invalid Input Error: ", "Conversion Error: ", "IO Error: ", "Binder Error: "):
        text = text.removeprefix(prefix)
    return text[:500]
