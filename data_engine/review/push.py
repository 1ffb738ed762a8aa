"""Push: send the review queue to Label Studio as bulk imports, each row recorded in ``review_tasks``.

Idempotent: rows are recorded as 'sending' before their import and as 'open' (with the task id)
after it, and a push that finds 'sending' rows first asks the server which of them it already has
(by the ``engine_key`` in the task data) before importing the rest. Before that, the project is
checked against the server (:mod:`data_engine.review.identity`): a project gone with its server's
database or deleted is replaced, deleted tasks still open are sent again, deleted answers retracted."""

from __future__ import annotations

import time
from collections.abc import Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import duckdb
import pandas as pd

from data_engine.review.labelstudio.client import ReviewClient
from data_engine.review.labelstudio.labeling import (
    build_task,
    partner_fields,
    render_items,
    task_key,
)
from data_engine.review.identity import ProjectRef, lineage_keys
from data_engine.progress import progress
from data_engine.review.project import ensure_project, latest_run_id, reconcile_tasks
from data_engine.store.config import EngineConfig
from data_engine.store.images import image_sizes
from data_engine.store.schema import stored_columns
from data_engine.store.warehouse import FINISHED_TASK_STATUSES, quote_ident


@dataclass
class PushResult:
    """What one push did."""

    project_id: int                # Label Studio's id of the project
    run_id: int | None
    project_key: int | None = None  # the engine's key of it (review_tasks.project_id)
    notices: list[str] = field(default_factory=list)  # what changed on the server, one line each
    sent: int = 0
    reconciled: int = 0
    batches: int = 0
    seconds: float = 0.0
    requests: int = 0

    def as_dict(self) -> dict[str, Any]:
        """The result as plain data (asset metadata, JSON output)."""
        return asdict(self)


def push_queue(
    con: duckdb.DuckDBPyConnection,
    client: ReviewClient,
    cfg: EngineConfig,
    *,
    run_id: int | None = None,
    limit: int | None = None,
    batch_size: int | None = None,
) -> PushResult:
    """Send the review queue of ``run_id`` (default: the latest run) to Label Studio.

    At most ``limit`` new tasks (default: ``review.budget`` minus the tasks still open), in bulk
    imports of ``batch_size`` (default ``review.import_batch_size``), each page built, imported and
    recorded before the next (a progress bar on a terminal, log lines otherwise). Examples already sent for
    the same content version are never sent again. Raises :class:`ReviewServiceError` when the
    server fails; what was recorded so far stays, and the next push resumes.
    """
    started, requests_before = time.perf_counter(), client.request_count
    ref = ensure_project(con, client, cfg)
    result = PushResult(project_id=ref.project_id, run_id=run_id, project_key=ref.key, notices=ref.notices)
    result.reconciled = reconcile_tasks(con, client, ref)
    run_id = latest_run_id(con) if run_id is None else int(run_id)
    result.run_id = run_id
    if limit is None:
        still_open = con.execute(
            "SELECT count(*) FROM review_tasks WHERE project_id = ? AND status IN ('sending', 'open', 'partial')",
            [ref.key]).fetchall()[0][0]
        limit = max(cfg.review.budget - int(still_open), 0)
    rows = _rows_to_send(con, ref.key, run_id, limit, max_opinions=cfg.review.max_opinions,
                         lineage=lineage_keys(con, ref.key))
    if not rows.empty:
        batch = batch_size or cfg.review.import_batch_size
        # Each page's tasks are built just before its import: memory grows with the page (task
        # data can carry base64 images), and a page recorded is never built again.
        with progress("push to Label Studio", len(rows), unit="tasks") as bar:
            for start in range(0, len(rows), batch):
                part = rows.iloc[start:start + batch].reset_index(drop=True)
                _send_batch(con, client, ref, part, _build_tasks(con, cfg, part))
                result.sent += len(part)
                result.batches += 1
                bar.advance(len(part))
    result.seconds = round(time.perf_counter() - started, 3)
    result.requests = client.request_count - requests_before
    return result


def _rows_to_send(con: duckdb.DuckDBPyConnection, project_id: int, run_id: int | None, limit: int, *,
                  max_opinions: int = 2, lineage: list[int] | None = None) -> pd.DataFrame:
    """Queue rows to import: 'sending' leftovers of project (key) ``project_id`` first, then new rows
    of ``run_id`` by rank, each with its opinion number (1 for a first review). What was sent to any
    project of ``lineage`` (the earlier projects of the same title) counts as sent."""
    lineage = lineage or [project_id]
    cols = ("q.run_id, q.rank, q.example_id, q.example_version, q.issue_types, q.priority, q.suggested_label, "
            "q.suggested_score, q.given_label, CAST(q.scores AS VARCHAR) AS scores, "
            # A copy of a reviewed example shows its partner and the partner's verdict (lookalike detector).
            "(SELECT any_value(i.detail->>'partner_id') FROM issues i WHERE i.run_id = q.run_id "
            " AND i.example_id = q.example_id AND i.issue_type = 'lookalike') AS partner_id, "
            "(SELECT any_value(i.detail->>'partner_verdict') FROM issues i WHERE i.run_id = q.run_id "
            " AND i.example_id = q.example_id AND i.issue_type = 'lookalike') AS partner_verdict, "
            # The label check's words (a number's prediction and interval; the suspect tags of a tag set), shown by a task's header line.
            "(SELECT any_value(i.reason) FROM issues i WHERE i.run_id = q.run_id "
            " AND i.example_id = q.example_id AND i.issue_type = 'label' AND i.is_issue) AS label_note")
    leftovers = con.execute(
        f"SELECT {cols}, rt.opinion, true AS recorded FROM review_tasks rt JOIN review_queue q "
        "ON q.run_id = rt.run_id AND q.example_id = rt.example_id AND q.example_version = rt.example_version "
        "WHERE rt.project_id = ? AND rt.status = 'sending' AND rt.task_id IS NULL ORDER BY q.rank",
        [project_id]).fetchdf()
    fresh = pd.DataFrame()
    if run_id is not None and limit > 0:
        # Only current content versions: a row about an older version of an example is stale. An
        # example version already sent is sent again only as its next opinion (mining queues a
        # reviewed example only for a second opinion), never while a task of it is still open.
        fresh = con.execute(
            f"SELECT {cols}, coalesce(t.opinions, 0) + 1 AS opinion, false AS recorded FROM review_queue q "
            "JOIN current_examples ce ON ce.example_id = q.example_id AND ce.version = q.example_version "
            "LEFT JOIN (SELECT example_id, example_version, count(*) AS opinions, "
            "           count(*) FILTER (WHERE NOT list_contains(?::VARCHAR[], status)) AS unfinished "
            "           FROM review_tasks WHERE list_contains(?::BIGINT[], project_id) GROUP BY ALL) t "
            "  ON t.example_id = q.example_id AND t.example_version = q.example_version "
            "WHERE q.run_id = ? AND coalesce(t.unfinished, 0) = 0 "
            "AND coalesce(t.opinions, 0) < ? "
            # A run's row is sent once: another opinion takes a later run that queued it again.
            "AND NOT EXISTS (SELECT 1 FROM review_tasks rt WHERE list_contains(?::BIGINT[], rt.project_id) "
            "AND rt.example_id = q.example_id "
            "AND rt.example_version = q.example_version AND rt.run_id = q.run_id) "
            "ORDER BY q.rank LIMIT ?",
            [list(FINISHED_TASK_STATUSES), lineage, int(run_id), max_opinions, lineage, int(limit)]).fetchdf()
    frames = [f for f in (leftovers, fresh) if not f.empty]
    if not frames:
        return pd.DataFrame()
    rows = pd.concat(frames, ignore_index=True)
    rows["engine_key"] = [task_key(e, v, o) for e, v, o in
                          zip(rows["example_id"], rows["example_version"], rows["opinion"], strict=True)]
    return rows.drop_duplicates("engine_key").reset_index(drop=True)


def _build_tasks(con: duckdb.DuckDBPyConnection, cfg: EngineConfig, rows: pd.DataFrame) -> list[dict[str, Any]]:
    """Label Studio tasks for ``rows``, with each example's input columns read from ``examples``."""
    ds = cfg.dataset
    stored = stored_columns(con)
    inputs = [c for c in ds.input_columns if c in stored]
    keys = rows[["example_id", "example_version"]].copy()
    con.register("_push_keys", keys)
    try:
        select = ", ".join(f"e.{quote_ident(c)}" for c in inputs)
        feats = con.execute(
            f"SELECT e.example_id, e.version{', ' + select if select else ''} FROM examples e "
            "JOIN _push_keys k ON k.example_id = e.example_id AND k.example_version = e.version").fetchdf()
    finally:
        con.unregister("_push_keys")
    # Align the examples' columns with the queue rows (one row each, in queue order).
    feats = feats.rename(columns={"version": "example_version"})
    feats["example_version"] = feats["example_version"].astype("int64")
    aligned = keys.astype({"example_version": "int64"}).merge(
        feats, on=["example_id", "example_version"], how="left", validate="one_to_one")
    items = render_items(ds, aligned, image_prefix=image_prefix(con, cfg) if ds.image_column else "")
    if ds.image_column:  # the image's size in pixels: boxes are drawn in percent of it
        for item, (w, h) in zip(items, image_sizes(con, aligned[ds.image_column].tolist()), strict=True):
            item.update(image_width=w, image_height=h)
    partners = _partners(con, cfg, rows, inputs)
    models = _model_versions(con, list(rows["run_id"].dropna().unique()))
    tasks = []
    for row, item in zip(rows.to_dict("records"), items, strict=True):
        row["issue_types"] = list(row["issue_types"]) if row["issue_types"] is not None else []
        tasks.append(build_task(ds, row, {}, item=item, partner=partners.get((int(row["run_id"]), row["example_id"])),
                                model_version=models.get(int(row["run_id"]), f"run {row['run_id']}")))
    return tasks


def image_prefix(con: duckdb.DuckDBPyConnection, cfg: EngineConfig) -> str:
    """Where the home lies under Label Studio's document root (``review.local_files_root``, default
    the home itself), as a path prefix ending in ``/`` ('' when the root is the home)."""
    from data_engine.errors import EngineError
    from data_engine.store.images import warehouse_home

    home = warehouse_home(con)
    root = Path(cfg.review.local_files_root).expanduser().resolve() if cfg.review.local_files_root else home
    if home is None or root is None or not home.is_relative_to(root):
        raise EngineError(f"review.local_files_root = {cfg.review.local_files_root!r}: the engine home {home} "
                          "must lie under it (Label Studio serves image files only from under its document root)")
    rel = home.relative_to(root).as_posix()
    return "" if rel == "." else rel + "/"


def _partners(con: duckdb.DuckDBPyConnection, cfg: EngineConfig, rows: pd.DataFrame,
              inputs: list[str]) -> dict[tuple[int, str], dict[str, Any]]:
    """The near-duplicate partner's task fields per (run id, example id) of ``rows``: the partner
    the detector named (``issues.detail.duplicate_of``), rendered from its current version, with
    its label in force."""
    keys = rows[["run_id", "example_id"]].astype({"run_id": "int64", "example_id": str}).drop_duplicates()
    con.register("_push_dups", keys)
    try:
        select = ", ".join(f"ce.{quote_ident(c)}" for c in inputs)
        found = con.execute(
            "SELECT k.run_id, k.example_id, ce.example_id AS partner_id, cl.label AS partner_label"
            f"{', ' + select if select else ''} FROM _push_dups k "
            "JOIN issues i ON i.run_id = k.run_id AND i.example_id = k.example_id "
            "AND i.issue_type = 'near_duplicate' AND i.is_issue "
            "JOIN current_examples ce ON ce.example_id = json_extract_string(i.detail, '$.duplicate_of') "
            "LEFT JOIN current_labels cl ON cl.example_id = ce.example_id AND NOT cl.is_discarded").fetchdf()
    finally:
        con.unregister("_push_dups")
    if found.empty:
        return {}
    found = found.drop_duplicates(["run_id", "example_id"]).reset_index(drop=True)
    items = render_items(cfg.dataset, found[inputs],
                         image_prefix=image_prefix(con, cfg) if cfg.dataset.image_column else "")
    return {(int(r["run_id"]), r["example_id"]): partner_fields(cfg.dataset, r["partner_id"], r["partner_label"], item)
            for r, item in zip(found.to_dict("records"), items, strict=True)}


def _model_versions(con: duckdb.DuckDBPyConnection, run_ids: Sequence[int]) -> dict[int, str]:
    """A model version label per mining run: the run's ``model_spec`` (``mining_runs``, migration 0100)."""
    if not run_ids:
        return {}
    out = {}
    for run_id, model in con.execute(
            "SELECT run_id, model_spec FROM mining_runs WHERE list_contains(?::BIGINT[], run_id)",
            [[int(r) for r in run_ids]]).fetchall():
        out[int(run_id)] = f"{model} (run {run_id})" if model else f"run {run_id}"
    return out


def _send_batch(con: duckdb.DuckDBPyConnection, client: ReviewClient, ref: ProjectRef, part: pd.DataFrame,
                tasks: list[dict[str, Any]]) -> None:
    """Record the batch as 'sending', import it in one request, record the task ids as 'open'."""
    fresh = part[~part["recorded"].astype(bool)]
    if not fresh.empty:
        intents = fresh[["example_id", "example_version", "opinion", "engine_key", "run_id", "issue_types",
                         "given_label", "suggested_label", "suggested_score", "priority"]].copy()
        con.register("_intents", intents)
        try:
            con.execute(
                "INSERT INTO review_tasks (project_id, example_id, example_version, opinion, engine_key, run_id, "
                "status, issue_types, given_label, suggested_label, suggested_score, priority) "
                "SELECT ?, example_id, example_version, opinion, engine_key, run_id, 'sending', "
                "CAST(issue_types AS VARCHAR[]), CAST(given_label AS VARCHAR), CAST(suggested_label AS VARCHAR), "
                "suggested_score, priority FROM _intents", [ref.key])
        finally:
            con.unregister("_intents")
    task_ids = client.import_tasks(ref.project_id, tasks)
    done = pd.DataFrame({"engine_key": list(part["engine_key"]), "task_id": task_ids})
    con.register("_imported", done)
    try:
        con.execute(
            "UPDATE review_tasks SET task_id = d.task_id, status = 'open', sent_at = now() FROM _imported d "
            "WHERE review_tasks.project_id = ? AND review_tasks.engine_key = d.engine_key", [ref.key])
    finally:
        con.unregister("_imported")
