"""Rounds of mine -> simulated review without Label Studio, for the budget tests.

Each round mines, takes the whole queue and records a simulated reviewer's answers as a pull
records them (``review`` ledger events, ``review_verdicts``) plus a finished ``review_tasks`` row per
answer (the opinion count that second opinions read).
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np
import pandas as pd

from data_engine.mine.run import MiningSummary, run_mining
from data_engine.review.pull import record_verdicts
from data_engine.store.home import Home

# reviewer(queue rows, rng) -> one verdict per row (None = discard)
Reviewer = Callable[[pd.DataFrame, np.random.Generator], list]


def lazy_reviewer(truth: pd.Series, keep_share: float) -> Reviewer:
    """A noisy oracle: keeps the given label with probability ``keep_share``, else answers the truth
    (so reviewers confirm fewer flags than are wrong; ``keep_share`` 0.6 confirms under half)."""
    def answer(rows: pd.DataFrame, rng: np.random.Generator) -> list:
        keep = rng.random(len(rows)) < keep_share
        given = rows["given_label"].to_numpy(dtype=object)
        true = truth.reindex(rows["example_id"]).to_numpy(dtype=object)
        return [g if k and g is not None else t for g, t, k in zip(given, true, keep, strict=True)]
    return answer


def review_round(con, home: Home, reviewer: Reviewer, rng: np.random.Generator, *,
                 budget: int | None = None) -> tuple[MiningSummary, pd.DataFrame]:
    """One mining run and the review of its whole queue; returns the summary and the queue rows."""
    summary = run_mining(con, home.config, home=home, budget=budget)
    queue = con.execute("SELECT run_id, example_id, example_version, issue_types, given_label, selection "
                        "FROM review_queue WHERE run_id = ? ORDER BY rank", [summary.run_id]).fetchdf()
    if len(queue):
        record_verdicts(con, queue, reviewer(queue, rng), "sim-reviewer")
        con.execute(
            "INSERT INTO review_tasks (project_id, example_id, example_version, opinion, engine_key, run_id, status) "
            "SELECT 0, q.example_id, q.example_version, "
            "  1 + (SELECT count(*) FROM review_tasks t WHERE t.example_id = q.example_id "
            "       AND t.example_version = q.example_version), "
            "  q.example_id, q.run_id, 'done' FROM review_queue q WHERE q.run_id = ?",
            [summary.run_id])
    return summary, queue
