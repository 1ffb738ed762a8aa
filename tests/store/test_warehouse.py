"""The warehouse: recorded migrations, the lock-aware open, counts and identifier quoting."""

from __future__ import annotations

import subprocess
import sys
import time

import duckdb
import pytest

from data_engine.errors import EngineError, WarehouseBusyError
from data_engine.ingest.batch import ingest_file
from data_engine.store.home import Home
from data_engine.store.schema import fix_columns
from data_engine.store.warehouse import (
    apply_migrations,
    last_event_id,
    migration_names,
    open_warehouse,
    quote_ident,
    table_counts,
)
from tests.conftest import NEXT_EVENT_ID

PUBLIC = {"batches", "examples", "label_ledger", "quarantine"}


def test_migrations_are_recorded_once_in_order(toy_home: Home) -> None:
    names = migration_names()
    assert names == sorted(names) and names[0] == "0001_foundation.sql"
    with open_warehouse(toy_home) as con:
        recorded = [r[0] for r in con.execute("SELECT name FROM schema_migrations ORDER BY name").fetchall()]
        assert recorded == names
        assert apply_migrations(con) == []
    with open_warehouse(toy_home) as con:  # reopening applies nothing new
        assert con.execute("SELECT count(*) FROM schema_migrations").fetchone()[0] == len(names)


def test_a_new_warehouse_takes_its_migrations_in_one_transaction_an_older_one_one_each() -> None:
    from tests.recording import RecordingConnection

    names = migration_names()
    fresh = RecordingConnection(duckdb.connect())
    assert apply_migrations(fresh) == names
    assert fresh.sql.count("BEGIN TRANSACTION") == 1 and fresh.sql.count("COMMIT") == 1
    older = duckdb.connect()
    apply_migrations(older, before=names[-3])
    recording = RecordingConnection(older)
    assert apply_migrations(recording) == names[-3:]
    assert recording.sql.count("BEGIN TRANSACTION") == 3 and recording.sql.count("COMMIT") == 3
    for con in (fresh.con, older):
        assert [r[0] for r in con.execute("SELECT name FROM schema_migrations ORDER BY name").fetchall()] == names


def _warehouse_before(con: duckdb.DuckDBPyConnection, first_new: str) -> None:
    """Apply (and record) only the migrations named before ``first_new``: an older warehouse."""
    apply_migrations(con, before=first_new)


def test_text_hashes_of_an_older_warehouse_become_the_same_integers() -> None:
    con = duckdb.connect()
    _warehouse_before(con, "0400_integer_hashes.sql")
    con.execute("INSERT INTO examples (example_id, version, batch_id, row_number, content_hash, feature_hash) "
                "VALUES ('1', 1, 'b', 1, lpad(to_hex(hash(7)), 16, '0'), '000000000000002a')")
    assert "0400_integer_hashes.sql" in apply_migrations(con)
    assert con.execute("SELECT content_hash = hash(7), feature_hash FROM current_examples").fetchone() == (True, 42)


def test_event_ids_of_an_older_warehouse_continue_and_writers_must_assign_them() -> None:
    con = duckdb.connect()
    _warehouse_before(con, "0401_label_event_ids.sql")
    for _ in range(2):  # ids from the sequence the older schema had
        con.execute("INSERT INTO label_events (example_id, label, source, actor) VALUES ('1', 'a', 'review', 'x')")
    apply_migrations(con)
    assert last_event_id(con) == 2
    with pytest.raises(duckdb.ConstraintException, match="event_id"):
        con.execute("INSERT INTO label_ledger (example_id, label, source, actor) VALUES ('1', 'a', 'review', 'x')")


def test_review_tasks_of_an_older_warehouse_become_first_opinions() -> None:
    con = duckdb.connect()
    _warehouse_before(con, "0500_second_opinions.sql")
    con.execute("INSERT INTO review_tasks (project_id, example_id, example_version, engine_key, task_id, status) "
                "VALUES (1, 'x', 1, 'x@v1', 10, 'done'), (1, 'y', 2, 'y@v2', 11, 'open')")
    assert "0500_second_opinions.sql" in apply_migrations(con)
    assert con.execute("SELECT example_id, opinion, engine_key, task_id, status FROM review_tasks "
                       "ORDER BY example_id").fetchall() == [("x", 1, "x@v1", 10, "done"), ("y", 1, "y@v2", 11, "open")]
    con.execute("INSERT INTO review_tasks (project_id, example_id, example_version, opinion, engine_key, status) "
                "VALUES (1, 'x', 1, 2, 'x@v1/2', 'sending')")
    with pytest.raises(duckdb.ConstraintException):  # one task per version and opinion
        con.execute("INSERT INTO review_tasks (project_id, example_id, example_version, opinion, engine_key, status) "
                    "VALUES (1, 'x', 1, 2, 'again', 'sending')")


def test_ingest_rows_of_an_older_warehouse_stay_once_and_later_ingests_are_derived(toy_home: Home) -> None:
    ds = toy_home.config.dataset
    con = duckdb.connect(str(toy_home.warehouse_path))
    _warehouse_before(con, "0600_ingest_events_from_examples.sql")
    fix_columns(con, ds, {"id", "label", "x", "color"})
    # What ingest and review wrote before 0600: versions in examples, their events as rows.
    con.execute("INSERT INTO examples (example_id, version, batch_id, row_number, content_hash, feature_hash, "
                "label, x, color) VALUES ('1', 1, 'old', 1, 1, 1, 'a', 1, 'red'), ('2', 1, 'old', 2, 2, 2, NULL, 2, 'red')")
    con.execute("INSERT INTO label_events (event_id, example_id, example_version, label, source, actor, detail) "
                "VALUES (1, '1', 1, 'a', 'ingest', 'batch:old', '{\"batch_id\": \"old\", \"gold\": false}'), "
                "(2, '1', 1, 'b', 'review', 'alice', NULL)")
    before = con.execute("SELECT * FROM label_events ORDER BY event_id").fetchall()
    con.close()
    with open_warehouse(toy_home) as con:  # migrates
        assert con.execute("SELECT * FROM label_events ORDER BY event_id").fetchall() == before
        assert con.execute("SELECT count(*) FROM label_ledger").fetchone()[0] == 2
        assert con.execute("SELECT example_id, label, source FROM current_labels").fetchall() == [("1", "b", "review")]
        assert last_event_id(con) == 2
        (toy_home.landing / "new.csv").write_text("id,label,x,color\n2,b,2,red\n3,a,3,blue\n", encoding="utf-8")
        r = ingest_file(con, ds, toy_home.landing / "new.csv")
        rows = con.execute(
            "SELECT event_id, example_id, example_version, label, source FROM label_events ORDER BY event_id").fetchall()
        labels = con.execute("SELECT example_id, label, source FROM current_labels ORDER BY example_id").fetchall()
    assert (r.rows_changed, r.rows_new, r.rows_labeled) == (1, 1, 2)
    assert rows == [(1, "1", 1, "a", "ingest"), (2, "1", 1, "b", "review"),
                    (3, "2", 2, "b", "ingest"), (4, "3", 1, "a", "ingest")]
    assert labels == [("1", "b", "review"), ("2", "b", "ingest"), ("3", "a", "ingest")]


def test_public_tables_and_views_exist(toy_con: duckdb.DuckDBPyConnection) -> None:
    tables = {r[0] for r in toy_con.execute("SELECT table_name FROM duckdb_tables()").fetchall()}
    views = {r[0] for r in toy_con.execute("SELECT view_name FROM duckdb_views() WHERE NOT internal").fetchall()}
    assert PUBLIC <= tables and {"label_events", "current_labels", "current_examples"} <= views
    batch_cols = {r[0] for r in toy_con.execute(
        "SELECT column_name FROM information_schema.columns WHERE table_name = 'batches'").fetchall()}
    assert {"batch_id", "path", "sha256", "received_at", "rows_in", "rows_ok", "rows_quarantined", "status",
            "reason"} <= batch_cols
    assert set(table_counts(toy_con)) >= PUBLIC - {"label_ledger"} | {"label_events"} and all(v == 0 for v in table_counts(toy_con).values())


def test_event_ids_are_monotonic(toy_con: duckdb.DuckDBPyConnection) -> None:
    for label in ("a", "b", None):
        toy_con.execute("INSERT INTO label_ledger (event_id, example_id, label, source, actor) "
                        f"VALUES ({NEXT_EVENT_ID}, '1', ?, 'review', 'x')",
                        [label])
    ids = [r[0] for r in toy_con.execute("SELECT event_id FROM label_events ORDER BY created_at, event_id").fetchall()]
    assert ids == sorted(ids) and len(set(ids)) == 3


def test_read_only_needs_a_warehouse(toy_home: Home) -> None:
    with pytest.raises(EngineError, match="no warehouse yet"):
        with open_warehouse(toy_home, read_only=True):
            pass


def test_a_locked_warehouse_names_the_holder(toy_home: Home) -> None:
    with open_warehouse(toy_home):
        pass
    holder = subprocess.Popen(
        [sys.executable, "-c",
         "import duckdb, sys, time; c = duckdb.connect(sys.argv[1]); print('ready', flush=True); time.sleep(60)",
         str(toy_home.warehouse_path)],
        stdout=subprocess.PIPE, text=True,
    )
    try:
        assert holder.stdout.readline().strip() == "ready"
        start = time.monotonic()
        with pytest.raises(WarehouseBusyError) as info:
            with open_warehouse(toy_home, wait_s=0.5):
                pass
        assert time.monotonic() - start < 10
        assert "locked" in str(info.value) and str(holder.pid) in str(info.value)
    finally:
        holder.kill()
        holder.wait()
    with open_warehouse(toy_home, wait_s=5) as con:  # free again
        assert con.execute("SELECT 1").fetchone() == (1,)


def test_a_file_that_is_not_a_database_is_an_engine_error(toy_home: Home) -> None:
    toy_home.warehouse_path.write_bytes(b"not a duckdb file" * 100)
    with pytest.raises(EngineError, match="cannot open the warehouse"):
        with open_warehouse(toy_home, wait_s=0):
            pass


def test_a_warehouse_another_process_is_creating_is_waited_for(toy_home: Home) -> None:
    # The moment between DuckDB creating the file and writing its headers: an empty file, then the
    # warehouse in its place. The open waits and succeeds instead of calling it invalid.
    import threading

    toy_home.root.mkdir(parents=True, exist_ok=True)
    toy_home.warehouse_path.write_bytes(b"")

    def create() -> None:
        time.sleep(0.5)
        made = toy_home.root / "made.duckdb"
        duckdb.connect(str(made)).close()
        made.replace(toy_home.warehouse_path)

    creator = threading.Thread(target=create)
    creator.start()
    try:
        with open_warehouse(toy_home, wait_s=10) as con:
            assert con.execute("SELECT count(*) FROM batches").fetchone() == (0,)
    finally:
        creator.join()


def test_an_empty_file_left_alone_is_an_engine_error_at_once(toy_home: Home) -> None:
    import os

    toy_home.root.mkdir(parents=True, exist_ok=True)
    toy_home.warehouse_path.write_bytes(b"")
    old = time.time() - 3600
    os.utime(toy_home.warehouse_path, (old, old))
    start = time.monotonic()
    with pytest.raises(EngineError, match="cannot open the warehouse"):
        with open_warehouse(toy_home, wait_s=30):
            pass
    assert time.monotonic() - start < 5


@pytest.mark.parametrize("name", ['plain', 'with space', 'quo"te', 'select', "x'y"])
def test_quote_ident_round_trips(name: str) -> None:
    con = duckdb.connect()
    con.execute(f"CREATE TABLE t ({quote_ident(name)} INTEGER)")
    con.execute(f"INSERT INTO t ({quote_ident(name)}) VALUES (1)")
    assert con.execute("SELECT column_name FROM information_schema.columns WHERE table_name = 't'").fetchone() == (name,)


def test_gold_rows_of_an_older_warehouse_move_to_the_gold_id_space() -> None:
    con = duckdb.connect()
    _warehouse_before(con, "0700_gold_id_space.sql")
    # The bug this fixes: a gold row with a training example's id became a version of it.
    con.execute("INSERT INTO examples (example_id, version, batch_id, row_number, content_hash, feature_hash, is_gold) "
                "VALUES ('1', 1, 'train', 1, 1, 1, false), ('1', 2, 'gold', 1, 2, 2, true), ('9', 1, 'gold', 2, 3, 3, true)")
    con.execute("INSERT INTO label_ledger (event_id, example_id, example_version, label, source, actor, detail) VALUES "
                "(1, '1', 1, 'a', 'ingest', 'batch:train', '{\"batch_id\": \"train\", \"gold\": false}'), "
                "(2, '1', 2, 'b', 'ingest', 'batch:gold', '{\"batch_id\": \"gold\", \"gold\": true}')")
    assert "0700_gold_id_space.sql" in apply_migrations(con)
    assert con.execute("SELECT example_id, version, is_gold FROM examples ORDER BY ALL").fetchall() == [
        ("1", 1, False), ("gold:1", 2, True), ("gold:9", 1, True)]
    assert con.execute("SELECT event_id, example_id FROM label_ledger ORDER BY 1").fetchall() == [(1, "1"), (2, "gold:1")]


def test_release_cache_evicts_cached_blocks_and_keeps_the_limit_and_the_data(tmp_path) -> None:
    from data_engine.store.warehouse import release_cache

    con = duckdb.connect(str(tmp_path / "w.duckdb"))
    # hashes: data that does not compress, so the read blocks are megabytes
    con.execute("CREATE TABLE t AS SELECT range AS i, hash(range) AS j FROM range(2000000)")
    con.execute("CHECKPOINT")
    before = con.execute("SELECT sum(i), sum(j % 1000) FROM t").fetchall()

    def cached() -> int:
        return con.execute("SELECT coalesce(sum(memory_usage_bytes), 0) FROM duckdb_memory() "
                           "WHERE tag = 'BASE_TABLE'").fetchall()[0][0]

    assert cached() > 8 << 20  # the blocks the sums read
    default = con.execute("SELECT current_setting('memory_limit')").fetchall()[0][0]
    release_cache(con)
    assert cached() < 1 << 20  # at most the moment's limit (store.warehouse._EVICT_LIMIT)
    assert con.execute("SELECT current_setting('memory_limit')").fetchall()[0][0] == default
    con.execute("SELECT sum(j % 1000) FROM t").fetchall()
    con.execute("SET memory_limit = '2GB'")
    set_limit = con.execute("SELECT current_setting('memory_limit')").fetchall()[0][0]
    release_cache(con)  # a limit someone set is left alone, and the blocks with it
    assert con.execute("SELECT current_setting('memory_limit')").fetchall()[0][0] == set_limit
    assert cached() > 8 << 20
    after = con.execute("SELECT sum(i), sum(j % 1000) FROM t").fetchall()
    assert after == before and after[0][0] == 1999999000000
    con.close()


def test_a_waiter_retries_a_locked_warehouse_at_least_every_quarter_second(tmp_path, monkeypatch) -> None:
    # DuckDB's lock has no queue: a waiter that backed off to a second lost it to newer waiters.
    from data_engine.store import warehouse

    tries = {"n": 0}
    pauses: list[float] = []
    connect = duckdb.connect

    def locked_then_open(path: str, read_only: bool = False):
        tries["n"] += 1
        if tries["n"] <= 12:
            raise duckdb.IOException('Could not set lock on file "x": Conflicting lock is held (PID 1)')
        return connect(str(tmp_path / "w.duckdb"))

    monkeypatch.setattr(warehouse.duckdb, "connect", locked_then_open)
    monkeypatch.setattr(warehouse.time, "sleep", pauses.append)
    warehouse._connect("w.duckdb", False, 60.0).close()
    assert len(pauses) == 12
    assert pauses[0] < 0.1 and max(pauses) == warehouse.MAX_RETRY_DELAY_S == 0.25
