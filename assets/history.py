"""Record what ran outside Dagster (``make demo``, the CLI) in the home's Dagster instance.

``python -m assets.history`` (with ``DATA_ENGINE_HOME``; ``DAGSTER_HOME`` defaults to the home's
``dagster/``) reads the warehouse's own records of the loop (batches, mining runs, review tasks and
verdicts, models with their gate verdicts, deployments) and reports each as a runless
``AssetMaterialization`` or ``AssetCheckEvaluation`` (Dagster's API for events that happened
outside a run), in the order they happened, with the same typed metadata the assets write. So
``make up`` after ``make demo`` shows the loop's history, the noise matrices and the gate's checks.
What was recorded is kept in ``DAGSTER_HOME/history_cursor.json``: running it again adds only what
is new.
"""

from __future__ import annotations

import json
import os
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Any

import dagster as dg

from assets.ingest import batches_partitions
from assets.metadata import ROW_COUNT, figure, gate_metadata, number, numbers, table
from data_engine.ship.registry import gate_records
from data_engine.store.home import Home
from data_engine.store.warehouse import has_table, open_warehouse

CURSOR_FILE = "history_cursor.json"
ORIGIN = "data-engine/recorded_from"


@dataclass
class Cursor:
    """What was already reported: batch ids, and the highest mining run, model and deployment ids."""

    batches: list[str] = field(default_factory=list)
    mining_run: int = 0
    model: int = 0
    deployment: int = 0

    @classmethod
    def load(cls, path: Path) -> "Cursor":
        return cls(**json.loads(path.read_text())) if path.exists() else cls()

    def save(self, path: Path) -> None:
        path.write_text(json.dumps(self.__dict__))


def _when(ts: datetime | None) -> dg.MetadataValue:
    return dg.MetadataValue.text(ts.isoformat(timespec="seconds") if ts else "")


def _batch_events(con, home: Home, cursor: Cursor) -> list[tuple[datetime, Any]]:
    rows = con.execute("SELECT batch_id, path, sha256, is_gold, received_at, rows_in, rows_ok, rows_quarantined, "
                       "rows_new, rows_changed, rows_unchanged, rows_labeled, status FROM batches "
                       "WHERE status = 'ingested' ORDER BY received_at").fetchall()
    out = []
    for (batch_id, path, sha, gold, at, *counts, status) in rows:
        if batch_id in cursor.batches:
            continue
        p = Path(path)
        key = str(p.relative_to(home.landing)) if p.is_relative_to(home.landing) else p.name
        names = ("rows_in", "rows_ok", "rows_quarantined", "rows_new", "rows_changed", "rows_unchanged", "rows_labeled")
        meta = {ROW_COUNT: dg.MetadataValue.int(int(counts[1])), "batch_id": dg.MetadataValue.text(batch_id),
                "status": dg.MetadataValue.text(status), "gold": dg.MetadataValue.bool(bool(gold)),
                **numbers(dict(zip(names, (int(c) for c in counts)))), ORIGIN: _when(at)}
        out.append((at, ("batch", batch_id, key, dg.AssetMaterialization(
            "landed_batch", partition=key, metadata=meta, tags={"dagster/data_version": sha[:16]}))))
    return out


def _mining_events(con, home: Home, cursor: Cursor) -> list[tuple[datetime, Any]]:
    out = []
    runs = con.execute("SELECT run_id, started_at, finished_at, label_snapshot, model_spec, counts, timings, noise_rate, "
                       "n_labeled, n_unlabeled FROM mining_runs WHERE run_id > ? ORDER BY run_id",
                       [cursor.mining_run]).fetchall()
    for run_id, started, finished, snapshot, spec, counts, timings, noise, n_labeled, n_unlabeled in runs:
        counts, timings = json.loads(counts or "{}"), json.loads(timings or "{}")
        at = finished or started
        oof = {ROW_COUNT: dg.MetadataValue.int(int(n_labeled or 0)),
               **numbers({"labeled_examples": n_labeled, "unlabeled_examples": n_unlabeled, "label_snapshot": snapshot}),
               "model_spec": dg.MetadataValue.text(spec), ORIGIN: _when(started)}
        issues = {ROW_COUNT: dg.MetadataValue.int(sum(counts.values())), "run_id": dg.MetadataValue.int(run_id),
                  **{f"flagged_{k}": dg.MetadataValue.int(int(v)) for k, v in counts.items()},
                  "estimated_noise_rate": number(noise),
                  "seconds_per_stage": table([{"stage": k, "seconds": v} for k, v in timings.items()],
                                             [("stage", str), ("seconds", float)], digits=2),
                  ORIGIN: _when(at)}
        plot = home.root / "plots" / f"noise-matrix-run-{run_id}.png"
        if plot.exists():
            issues |= {f"noise_matrix{k[len('figure'):]}": v for k, v in figure(
                plot.read_bytes(), "Estimated joint distribution of given and true labels", plot).items()}
        top = con.execute("SELECT rank, example_id, array_to_string(issue_types, ', '), priority, given_label, "
                          "suggested_label FROM review_queue WHERE run_id = ? ORDER BY rank LIMIT 10", [run_id]).fetchall()
        size = con.execute("SELECT count(*) FROM review_queue WHERE run_id = ?", [run_id]).fetchone()[0]
        queue = {ROW_COUNT: dg.MetadataValue.int(int(size)), "run_id": dg.MetadataValue.int(run_id),
                 "top_of_queue": table([dict(zip(("rank", "example", "issues", "priority", "given", "suggested"), r))
                                        for r in top], [("rank", int), ("example", str), ("issues", str),
                                                        ("priority", float), ("given", str), ("suggested", str)], 3),
                 ORIGIN: _when(at)}
        events = [dg.AssetMaterialization("oof_predictions", metadata=oof),
                  dg.AssetMaterialization("detected_issues", metadata=issues),
                  dg.AssetMaterialization("review_queue", metadata=queue)]
        out.append((at, ("mining_run", run_id, None, events)))
        out += _review_events(con, run_id)
    return out


def _review_events(con, run_id: int) -> list[tuple[datetime, Any]]:
    if not has_table(con, "review_tasks"):
        return []
    out = []
    sent, first = con.execute("SELECT count(*), min(sent_at) FROM review_tasks WHERE run_id = ?", [str(run_id)]).fetchone()
    if sent:
        out.append((first, ("tasks", run_id, None, [dg.AssetMaterialization("review_tasks", metadata={
            ROW_COUNT: dg.MetadataValue.int(int(sent)), "sent": dg.MetadataValue.int(int(sent)),
            "run_id": dg.MetadataValue.int(run_id), ORIGIN: _when(first)})])))
    stats = con.execute("SELECT count(*) FILTER (WHERE outcome = 'confirmed'), count(*), max(decided_at) "
                        "FROM review_verdicts WHERE run_id = ?", [str(run_id)]).fetchone()
    if stats[1]:
        out.append((stats[2], ("verdicts", run_id, None, [dg.AssetMaterialization("review_verdicts", metadata={
            ROW_COUNT: dg.MetadataValue.int(int(stats[1])),
            **numbers({"reviews": int(stats[1]), "confirmed": int(stats[0]), "confirmed_share": stats[0] / stats[1]}),
            "run_id": dg.MetadataValue.int(run_id), ORIGIN: _when(stats[2])})])))
    return out


def _model_events(con, cursor: Cursor) -> list[tuple[datetime, Any]]:
    out = []
    gates = {g.model_version: g for g in gate_records(con)} if has_table(con, "gate_verdicts") else {}
    for version, created, evaluated, snapshot, size, spec, metrics, status, _reason in con.execute(
            "SELECT version, created_at, evaluated_at, label_snapshot, train_size, model_spec, metrics, status, reason "
            "FROM models WHERE version > ? ORDER BY version", [cursor.model]).fetchall():
        metrics = json.loads(metrics or "{}")
        meta = {**numbers({"version": version, "train_size": size, "label_snapshot": snapshot,
                           "gold_accuracy": metrics.get("accuracy"), "gold_macro_f1": metrics.get("macro_f1")}),
                "model_spec": dg.MetadataValue.text(spec), "status": dg.MetadataValue.text(status), ORIGIN: _when(created)}
        recall = metrics.get("per_class_recall") or {}
        if recall:
            meta["gold_recall_per_class"] = table([{"class": c, "recall": r} for c, r in recall.items()],
                                                  [("class", str), ("recall", float)], 3)
        events: list[Any] = [dg.AssetMaterialization("candidate_model", metadata=meta)]
        gate = gates.get(version)
        if gate is not None:
            # The same typed verdict the check reports in a run (gate_verdicts), not the model's status.
            events.append(dg.AssetCheckEvaluation(
                asset_key=dg.AssetKey("candidate_model"), check_name="promotion_gate",
                passed=bool(gate.passed), severity=dg.AssetCheckSeverity.WARN,
                description=("promoted: " if gate.passed else "refused: ") + gate.reason,
                metadata={**gate_metadata(gate), **numbers({"gold_accuracy": metrics.get("accuracy")}),
                          ORIGIN: _when(gate.decided_at or evaluated)}))
        out.append((created, ("model", version, None, events)))
    return out


def _deployment_events(con, cursor: Cursor) -> list[tuple[datetime, Any]]:
    return [(at, ("deployment", dep_id, None, [dg.AssetMaterialization("champion_model", metadata={
        **numbers({"champion_version": version, "previous_version": previous or 0, "deployment_id": dep_id}),
        "reason": dg.MetadataValue.text(reason or ""), ORIGIN: _when(at)})]))
        for dep_id, version, previous, reason, at in con.execute(
            "SELECT deployment_id, model_version, previous_version, reason, created_at FROM deployments "
            "WHERE action = 'promote' AND deployment_id > ? ORDER BY deployment_id", [cursor.deployment]).fetchall()]


def record_history(home: Home, instance: dg.DagsterInstance) -> int:
    """Report the warehouse's history not reported yet to ``instance``; return the events reported."""
    path = Path(instance.root_directory) / CURSOR_FILE
    cursor = Cursor.load(path)
    with open_warehouse(home, read_only=True) as con:
        timeline = _batch_events(con, home, cursor)
        if has_table(con, "mining_runs"):
            timeline += _mining_events(con, home, cursor)
        timeline += _model_events(con, cursor) + _deployment_events(con, cursor)
    timeline.sort(key=lambda item: item[0])
    keys = [key for _, (kind, _, key, _) in timeline if kind == "batch"]
    if keys:
        instance.add_dynamic_partitions(batches_partitions.name, keys)
    reported = 0
    for _, (kind, ident, _, events) in timeline:
        for event in events if isinstance(events, list) else [events]:
            instance.report_runless_asset_event(event)
            reported += 1
        if kind == "batch":
            cursor.batches.append(ident)
        elif kind in ("mining_run", "model", "deployment"):
            setattr(cursor, kind, max(getattr(cursor, kind), int(ident)))
    cursor.save(path)
    return reported


def main() -> int:
    """``python -m assets.history``: the home from DATA_ENGINE_HOME, the instance from DAGSTER_HOME."""
    home = Home.resolve(os.environ.get("DATA_ENGINE_HOME"))
    os.environ.setdefault("DAGSTER_HOME", str(home.dagster_home))
    Path(os.environ["DAGSTER_HOME"]).mkdir(parents=True, exist_ok=True)
    with dg.DagsterInstance.get() as instance:
        n = record_history(home, instance)
    print(f"recorded {n} event(s) of {home.root} in the Dagster instance at {os.environ['DAGSTER_HOME']}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
