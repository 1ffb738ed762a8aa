"""Human review: push the review queue to Label Studio, pull every verdict back into the ledger.

Push (:func:`push_queue`) sends queue rows not yet sent as bulk imports and records each in
``review_tasks``. It is idempotent: rows are recorded as 'sending' before their import and as
'open' (with the task id) after it, and a push that finds 'sending' rows first asks the server
which of them it already has (by the ``engine_key`` in the task data) before importing the rest.

Pull (:func:`pull_verdicts`) reads the tasks annotated since its cursor through a Data Manager
filter and turns each new or edited answer into a ``label_ledger`` row (read through ``label_events``):

* one reviewer: source 'review' (an edit adds a later event, which supersedes the earlier one);
* several reviewers on a task: each answer is a 'vote' (never in force alone); once enough
  reviewers answered, the majority (cleanlab.multiannotator) is recorded as 'consensus'; a tie
  stays pending;
* "not a valid example" records a NULL label (the example is discarded); skipped or cancelled
  annotations change nothing;
* everything is read before anything is written, and written in one transaction with the new
  cursor, so a server failing mid-way loses nothing and the next pull resumes.

Verdicts measure the miner: :func:`verdict_stats` counts per mining run and issue type how many
flagged examples reviewers confirmed (label changed or discarded) or rejected (label kept), and
:func:`effective_weights` turns them into the queue's weights per issue type.
"""

from __future__ import annotations

import json
import math
import time
from collections import Counter
from collections.abc import Iterator, Sequence
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

import duckdb
import pandas as pd

from data_engine.config import EngineConfig
from data_engine.errors import EngineError, ReviewServiceError
from data_engine.home import Home
from data_engine.labelstudio.client import ReviewClient
from data_engine.labelstudio.labeling import (DISCARD_CHOICE, FINISHED_TASK_STATUSES, build_task, chosen, label_config,
                                              render_items, task_key)
from data_engine.schema import load_classes, stored_columns
from data_engine.warehouse import last_event_id, quote_ident, rollback_quietly

# Each pull re-reads tasks updated this long before its cursor: an annotation saved while the
# previous pull was reading can carry an earlier updated_at than tasks that pull already saw.
# Re-reading is harmless (pulling the same annotation twice changes nothing).
PULL_OVERLAP = timedelta(seconds=120)
# effective_weights: a Beta prior worth this many reviewed examples at a 50% confirmation rate,
# so a handful of verdicts nudges a weight and hundreds decide it.
PRIOR_VERDICTS = 20.0
PRIOR_RATE = 0.5
# The smallest share of its configured weight an issue type keeps, so a detector reviewers
# mostly reject still gets an occasional example reviewed (and can earn its weight back).
MIN_WEIGHT_FACTOR = 0.1
MAX_WEIGHT_FACTOR = 2.0
_TS_FORMAT = "%Y-%m-%dT%H:%M:%S.%fZ"


@dataclass
class PushResult:
    """What one push did."""

    project_id: int
    run_id: str | None
    sent: int = 0
    reconciled: int = 0
    batches: int = 0
    seconds: float = 0.0
    requests: int = 0

    def as_dict(self) -> dict[str, Any]:
        """The result as plain data (asset metadata, JSON output)."""
        return asdict(self)


@dataclass
class PullResult:
    """What one pull did."""

    project_id: int | None
    tasks_seen: int = 0
    annotations_new: int = 0
    annotations_edited: int = 0
    review_events: int = 0
    votes: int = 0
    consensus: int = 0
    discards: int = 0
    ties: int = 0
    cursor: str | None = None
    seconds: float = 0.0
    requests: int = 0
    stats: list[dict[str, Any]] = field(default_factory=list)
    # Annotations that could not be read (malformed, a choice outside the classes): skipped, named here.
    problems: list[str] = field(default_factory=list)

    @property
    def events(self) -> int:
        """Label events written."""
        return self.review_events + self.votes + self.consensus

    def as_dict(self) -> dict[str, Any]:
        """The result as plain data."""
        return {**asdict(self), "events": self.events}


@dataclass(frozen=True)
class PullDecision:
    """A sensor's decision: request a pull run or not, why, and its next cursor."""

    run: bool
    reason: str
    cursor: str | None


def project_title(cfg: EngineConfig) -> str:
    """The Label Studio project of this engine's dataset: ``review.project_title`` or a default."""
    return cfg.review.project_title or f"data-engine: {cfg.dataset.name}"


def dataset_classes(con: duckdb.DuckDBPyConnection, cfg: EngineConfig) -> list[str]:
    """The classes offered to reviewers: the warehouse's fixed classes, else the config's."""
    classes = load_classes(con) or list(cfg.dataset.classes or ())
    if not classes:
        raise EngineError("review: the dataset's classes are not known yet; ingest a labeled batch first")
    return classes


def ensure_project(con: duckdb.DuckDBPyConnection, client: ReviewClient, cfg: EngineConfig) -> int:
    """The dataset's project id: recorded, else found by title, else created (and recorded)."""
    title = project_title(cfg)
    row = con.execute("SELECT project_id FROM review_projects WHERE url = ? AND title = ?",
                      [client.url, title]).fetchall()
    row = row[0] if row else None
    if row is not None and client.project_exists(int(row[0])):
        return int(row[0])
    project_id = client.find_project(title)
    if project_id is None:
        xml = label_config(cfg.dataset, dataset_classes(con, cfg))
        project_id = client.create_project(
            title, xml, maximum_annotations=cfg.review.annotators_per_task,
            description=f"Examples of dataset {cfg.dataset.name!r} flagged by the data engine. Pick the correct "
                        f"class, or '{DISCARD_CHOICE}' to drop the example from training.")
    con.execute("INSERT OR REPLACE INTO review_projects (url, title, project_id, dataset) VALUES (?, ?, ?, ?)",
                [client.url, title, project_id, cfg.dataset.name])
    return project_id


def known_project(con: duckdb.DuckDBPyConnection, client: ReviewClient, cfg: EngineConfig) -> int | None:
    """The recorded project id of this dataset on ``client``'s server (None before the first push)."""
    row = con.execute("SELECT project_id FROM review_projects WHERE url = ? AND title = ?",
                      [client.url, project_title(cfg)]).fetchall()
    return int(row[0][0]) if row else None


def latest_run_id(con: duckdb.DuckDBPyConnection) -> str | None:
    """The most recent mining run that has a review queue (None when there is no queue)."""
    if not _has_table(con, "review_queue"):
        return None
    if _has_table(con, "mining_runs"):
        cols = _columns(con, "mining_runs")
        for col in ("finished_at", "completed_at", "created_at", "started_at"):
            if col in cols:
                row = con.execute(
                    f"SELECT m.run_id FROM mining_runs m WHERE EXISTS (SELECT 1 FROM review_queue q WHERE q.run_id = m.run_id) "
                    f"ORDER BY m.{quote_ident(col)} DESC NULLS LAST, m.run_id DESC LIMIT 1").fetchall()
                if row:
                    return str(row[0][0])
    # Mining numbers its runs (BIGINT); the latest is the highest.
    row = con.execute("SELECT max(run_id) FROM review_queue").fetchall()[0]
    return None if row[0] is None else str(row[0])


def reconcile_tasks(con: duckdb.DuckDBPyConnection, client: ReviewClient, project_id: int) -> int:
    """Match 'sending' rows (a push interrupted after its import) to tasks the server already has.

    Returns how many rows were matched. Costs one request, and only when 'sending' rows exist.
    """
    pending = con.execute("SELECT count(*) FROM review_tasks WHERE project_id = ? AND status = 'sending'",
                          [project_id]).fetchall()[0][0]
    if not pending:
        return 0
    # Every task created by the interrupted import has a higher id than all recorded ones.
    floor = con.execute("SELECT coalesce(max(task_id), 0) FROM review_tasks WHERE project_id = ?",
                        [project_id]).fetchall()[0][0]
    found = client.tasks_after(project_id, int(floor))
    pairs = [(str(t["data"].get("engine_key")), int(t["id"])) for t in found if t["data"].get("engine_key")]
    if not pairs:
        return 0
    # The first task per key wins; a second one would be a duplicate made outside this engine.
    first: dict[str, int] = {}
    for key, tid in sorted(pairs, key=lambda p: p[1]):
        first.setdefault(key, tid)
    matches = pd.DataFrame({"engine_key": list(first), "task_id": list(first.values())})
    con.register("_reconciled", matches)
    try:
        n = con.execute(
            "UPDATE review_tasks SET task_id = r.task_id, status = 'open' FROM _reconciled r "
            "WHERE review_tasks.project_id = ? AND review_tasks.status = 'sending' "
            "AND review_tasks.engine_key = r.engine_key", [project_id]).fetchall()[0][0]
    finally:
        con.unregister("_reconciled")
    return int(n)


def push_queue(
    con: duckdb.DuckDBPyConnection,
    client: ReviewClient,
    cfg: EngineConfig,
    *,
    run_id: str | None = None,
    limit: int | None = None,
    batch_size: int | None = None,
) -> PushResult:
    """Send the review queue of ``run_id`` (default: the latest run) to Label Studio.

    At most ``limit`` new tasks (default: ``review.budget`` minus the tasks still open), in bulk
    imports of ``batch_size`` (default ``review.import_batch_size``). Examples already sent for
    the same content version are never sent again. Raises :class:`ReviewServiceError` when the
    server fails; what was recorded so far stays, and the next push resumes.
    """
    started, requests_before = time.perf_counter(), client.request_count
    project_id = ensure_project(con, client, cfg)
    result = PushResult(project_id=project_id, run_id=run_id)
    result.reconciled = reconcile_tasks(con, client, project_id)
    run_id = run_id or latest_run_id(con)
    result.run_id = run_id
    if limit is None:
        still_open = con.execute(
            "SELECT count(*) FROM review_tasks WHERE project_id = ? AND status IN ('sending', 'open', 'partial')",
            [project_id]).fetchall()[0][0]
        limit = max(cfg.review.budget - int(still_open), 0)
    rows = _rows_to_send(con, project_id, run_id, limit, max_opinions=cfg.review.max_opinions)
    if not rows.empty:
        batch = batch_size or cfg.review.import_batch_size
        tasks = _build_tasks(con, cfg, rows)
        for start in range(0, len(rows), batch):
            part = rows.iloc[start:start + batch]
            _send_batch(con, client, project_id, part, tasks[start:start + batch])
            result.sent += len(part)
            result.batches += 1
    result.seconds = round(time.perf_counter() - started, 3)
    result.requests = client.request_count - requests_before
    return result


def _rows_to_send(con: duckdb.DuckDBPyConnection, project_id: int, run_id: str | None, limit: int, *,
                  max_opinions: int = 2) -> pd.DataFrame:
    """Queue rows to import: 'sending' leftovers first, then new rows of ``run_id`` by rank, each
    with its opinion number (1 for a first review)."""
    # run ids are compared as text: mining numbers them, review_tasks keeps them as VARCHAR.
    cols = ("CAST(q.run_id AS VARCHAR) AS run_id, q.rank, q.example_id, q.example_version, q.issue_types, q.priority, q.suggested_label, "
            "q.suggested_score, q.given_label, CAST(q.scores AS VARCHAR) AS scores")
    if not _has_table(con, "review_queue"):
        return pd.DataFrame()
    leftovers = con.execute(
        f"SELECT {cols}, rt.opinion, true AS recorded FROM review_tasks rt JOIN review_queue q "
        "ON CAST(q.run_id AS VARCHAR) = rt.run_id AND q.example_id = rt.example_id AND q.example_version = rt.example_version "
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
            "           FROM review_tasks WHERE project_id = ? GROUP BY ALL) t "
            "  ON t.example_id = q.example_id AND t.example_version = q.example_version "
            "WHERE CAST(q.run_id AS VARCHAR) = ? AND coalesce(t.unfinished, 0) = 0 "
            "AND coalesce(t.opinions, 0) < ? "
            # A run's row is sent once: another opinion takes a later run that queued it again.
            "AND NOT EXISTS (SELECT 1 FROM review_tasks rt WHERE rt.project_id = ? AND rt.example_id = q.example_id "
            "AND rt.example_version = q.example_version AND rt.run_id = CAST(q.run_id AS VARCHAR)) "
            "ORDER BY q.rank LIMIT ?",
            [list(FINISHED_TASK_STATUSES), project_id, str(run_id), max_opinions, project_id, int(limit)]).fetchdf()
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
    items = render_items(ds, aligned)
    models = _model_versions(con, list(rows["run_id"].dropna().unique()))
    tasks = []
    for row, item in zip(rows.to_dict("records"), items, strict=True):
        row["issue_types"] = list(row["issue_types"]) if row["issue_types"] is not None else []
        tasks.append(build_task(ds, row, {}, item=item,
                                model_version=models.get(row["run_id"], f"run {row['run_id']}")))
    return tasks


def _model_versions(con: duckdb.DuckDBPyConnection, run_ids: Sequence[str]) -> dict[str, str]:
    """A model version label per mining run, from ``mining_runs`` when it names the model."""
    if not run_ids or not _has_table(con, "mining_runs"):
        return {}
    cols = _columns(con, "mining_runs")
    model_col = next((c for c in ("model_version", "model_spec", "model") if c in cols), None)
    if model_col is None:
        return {}
    out = {}
    for run_id, model in con.execute(
            f"SELECT run_id, CAST({quote_ident(model_col)} AS VARCHAR) FROM mining_runs WHERE list_contains(?, CAST(run_id AS VARCHAR))",
            [[str(r) for r in run_ids]]).fetchall():
        out[str(run_id)] = f"{model} (run {run_id})" if model else f"run {run_id}"
    return out


def _send_batch(con: duckdb.DuckDBPyConnection, client: ReviewClient, project_id: int, part: pd.DataFrame,
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
                "suggested_score, priority FROM _intents", [project_id])
        finally:
            con.unregister("_intents")
    task_ids = client.import_tasks(project_id, tasks)
    done = pd.DataFrame({"engine_key": list(part["engine_key"]), "task_id": task_ids})
    con.register("_imported", done)
    try:
        con.execute(
            "UPDATE review_tasks SET task_id = d.task_id, status = 'open', sent_at = now() FROM _imported d "
            "WHERE review_tasks.project_id = ? AND review_tasks.engine_key = d.engine_key", [project_id])
    finally:
        con.unregister("_imported")


# ---------------------------------------------------------------------------------------------
# Pull


def pull_verdicts(con: duckdb.DuckDBPyConnection, client: ReviewClient, cfg: EngineConfig) -> PullResult:
    """Bring every new or edited verdict since the cursor into ``label_events`` (idempotent).

    Raises :class:`ReviewServiceError` when the server fails; nothing is written then.
    """
    started, requests_before = time.perf_counter(), client.request_count
    project_id = known_project(con, client, cfg)
    result = PullResult(project_id=project_id)
    if project_id is None:
        return result
    # Tasks of an interrupted push may already be answered: learn their ids first, or their
    # verdicts would be skipped as foreign and fall behind the cursor.
    reconcile_tasks(con, client, project_id)
    row = con.execute("SELECT updated_after FROM review_cursor WHERE project_id = ?", [project_id]).fetchall()
    cursor = row[0][0] if row else None
    since = _shift(cursor, -PULL_OVERLAP) if cursor else None
    # All reading first: a failure here leaves the warehouse untouched.
    tasks = client.annotated_tasks(project_id, since)
    users = client.users() if tasks else {}
    result.tasks_seen = len(tasks)
    newest = max([cursor or "", *(_norm_ts(t["updated_at"]) for t in tasks)]) or None
    con.execute("BEGIN TRANSACTION")
    try:
        if tasks:
            _record(con, cfg, project_id, tasks, users, result)
        con.execute(
            "INSERT INTO review_cursor (project_id, updated_after, pulled_at, pulls) VALUES (?, ?, now(), 1) "
            "ON CONFLICT (project_id) DO UPDATE SET updated_after = excluded.updated_after, pulled_at = now(), "
            "pulls = review_cursor.pulls + 1", [project_id, newest])
        con.execute("COMMIT")
    except BaseException:
        rollback_quietly(con)  # after a failed COMMIT (a full disk) there is nothing to roll back
        raise
    result.cursor = newest
    result.stats = verdict_stats(con)
    result.seconds = round(time.perf_counter() - started, 3)
    result.requests = client.request_count - requests_before
    return result


@dataclass
class _Answer:
    """One reviewer's current answer on a task (their latest non-cancelled annotation)."""

    annotation_id: int
    annotator_id: int | None
    annotator: str
    choice: str
    lead_time: float | None
    updated_at: str

    @property
    def label(self) -> str | None:
        return None if self.choice == DISCARD_CHOICE else self.choice


def _record(con: duckdb.DuckDBPyConnection, cfg: EngineConfig, project_id: int, tasks: list[dict[str, Any]],
            users: dict[int, str], result: PullResult) -> None:
    """Write the label events, annotation rows, verdicts and task states for the pulled ``tasks``."""
    known_tasks = _known_tasks(con, project_id, [t["id"] for t in tasks])
    choices = [*dataset_classes(con, cfg), DISCARD_CHOICE]
    answers_by_task: dict[int, list[_Answer]] = {}
    for task in tasks:
        meta = known_tasks.get(task["id"])
        if meta is None:
            continue  # a task created outside the engine: not ours to judge
        answers_by_task[task["id"]] = _answers(task, users, choices, result.problems)
    all_ids = [a.annotation_id for answers in answers_by_task.values() for a in answers]
    seen = _known_annotations(con, all_ids)
    needed = max(cfg.review.annotators_per_task, 2)

    events: list[dict[str, Any]] = []        # label_events rows to write, in order
    annotation_rows: list[dict[str, Any]] = []
    verdict_rows: list[dict[str, Any]] = []
    status_rows: list[dict[str, Any]] = []
    consensus_candidates: list[tuple[int, list[_Answer]]] = []
    for task_id, answers in answers_by_task.items():
        meta = known_tasks[task_id]
        multi = cfg.review.annotators_per_task >= 2 or len(answers) >= 2
        changed = []
        for a in answers:
            before = seen.get(a.annotation_id)
            if before is not None and before["choice"] == a.choice:
                continue  # pulled before (or re-saved unchanged): nothing new
            changed.append(a)
            if before is None:
                result.annotations_new += 1
            else:
                result.annotations_edited += 1
        for a in changed:
            source = "vote" if multi else "review"
            events.append(_event(meta, a.label, source, a.annotator, {
                "annotation_id": a.annotation_id, "task_id": task_id, "project_id": project_id,
                "lead_time": a.lead_time, "run_id": meta["run_id"], "annotation_updated_at": a.updated_at}))
            annotation_rows.append({**asdict(a), "label": a.label, "is_discard": a.label is None, "source": source,
                                    "event_index": len(events) - 1, "task_id": task_id,
                                    "example_id": meta["example_id"], "example_version": meta["example_version"]})
            if source == "vote":
                result.votes += 1
            else:
                result.review_events += 1
                result.discards += a.label is None
        if not multi:
            if changed:
                a = changed[-1]
                verdict_rows.append(_verdict(meta, task_id, project_id, a.label, "review", 1, 1.0, len(events) - 1))
                status_rows.append({"task_id": task_id, "status": "done"})
        elif len(answers) >= needed:
            if changed or meta["status"] != "done":
                consensus_candidates.append((task_id, answers))
        elif answers:
            status_rows.append({"task_id": task_id, "status": "partial"})

    for task_id, label, agreement, n_votes, votes in _consensus(consensus_candidates, dataset_classes(con, cfg)):
        meta = known_tasks[task_id]
        if label is _TIE:
            result.ties += 1
            status_rows.append({"task_id": task_id, "status": "tie"})
            continue
        previous = _current_verdict(con, task_id)
        if previous is not None and previous["source"] == "consensus" and previous["label"] == label:
            status_rows.append({"task_id": task_id, "status": "done"})
            continue
        events.append(_event(meta, label, "consensus", "consensus", {
            "task_id": task_id, "project_id": project_id, "run_id": meta["run_id"], "agreement": agreement,
            "votes": votes}))
        verdict_rows.append(_verdict(meta, task_id, project_id, label, "consensus", n_votes, agreement, len(events) - 1))
        status_rows.append({"task_id": task_id, "status": "done"})
        result.consensus += 1
        result.discards += label is None

    event_ids = _write_events(con, events)
    _write_annotations(con, project_id, annotation_rows, event_ids)
    _write_verdicts(con, verdict_rows, event_ids)
    _write_statuses(con, project_id, status_rows)
    if consensus_candidates:
        _refresh_annotator_quality(con, cfg)


_TIE = object()


def _answers(task: dict[str, Any], users: dict[int, str], choices: Sequence[str] | None = None,
             problems: list[str] | None = None) -> list[_Answer]:
    """Each reviewer's latest non-cancelled annotation with a choice on ``task``.

    An annotation that cannot be read (not an object, no integer id, no valid time, a choice that
    is not text or, given ``choices``, not one of them) is skipped and described in ``problems``:
    it carries no verdict the ledger could hold, and one bad answer must not block the others.
    """
    problems = [] if problems is None else problems
    raw = task.get("annotations")
    if raw is not None and not isinstance(raw, list):
        problems.append(f"task {task.get('id')}: annotations are {type(raw).__name__}, not a list")
        raw = []
    readable: list[tuple[str, int, dict[str, Any]]] = []
    for ann in raw or []:
        why = _unreadable(ann, choices)
        if why:
            problems.append(f"task {task.get('id')}: annotation {_short_id(ann)} skipped: {why}")
            continue
        readable.append((_norm_ts(ann["updated_at"]), int(ann["id"]), ann))
    latest: dict[Any, _Answer] = {}
    for updated_at, ann_id, ann in sorted(readable, key=lambda r: (r[0], r[1])):
        if ann.get("was_cancelled") is True:
            continue  # a skip changes nothing
        choice = chosen(ann.get("result") or [])
        if choice is None:
            continue
        uid = ann.get("completed_by")
        uid = uid if isinstance(uid, int) and not isinstance(uid, bool) else None
        who = users.get(uid, f"label-studio-user:{uid}") if uid is not None else "label-studio-user:unknown"
        lead = ann.get("lead_time")
        lead_ok = isinstance(lead, (int, float)) and not isinstance(lead, bool) and math.isfinite(lead)
        latest[uid if uid is not None else ("ann", ann_id)] = _Answer(
            annotation_id=ann_id, annotator_id=uid, annotator=who, choice=choice,
            lead_time=float(lead) if lead_ok else None, updated_at=updated_at)
    return sorted(latest.values(), key=lambda a: (a.updated_at, a.annotation_id))


def _unreadable(ann: Any, choices: Sequence[str] | None) -> str | None:
    """Why ``ann`` cannot be read as an answer (None when it can)."""
    if not isinstance(ann, dict):
        return f"not an object ({type(ann).__name__})"
    ann_id = ann.get("id")
    if isinstance(ann_id, bool) or not isinstance(ann_id, int) or ann_id <= 0:
        return "no positive integer id"
    try:
        if not _norm_ts(ann.get("updated_at") if isinstance(ann.get("updated_at"), str) else None):
            return "no updated_at time"
    except (ValueError, OverflowError):
        return "updated_at is not a time"
    result = ann.get("result")
    if result is not None and (not isinstance(result, list) or not all(isinstance(r, dict) for r in result)):
        return "result is not a list of regions"
    if ann.get("was_cancelled") is True:
        return None
    try:
        choice = chosen(result or [])
    except (AttributeError, TypeError, KeyError, IndexError):
        return "the choice region is malformed"
    if choice is not None and choices is not None and choice not in choices:
        return f"choice {choice[:40]!r} is not one of the classes"
    return None


def _short_id(ann: Any) -> str:
    ann_id = ann.get("id") if isinstance(ann, dict) else None
    return str(ann_id)[:20] if isinstance(ann_id, (int, str)) else "?"


def _consensus(candidates: list[tuple[int, list[_Answer]]],
               classes: list[str]) -> Iterator[tuple[int, Any, float | None, int, dict[str, str]]]:
    """Majority label per task via cleanlab.multiannotator; ties (equal top counts) are marked pending.

    Yields ``(task_id, label | _TIE, agreement, n_votes, votes)``.
    """
    if not candidates:
        return
    choices = [*classes, DISCARD_CHOICE]
    index = {c: i for i, c in enumerate(choices)}
    decided: list[tuple[int, list[_Answer]]] = []
    for task_id, answers in candidates:
        counts = Counter(a.choice for a in answers)
        top = counts.most_common()
        votes = {a.annotator: a.choice for a in answers}
        if len(top) > 1 and top[0][1] == top[1][1]:
            yield task_id, _TIE, None, len(answers), votes
        else:
            decided.append((task_id, answers))
    if not decided:
        return
    from cleanlab.multiannotator import get_majority_vote_label

    annotators = sorted({a.annotator for _, answers in decided for a in answers})
    col = {name: j for j, name in enumerate(annotators)}
    matrix = pd.DataFrame(float("nan"), index=range(len(decided)), columns=annotators)
    for i, (_, answers) in enumerate(decided):
        for a in answers:
            if a.choice in index:
                matrix.iat[i, col[a.annotator]] = index[a.choice]
    # cleanlab infers the number of classes from the largest label seen; the explicit class
    # count comes from the choices, so a never-chosen last class is harmless here.
    majority = get_majority_vote_label(matrix, verbose=False)
    for i, (task_id, answers) in enumerate(decided):
        choice = choices[int(majority[i])]
        agreement = sum(a.choice == choice for a in answers) / len(answers)
        yield (task_id, None if choice == DISCARD_CHOICE else choice, round(agreement, 4), len(answers),
               {a.annotator: a.choice for a in answers})


def _refresh_annotator_quality(con: duckdb.DuckDBPyConnection, cfg: EngineConfig) -> None:
    """Per-annotator agreement with the consensus, and cleanlab's annotator quality where it applies."""
    votes = con.execute(
        "SELECT a.task_id, a.annotator, a.choice, t.suggested_label, t.suggested_score, v.label, v.is_discard "
        "FROM review_annotations a JOIN review_verdicts v ON v.task_id = a.task_id AND v.source = 'consensus' "
        "JOIN review_tasks t ON t.task_id = a.task_id AND t.project_id = a.project_id").fetchdf()
    if votes.empty:
        return
    votes["consensus"] = [DISCARD_CHOICE if d else lbl for lbl, d in zip(votes["label"], votes["is_discard"], strict=True)]
    votes["agrees"] = votes["choice"] == votes["consensus"]
    stats = votes.groupby("annotator").agg(n_votes=("agrees", "size"), agreement=("agrees", "mean")).reset_index()
    stats["quality"] = stats["annotator"].map(_cleanlab_quality(votes, dataset_classes(con, cfg)))
    con.register("_quality", stats)
    try:
        con.execute("DELETE FROM review_annotator_quality")
        con.execute("INSERT INTO review_annotator_quality (annotator, n_votes, agreement, quality) "
                    "SELECT annotator, n_votes, agreement, quality FROM _quality")
    finally:
        con.unregister("_quality")


def _cleanlab_quality(votes: pd.DataFrame, classes: list[str]) -> dict[str, float]:
    """cleanlab's CROWDLAB annotator quality, with the model's suggestion as the class probabilities.

    Each task's probabilities put ``suggested_score`` on the suggested class and spread the rest
    evenly. Returns {} when cleanlab cannot score this set (e.g. too few overlapping votes).
    """
    import warnings

    import numpy as np

    choices = [*classes, DISCARD_CHOICE]
    index = {c: i for i, c in enumerate(choices)}
    wide = votes.pivot_table(index="task_id", columns="annotator", values="choice", aggfunc="last")
    labels = wide.apply(lambda s: s.map(index)).astype(float)
    per_task = votes.drop_duplicates("task_id").set_index("task_id").loc[wide.index]
    k = len(choices)
    probs = np.full((len(wide), k), 0.0)
    for i, (sug, score) in enumerate(zip(per_task["suggested_label"], per_task["suggested_score"], strict=True)):
        p = float(score) if score is not None and not pd.isna(score) else 1.0 / k
        p = min(max(p, 1.0 / k), 0.99)
        probs[i, :] = (1 - p) / (k - 1)
        if sug in index:
            probs[i, index[sug]] = p
        probs[i] /= probs[i].sum()
    try:
        from cleanlab.multiannotator import get_label_quality_multiannotator

        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            out = get_label_quality_multiannotator(labels, probs, verbose=False)
        quality = out["annotator_stats"]["annotator_quality"]
        return {str(name): round(float(q), 4) for name, q in quality.items()}
    except Exception:  # noqa: BLE001 - quality is optional: agreement is always stored
        return {}


def _known_tasks(con: duckdb.DuckDBPyConnection, project_id: int, task_ids: list[int]) -> dict[int, dict[str, Any]]:
    rows = con.execute(
        "SELECT task_id, example_id, example_version, run_id, issue_types, given_label, status FROM review_tasks "
        "WHERE project_id = ? AND list_contains(?, task_id)", [project_id, task_ids]).fetchdf()
    out = {}
    for r in rows.to_dict("records"):
        r["issue_types"] = list(r["issue_types"]) if r["issue_types"] is not None else []
        out[int(r["task_id"])] = r
    return out


def _known_annotations(con: duckdb.DuckDBPyConnection, ids: list[int]) -> dict[int, dict[str, Any]]:
    if not ids:
        return {}
    rows = con.execute("SELECT annotation_id, choice, updated_at FROM review_annotations "
                       "WHERE list_contains(?, annotation_id)", [ids]).fetchall()
    return {int(r[0]): {"choice": r[1], "updated_at": r[2]} for r in rows}


def _current_verdict(con: duckdb.DuckDBPyConnection, task_id: int) -> dict[str, Any] | None:
    row = con.execute("SELECT label, source FROM review_verdicts WHERE task_id = ?", [task_id]).fetchall()
    return None if not row else {"label": row[0][0], "source": row[0][1]}


def _event(meta: dict[str, Any], label: str | None, source: str, actor: str, detail: dict[str, Any]) -> dict[str, Any]:
    return {"example_id": meta["example_id"], "example_version": int(meta["example_version"]), "label": label,
            "source": source, "actor": actor, "detail": json.dumps(detail, sort_keys=True)}


def _verdict(meta: dict[str, Any], task_id: int, project_id: int, label: str | None, source: str, n_votes: int,
             agreement: float | None, event_index: int) -> dict[str, Any]:
    is_discard = label is None
    confirmed = is_discard or label != meta["given_label"]
    return {"task_id": task_id, "project_id": project_id, "example_id": meta["example_id"],
            "example_version": int(meta["example_version"]), "run_id": meta["run_id"],
            "issue_types": meta["issue_types"], "given_label": meta["given_label"], "label": label,
            "is_discard": is_discard, "outcome": "confirmed" if confirmed else "rejected", "source": source,
            "n_votes": n_votes, "agreement": agreement, "event_index": event_index}


def _write_events(con: duckdb.DuckDBPyConnection, events: list[dict[str, Any]]) -> list[int]:
    """Append ``events`` to the ledger in order; return their event ids."""
    if not events:
        return []
    # Ids assigned up front keep the ledger's order equal to the order decided here.
    base = last_event_id(con)
    ids = list(range(base + 1, base + 1 + len(events)))
    frame = pd.DataFrame(events)
    frame.insert(0, "event_id", ids)
    frame["label"] = frame["label"].astype(object)
    con.register("_events", frame)
    try:
        con.execute("INSERT INTO label_ledger (event_id, example_id, example_version, label, source, actor, detail) "
                    "SELECT event_id, example_id, example_version, CAST(label AS VARCHAR), source, actor, "
                    "CAST(detail AS JSON) FROM _events ORDER BY event_id")
    finally:
        con.unregister("_events")
    return ids


def _write_annotations(con: duckdb.DuckDBPyConnection, project_id: int, rows: list[dict[str, Any]],
                       event_ids: list[int]) -> None:
    if not rows:
        return
    frame = pd.DataFrame(rows)
    frame["event_id"] = [event_ids[i] for i in frame["event_index"]]
    frame["label"] = frame["label"].astype(object)
    frame["lead_time"] = frame["lead_time"].astype(float)
    frame["annotator_id"] = frame["annotator_id"].astype("Int64")
    con.register("_annotations", frame)
    try:
        con.execute(
            "INSERT OR REPLACE INTO review_annotations (annotation_id, project_id, task_id, example_id, example_version, "
            "annotator_id, annotator, choice, label, is_discard, lead_time, updated_at, source, event_id) "
            "SELECT annotation_id, ?, task_id, example_id, example_version, annotator_id, annotator, choice, "
            "CAST(label AS VARCHAR), is_discard, lead_time, updated_at, source, event_id FROM _annotations", [project_id])
    finally:
        con.unregister("_annotations")


def _write_verdicts(con: duckdb.DuckDBPyConnection, rows: list[dict[str, Any]], event_ids: list[int]) -> None:
    if not rows:
        return
    frame = pd.DataFrame(rows).drop_duplicates("task_id", keep="last")
    frame["event_id"] = [event_ids[i] for i in frame["event_index"]]
    for col in ("label", "given_label", "run_id"):
        frame[col] = frame[col].astype(object)
    frame["agreement"] = frame["agreement"].astype(float)
    con.register("_verdicts", frame)
    try:
        con.execute(
            "INSERT OR REPLACE INTO review_verdicts (task_id, project_id, example_id, example_version, run_id, "
            "issue_types, given_label, label, is_discard, outcome, source, n_votes, agreement, event_id, decided_at) "
            "SELECT task_id, project_id, example_id, example_version, CAST(run_id AS VARCHAR), "
            "CAST(issue_types AS VARCHAR[]), CAST(given_label AS VARCHAR), CAST(label AS VARCHAR), is_discard, "
            "outcome, source, n_votes, agreement, event_id, now() FROM _verdicts")
    finally:
        con.unregister("_verdicts")


def _write_statuses(con: duckdb.DuckDBPyConnection, project_id: int, rows: list[dict[str, Any]]) -> None:
    if not rows:
        return
    frame = pd.DataFrame(rows).drop_duplicates("task_id", keep="last")
    con.register("_statuses", frame)
    try:
        con.execute(
            "UPDATE review_tasks SET status = s.status, "
            "completed_at = CASE WHEN s.status = 'done' THEN coalesce(review_tasks.completed_at, now()) "
            "ELSE review_tasks.completed_at END "
            "FROM _statuses s WHERE review_tasks.project_id = ? AND review_tasks.task_id = s.task_id", [project_id])
    finally:
        con.unregister("_statuses")


# ---------------------------------------------------------------------------------------------
# Decisions, statistics, status


def pull_decision(client: ReviewClient, cfg: EngineConfig, cursor: str | None) -> PullDecision:
    """Whether a sensor should request a pull: yes when tasks were annotated after ``cursor``.

    Never raises for a service failure: an unreachable server, a refused key or a timeout give
    ``run=False`` with the cause as the reason (a SkipReason), and the next tick tries again.
    Reads nothing from the warehouse (sensors stay off the DuckDB file); costs two requests.
    """
    try:
        project_id = client.find_project(project_title(cfg))
        if project_id is None:
            return PullDecision(False, f"no review project {project_title(cfg)!r} at {client.url} yet", cursor)
        count, newest = client.annotated_since(project_id, cursor)
    except ReviewServiceError as exc:
        return PullDecision(False, f"{exc} (will retry)", cursor)
    if count == 0 or newest is None:
        return PullDecision(False, f"no new verdicts at {client.url} since {cursor or 'the start'}", cursor)
    return PullDecision(True, f"{count} task(s) annotated at {client.url} since {cursor or 'the start'}",
                        _norm_ts(newest))


def verdict_stats(con: duckdb.DuckDBPyConnection, run_id: str | None = None) -> list[dict[str, Any]]:
    """Confirmed and rejected verdicts per mining run and issue type (``run_id`` to pick one run)."""
    sql = "SELECT run_id, issue_type, confirmed, rejected, reviewed FROM review_verdict_stats"
    params: list[Any] = []
    if run_id is not None:
        sql += " WHERE run_id = ?"
        params.append(run_id)
    rows = con.execute(sql + " ORDER BY run_id, issue_type", params).fetchall()
    return [{"run_id": r[0], "issue_type": r[1], "confirmed": int(r[2]), "rejected": int(r[3]), "reviewed": int(r[4])}
            for r in rows]


def effective_weights(con: duckdb.DuckDBPyConnection, cfg: EngineConfig) -> dict[str, float]:
    """The queue's weight per issue type: ``review.weights`` scaled by how often reviewers confirm it.

    With ``c`` confirmed among ``n`` reviewed (all runs), the smoothed confirmation rate is
    ``(c + PRIOR_VERDICTS * PRIOR_RATE) / (n + PRIOR_VERDICTS)`` and the weight is the configured
    one times ``rate / PRIOR_RATE``, clipped to [MIN_WEIGHT_FACTOR, MAX_WEIGHT_FACTOR] times it.
    Without verdicts the configured weights come back unchanged.
    """
    weights = dict(cfg.review.weights)
    if not _has_table(con, "review_verdict_stats"):
        return weights
    totals = {r[0]: (int(r[1]), int(r[2])) for r in con.execute(
        "SELECT issue_type, sum(confirmed), sum(reviewed) FROM review_verdict_stats GROUP BY issue_type").fetchall()}
    out = {}
    for issue_type, base in weights.items():
        confirmed, reviewed = totals.get(issue_type, (0, 0))
        rate = (confirmed + PRIOR_VERDICTS * PRIOR_RATE) / (reviewed + PRIOR_VERDICTS)
        factor = min(max(rate / PRIOR_RATE, MIN_WEIGHT_FACTOR), MAX_WEIGHT_FACTOR)
        out[issue_type] = round(base * factor, 4)
    return out


def review_status(con: duckdb.DuckDBPyConnection) -> dict[str, Any]:
    """Counts of tasks by status, verdicts by outcome, events by source, the pull cursor, annotator quality."""
    tasks = dict(con.execute("SELECT status, count(*) FROM review_tasks GROUP BY status ORDER BY status").fetchall())
    outcomes = dict(con.execute("SELECT outcome, count(*) FROM review_verdicts GROUP BY outcome").fetchall())
    sources = dict(con.execute(
        "SELECT source, count(*) FROM label_events WHERE source IN ('review', 'vote', 'consensus') GROUP BY source"
    ).fetchall())
    discards = con.execute("SELECT count(*) FROM review_verdicts WHERE is_discard").fetchall()[0][0]
    cursors = [{"project_id": r[0], "updated_after": r[1], "pulled_at": str(r[2]), "pulls": r[3]} for r in
               con.execute("SELECT project_id, updated_after, pulled_at, pulls FROM review_cursor").fetchall()]
    annotators = [{"annotator": r[0], "votes": int(r[1]), "agreement": r[2], "quality": r[3]} for r in
                  con.execute("SELECT annotator, n_votes, agreement, quality FROM review_annotator_quality "
                              "ORDER BY annotator").fetchall()]
    return {"tasks": tasks, "verdicts": outcomes, "discarded": int(discards), "events": sources, "cursors": cursors,
            "annotators": annotators}


def make_client(home: Home) -> ReviewClient:
    """The real client for ``home``: ``review.url``, the key from ``$review.api_key_env`` or the secrets dir."""
    from data_engine.labelstudio.client import LabelStudioClient
    from data_engine.labelstudio.server import resolve_api_key

    cfg = home.config.review
    return LabelStudioClient(cfg.url, resolve_api_key(home), timeout_s=cfg.timeout_seconds,
                             key_name=f"${cfg.api_key_env} (or {home.secrets}/labelstudio_token)")


def _norm_ts(value: str | None) -> str:
    """A server time as a sortable ``YYYY-MM-DDTHH:MM:SS.ffffffZ`` string ('' for None)."""
    if not value:
        return ""
    dt = datetime.fromisoformat(str(value).replace("Z", "+00:00"))
    if dt.tzinfo is None:
        dt = dt.replace(tzinfo=UTC)
    return dt.astimezone(UTC).strftime(_TS_FORMAT)


def _shift(ts: str, delta: timedelta) -> str:
    return (datetime.fromisoformat(ts.replace("Z", "+00:00")) + delta).astimezone(UTC).strftime(_TS_FORMAT)


def _has_table(con: duckdb.DuckDBPyConnection, name: str) -> bool:
    return con.execute("SELECT count(*) FROM information_schema.tables WHERE table_name = ?", [name]).fetchall()[0][0] > 0


def _columns(con: duckdb.DuckDBPyConnection, table: str) -> set[str]:
    return {r[0] for r in con.execute("SELECT column_name FROM information_schema.columns WHERE table_name = ?",
                                      [table]).fetchall()}
