"""The loop's steps, each defined once: what the CLI, the Dagster assets and the demo all run.

* **ingest a file**: :func:`ingest` (through an open warehouse) and :func:`ingest_step` (files);
* **mine**: :func:`champion_view` then :func:`mine`, together :func:`mine_step`. Mining needs the
  champion (its view of unlabeled examples feeds the ``uncertain`` detector) and the reviewers'
  verdicts (the queue's learned weights), so this module sits above both ``ship`` and ``mine`` in
  the layers. Dagster shows it as two assets (``oof_predictions`` calls :func:`champion_view`,
  ``detected_issues`` / ``review_queue`` call :func:`mine`);
* **push the queue**: :func:`push` and :func:`push_step`;
* **pull verdicts**: :func:`pull` and :func:`pull_step`;
* **retrain, gate, promote**: :mod:`data_engine.ship.step`.

Each ``*_step`` opens the home's warehouse and runs its parts in order with the same parameters a
Dagster asset passes them. The sensors' decisions (whether to run a step) are in
:mod:`data_engine.triggers`.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

import duckdb

from data_engine.compute.backend import Backend
from data_engine.errors import EngineError
from data_engine.ingest.batch import IngestResult, ingest_file, is_gold_path
from data_engine.review.labelstudio.client import ReviewClient
from data_engine.store.home import Home
from data_engine.store.warehouse import open_warehouse

# The mining, scoring, push and pull modules load numpy, pandas and scikit-learn: imported where a
# step runs them, so `data-engine ingest` (which imports this module) starts without them.
if TYPE_CHECKING:
    from data_engine.mine.run import MiningSummary
    from data_engine.review.pull import PullResult
    from data_engine.review.push import PushResult
    from data_engine.ship.scoring import ScoringResult


def ingest(con: duckdb.DuckDBPyConnection, home: Home, path: Path, *, gold: bool | None = None,
           regold: bool = False) -> IngestResult:
    """Ingest one file as one batch with the home's settings: gold when ``gold`` is True, or when
    ``gold`` is None and the file lies under ``landing/gold/``; ``[ingest] max_quarantine_share``;
    then the batch's drift against the training data in force (``[drift]``, see
    :mod:`data_engine.ship.drift_check`) in ``result.drift``.
    See :func:`data_engine.ingest.batch.ingest_file` for what is stored and raised."""
    result = ingest_file(con, home.config.dataset, path, gold=is_gold_path(home, path) if gold is None else gold,
                         regold=regold, max_quarantine_share=home.config.ingest.max_quarantine_share)
    from data_engine.ingest.batch_drift import drift_due, stored_drift

    if result.already_known:
        result.drift = stored_drift(con, result.batch_id)
    elif drift_due(con, result):
        from data_engine.ship.drift_check import check_batch_drift  # numpy, pandas, scikit-learn

        result.drift = check_batch_drift(con, home, result)
    return result


def ingest_step(home: Home, paths: Sequence[Path], *, gold: bool | None = None,
                regold: bool = False) -> list[IngestResult]:
    """The ingest step: :func:`ingest` of each of ``paths`` in order, through one warehouse connection.
    One result per file; a rejected file is a result (status ``rejected``), not an exception.
    Raises :class:`~data_engine.errors.ConfigError` when ``home`` is no engine home (before
    anything is created there: a mistaken ``--home`` must not become one)."""
    _ = home.config  # reading it checks the home first: open_warehouse would create the folder
    with open_warehouse(home) as con:
        return [ingest(con, home, Path(p), gold=gold, regold=regold) for p in paths]


@dataclass(frozen=True)
class MineStepResult:
    """One mining step: the champion's scoring of new unlabeled examples (``scored``), the mining
    run (``summary``) and the queue's weights per issue type it used (``weights``)."""

    scored: ScoringResult
    summary: MiningSummary
    weights: dict[str, float]


def champion_view(con: duckdb.DuckDBPyConnection, home: Home) -> ScoringResult:
    """Part one: the champion scores the unlabeled examples it has not scored yet (nothing when no
    champion is deployed), so the ``uncertain`` detector of part two sees the fleet's view."""
    from data_engine.ship.scoring import score_unlabeled

    return score_unlabeled(con, home)


def mine(con: duckdb.DuckDBPyConnection, home: Home, *, budget: int | None = None, force: bool = False,
         compute: Backend | None = None) -> tuple[MiningSummary, dict[str, float]]:
    """Part two: one mining run with the queue's weights learned from reviewers' verdicts
    (:func:`data_engine.mine.weights.effective_weights`); ``budget`` overrides ``[review] budget``,
    ``force`` recomputes stored predictions. Returns ``(summary, weights)``."""
    from data_engine.mine.run import run_mining
    from data_engine.mine.weights import effective_weights

    weights = effective_weights(con, home.config)
    summary = run_mining(con, home.config, home=home, force=force, budget=budget, weights=weights, compute=compute)
    return summary, weights


def mine_step(home: Home, *, budget: int | None = None, force: bool = False,
              compute: Backend | None = None) -> MineStepResult:
    """The mining step: :func:`champion_view`, then :func:`mine`, on the home's warehouse.

    Raises :class:`EngineError` when the home has no warehouse yet (nothing ingested) or
    ``budget`` is below 1.
    """
    if budget is not None and budget < 1:
        raise EngineError("--budget must be at least 1")
    if not home.warehouse_path.exists():
        raise EngineError(f"{home.warehouse_path}: no warehouse yet; ingest a file first")
    with open_warehouse(home) as con:
        scored = champion_view(con, home)
        summary, weights = mine(con, home, budget=budget, force=force, compute=compute)
    return MineStepResult(scored, summary, weights)


@dataclass(frozen=True)
class PushStepResult:
    """One push: what :func:`data_engine.review.push.push_queue` did (``result``), and the project's
    tasks afterwards: all sent (``tasks_total``) and those not done yet (``tasks_not_done``)."""

    result: PushResult
    tasks_total: int
    tasks_not_done: int


def push(con: duckdb.DuckDBPyConnection, client: ReviewClient, home: Home, *, run_id: int | None = None,
         limit: int | None = None) -> PushStepResult:
    """Send the review queue of ``run_id`` (default: the latest mining run with a queue) to the
    review server, at most ``limit`` new tasks (default ``[review] budget`` minus the open ones).
    Raises :class:`~data_engine.errors.ReviewServiceError` when the server fails (what was recorded
    stays; the next push resumes)."""
    from data_engine.review.push import push_queue

    result = push_queue(con, client, home.config, run_id=run_id, limit=limit)
    total, not_done = con.execute(
        "SELECT count(*), count(*) FILTER (WHERE status <> 'done') FROM review_tasks WHERE project_id = ?",
        [result.project_key]).fetchone()
    return PushStepResult(result, int(total), int(not_done))


def push_step(home: Home, client: ReviewClient, *, run_id: int | None = None,
              limit: int | None = None) -> PushStepResult:
    """The push step: :func:`push` on the home's warehouse."""
    with open_warehouse(home) as con:
        return push(con, client, home, run_id=run_id, limit=limit)


@dataclass(frozen=True)
class PullStepResult:
    """One pull: what :func:`data_engine.review.pull.pull_verdicts` did (``result``, with the
    verdicts per run and issue type in ``result.stats``), and the reviewers' events in the ledger
    afterwards: their count (``verdicts_total``) and the newest event id (``newest_event``, 0 before any)."""

    result: PullResult
    verdicts_total: int
    newest_event: int


def pull(con: duckdb.DuckDBPyConnection, client: ReviewClient, home: Home) -> PullStepResult:
    """Bring every verdict given since the last pull into the label ledger (idempotent). Raises
    :class:`~data_engine.errors.ReviewServiceError` when the server fails; nothing is written then."""
    from data_engine.review.pull import pull_verdicts

    result = pull_verdicts(con, client, home.config)
    newest, total = con.execute("SELECT coalesce(max(event_id), 0), count(*) FROM label_events "
                                "WHERE source IN ('review', 'consensus')").fetchone()
    return PullStepResult(result, int(total), int(newest))


def pull_step(home: Home, client: ReviewClient) -> PullStepResult:
    """The pull step: :func:`pull` on the home's warehouse."""
    with open_warehouse(home) as con:
        return pull(con, client, home)
