"""Label Studio's identity: which server, project, task and answer an id names, and what to do when
the server no longer has what the engine recorded.

A Label Studio restarted on a new database (a lost volume, a move to PostgreSQL on the same URL)
hands out project, task and annotation ids again from 1, and a person can delete a project, a task
or an answer at any time. So the engine records, with each project, the project's ``created_at``
and the server's identity (:meth:`ReviewClient.server_identity`), and keys everything it keeps by
its own project key (``review_projects.project_key``, never reused) instead of the server's id.

Each push and pull first calls :func:`check_project` (one request when nothing changed); a push
then calls :func:`reconcile_inventory` (one listing of task and annotation ids), a pull calls it
after recording what it read, listing only when the project's counts fall short of what the engine
recorded. What they notice is said in one line each, written to ``review_changes``, and reconciled:

* a changed server or a deleted project: the project is retired, its open tasks go back to
  'sending' and the next push sends them to a new project (:func:`adopt_open_work`);
* a deleted task still open: sent again; a deleted task already decided keeps its verdict;
* a deleted annotation: each ledger event it gave is withdrawn by a 'retraction' entry (the ledger
  stays append-only; ``current_labels`` leaves retracted events out, so the previous label is in
  force again), with the consensus it took part in, and its task waits for a new answer.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

import duckdb
import pandas as pd

from data_engine.review.labelstudio.client import ReviewClient
from data_engine.store.ledger import append_events

# Task states that still wait for an answer: sent again when their task or project is gone.
WAITING = ("sending", "open", "partial", "tie")


@dataclass
class ProjectRef:
    """The project a push or pull works on: the engine's key of it (``review_tasks.project_id``),
    the server's id, and the lines saying what was noticed on the way."""

    key: int
    project_id: int
    notices: list[str] = field(default_factory=list)


def current_project(con: duckdb.DuckDBPyConnection, url: str, title: str) -> dict[str, Any] | None:
    """The recorded, not retired project titled ``title`` at ``url`` (a ``review_projects`` row)."""
    rows = con.execute(
        "SELECT project_key, project_id, project_created_at, server_id FROM review_projects "
        "WHERE url = ? AND title = ? AND retired_at IS NULL ORDER BY project_key DESC LIMIT 1", [url, title]).fetchall()
    if not rows:
        return None
    key, pid, created, server = rows[0]
    return {"key": int(key), "project_id": int(pid), "created_at": created, "server_id": server}


def check_project(con: duckdb.DuckDBPyConnection, client: ReviewClient, title: str) -> tuple[ProjectRef | None, list[str]]:
    """The recorded project of ``title`` if the server still has it (same id AND same ``created_at``);
    else retire it, put its open tasks back to 'sending' and say why in one line.

    Returns (the project or None, the lines said). Costs one request when nothing changed, two
    more when something did. Raises ``ReviewServiceError`` when the server fails.
    """
    rec = current_project(con, client.url, title)
    if rec is None:
        return None, []
    info = client.project_info(rec["project_id"])
    if info is not None and _same_project(rec, info, title):
        if rec["created_at"] is None or rec["server_id"] is None:
            # Recorded before the engine kept identities: record them now, at first sight.
            con.execute("UPDATE review_projects SET project_created_at = ?, server_id = ? WHERE project_key = ?",
                        [info["created_at"], client.server_identity(), rec["key"]])
        return ProjectRef(rec["key"], rec["project_id"]), []
    server = client.server_identity()
    changed = rec["server_id"] is not None and server != rec["server_id"]
    kind = "server_changed" if changed else "project_deleted"
    waiting = _release_waiting(con, rec["key"])
    cause = (f"Label Studio at {client.url} runs on a new database ({server}; was {rec['server_id']})"
             if changed else f"project {title!r} (id {rec['project_id']}) was deleted from Label Studio at {client.url}")
    line = (f"{cause}: {waiting} open task(s) will be sent to a new project by the push; "
            "the verdicts already pulled from it stay in force")
    con.execute("UPDATE review_projects SET retired_at = now(), retired_reason = ? WHERE project_key = ?",
                [kind, rec["key"]])
    _record_changes(con, [{"project_key": rec["key"], "kind": kind, "detail": line}])
    return None, [line]


def _same_project(rec: dict[str, Any], info: dict[str, Any], title: str) -> bool:
    """Whether ``info`` (the server's project of the recorded id) is the recorded project: the same
    ``created_at`` (a renamed project stays the same); for a record from before identities were
    kept, the same title."""
    if rec["created_at"] is not None:
        return _instant(info.get("created_at")) == _instant(rec["created_at"])
    return info.get("title") == title


def _instant(value: Any) -> datetime | None:
    """A server time as an aware datetime (None for anything else), so '...Z' and '+00:00' compare equal."""
    if not isinstance(value, str):
        return None
    try:
        return datetime.fromisoformat(value.replace("Z", "+00:00"))
    except ValueError:
        return None


def record_project(con: duckdb.DuckDBPyConnection, client: ReviewClient, title: str, dataset: str,
                   project_id: int) -> ProjectRef:
    """Record ``project_id`` (just found or created on the server) as the current project of
    ``title`` under a new engine key: the server's id when no earlier project took it as its key,
    else the next free key. Moves the open work of the retired projects of ``title`` to it."""
    info = client.project_info(project_id) or {}
    taken = con.execute("SELECT project_key FROM review_projects UNION SELECT DISTINCT project_id FROM review_tasks "
                        "UNION SELECT DISTINCT project_id FROM review_annotations").fetchall()
    keys = {int(r[0]) for r in taken if r[0] is not None}
    key = project_id if project_id not in keys else max(keys) + 1
    con.execute("INSERT INTO review_projects (project_key, url, title, project_id, dataset, project_created_at, "
                "server_id) VALUES (?, ?, ?, ?, ?, ?, ?)",
                [key, client.url, title, project_id, dataset, info.get("created_at"), client.server_identity()])
    adopt_open_work(con, client.url, title, key)
    return ProjectRef(key, project_id)


def lineage_keys(con: duckdb.DuckDBPyConnection, key: int) -> list[int]:
    """The keys of every project, retired or current, of the same title and URL as ``key``: what was
    sent to any of them counts as sent (an example is not reviewed again because the server changed)."""
    rows = con.execute("SELECT p.project_key FROM review_projects p JOIN review_projects k "
                       "ON k.url = p.url AND k.title = p.title WHERE k.project_key = ?", [key]).fetchall()
    return sorted({int(r[0]) for r in rows} | {key})


def adopt_open_work(con: duckdb.DuckDBPyConnection, url: str, title: str, key: int) -> int:
    """Move the tasks of retired projects of ``title`` at ``url`` that wait to be sent again to project
    ``key``; returns how many."""
    return int(con.execute(
        "UPDATE review_tasks SET project_id = ? WHERE status = 'sending' AND task_id IS NULL AND project_id IN "
        "(SELECT project_key FROM review_projects WHERE url = ? AND title = ? AND retired_at IS NOT NULL)",
        [key, url, title]).fetchall()[0][0])


def _release_waiting(con: duckdb.DuckDBPyConnection, key: int) -> int:
    """Put project ``key``'s tasks still waiting for an answer back to 'sending' (no task id): the
    next push sends them again. Returns how many."""
    return int(con.execute(
        "UPDATE review_tasks SET status = 'sending', task_id = NULL WHERE project_id = ? "
        "AND list_contains(?::VARCHAR[], status)", [key, list(WAITING)]).fetchall()[0][0])


def _record_changes(con: duckdb.DuckDBPyConnection, rows: list[dict[str, Any]]) -> None:
    """One ``review_changes`` row per change noticed (a few per push or pull: row by row is enough)."""
    if not rows:
        return
    con.executemany("INSERT INTO review_changes (project_key, kind, task_id, annotation_id, example_id, detail) "
                    "VALUES (?, ?, ?, ?, ?, ?)",
                    [[r["project_key"], r["kind"], r.get("task_id"), r.get("annotation_id"), r.get("example_id"),
                      r.get("detail")] for r in rows])


def reconcile_inventory(con: duckdb.DuckDBPyConnection, client: ReviewClient, ref: ProjectRef, *,
                        only_if_fewer: bool = False) -> list[str]:
    """Compare the tasks and answers recorded for ``ref`` with what the server has now: tasks deleted
    while open are sent again, answers deleted after a pull are retracted. Returns the lines said
    (at most one per kind). One listing of ids (a page per 1,000 tasks: 10.6 s for 10,000 tasks on a
    loaded 2-core machine); nothing when no task is recorded.

    ``only_if_fewer`` (a pull, right after recording what it read): first compare the project's
    counts (one request) and list only when the server has fewer tasks or answers than the engine
    recorded. Answers given meanwhile can hide a deletion from the counts; the next push, which
    always lists, or a later pull notices it.
    """
    floor, ours_tasks = con.execute(
        "SELECT min(task_id), count(*) FROM review_tasks WHERE project_id = ? AND task_id IS NOT NULL "
        "AND NOT EXISTS (SELECT 1 FROM review_changes c WHERE c.project_key = review_tasks.project_id "
        "AND c.kind = 'task_deleted' AND c.task_id = review_tasks.task_id)", [ref.key]).fetchall()[0]
    if floor is None:
        return []
    if only_if_fewer:
        info = client.project_info(ref.project_id) or {}
        ours_answers = con.execute("SELECT count(*) FROM review_annotations WHERE project_id = ?",
                                   [ref.key]).fetchall()[0][0]
        if int(info.get("tasks") or 0) >= ours_tasks and int(info.get("annotations") or 0) >= ours_answers:
            return []
    inventory = client.task_inventory(ref.project_id, int(floor) - 1)
    lines = []
    gone_tasks = _deleted_tasks(con, ref.key, inventory)
    if not gone_tasks.empty:
        lines.append(_handle_deleted_tasks(con, client, ref, gone_tasks))
    gone_answers = _deleted_annotations(con, ref.key, inventory)
    if not gone_answers.empty:
        lines.append(_retract(con, client, ref, gone_answers))
    return lines


def _deleted_tasks(con: duckdb.DuckDBPyConnection, key: int, inventory: dict[int, dict[int, str | None]]) -> pd.DataFrame:
    present = pd.DataFrame({"task_id": pd.Series(list(inventory), dtype="int64")})
    con.register("_present", present)
    try:
        return con.execute(
            "SELECT t.task_id, t.example_id, t.status FROM review_tasks t WHERE t.project_id = ? AND t.task_id IS NOT NULL "
            "AND t.task_id NOT IN (SELECT task_id FROM _present) "
            "AND NOT EXISTS (SELECT 1 FROM review_changes c WHERE c.project_key = t.project_id "
            "AND c.kind = 'task_deleted' AND c.task_id = t.task_id) ORDER BY t.task_id", [key]).fetchdf()
    finally:
        con.unregister("_present")


def _handle_deleted_tasks(con: duckdb.DuckDBPyConnection, client: ReviewClient, ref: ProjectRef,
                          gone: pd.DataFrame) -> str:
    """Tasks deleted on the server: the waiting ones go back to 'sending' (re-sent by the next push);
    a decided one keeps its verdict (deleting a task is tidying up, not withdrawing an answer)."""
    waiting = gone[gone["status"].isin(WAITING)]
    if not waiting.empty:
        con.execute("UPDATE review_tasks SET status = 'sending', task_id = NULL WHERE project_id = ? "
                    "AND list_contains(?::BIGINT[], task_id)", [ref.key, [int(t) for t in waiting["task_id"]]])
    decided = len(gone) - len(waiting)
    line = (f"{len(gone)} task(s) of project {ref.project_id} were deleted from Label Studio at {client.url} "
            f"(ids {_ids(gone['task_id'])}): {len(waiting)} still open will be sent again"
            + (f"; {decided} already decided keep their verdicts" if decided else ""))
    _record_changes(con, [{"project_key": ref.key, "kind": "task_deleted", "task_id": int(r.task_id),
                           "example_id": r.example_id,
                           "detail": "sent again" if r.status in WAITING else "verdict kept"}
                          for r in gone.itertuples(index=False)])
    return line


def _deleted_annotations(con: duckdb.DuckDBPyConnection, key: int,
                         inventory: dict[int, dict[int, str | None]]) -> pd.DataFrame:
    """Recorded annotations on tasks the server still has that it no longer lists (or lists with
    another creation time: another answer under a reused id)."""
    recorded = con.execute(
        "SELECT annotation_id, task_id, example_id, example_version, created_at, source, first_event_id, event_id "
        "FROM review_annotations WHERE project_id = ?", [key]).fetchdf()
    if recorded.empty:
        return recorded
    keep = []
    for r in recorded.itertuples(index=False):
        on_task = inventory.get(int(r.task_id))
        if on_task is None:
            keep.append(False)  # the task itself is gone: handled as a deleted task
            continue
        aid = int(r.annotation_id)
        same = aid in on_task and (r.created_at is None or _instant(on_task[aid]) == _instant(r.created_at))
        keep.append(not same)
    return recorded[keep].reset_index(drop=True)


def _retract(con: duckdb.DuckDBPyConnection, client: ReviewClient, ref: ProjectRef, gone: pd.DataFrame) -> str:
    """Withdraw the deleted answers: a 'retraction' ledger entry for each event an answer gave (and
    for the consensus of its task), its verdict and annotation rows removed, its task open again."""
    events: list[dict[str, Any]] = []
    tasks = sorted({int(t) for t in gone["task_id"]})
    for r in gone.itertuples(index=False):
        retracted = con.execute(
            "SELECT event_id, example_id, example_version FROM label_ledger WHERE source IN ('review', 'vote') "
            "AND example_id = ? AND event_id BETWEEN ? AND ? "
            "AND json_extract_string(detail, '$.annotation_id') = ? ORDER BY event_id",
            [r.example_id, int(r.first_event_id), int(r.event_id), str(int(r.annotation_id))]).fetchall()
        events += [_retraction(eid, ex, ver, client, ref, int(r.task_id), int(r.annotation_id)) for eid, ex, ver in retracted]
    # A consensus needs its votes: it is withdrawn with any of them (the task waits for another vote).
    for eid, ex, ver, tid in con.execute(
            "SELECT v.event_id, v.example_id, v.example_version, v.task_id FROM review_verdicts v "
            "WHERE v.project_id = ? AND v.source = 'consensus' AND list_contains(?::BIGINT[], v.task_id)",
            [ref.key, tasks]).fetchall():
        events.append(_retraction(eid, ex, ver, client, ref, int(tid), None))
    append_events(con, events)
    ids = [int(a) for a in gone["annotation_id"]]
    con.execute("DELETE FROM review_annotations WHERE project_id = ? AND list_contains(?::BIGINT[], annotation_id)",
                [ref.key, ids])
    con.execute("DELETE FROM review_verdicts WHERE project_id = ? AND list_contains(?::BIGINT[], task_id)", [ref.key, tasks])
    # Open again: 'partial' while other answers of the task remain, else 'open'.
    con.execute(
        "UPDATE review_tasks SET completed_at = NULL, status = CASE WHEN EXISTS (SELECT 1 FROM review_annotations a "
        "WHERE a.project_id = review_tasks.project_id AND a.task_id = review_tasks.task_id) THEN 'partial' ELSE 'open' END "
        "WHERE project_id = ? AND list_contains(?::BIGINT[], task_id)", [ref.key, tasks])
    _record_changes(con, [{"project_key": ref.key, "kind": "annotation_deleted", "task_id": int(r.task_id),
                           "annotation_id": int(r.annotation_id), "example_id": r.example_id,
                           "detail": "verdict retracted"} for r in gone.itertuples(index=False)])
    return (f"{len(gone)} answer(s) were deleted from project {ref.project_id} at {client.url} after they were "
            f"pulled (annotation ids {_ids(gone['annotation_id'])}): their verdicts are retracted and "
            f"{len(tasks)} task(s) wait for a new answer")


def _retraction(event_id: int, example_id: str, version: int, client: ReviewClient, ref: ProjectRef,
                task_id: int, annotation_id: int | None) -> dict[str, Any]:
    return {"example_id": example_id, "example_version": int(version), "label": None, "source": "retraction",
            "actor": f"label-studio:{client.url}",
            "detail": json.dumps({"retracts": int(event_id), "task_id": task_id, "annotation_id": annotation_id,
                                  "project_id": ref.project_id, "reason": "deleted in Label Studio"}, sort_keys=True)}


def _ids(values: Any, shown: int = 5) -> str:
    ids = [str(int(v)) for v in values]
    return ", ".join(ids[:shown]) + (f" and {len(ids) - shown} more" if len(ids) > shown else "")
