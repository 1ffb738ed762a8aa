"""Reading a landed file into a DuckDB temp table of text columns, one row per data row.

Every reader produces the temp table ``raw_rows`` with all columns as VARCHAR plus ``__row``
(the 1-based data row number in the file: the header is not a row) and the temp table
``raw_rejects(__row, raw, reason)`` of rows that could not even be split into columns.
Reading everything as text first lets the validator name the exact value that is wrong, instead
of a reader failing the whole file on the first bad cell. Loads stay inside DuckDB's own readers.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import duckdb

from data_engine.errors import EngineError
from data_engine.warehouse import quote_ident

FORMATS = {".csv": "csv", ".tsv": "csv", ".txt": "csv", ".parquet": "parquet", ".pq": "parquet",
           ".jsonl": "jsonl", ".ndjson": "jsonl"}


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
    """Load ``path`` into the temp tables ``raw_rows`` and ``raw_rejects``."""
    for table in ("raw_rows", "raw_rejects", "reject_errors", "reject_scans"):
        con.execute(f"DROP TABLE IF EXISTS {table}")
    if path.stat().st_size == 0:
        raise UnreadableFile("the file is empty")
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


def _read_csv(con: duckdb.DuckDBPyConnection, path: Path) -> None:
    # header=true always: a file without a header then shows up as "missing required columns"
    # instead of silently becoming column0, column1, ...
    con.execute(
        "CREATE TEMP TABLE raw_read AS SELECT * FROM read_csv(?, header = true, all_varchar = true, "
        "store_rejects = true, auto_detect = true)",
        [str(path)],
    )
    # DuckDB counts records in `line` with the header as 1: data row = line - 1.
    con.execute(
        "CREATE TEMP TABLE raw_rejects AS SELECT line - 1 AS __row, first(csv_line) AS raw, "
        "string_agg(DISTINCT error_type || coalesce(' (' || column_name || ')', '') || ': ' || error_message, '; ') AS reason "
        "FROM reject_errors GROUP BY line"
    )
    # The parsed rows keep file order (insertion order is preserved); their data row numbers skip
    # the rejected records: the k-th parsed row is row k + (number of rejects before it).
    con.execute(
        "CREATE TEMP TABLE rej_adj AS SELECT __row - (row_number() OVER (ORDER BY __row) - 1) AS adj "
        "FROM raw_rejects"
    )
    if con.execute("SELECT count(*) FROM rej_adj").fetchone()[0] == 0:
        con.execute("CREATE TEMP TABLE raw_rows AS SELECT *, rowid + 1 AS __row FROM raw_read")
    else:
        con.execute(
            "CREATE TEMP TABLE raw_rows AS SELECT r.*, r.rowid + 1 + "
            "(SELECT count(*) FROM rej_adj WHERE adj <= r.rowid + 1) AS __row FROM raw_read r"
        )
    con.execute("DROP TABLE raw_read")
    con.execute("DROP TABLE rej_adj")


def _read_parquet(con: duckdb.DuckDBPyConnection, path: Path) -> None:
    # Nested parquet values become their text form, so the validator can show and name them.
    con.execute(
        "CREATE TEMP TABLE raw_rows AS SELECT COLUMNS(*)::VARCHAR, file_row_number + 1 AS __row "
        "FROM (SELECT * EXCLUDE (file_row_number), file_row_number FROM read_parquet(?, file_row_number = true))",
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
            "WHERE json_valid(line) AND json_type(line) = 'OBJECT') GROUP BY k ORDER BY min(__row), k"
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
