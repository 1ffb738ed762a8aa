"""One type per id across tables (migration 0820): a mining run's id is BIGINT wherever it is
stored, an older warehouse keeps every row with equal values, and no id column may come back with a
second type."""

from __future__ import annotations

import re
from collections import defaultdict
from pathlib import Path

import duckdb
import pytest

from data_engine.errors import EngineError
from data_engine.review.project import latest_run_id
from data_engine.review.verdicts import verdict_stats
from data_engine.store.home import Home
from data_engine.store.warehouse import apply_migrations, open_warehouse

# Columns that hold the same id under another name (a run of mining, a label event, a version).
ALIASES = {"mining_run_id": "run_id", "label_event_id": "event_id", "partner_id": "example_id",
           "candidate_version": "model_version", "champion_version": "model_version",
           "previous_version": "model_version"}
FIRST_NEW = "0820"  # the first migration an old warehouse of these tests lacks


def id_kind(table: str, column: str) -> str | None:
    """The id a column holds (its name up to aliases), or None for a column that holds no id.
    ``version`` is an example's version in the example tables and a model's in ``models``."""
    if column == "version":
        return "model_version" if table == "models" else "example_version"
    if column.endswith("_id") or column.endswith("_version"):
        return ALIASES.get(column, column)
    return None


def test_every_id_has_one_type_across_tables_and_views() -> None:
    con = duckdb.connect()
    apply_migrations(con)
    types: dict[str, dict[str, set[str]]] = defaultdict(lambda: defaultdict(set))
    for table, column, data_type in con.execute(
            "SELECT table_name, column_name, data_type FROM information_schema.columns").fetchall():
        kind = id_kind(table, column)
        if kind is not None:
            types[kind][data_type].add(f"{table}.{column}")
    # The check must see the ids it is about (a renamed catalogue would make it pass vacuously).
    assert {"run_id", "example_id", "example_version", "model_version", "project_id", "task_id", "batch_id",
            "event_id"} <= set(types)
    mixed = {kind: {t: sorted(cols) for t, cols in by_type.items()} for kind, by_type in types.items()
             if len(by_type) > 1}
    assert not mixed, f"ids stored with more than one type: {mixed}"
    assert set(types["run_id"]) == {"BIGINT"}


def test_the_check_sees_a_second_type() -> None:
    con = duckdb.connect()
    apply_migrations(con, before=FIRST_NEW)
    run_types = {r[0] for r in con.execute(
        "SELECT DISTINCT data_type FROM information_schema.columns WHERE column_name = 'run_id'").fetchall()}
    assert run_types == {"BIGINT", "VARCHAR"}  # the schema before 0820, which the contract above refuses


def _old_home(tmp_path: Path) -> Home:
    """A home whose warehouse an engine of the 0810 schema left: a mining run with issues and a
    queue, its tasks (one still being sent, without a run) and verdicts, and a propagation."""
    home = Home(tmp_path / "home")
    home.make_dirs()
    con = duckdb.connect(str(home.warehouse_path))
    apply_migrations(con, before=FIRST_NEW)
    con.execute("INSERT INTO mining_runs (run_id, started_at, finished_at, label_snapshot, model_spec) VALUES "
                "(7, now(), now(), 40, 'logreg'), (12, now(), now(), 55, 'logreg')")
    con.execute("INSERT INTO issues (run_id, example_id, example_version, issue_type, score, is_issue) VALUES "
                "(12, 'a', 1, 'label', 0.1, true), (12, 'b', 2, 'outlier', 0.2, true)")
    con.execute("INSERT INTO review_queue (run_id, rank, example_id, example_version, issue_types, priority, "
                "given_label, selection) VALUES (12, 1, 'a', 1, ['label'], 0.9, 'cat', 'fix'), "
                "(12, 2, 'b', 2, ['outlier'], 0.5, 'dog', 'fix')")
    con.execute("INSERT INTO review_tasks (project_id, example_id, example_version, opinion, engine_key, run_id, "
                "task_id, status, issue_types, given_label) VALUES "
                "(3, 'a', 1, 1, 'k-a', '12', 101, 'done', ['label'], 'cat'), "
                "(3, 'b', 2, 1, 'k-b', '12', 102, 'open', ['outlier'], 'dog'), "
                "(3, 'c', 1, 1, 'k-c', '7', 90, 'done', ['label'], 'dog'), "
                "(3, 'd', 1, 1, 'k-d', NULL, NULL, 'sending', NULL, NULL)")
    con.execute("INSERT INTO review_verdicts (task_id, project_id, example_id, example_version, run_id, issue_types, "
                "given_label, label, is_discard, outcome, source, n_votes, agreement, event_id) VALUES "
                "(101, 3, 'a', 1, '12', ['label'], 'cat', 'dog', false, 'confirmed', 'review', 1, 1.0, 5), "
                "(90, 3, 'c', 1, '7', ['label'], 'dog', 'dog', false, 'rejected', 'review', 1, 1.0, 4)")
    con.execute("INSERT INTO propagation_runs (propagation_id, mining_run_id, actor, policy, n_verdicts, "
                "n_lookalikes, n_copies, n_audit) VALUES (1, 12, 'lookalike v1', 'apply', 2, 0, 1, 0)")
    con.close()
    return home


def _snapshot(con: duckdb.DuckDBPyConnection) -> dict[str, list[dict]]:
    """Every row of every base table (the migration bookkeeping aside) as ``{column: value}``, run ids
    as integers."""
    tables = [r[0] for r in con.execute(
        "SELECT table_name FROM information_schema.tables WHERE table_type = 'BASE TABLE' "
        "AND table_name <> 'schema_migrations' ORDER BY 1").fetchall()]
    out = {}
    for table in tables:
        cur = con.execute(f'SELECT * FROM "{table}"')
        names = [d[0] for d in cur.description]
        out[table] = [{n: int(v) if n == "run_id" and v is not None else v for n, v in zip(names, row)}
                      for row in cur.fetchall()]
    return out


def _kept(rows: list[dict], columns: set[str]) -> list[dict]:
    """``rows`` cut to ``columns`` (later migrations may add columns), in one order."""
    return sorted(({c: r[c] for c in columns if c in r} for r in rows), key=repr)


@pytest.mark.parametrize("read_only", [False, True])
def test_an_old_home_keeps_every_row_with_equal_values(tmp_path: Path, read_only: bool) -> None:
    home = _old_home(tmp_path)
    con = duckdb.connect(str(home.warehouse_path))
    before = _snapshot(con)
    con.close()
    assert before["review_tasks"] and before["review_verdicts"] and before["mining_runs"]
    # A read-only open (status, a sensor) finds the older schema and migrates it first, as a writer does.
    with open_warehouse(home, read_only=read_only) as con:
        after = _snapshot(con)
        # Every table of the old home keeps its rows; tables later migrations add start empty.
        for table, rows in before.items():
            columns = set(rows[0]) if rows else set()
            assert _kept(after[table], columns) == _kept(rows, columns), table
        assert not any(after[table] for table in set(after) - set(before))
        assert con.execute("SELECT count(*) FROM schema_migrations WHERE name LIKE '0820%'").fetchone()[0] == 1
        # Queue, tasks and verdicts now join on the run id as stored, without casting either side.
        assert con.execute("SELECT count(*) FROM review_queue q JOIN review_tasks t "
                           "ON t.run_id = q.run_id AND t.example_id = q.example_id").fetchone()[0] == 2
        assert latest_run_id(con) == 12
        assert verdict_stats(con, 12) == [{"run_id": 12, "issue_type": "label", "confirmed": 1, "rejected": 0,
                                           "reviewed": 1}]
        assert {s["run_id"] for s in verdict_stats(con)} == {7, 12}


def test_a_run_id_that_is_not_an_integer_fails_the_migration_and_changes_nothing(tmp_path: Path) -> None:
    home = _old_home(tmp_path)
    con = duckdb.connect(str(home.warehouse_path))
    con.execute("UPDATE review_tasks SET run_id = 'run-12' WHERE task_id = 101")
    before = con.execute("SELECT * FROM review_tasks ORDER BY ALL").fetchall()
    con.close()
    with pytest.raises(EngineError, match="0820_run_id_type.sql: cannot convert a stored value.*run-12"):
        with open_warehouse(home):
            pass
    con = duckdb.connect(str(home.warehouse_path))
    assert con.execute("SELECT * FROM review_tasks ORDER BY ALL").fetchall() == before
    assert con.execute("SELECT count(*) FROM schema_migrations WHERE name LIKE '0820%'").fetchone()[0] == 0
    con.close()


def test_stage_code_never_probes_the_schema() -> None:
    """The schema is a contract, not guessed: only the warehouse's ``has_table`` (for a home opened
    read-only before a migration) and the file readers (a user's file, not the warehouse) ask the
    catalogue; any other ``information_schema`` / ``DESCRIBE`` / ``PRAGMA`` is a stage guessing."""
    import data_engine

    root = Path(data_engine.__file__).parent
    allowed = {root / "store" / "warehouse.py", root / "ingest" / "readers.py"}
    probing = re.compile(r"information_schema|PRAGMA\s+table_info|\bDESCRIBE\b")  # SQL as the engine writes it
    offenders = [f"{p.relative_to(root)}:{n}" for p in sorted(root.rglob("*.py")) if p not in allowed
                 for n, line in enumerate(p.read_text().splitlines(), 1) if probing.search(line)]
    assert not offenders, f"schema probed outside the warehouse: {offenders}"
