"""The mining step of the loop, defined once: what ``data-engine mine``, the Dagster mining assets
and the demo all run.

Mining needs the champion (its view of unlabeled examples feeds the ``uncertain`` detector) and the
reviewers' verdicts (the queue's learned weights), so the step sits above both ``ship`` and
``mine`` in the layers. Dagster shows it as two assets (``oof_predictions`` calls
:func:`champion_view`, ``detected_issues`` / ``review_queue`` call :func:`mine`); the CLI and the
demo call :func:`mine_step`, which is the two parts in the same order with the same parameters.
"""

from __future__ import annotations

from dataclasses import dataclass

import duckdb

from data_engine.compute.backend import Backend
from data_engine.errors import EngineError
from data_engine.mine.run import MiningSummary, run_mining
from data_engine.mine.weights import effective_weights
from data_engine.ship.scoring import ScoringResult, score_unlabeled
from data_engine.store.home import Home
from data_engine.store.warehouse import open_warehouse


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
    return score_unlabeled(con, home)


def mine(con: duckdb.DuckDBPyConnection, home: Home, *, budget: int | None = None, force: bool = False,
         compute: Backend | None = None) -> tuple[MiningSummary, dict[str, float]]:
    """Part two: one mining run with the queue's weights learned from reviewers' verdicts
    (:func:`data_engine.mine.weights.effective_weights`); ``budget`` overrides ``[review] budget``,
    ``force`` recomputes stored predictions. Returns ``(summary, weights)``."""
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
