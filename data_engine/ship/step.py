"""The ship step of the loop, defined once: retrain, gate, promote.

Dagster shows it as two assets (``candidate_model`` calls :func:`train_and_gate`, ``champion_model``
calls :func:`promote_if_passed`); the demo calls :func:`ship_step`, the two parts in the same order.
The CLI splits it the same way: ``train`` trains, ``deploy promote`` calls :func:`gate_and_promote`
on the model a person names (the newest candidate by default).
The promotion decision is the gate's recorded verdict (``gate_verdicts``), read by
:func:`data_engine.ship.deploy.promote_gated`, never computed a second time.
"""

from __future__ import annotations

from dataclasses import dataclass

import duckdb

from data_engine.ship.deploy import Deployment, promote_gated
from data_engine.ship.gate import run_gate
from data_engine.ship.registry import ModelRecord, current_champion, gate_record, latest_model
from data_engine.ship.training import TrainResult, train_candidate
from data_engine.ship.verdict import GateVerdict
from data_engine.store.home import Home


@dataclass(frozen=True)
class Promotion:
    """What the promote part did: the newest model it looked at (None before any training), the
    deployment when the gate had passed it (else None), and the champion afterwards."""

    newest: ModelRecord | None
    deployment: Deployment | None
    champion: ModelRecord | None

    @property
    def promoted(self) -> bool:
        """Whether the newest model became the champion."""
        return self.deployment is not None


@dataclass(frozen=True)
class ShipStepResult:
    """One ship step: the trained candidate, the gate's verdict on it, and the promotion."""

    trained: TrainResult
    verdict: GateVerdict
    promotion: Promotion


def train_and_gate(con: duckdb.DuckDBPyConnection, home: Home) -> tuple[TrainResult, GateVerdict]:
    """Part one: train and register a candidate on the labels in force, then run the promotion gate
    on it against the champion (the verdict is recorded on the model and in ``gate_verdicts``)."""
    result = train_candidate(con, home)
    return result, run_gate(con, home, version=result.record.version)


def promote_if_passed(con: duckdb.DuckDBPyConnection, home: Home, *, actor: str = "engine") -> Promotion:
    """Part two: promote the newest model when it is a candidate the gate passed; otherwise the
    champion stays.

    Raises :class:`EngineError` when the gate compared the candidate with a champion that is no
    longer current (see :func:`data_engine.ship.deploy.promote_gated`).
    """
    newest = latest_model(con)
    gate = gate_record(con, newest.version) if newest is not None else None
    deployment = None
    if newest is not None and newest.status == "candidate" and gate is not None and gate.passed:
        deployment = promote_gated(con, home, newest.version, actor=actor)
    return Promotion(newest, deployment, current_champion(con))


def gate_and_promote(con: duckdb.DuckDBPyConnection, home: Home, *, version: int | None = None,
                     actor: str = "engine") -> tuple[GateVerdict, Deployment | None]:
    """Gate model ``version`` (the newest candidate when None) against the champion and promote it
    when it passes: ``(verdict, deployment or None)``; the same gate and promotion as the loop.

    Raises :class:`EngineError` as :func:`data_engine.ship.gate.run_gate` does (no such candidate,
    no gold data) and as :func:`data_engine.ship.deploy.promote_gated`.
    """
    verdict = run_gate(con, home, version=version)
    if not verdict.promote:
        return verdict, None
    return verdict, promote_gated(con, home, verdict.candidate_version, actor=actor)


def ship_step(con: duckdb.DuckDBPyConnection, home: Home, *, actor: str = "engine") -> ShipStepResult:
    """The ship step: :func:`train_and_gate`, then :func:`promote_if_passed`.

    Raises :class:`EngineError` as :func:`data_engine.ship.training.train_candidate` does (no labels
    to train on) and as :func:`promote_if_passed`.
    """
    trained, verdict = train_and_gate(con, home)
    return ShipStepResult(trained, verdict, promote_if_passed(con, home, actor=actor))
