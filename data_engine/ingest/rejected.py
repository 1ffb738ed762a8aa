"""What rejected a batch's rows, and keeping only its quarantine when the whole batch fails."""

from __future__ import annotations

import duckdb

from data_engine.wording import counted


def rejecting_columns(con: duckdb.DuckDBPyConnection, batch_id: str, shown: int = 3) -> str:
    """What quarantined the rows of ``batch_id``, most rows first: "column 'tenure' (40 rows, e.g. ...)".

    A row's reason joins its problems with "; "; each problem names its column as "column NAME"
    (see data_engine.ingest.validate) or is grouped by its own text (missing ids, labels).
    """
    groups = con.execute(
        "WITH parts AS (SELECT row_number, unnest(string_split(reason, '; ')) AS part FROM quarantine "
        "  WHERE batch_id = ?), "
        "keyed AS (SELECT row_number, part, regexp_extract(part, 'column ([^:)]+)', 1) AS col FROM parts) "
        "SELECT col, count(DISTINCT row_number) AS n, min(part) AS example FROM keyed "
        "GROUP BY col, CASE WHEN col = '' THEN part END ORDER BY n DESC, col LIMIT ?",
        [batch_id, shown + 1],
    ).fetchall()
    said = [f"column {col!r} ({counted(n, 'row')}, e.g. {example[:120]!r})" if col
            else f"{example[:120]!r} ({counted(n, 'row')})"
            for col, n, example in groups[:shown]]
    return "rejected by " + "; ".join(said) + ("; ..." if len(groups) > shown else "")


def keep_only_quarantine(con: duckdb.DuckDBPyConnection, batch_id: str) -> None:
    """Roll back the open transaction of batch ``batch_id`` but its quarantined rows, written again
    in a new transaction (nothing lost: a person reads why each row failed).

    Raises whatever DuckDB raises; the caller's transaction handling rolls back on error.
    """
    kept = con.execute("SELECT batch_id, row_number, raw, reason FROM quarantine WHERE batch_id = ?",
                       [batch_id]).df()
    con.execute("ROLLBACK")
    con.execute("BEGIN TRANSACTION")
    con.register("_kept_quarantine", kept)
    try:
        con.execute("INSERT INTO quarantine (batch_id, row_number, raw, reason) "
                    "SELECT batch_id, row_number, raw, reason FROM _kept_quarantine")
    finally:
        con.unregister("_kept_quarantine")
