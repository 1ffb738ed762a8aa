"""An existing home migrates: a warehouse built with the migrations up to 0760 opens and keeps its data."""

from __future__ import annotations

import json
from pathlib import Path

import duckdb

from data_engine.ship.registry import gate_record, get_model
from data_engine.store.home import Home
from data_engine.store.warehouse import apply_migrations, migration_names, open_warehouse


def _old_warehouse(path: Path, last: str = "0760") -> None:
    """A warehouse as an engine of the 0760 schema left it (the shipped migration files up to ``last``)."""
    con = duckdb.connect(str(path))
    apply_migrations(con, before=f"{int(last) + 1:04d}")
    gate = {"promote": True, "metric": "accuracy", "test": "paired", "alpha": 0.05, "outcome": "better",
            "champion_version": 1, "n_gold": 200, "difference": 0.035, "ci_low": 0.01, "ci_high": 0.06,
            "p_worse": 0.002, "p_better": 0.998, "reason": "better than v1 on 200 gold examples"}
    refused = {**gate, "promote": False, "outcome": "worse", "difference": -0.04, "champion_version": 2,
               "reason": "worse than v2"}
    rows = [(1, "champion", "first model", None), (2, "candidate", "gate passed: " + gate["reason"], gate),
            (3, "refused", refused["reason"], refused)]
    con.executemany(
        "INSERT INTO models (version, label_snapshot, train_size, model_spec, classes, input_schema, metrics, "
        "artifact_path, sha256, status, reason, evaluated_at) VALUES (?, 1, 100, 'logreg', '[\"a\", \"b\"]', '{}', ?, "
        "'m.skops', 'x', ?, ?, now())",
        [[v, json.dumps({"accuracy": 0.9, "gate": g}) if g else None, status, reason] for v, status, reason, g in rows])
    con.close()


def test_an_old_home_gets_typed_gate_verdicts_and_keeps_its_models(tmp_path: Path) -> None:
    home = Home(tmp_path / "home")
    home.make_dirs()
    _old_warehouse(home.warehouse_path)
    with open_warehouse(home) as con:
        applied = {r[0] for r in con.execute("SELECT name FROM schema_migrations").fetchall()}
        assert set(migration_names()) <= applied
        assert con.execute("SELECT count(*) FROM models").fetchone()[0] == 3
        passed, refused = gate_record(con, 2), gate_record(con, 3)
        assert gate_record(con, 1) is None  # never judged by the gate (the first model)
        assert (passed.passed, passed.metric, passed.test, passed.champion_version, passed.n_gold) == (
            True, "accuracy", "paired", 1, 200)
        assert (passed.difference, passed.p_worse) == (0.035, 0.002)
        assert (refused.passed, refused.difference, refused.outcome) == (False, -0.04, "worse")
        # The prefix leaves the model's reason; the verdict is in its own typed columns.
        assert get_model(con, 2).reason == "better than v1 on 200 gold examples"
        assert get_model(con, 3).reason == "worse than v2"
        assert get_model(con, 1).reason == "first model"


def test_an_old_home_keeps_its_review_rows_under_project_keys_equal_to_the_server_ids(tmp_path: Path) -> None:
    home = Home(tmp_path / "home")
    home.make_dirs()
    path = home.warehouse_path
    _old_warehouse(path, last="0810")
    con = duckdb.connect(str(path))
    con.execute("INSERT INTO review_projects (url, title, project_id, dataset, created_at) VALUES "
                "('http://old', 't', 7, 'd', '2026-01-01'), ('http://ls', 't', 7, 'd', '2026-02-01')")
    # An answer pulled, then edited (two events), and a later answer of another example.
    con.executemany("INSERT INTO label_ledger (event_id, example_id, example_version, label, source, actor, detail) "
                    "VALUES (?, ?, 1, ?, 'review', 'a', ?)",
                    [[1, "x", "3", '{"annotation_id": 5}'], [2, "x", "4", '{"annotation_id": 5}'],
                     [3, "y", "1", '{"annotation_id": 6}']])
    con.executemany("INSERT INTO review_annotations (annotation_id, project_id, task_id, example_id, example_version, "
                    "annotator, choice, label, is_discard, updated_at, source, event_id) "
                    "VALUES (?, 7, ?, ?, 1, 'a', ?, ?, false, '2026-01-01T00:00:00Z', 'review', ?)",
                    [[5, 11, "x", "4", "4", 2], [6, 12, "y", "1", "1", 3]])
    con.execute("INSERT INTO review_verdicts (task_id, project_id, example_id, example_version, label, is_discard, "
                "outcome, source, n_votes, event_id) VALUES (11, 7, 'x', 1, '4', false, 'confirmed', 'review', 1, 2)")
    con.close()
    with open_warehouse(home) as con:
        project = con.execute("SELECT project_key, url, project_id, project_created_at, retired_reason "
                              "FROM review_projects ORDER BY project_key").fetchall()
        annotations = con.execute("SELECT annotation_id, project_id, first_event_id, event_id FROM review_annotations "
                                  "ORDER BY annotation_id").fetchall()
        verdicts = con.execute("SELECT project_id, task_id, label FROM review_verdicts").fetchall()
        stats = con.execute("SELECT count(*) FROM review_verdict_stats").fetchall()
    # Its identity is recorded at the next push or pull; an older server's project 7 gets its own key.
    assert project == [(7, "http://ls", 7, None, None), (8, "http://old", 7, None, "same id on another server")]
    assert annotations == [(5, 7, 1, 2), (6, 7, 3, 3)]  # a retraction withdraws both versions of 5
    assert verdicts == [(7, 11, "4")] and stats == [(0,)]
