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
from dataclasses import asdict, dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Any

import dagster as dg

from assets.ingest import batches_partitions, ingest_metadata
from assets.mine import issues_metadata, oof_metadata, queue_metadata
from assets.review import tasks_metadata, verdicts_metadata
from assets.ship import (GATE_CHECK, candidate_metadata, candidate_record, champion_metadata, gate_metadata,
                         gate_fields, per_class_rows, served_choice_metadata)
from data_engine.ingest.result import ingested_batches
from data_engine.mine.run import QUEUE_PREVIEW_ROWS
from data_engine.mine.runs import runs_after, stored_queue_top, stored_run
from data_engine.review.verdicts import review_round, verdict_stats
from data_engine.ship.deploy import history as deployment_history
from data_engine.ship.registry import gate_records, list_models
from data_engine.store.home import Home
from data_engine.store.warehouse import open_warehouse
from data_engine.tasks import task_for

CURSOR_FILE = "history_cursor.json"
ORIGIN = "data-engine/recorded_from"
# What only a run knows exactly: the warehouse does not keep it (null in the history's events) or
# keeps less of it (a mining run's timings are stored before its own "store" stage ends).
RUN_ONLY = {
    # A mining run keeps whether it re-used the predictions, not whether they were computed fresh
    # before it: the asset's "reused" is not in the warehouse.
    "oof_predictions": {"champion_scored_new", "champion_flagged", "reused"},
    "detected_issues": {"estimated_noise_rate_low", "estimated_noise_rate_high", "propagated_examples", "propagation",
                        "seconds", "seconds_per_stage"},
    "review_queue": {"weights"},
    "candidate_model": {"seconds", "weighted_by_label_quality"},
    "review_tasks": {"reconciled", "project_id", "tasks_not_done", "http_requests", "seconds", "label_studio"},
    "review_verdicts": {"tasks_seen", "label_events", "consensus", "discards", "ties_pending", "http_requests",
                        "cursor"},
}


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


# Each event's metadata comes from the asset's own builder, given the record the warehouse kept of
# the run (read by each stage's own functions): what `make demo` and the CLI did reads as what the
# assets would have written.
def _batch_events(con, home: Home, cursor: Cursor) -> list[tuple[datetime, Any]]:
    out = []
    for at, result in ingested_batches(con):
        if result.batch_id in cursor.batches:
            continue
        p = Path(result.path)
        key = str(p.relative_to(home.landing)) if p.is_relative_to(home.landing) else p.name
        meta = {**ingest_metadata(result), ORIGIN: _when(at)}
        out.append((at, ("batch", result.batch_id, key, dg.AssetMaterialization(
            "landed_batch", partition=key, metadata=meta, tags={"dagster/data_version": result.sha256[:16]}))))
    return out


def _mining_events(con, home: Home, cursor: Cursor) -> list[tuple[datetime, Any]]:
    out = []
    for run_id, started, finished in runs_after(con, cursor.mining_run):
        record = stored_run(con, run_id)
        at = finished or started
        oof = oof_metadata({"labeled_examples": record["n_labeled"], "unlabeled_examples": record["n_unlabeled"],
                            "label_snapshot": record["label_snapshot"], "model_spec": record["model_spec"],
                            "rare_classes": record["rare_classes"]})
        plot = home.root / "plots" / f"noise-matrix-run-{run_id}.png"
        issues = issues_metadata(record, plot.read_bytes() if plot.exists() else None, plot if plot.exists() else None)
        # The weights a run ranked with are not stored: the history's queue shows none.
        queue = queue_metadata(record, stored_queue_top(con, run_id, QUEUE_PREVIEW_ROWS), {})
        events = [dg.AssetMaterialization("oof_predictions", metadata={**oof, ORIGIN: _when(started)}),
                  dg.AssetMaterialization("detected_issues", metadata={**issues, ORIGIN: _when(at)}),
                  dg.AssetMaterialization("review_queue", metadata={**queue, ORIGIN: _when(at)})]
        out.append((at, ("mining_run", run_id, None, events)))
        out += _review_events(con, run_id)
    return out


def _review_events(con, run_id: int) -> list[tuple[datetime, Any]]:
    out = []
    done = review_round(con, run_id)
    if done["sent"]:
        meta = tasks_metadata({"tasks_total": done["sent"], "run_id": run_id, "sent": done["sent"]})
        out.append((done["first_sent"], ("tasks", run_id, None, [dg.AssetMaterialization(
            "review_tasks", metadata={**meta, ORIGIN: _when(done["first_sent"])})])))
    if done["reviews"]:
        meta = verdicts_metadata({"verdicts_total": done["reviews"], "reviews": done["reviews"]},
                                 verdict_stats(con, run_id))
        out.append((done["last_decided"], ("verdicts", run_id, None, [dg.AssetMaterialization(
            "review_verdicts", metadata={**meta, ORIGIN: _when(done["last_decided"])})])))
    return out


def _model_events(con, cursor: Cursor, metric_names: tuple[str, ...]) -> list[tuple[datetime, Any]]:
    out = []
    gates = {g.model_version: g for g in gate_records(con)}
    for model in list_models(con):
        if model.version <= cursor.model:
            continue
        metrics = model.metrics or {}
        meta = {**candidate_metadata(candidate_record(asdict(model), metrics, metric_names=metric_names),
                                     per_class_rows(metrics, None, [])),
                **served_choice_metadata(model.params.get("served_choice"))}
        events: list[Any] = [dg.AssetMaterialization("candidate_model",
                                                     metadata={**meta, ORIGIN: _when(model.created_at)})]
        gate = gates.get(model.version)
        if gate is not None:
            # The same typed verdict the check reports in a run (gate_verdicts), not the model's status.
            meta = gate_metadata(gate_fields(gate, metrics.get("gate") or {}), [])
            events.append(dg.AssetCheckEvaluation(
                asset_key=dg.AssetKey("candidate_model"), check_name=GATE_CHECK, passed=bool(gate.passed),
                severity=dg.AssetCheckSeverity.WARN,
                description=("promoted: " if gate.passed else "refused: ") + gate.reason,
                metadata={**meta, ORIGIN: _when(gate.decided_at or model.evaluated_at)}))
        out.append((model.created_at, ("model", model.version, None, events)))
    return out


def _deployment_events(con, cursor: Cursor) -> list[tuple[datetime, Any]]:
    return [(d.created_at, ("deployment", d.deployment_id, None, [dg.AssetMaterialization("champion_model", metadata={
        **champion_metadata({"champion_version": d.model_version, "promoted": True,
                             "note": f"promoted v{d.model_version}", "previous_version": d.previous_version,
                             "deployment_id": d.deployment_id}), ORIGIN: _when(d.created_at)})]))
        for d in deployment_history(con) if d.action == "promote" and d.deployment_id > cursor.deployment]


def record_history(home: Home, instance: dg.DagsterInstance) -> int:
    """Report the warehouse's history not reported yet to ``instance``; return the events reported."""
    path = Path(instance.root_directory) / CURSOR_FILE
    cursor = Cursor.load(path)
    with open_warehouse(home, read_only=True) as con:
        timeline = _batch_events(con, home, cursor)
        timeline += _mining_events(con, home, cursor) + _model_events(con, cursor, task_for(home.config.dataset).metric_names()) + _deployment_events(con, cursor)
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
