"""Verdicts measure the miner: :func:`verdict_stats` counts per mining run and issue type how many
flagged examples reviewers confirmed (label changed or discarded) or rejected (label kept) (mining
turns them into the queue's weights: :mod:`data_engine.mine.weights`); :func:`review_status` sums
up the review state."""

from __future__ import annotations

import json
from typing import Any

import duckdb

def verdict_stats(con: duckdb.DuckDBPyConnection, run_id: int | None = None) -> list[dict[str, Any]]:
    """Confirmed and rejected verdicts per mining run and issue type (``run_id`` to pick one run)."""
    sql = "SELECT run_id, issue_type, confirmed, rejected, reviewed FROM review_verdict_stats"
    params: list[Any] = []
    if run_id is not None:
        sql += " WHERE run_id = ?"
        params.append(int(run_id))
    rows = con.execute(sql + " ORDER BY run_id, issue_type", params).fetchall()
    return [{"run_id": int(r[0]) if r[0] is not None else None, "issue_type": r[1], "confirmed": int(r[2]), "rejected": int(r[3]), "reviewed": int(r[4])}
            for r in rows]


def review_round(con: duckdb.DuckDBPyConnection, run_id: int) -> dict[str, Any]:
    """One mining run's review round: tasks ``sent`` and when the first was (``first_sent``), verdicts
    (``reviews``) and when the last was decided (``last_decided``); times are None when nothing is."""
    sent, first = con.execute("SELECT count(*), min(sent_at) FROM review_tasks WHERE run_id = ?",
                              [int(run_id)]).fetchone()
    reviews, decided = con.execute("SELECT count(*), max(decided_at) FROM review_verdicts WHERE run_id = ?",
                                   [int(run_id)]).fetchone()
    return {"sent": int(sent), "first_sent": first, "reviews": int(reviews), "last_decided": decided}


def review_status(con: duckdb.DuckDBPyConnection) -> dict[str, Any]:
    """Counts of tasks by status, verdicts by outcome, events by source, the pull cursor, annotator
    quality, and the changes noticed on the server by kind (``review_changes``)."""
    tasks = dict(con.execute("SELECT status, count(*) FROM review_tasks GROUP BY status ORDER BY status").fetchall())
    outcomes = dict(con.execute("SELECT outcome, count(*) FROM review_verdicts GROUP BY outcome").fetchall())
    sources = dict(con.execute(
        "SELECT source, count(*) FROM label_events WHERE source IN ('review', 'vote', 'consensus', 'rule', 'propagated', "
        "'retraction') GROUP BY source"
    ).fetchall())
    discards = con.execute("SELECT count(*) FROM review_verdicts WHERE is_discard").fetchall()[0][0]
    cursors = [{"project_id": r[0], "updated_after": r[1], "pulled_at": str(r[2]), "pulls": r[3]} for r in
               con.execute("SELECT project_id, updated_after, pulled_at, pulls FROM review_cursor").fetchall()]
    annotators = [{"annotator": r[0], "votes": int(r[1]), "agreement": r[2], "quality": r[3]} for r in
                  con.execute("SELECT annotator, n_votes, agreement, quality FROM review_annotator_quality "
                              "ORDER BY annotator").fetchall()]
    # What was noticed of Label Studio changing under the engine (a new database, deletions).
    changes = dict(con.execute("SELECT kind, count(*) FROM review_changes GROUP BY kind ORDER BY kind").fetchall())
    return {"tasks": tasks, "verdicts": outcomes, "discarded": int(discards), "events": sources, "cursors": cursors,
            "annotators": annotators, "server_changes": changes}


def latest_budget_split(con: duckdb.DuckDBPyConnection) -> dict[str, Any]:
    """The newest mining run's split of the review budget between fixes and new examples
    (:class:`data_engine.mine.budget.BudgetSplit` as metadata) with its queue's rows per way of
    choosing (``selection``: fix, the strategy, explore); empty before the first run that made one."""
    row = con.execute("SELECT run_id, json_extract(summary, '$.budget_split') FROM mining_runs "
                      "ORDER BY run_id DESC LIMIT 1").fetchall()
    if not row or not row[0][1] or row[0][1] in ("{}", "null"):
        return {}
    split = json.loads(row[0][1])
    split["selection"] = dict(con.execute(
        "SELECT coalesce(selection, 'unknown'), count(*) FROM review_queue WHERE run_id = ? GROUP BY 1 ORDER BY 1",
        [row[0][0]]).fetchall())
    return split
