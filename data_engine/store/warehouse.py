"""The warehouse: one DuckDB file per engine home, with named, recorded migrations.

DuckDB lets one process write at a time. Every writer (CLI commands, Dagster runs) opens the file
through :func:`open_warehouse`, which waits for a lock held by another process (with back-off) and
raises :class:`WarehouseBusyError` naming the holder when it waits too long.
"""

from __future__ import annotations

import functools
import os
import re
import time
from collections.abc import Iterator
from contextlib import contextmanager
from importlib import resources

import duckdb

from data_engine.errors import EngineError, WarehouseBusyError
from data_engine.store.home import Home

LOCK_WAIT_ENV = "DATA_ENGINE_LOCK_WAIT"
DEFAULT_LOCK_WAIT_S = 120.0
MAX_RETRY_DELAY_S = 0.25  # the longest pause between two tries to open a locked warehouse (_connect)
_LOCK_PATTERN = re.compile(r"(Could not set lock|Conflicting lock)", re.IGNORECASE)
# A new home's first commands race to create the warehouse: DuckDB creates the file, then takes its
# lock and writes its headers, and a process opening the file in between reads an empty or partial
# file ("exists, but it is not a valid DuckDB database file"; seen with three ingests and two
# status calls on a fresh home). Such a file is waited for like a lock; one smaller than DuckDB's
# headers (three blocks of 4 KiB) that has not changed for CREATING_S seconds is an error.
_NOT_YET_WRITTEN = re.compile(r"not a valid DuckDB database file", re.IGNORECASE)
HEADERS_BYTES = 3 * 4096
DUCKDB_MAGIC = b"DUCK"  # at byte 8 of a DuckDB file, after the header's checksum
CREATING_S = 10.0

# ``review_tasks.status`` values after which a task waits for nothing more. A 'tie' still waits for
# a deciding vote, so it is not among them (mining, second opinions, push and the sensors read this).
FINISHED_TASK_STATUSES: tuple[str, ...] = ("done",)


def quote_ident(name: str) -> str:
    """Quote a SQL identifier (column names come from the user's config and files)."""
    return '"' + name.replace('"', '""') + '"'


def json_path(key: str) -> str:
    """A SQL string literal holding the JSON path of a top-level key (keys may hold any character)."""
    escaped = key.replace("\\", "\\\\").replace('"', '\\"')
    literal = ("$.\"" + escaped + "\"").replace("'", "''")
    return f"'{literal}'"


def migration_names() -> list[str]:
    """All migration files shipped with the engine, in the order they apply."""
    files = resources.files("data_engine.store.migrations")
    return sorted(p.name for p in files.iterdir() if p.name.endswith(".sql"))


def has_table(con: duckdb.DuckDBPyConnection, name: str) -> bool:
    """Whether the warehouse holds table ``name``.

    The one place the engine asks the catalogue: a warehouse opened read-only (``status``) may not have
    had the migration that creates a newer table yet, and a new file has no ``schema_migrations``.
    Stage code never probes columns; it asks this about a whole table only in those two cases.
    """
    found = con.execute("SELECT count(*) FROM information_schema.tables WHERE table_name = ?", [name])
    return bool(found.fetchall()[0][0])


def pending_migrations(con: duckdb.DuckDBPyConnection) -> list[str]:
    """The shipped migrations not yet recorded in ``schema_migrations`` (all of them for a new file)."""
    recorded = has_table(con, "schema_migrations")
    done = {r[0] for r in con.execute("SELECT name FROM schema_migrations").fetchall()} if recorded else set()
    return [name for name in migration_names() if name not in done]


def apply_migrations(con: duckdb.DuckDBPyConnection, *, before: str | None = None) -> list[str]:
    """Apply the migrations not yet recorded in ``schema_migrations``; return their names.

    ``before``: apply only those whose name sorts before it (a warehouse as an older engine left
    it, which the migration tests start from). Raises :class:`EngineError` naming the migration
    when a stored value cannot be converted to its new type (nothing of that migration is kept)."""
    new = not has_table(con, "schema_migrations")
    con.execute(
        "CREATE TABLE IF NOT EXISTS schema_migrations (name VARCHAR PRIMARY KEY, applied_at TIMESTAMPTZ DEFAULT now())"
    )
    names = [n for n in pending_migrations(con) if before is None or n < before]
    # A new warehouse takes all its migrations in one transaction: nothing is stored yet, so there is
    # no earlier state worth keeping step by step, and each commit waits for the disk (25 commits of
    # a first `ingest` took 0.20-0.25 s of wall clock against 0.12-0.17 s for one, at 0.09 against
    # 0.07 s of CPU). An existing warehouse keeps one transaction per migration.
    groups = [names] if new and names else [[n] for n in names]
    for group in groups:
        con.execute("BEGIN TRANSACTION")
        name = group[0]
        try:
            for name in group:
                sql = resources.files("data_engine.store.migrations").joinpath(name).read_text(encoding="utf-8")
                con.execute(sql)
                con.execute("INSERT INTO schema_migrations (name) VALUES (?)", [name])
            con.execute("COMMIT")
        except duckdb.ConversionException as exc:
            rollback_quietly(con)
            raise EngineError(f"{name}: cannot convert a stored value: {_one_line(exc)}") from None
        except Exception:
            rollback_quietly(con)
            raise
    return names


def rollback_quietly(con: duckdb.DuckDBPyConnection) -> None:
    """Roll back after a failure without hiding it: after a failed COMMIT (a full disk) there is no
    transaction left, and after a fatal error DuckDB refuses every statement; the caller re-raises
    the original error, which names the cause."""
    try:
        con.execute("ROLLBACK")
    except duckdb.Error:
        pass


@contextmanager
def transaction(con: duckdb.DuckDBPyConnection, **frames: object) -> Iterator[None]:
    """``BEGIN`` ... ``COMMIT`` around the block, with each of ``frames`` (pandas DataFrames)
    registered under its keyword as a view for the statements inside. Any error rolls back
    (:func:`rollback_quietly`) and is re-raised; the views are unregistered either way."""
    con.execute("BEGIN TRANSACTION")
    try:
        for name, frame in frames.items():
            con.register(name, frame)
        yield
        con.execute("COMMIT")
    except BaseException:
        # A failed COMMIT (full disk) leaves no transaction: the original error must surface.
        rollback_quietly(con)
        raise
    finally:
        for name in frames:
            try:
                con.unregister(name)
            except duckdb.Error:
                pass


def _environment_failure(exc: duckdb.Error) -> bool:
    """An error writing or reading the file itself (disk full, I/O), as opposed to a bad statement."""
    if isinstance(exc, (duckdb.IOException, duckdb.FatalException)):
        return True
    # A full disk at COMMIT arrives as "TransactionContext Error: Failed to commit: Could not write file".
    return isinstance(exc, duckdb.TransactionException) and "Failed to commit" in str(exc)


def _one_line(exc: BaseException) -> str:
    """A DuckDB error as one line, without its class prefix."""
    text = " ".join(str(exc).split())
    for prefix in ("FATAL Error: ", "IO Error: ", "TransactionContext Error: "):
        text = text.removeprefix(prefix)
    return text[:400]


def _connect(path: str, read_only: bool, wait_s: float) -> duckdb.DuckDBPyConnection:
    """Open the DuckDB file, retrying while another process holds the write lock."""
    deadline = time.monotonic() + wait_s
    delay = 0.05
    while True:
        try:
            con = duckdb.connect(path, read_only=read_only)
            # DuckDB's allocator (jemalloc on Linux) keeps the freed pages of a query's intermediates
            # (a load's sorted join, an ingest's insert) until later allocations purge them; its
            # background threads return them to the system (DuckDB's "jemalloc" internals page). A
            # 200,000-row load: +243 -> +128 MiB over the opened warehouse, a second later (docs/mining.md).
            # Set after connecting, not by connect(config=...): another connection to the same file
            # with another configuration is refused, and the setting is the process's anyway.
            con.execute("SET allocator_background_threads = true")
            return con
        except duckdb.IOException as exc:
            message = str(exc)
            if not (_LOCK_PATTERN.search(message) or (_NOT_YET_WRITTEN.search(message) and _being_created(path))):
                raise EngineError(f"{path}: cannot open the warehouse: {message.splitlines()[0]}") from None
            if time.monotonic() >= deadline and not _LOCK_PATTERN.search(message):
                raise EngineError(f"{path}: cannot open the warehouse: {message.splitlines()[0]}") from None
            if time.monotonic() >= deadline:
                holder = re.search(r"\(PID (\d+)\)", message)
                who = f" by process {holder.group(1)}" if holder else ""
                raise WarehouseBusyError(
                    f"{path}: the warehouse is locked{who}; waited {wait_s:.0f} s "
                    f"(set {LOCK_WAIT_ENV} to wait longer)"
                ) from None
            time.sleep(delay)
            # Waiters retry at most every quarter second: DuckDB's lock has no queue, so a waiter
            # that backed off to a second lost the lock to newcomers still retrying every 50-100 ms,
            # and a sensor run beside a stream of CLI calls ran out of its wait on a loaded machine.
            delay = min(delay * 2, MAX_RETRY_DELAY_S)


def _being_created(path: str) -> bool:
    """Whether the file at ``path`` looks like a warehouse another process is creating now: smaller
    than DuckDB's headers, empty or starting as DuckDB's files do (its magic bytes after the
    checksum), and changed within the last :data:`CREATING_S` seconds (or gone again)."""
    try:
        stat = os.stat(path)
        with open(path, "rb") as f:
            start = f.read(len(DUCKDB_MAGIC) + 8)
    except FileNotFoundError:
        return True
    started = len(start) == 0 or start[8:].startswith(DUCKDB_MAGIC[:max(0, len(start) - 8)])
    return stat.st_size < HEADERS_BYTES and started and time.time() - stat.st_mtime < CREATING_S


@contextmanager
def open_warehouse(home: Home, *, read_only: bool = False, wait_s: float | None = None) -> Iterator[duckdb.DuckDBPyConnection]:
    """Open the home's warehouse (migrated) and close it on exit.

    ``read_only`` connections need an existing warehouse. The engine's code relies on the migrated
    schema (it never probes for a table or column), so a warehouse written by an older engine is
    migrated first, through a short writing connection, and then opened read-only.
    """
    if wait_s is None:
        wait_s = float(os.environ.get(LOCK_WAIT_ENV, DEFAULT_LOCK_WAIT_S))
    path = home.warehouse_path
    if read_only and not path.exists():
        raise EngineError(f"{path}: no warehouse yet; ingest a file first")
    home.root.mkdir(parents=True, exist_ok=True)
    con = _connect(str(path), read_only, wait_s)
    if read_only and pending_migrations(con):
        con.close()
        with open_warehouse(home, wait_s=wait_s):
            pass
        con = _connect(str(path), read_only, wait_s)
    try:
        if not read_only:
            apply_migrations(con)
        yield con
    except duckdb.Error as exc:
        if not _environment_failure(exc):
            raise
        # The environment failed (a full disk, a file made unwritable), not the engine: one line
        # naming the file and the cause. The failed transaction is not kept (DuckDB rolls it back).
        raise EngineError(f"{path}: cannot write the warehouse: {_one_line(exc)}; free space or fix the file, "
                          f"then run again") from None
    finally:
        try:
            con.close()
        except duckdb.Error:
            pass


def last_event_id(con: duckdb.DuckDBPyConnection) -> int:
    """The highest ``label_events.event_id`` (0 for an empty ledger): a writer's new ids start above it.

    ``label_events`` is a view: the rows written to ``label_ledger`` plus the ingest events derived
    from ``examples.label_event_id``; both kinds of writer (review into the ledger, ingest into
    ``examples``) assign ids set-wise as this plus 1, 2, ... (in the order of their events) instead
    of a sequence's nextval() per row. That is safe because they are serialised: call it inside the
    writing transaction, and only one writer at a time holds the warehouse (the DuckDB file lock
    across processes; one connection per command or run within one). Ids stay unique and monotonic
    across both; gaps are allowed, as with a sequence.
    """
    # fetchall: a result left half-fetched blocks the connection's next register() (DuckDB 2).
    return int(con.execute("SELECT coalesce(max(event_id), 0) FROM label_events").fetchall()[0][0])


def table_counts(con: duckdb.DuckDBPyConnection) -> dict[str, int]:
    """Row counts of the warehouse's public tables."""
    return {table: con.execute(f"SELECT count(*) FROM {quote_ident(table)}").fetchone()[0]
            for table in ("batches", "examples", "label_events", "quarantine", "predictions", "mining_runs",
                          "issues", "review_queue", "review_tasks", "models", "deployments")}


# The memory limit set for a moment by release_cache: below any block, so DuckDB evicts every unpinned one.
_EVICT_LIMIT = "1MB"


@functools.cache
def _default_memory_limit() -> str:
    """DuckDB's default ``memory_limit`` (80 % of the machine's memory) as ``current_setting`` shows it."""
    with duckdb.connect() as fresh:
        return str(fresh.execute("SELECT current_setting('memory_limit')").fetchall()[0][0])


def release_cache(con: duckdb.DuckDBPyConnection) -> None:
    """Evict DuckDB's cached table blocks from memory; the warehouse's contents are untouched.

    DuckDB keeps every table block it has read or written in its buffer pool until the memory limit
    (by default 80 % of the machine's memory) forces it out, so a mining run held about 300 MB of
    cached ``examples`` and ``predictions`` blocks at a million rows through every later stage
    (``duckdb_memory()``, tag ``BASE_TABLE``; docs/mining.md). DuckDB has no statement that empties the
    pool, but lowering ``memory_limit`` evicts unpinned blocks down to it (its ``BufferManager::SetMemoryLimit``),
    so the limit is lowered for a moment and RESET to DuckDB's default. A limit someone set is left
    alone, and so are the blocks (its text, e.g. ``1.8 GiB``, does not give its bytes back exactly).
    Pinned blocks (a result being read) stay: DuckDB then refuses the low limit, which is ignored.
    Later reads of evicted blocks read the file (or the system's page cache).
    """
    if con.execute("SELECT current_setting('memory_limit')").fetchall()[0][0] != _default_memory_limit():
        return
    try:
        con.execute(f"SET memory_limit = '{_EVICT_LIMIT}'")
    except duckdb.Error:
        pass  # something is pinned: the blocks stay cached, nothing else changed
    finally:
        con.execute("RESET memory_limit")
