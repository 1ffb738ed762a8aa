"""Verdicts measure the miner: :func:`verdict_stats` counts per mining run and issue type how many
flagged examples reviewers confirmed (label changed or discarded) or rejected (label kept), and
:func:`effective_weights` turns them into the queue's weights per issue type; :func:`review_status`
sums up the review state."""

from __future__ import annotations

import json
from collections.abc import Iterable
from typing import Any

import duckdb

from data_engine.store.config import EngineConfig
from data_engine.store.warehouse import has_table

# effective_weights: a Beta prior worth this many reviewed examples at a 50% confirmation rate,
# so a handful of verdicts nudges a weight and hundreds decide it.
PRIOR_VERDICTS = 20.0


PRIOR_RATE = 0.5


# The smallest share of its configured weight an issue type keeps, so a detector reviewers
# mostly reject still gets an occasional example reviewed (and can earn its weight back).
MIN_WEIGHT_FACTOR = 0.1


MAX_WEIGHT_FACTOR = 2.0


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


def confirmation_rates(con: duckdb.DuckDBPyConnection, issue_types: Iterable[str]) -> dict[str, float]:
    """Smoothed share of flagged examples reviewers confirmed, per issue type, over all runs.

    With ``c`` confirmed among ``n`` reviewed the rate is
    ``(c + PRIOR_VERDICTS * PRIOR_RATE) / (n + PRIOR_VERDICTS)`` (a Beta prior): PRIOR_RATE
    before any verdict, the measured share after hundreds. Verdicts of second opinions
    (:mod:`data_engine.mine.second_opinions`) are left out.
    """
    from data_engine.mine.second_opinions import SECOND_OPINION

    totals: dict[str, tuple[int, int]] = {}
    if has_table(con, "review_verdicts"):
        # Second opinions measure the reviewers, not the detectors: their verdicts stay out.
        second = ("AND NOT EXISTS (SELECT 1 FROM review_queue q WHERE CAST(q.run_id AS VARCHAR) = v.run_id "
                  "AND q.example_id = v.example_id AND q.selection = ?)") if has_table(con, "review_queue") else ""
        totals = {r[0]: (int(r[1]), int(r[2])) for r in con.execute(
            "SELECT issue_type, count(*) FILTER (WHERE outcome = 'confirmed'), count(*) FROM ("
            f"  SELECT v.outcome, unnest(v.issue_types) AS issue_type FROM review_verdicts v WHERE true {second}) "
            "GROUP BY issue_type", [SECOND_OPINION] if second else []).fetchall()}
    out = {}
    for issue_type in issue_types:
        confirmed, reviewed = totals.get(issue_type, (0, 0))
        out[issue_type] = (confirmed + PRIOR_VERDICTS * PRIOR_RATE) / (reviewed + PRIOR_VERDICTS)
    return out


def effective_weights(con: duckdb.DuckDBPyConnection, cfg: EngineConfig) -> dict[str, float]:
    """The queue's weight per issue type: ``review.weights`` scaled by how often reviewers confirm it.

    The weight is the configured one times ``rate / PRIOR_RATE`` (:func:`confirmation_rates`),
    clipped to [MIN_WEIGHT_FACTOR, MAX_WEIGHT_FACTOR] times it. Without verdicts the configured
    weights come back unchanged.
    """
    weights = dict(cfg.review.weights)
    rates = confirmation_rates(con, weights)
    return {t: round(base * min(max(rates[t] / PRIOR_RATE, MIN_WEIGHT_FACTOR), MAX_WEIGHT_FACTOR), 4)
            for t, base in weights.items()}


def review_status(con: duckdb.DuckDBPyConnection) -> dict[str, Any]:
    """Counts of tasks by status, verdicts by outcome, events by source, the pull cursor, annotator quality."""
    tasks = dict(con.execute("SELECT status, count(*) FROM review_tasks GROUP BY status ORDER BY status").fetchall())
    outcomes = dict(con.execute("SELECT outcome, count(*) FROM review_verdicts GROUP BY outcome").fetchall())
    sources = dict(con.execute(
        "SELECT source, count(*) FROM label_events WHERE source IN ('review', 'vote', 'consensus', 'rule', 'propagated') GROUP BY source"
    ).fetchall())
    discards = con.execute("SELECT count(*) FROM review_verdicts WHERE is_discard").fetchall()[0][0]
    cursors = [{"project_id": r[0], "updated_after": r[1], "pulled_at": str(r[2]), "pulls": r[3]} for r in
               con.execute("SELECT project_id, updated_after, pulled_at, pulls FROM review_cursor").fetchall()]
    annotators = [{"annotator": r[0], "votes": int(r[1]), "agreement": r[2], "quality": r[3]} for r in
                  con.execute("SELECT annotator, n_votes, agreement, quality FROM review_annotator_quality "
                              "ORDER BY annotator").fetchall()]
    return {"tasks": tasks, "verdicts": outcomes, "discarded": int(discards), "events": sources, "cursors": cursors,
            "annotators": annotators}


def latest_budget_split(con: duckdb.DuckDBPyConnection) -> dict[str, Any]:
    """The newest mining run's split of the review budget between fixes and new examples
    (:class:`data_engine.mine.budget.BudgetSplit` as metadata) with its queue's rows per way of
    choosing (``selection``: fix, the strategy, explore); empty before the first run that made one."""
    if not has_table(con, "mining_runs"):
        return {}
    row = con.execute("SELECT run_id, json_extract(summary, '$.budget_split') FROM mining_runs "
                      "ORDER BY run_id DESC LIMIT 1").fetchall()
    if not row or not row[0][1] or row[0][1] in ("{}", "null"):
        return {}
    split = json.loads(row[0][1])
    split["selection"] = dict(con.execute(
        "SELECT coalesce(selection, 'unknown'), count(*) FROM review_queue WHERE run_id = ? GROUP BY 1 ORDER BY 1",
        [row[0][0]]).fetchall())
    return split
