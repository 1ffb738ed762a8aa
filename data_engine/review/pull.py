"""Pull: read the tasks annotated since the cursor and turn each new or edited answer into a ledger row.

Tasks are read through a Data Manager filter; each answer becomes a ``label_ledger`` row (read
through ``label_events``):

* one reviewer: source 'review' (an edit adds a later event, which supersedes the earlier one);
* several reviewers on a task: each answer is a 'vote' (never in force alone); once enough
  reviewers answered, the majority (:mod:`data_engine.review.consensus`) is recorded as
  'consensus'; a tie stays pending;
* "not a valid example" records a NULL label (the example is discarded); skipped or cancelled
  annotations change nothing;
* everything is read before anything is written, and written in one transaction with the new
  cursor, so a server failing mid-way loses nothing and the next pull resumes.

The review sensor's decision (whether to pull) is :func:`data_engine.triggers.pull_decision`."""

from __future__ import annotations

import json
import time
from dataclasses import asdict, dataclass, field
from datetime import timedelta
from typing import Any

import duckdb
import pandas as pd

from data_engine.review.annotators import _refresh_annotator_quality
from data_engine.review.consensus import _TIE, _Answer, _answers, _consensus, _norm_ts, _shift
from data_engine.review.labelstudio.client import ReviewClient
from data_engine.review.labelstudio.labeling import DISCARD_CHOICE
from data_engine.store.ledger import append_events
from data_engine.review.identity import ProjectRef, reconcile_inventory
from data_engine.review.project import dataset_classes, known_project, reconcile_tasks
from data_engine.review.verdicts import verdict_stats
from data_engine.store.config import EngineConfig
from data_engine.store.warehouse import rollback_quietly, transaction
from data_engine.tasks import task_for

# Each pull re-reads tasks updated this long before its cursor: an annotation saved while the
# previous pull was reading can carry an earlier updated_at than tasks that pull already saw.
# Re-reading is harmless (pulling the same annotation twice changes nothing).
PULL_OVERLAP = timedelta(seconds=120)




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
    # What changed on the server (a new database, a deleted project, task or answer), one line each.
    notices: list[str] = field(default_factory=list)
    # Annotations that could not be read (malformed, a choice outside the classes): skipped, named here.
    problems: list[str] = field(default_factory=list)

    @property
    def events(self) -> int:
        """Label events written."""
        return self.review_events + self.votes + self.consensus

    def as_dict(self) -> dict[str, Any]:
        """The result as plain data."""
        return {**asdict(self), "events": self.events}


def pull_verdicts(con: duckdb.DuckDBPyConnection, client: ReviewClient, cfg: EngineConfig) -> PullResult:
    """Bring every new or edited verdict since the cursor into ``label_events`` (idempotent).

    Raises :class:`ReviewServiceError` when the server fails; nothing is written then.
    """
    started, requests_before = time.perf_counter(), client.request_count
    ref, notices = known_project(con, client, cfg)
    result = PullResult(project_id=ref.project_id if ref else None, notices=notices)
    if ref is None:
        return result
    project_id = ref.key  # the engine's key of the project: what its tables hold
    # Tasks of an interrupted push may already be answered: learn their ids first, or their
    # verdicts would be skipped as foreign and fall behind the cursor.
    reconcile_tasks(con, client, ref)
    row = con.execute("SELECT updated_after FROM review_cursor WHERE project_id = ?", [project_id]).fetchall()
    cursor = row[0][0] if row else None
    since = _shift(cursor, -PULL_OVERLAP) if cursor else None
    # All reading first: a failure here leaves the warehouse untouched.
    tasks = client.annotated_tasks(ref.project_id, since)
    users = client.users() if tasks else {}
    result.tasks_seen = len(tasks)
    newest = max([cursor or "", *(_norm_ts(t["updated_at"]) for t in tasks)]) or None
    con.execute("BEGIN TRANSACTION")
    try:
        if tasks:
            _record(con, cfg, ref, tasks, users, result)
        con.execute(
            "INSERT INTO review_cursor (project_id, updated_after, pulled_at, pulls) VALUES (?, ?, now(), 1) "
            "ON CONFLICT (project_id) DO UPDATE SET updated_after = excluded.updated_after, pulled_at = now(), "
            "pulls = review_cursor.pulls + 1", [project_id, newest])
        con.execute("COMMIT")
    except BaseException:
        rollback_quietly(con)  # after a failed COMMIT (a full disk) there is nothing to roll back
        raise
    # Tasks or answers deleted on the server: checked after recording what was read, so the counts
    # compared include the answers just pulled.
    with transaction(con):
        result.notices += reconcile_inventory(con, client, ref, only_if_fewer=True)
    result.cursor = newest
    result.stats = verdict_stats(con)
    result.seconds = round(time.perf_counter() - started, 3)
    result.requests = client.request_count - requests_before
    return result


def _record(con: duckdb.DuckDBPyConnection, cfg: EngineConfig, ref: ProjectRef, tasks: list[dict[str, Any]],
            users: dict[int, str], result: PullResult) -> None:
    """Write the label events, annotation rows, verdicts and task states for the pulled ``tasks``."""
    project_id = ref.key
    known_tasks = _known_tasks(con, project_id, [t["id"] for t in tasks])
    choices = [*dataset_classes(con, cfg), DISCARD_CHOICE]
    label_task = task_for(cfg.dataset)
    answers_by_task: dict[int, list[_Answer]] = {}
    for task in tasks:
        meta = known_tasks.get(task["id"])
        if meta is None:
            continue  # a task created outside the engine: not ours to judge
        answers_by_task[task["id"]] = _answers(task, users, choices, result.problems, label_task)
    all_ids = [a.annotation_id for answers in answers_by_task.values() for a in answers]
    seen = _known_annotations(con, project_id, all_ids)
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
            if before is not None and not _same_answer(before, a):
                before = None  # another answer under the same id (a server that reuses ids): new
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
                "annotation_id": a.annotation_id, "task_id": task_id, "project_id": ref.project_id,
                "lead_time": a.lead_time, "run_id": meta["run_id"], "annotation_updated_at": a.updated_at}))
            annotation_rows.append({**asdict(a), "label": a.label, "is_discard": a.label is None, "source": source,
                                    "event_index": len(events) - 1, "task_id": task_id,
                                    "first_event_id": before["first_event_id"] if before is not None else None,
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

    for task_id, label, agreement, n_votes, votes in _consensus(consensus_candidates, label_task):
        meta = known_tasks[task_id]
        if label is _TIE:
            result.ties += 1
            status_rows.append({"task_id": task_id, "status": "tie"})
            continue
        previous = _current_verdict(con, project_id, task_id)
        if previous is not None and previous["source"] == "consensus" and previous["label"] == label:
            status_rows.append({"task_id": task_id, "status": "done"})
            continue
        events.append(_event(meta, label, "consensus", "consensus", {
            "task_id": task_id, "project_id": ref.project_id, "run_id": meta["run_id"], "agreement": agreement,
            "votes": votes}))
        verdict_rows.append(_verdict(meta, task_id, project_id, label, "consensus", n_votes, agreement, len(events) - 1))
        status_rows.append({"task_id": task_id, "status": "done"})
        result.consensus += 1
        result.discards += label is None

    event_ids = append_events(con, events)
    _write_annotations(con, project_id, annotation_rows, event_ids)
    _write_verdicts(con, verdict_rows, event_ids)
    _write_statuses(con, project_id, status_rows)
    if consensus_candidates:
        _refresh_annotator_quality(con, cfg)


def record_verdicts(con: duckdb.DuckDBPyConnection, queue_rows: pd.DataFrame, labels: list[str | None],
                    actor: str) -> list[int]:
    """Single reviews given outside Label Studio (a benchmark's simulated reviewer), recorded as a
    pull records them: ``review`` ledger events and ``review_verdicts`` rows, so the confirmation
    rates per issue type (and with them the budget split) learn from them as from real reviews.

    ``queue_rows``: rows of ``review_queue`` (``run_id``, ``example_id``, ``example_version``,
    ``issue_types``, ``given_label``); ``labels``: the verdict per row (None = discard). The task id
    is minus the event id (Label Studio's are positive). Returns the event ids.
    """
    metas = queue_rows[["example_id", "example_version", "run_id", "issue_types", "given_label"]].to_dict("records")
    for meta in metas:
        meta["issue_types"] = list(meta["issue_types"]) if meta["issue_types"] is not None else []
        meta["run_id"] = None if pd.isna(meta["run_id"]) else int(meta["run_id"])
    event_ids = append_events(con, [_event(m, label, "review", actor, {"simulated": True})
                                    for m, label in zip(metas, labels, strict=True)])
    _write_verdicts(con, [_verdict(m, -eid, 0, label, "review", 1, 1.0, i)
                          for i, (m, label, eid) in enumerate(zip(metas, labels, event_ids, strict=True))], event_ids)
    return event_ids


def _known_tasks(con: duckdb.DuckDBPyConnection, project_id: int, task_ids: list[int]) -> dict[int, dict[str, Any]]:
    rows = con.execute(
        "SELECT task_id, example_id, example_version, run_id, issue_types, given_label, status FROM review_tasks "
        "WHERE project_id = ? AND list_contains(?, task_id)", [project_id, task_ids]).fetchdf()
    out = {}
    for r in rows.to_dict("records"):
        r["issue_types"] = list(r["issue_types"]) if r["issue_types"] is not None else []
        r["run_id"] = None if pd.isna(r["run_id"]) else int(r["run_id"])  # a NULL makes the column float
        out[int(r["task_id"])] = r
    return out


def _known_annotations(con: duckdb.DuckDBPyConnection, project_key: int, ids: list[int]) -> dict[int, dict[str, Any]]:
    if not ids:
        return {}
    rows = con.execute("SELECT annotation_id, choice, updated_at, created_at, first_event_id FROM review_annotations "
                       "WHERE project_id = ? AND list_contains(?, annotation_id)", [project_key, ids]).fetchall()
    return {int(r[0]): {"choice": r[1], "updated_at": r[2], "created_at": r[3], "first_event_id": r[4]} for r in rows}


def _same_answer(before: dict[str, Any], answer: _Answer) -> bool:
    """Whether a recorded annotation and a pulled one of the same id are the same answer: the same
    creation time (a row recorded before creation times were kept is taken as the same)."""
    if before["created_at"] is None or answer.created_at is None:
        return True
    return _norm_ts(before["created_at"]) == _norm_ts(answer.created_at)


def _current_verdict(con: duckdb.DuckDBPyConnection, project_key: int, task_id: int) -> dict[str, Any] | None:
    row = con.execute("SELECT label, source FROM review_verdicts WHERE project_id = ? AND task_id = ?",
                      [project_key, task_id]).fetchall()
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


def _write_annotations(con: duckdb.DuckDBPyConnection, project_id: int, rows: list[dict[str, Any]],
                       event_ids: list[int]) -> None:
    if not rows:
        return
    frame = pd.DataFrame(rows)
    frame["event_id"] = [event_ids[i] for i in frame["event_index"]]
    # An edited answer keeps the event of its first version: a retraction withdraws them all.
    frame["first_event_id"] = [int(f) if f is not None and not pd.isna(f) else e
                               for f, e in zip(frame["first_event_id"], frame["event_id"], strict=True)]
    frame["label"] = frame["label"].astype(object)
    frame["created_at"] = frame["created_at"].astype(object)
    frame["lead_time"] = frame["lead_time"].astype(float)
    frame["annotator_id"] = frame["annotator_id"].astype("Int64")
    con.register("_annotations", frame)
    try:
        con.execute(
            "INSERT OR REPLACE INTO review_annotations (annotation_id, project_id, task_id, example_id, example_version, "
            "annotator_id, annotator, choice, label, is_discard, lead_time, created_at, updated_at, source, "
            "first_event_id, event_id) "
            "SELECT annotation_id, ?, task_id, example_id, example_version, annotator_id, annotator, choice, "
            "CAST(label AS VARCHAR), is_discard, lead_time, CAST(created_at AS VARCHAR), updated_at, source, "
            "first_event_id, event_id FROM _annotations", [project_id])
    finally:
        con.unregister("_annotations")


def _write_verdicts(con: duckdb.DuckDBPyConnection, rows: list[dict[str, Any]], event_ids: list[int]) -> None:
    if not rows:
        return
    frame = pd.DataFrame(rows).drop_duplicates("task_id", keep="last")
    frame["event_id"] = [event_ids[i] for i in frame["event_index"]]
    for col in ("label", "given_label"):
        frame[col] = frame[col].astype(object)
    frame["run_id"] = frame["run_id"].astype("Int64")
    frame["agreement"] = frame["agreement"].astype(float)
    con.register("_verdicts", frame)
    try:
        con.execute(
            "INSERT OR REPLACE INTO review_verdicts (task_id, project_id, example_id, example_version, run_id, "
            "issue_types, given_label, label, is_discard, outcome, source, n_votes, agreement, event_id, decided_at) "
            "SELECT task_id, project_id, example_id, example_version, run_id, "
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
