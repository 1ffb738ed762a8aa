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
