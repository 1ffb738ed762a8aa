"""Decisions the loop's sensors make, as plain functions over the warehouse (tested without Dagster).

Each returns a :class:`Trigger`: whether to request a run, why (shown as the SkipReason or in the
run's tags), and a run key that makes the request idempotent: the same state never starts the
same work twice.
"""

from __future__ import annotations

from dataclasses import dataclass

import duckdb

from data_engine.store.config import EngineConfig
from data_engine.store.dataset import label_snapshot
from data_engine.store.warehouse import has_table


@dataclass(frozen=True)
class Trigger:
    """A sensor's decision."""

    run: bool
    reason: str
    run_key: str


def mining_trigger(con: duckdb.DuckDBPyConnection) -> Trigger:
    """Mine when labels or examples changed since the last mining run (and labeled data exists)."""
    snapshot = label_snapshot(con)
    versions = int(con.execute("SELECT count(*) FROM examples").fetchone()[0])
    key = f"mine-{snapshot}-{versions}"
    if snapshot == 0:
        return Trigger(False, "no labeled data yet", key)
    if not has_table(con, "mining_runs"):
        return Trigger(True, "no mining run yet", key)
    last = con.execute(
        "SELECT run_id, label_snapshot, started_at FROM mining_runs ORDER BY started_at DESC LIMIT 1"
    ).fetchone()
    if last is None:
        return Trigger(True, f"no mining run yet; labels up to event {snapshot}", key)
    newer = int(con.execute("SELECT count(*) FROM examples WHERE ingested_at > ?", [last[2]]).fetchone()[0])
    if last[1] == snapshot and newer == 0:
        return Trigger(False, f"nothing new since mining run {last[0]} (labels up to event {snapshot})", key)
    what = []
    if last[1] != snapshot:
        what.append(f"labels changed (event {last[1]} -> {snapshot})")
    if newer:
        what.append(f"{newer} example version(s) ingested")
    return Trigger(True, f"{' and '.join(what)} since mining run {last[0]}", key)


def retrain_trigger(con: duckdb.DuckDBPyConnection, cfg: EngineConfig) -> Trigger:
    """Retrain when enough new corrections arrived or a new labeled batch landed (see training)."""
    from data_engine.ship.training import retrain_decision

    decision = retrain_decision(con, cfg)
    return Trigger(decision.retrain, decision.reason, decision.run_key)
