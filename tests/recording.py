"""A DuckDB connection that remembers the SQL it was given, for tests that count or read the queries
a step runs (DuckDB's connection cannot be patched)."""
from __future__ import annotations

import duckdb


class RecordingConnection:
    """Wraps ``con``; ``sql`` lists every statement passed to :meth:`execute`, in order."""

    def __init__(self, con: duckdb.DuckDBPyConnection) -> None:
        self.con, self.sql = con, []

    def execute(self, sql: str, *args):
        self.sql.append(sql)
        return self.con.execute(sql, *args)

    def executemany(self, sql: str, *args):
        self.sql.append(sql)
        return self.con.executemany(sql, *args)
