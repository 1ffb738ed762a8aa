"""Propagation: reviewers' verdicts carried to look-alikes and copies, as undoable ledger events.

Policy ``[review] propagate``: ``off`` (the look-alike detector's flags are not acted on),
``suggest`` (they join the review queue; the default) or ``apply``: each mining run, unreviewed
examples whose look-alike probability clears the threshold the detector chose for
``propagate_precision`` on held-out verdicts are discarded from training, and exact copies of an
example a reviewer discarded or relabeled take that verdict. Each is a ``label_ledger`` event with
``source = 'propagated'``, actor the detector and its version, detail the score and the number of
verdicts learned from. A random ``propagate_audit`` share goes back to the queue: reviewers'
answers on them measure the precision actually reached (:func:`propagation_report`).

Precedence (migration 0740's ``current_labels``): a person's verdict (review, consensus, rule)
always beats a propagated one, and :func:`undo_propagation` voids one run's events, so the labels
in force are again exactly those from before it. An undo is a person's decision about those
examples: later runs never propagate them again at the version undone (:func:`undone_examples`);
the detector may still queue them, and a reviewer decides.
"""

from __future__ import annotations

import json
import math
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import duckdb
import numpy as np
import pandas as pd

from data_engine.errors import EngineError
from data_engine.store.config import ReviewConfig
from data_engine.store.ledger import append_events
from data_engine.store.warehouse import rollback_quietly

if TYPE_CHECKING:
    from data_engine.mine.detectors.base import DetectorResult

PLAN_COLUMNS = ("example_id", "example_version", "kind", "label", "score", "partner_id", "audit")


@dataclass(frozen=True)
class PropagationPlan:
    """What one propagation will write: ``examples`` has :data:`PLAN_COLUMNS`, one row per example
    (``label`` None = discard, ``kind`` 'lookalike' | 'copy', ``audit`` = also queued for review)."""

    examples: pd.DataFrame
    actor: str
    threshold: float | None
    precision_target: float
    estimated_precision: float | None
    n_verdicts: int

    def count(self, kind: str) -> int:
        """Examples of ``kind`` ('lookalike' | 'copy' | 'audit')."""
        col = self.examples["audit"] if kind == "audit" else self.examples["kind"] == kind
        return int(col.sum())

    @property
    def withheld(self) -> set[str]:
        """Propagated examples kept out of the review queue (all but the audited ones)."""
        return set(self.examples.loc[~self.examples["audit"].astype(bool), "example_id"])


def plan_propagation(result: DetectorResult | None, versions: pd.Series, cfg: ReviewConfig, *,
                     seed: int = 0, undone: set[str] | frozenset[str] = frozenset()) -> PropagationPlan | None:
    """The propagation of one look-alike detector ``result`` under ``cfg.propagate``.

    ``versions``: current example version by example id; ``undone``: example ids whose propagation
    a person undid (:func:`undone_examples`), never propagated again. None unless the policy is
    ``apply`` and the detector flagged something it may act on: look-alikes at or above its
    threshold (none without one) and exact copies of reviewed examples.
    """
    if cfg.propagate != "apply" or result is None or result.issues.empty:
        return None
    issues = result.issues
    detail = pd.DataFrame([json.loads(d) for d in issues["detail"]], index=issues.index)
    threshold = result.summary.get("threshold")
    p = detail["p_discard"].astype(float)
    exact = detail["copy"].eq("exact").to_numpy()
    lookalike = ~exact & (p >= threshold).to_numpy() if threshold is not None else np.zeros(len(issues), bool)
    chosen = (exact | lookalike) & ~issues["example_id"].isin(undone).to_numpy()
    if not chosen.any():
        return None
    verdict = detail["partner_verdict"].where(exact, "discard")
    plan = pd.DataFrame({
        "example_id": issues["example_id"].to_numpy(dtype=object)[chosen],
        "kind": np.where(exact, "copy", "lookalike")[chosen],
        "label": verdict.where(verdict != "discard", None).to_numpy(dtype=object)[chosen],
        "score": p.to_numpy()[chosen],
        "partner_id": detail["partner_id"].where(exact, None).to_numpy(dtype=object)[chosen],
    })
    plan.insert(1, "example_version", plan["example_id"].map(versions).astype("int64"))
    rng = np.random.default_rng(seed)
    audit = np.zeros(len(plan), bool)
    if cfg.propagate_audit > 0:
        audit[rng.choice(len(plan), size=min(len(plan), math.ceil(cfg.propagate_audit * len(plan))),
                         replace=False)] = True
    plan["audit"] = audit
    return PropagationPlan(plan[list(PLAN_COLUMNS)], str(result.summary.get("actor", "detector:lookalike")),
                           threshold, cfg.propagate_precision, result.summary.get("estimated_precision"),
                           int(result.summary.get("verdicts", 0)))


def apply_propagation(con: duckdb.DuckDBPyConnection, plan: PropagationPlan, mining_run_id: int | None) -> int:
    """Write ``plan`` as ledger events and a ``propagation_runs`` row in one transaction; return its id."""
    con.execute("BEGIN TRANSACTION")
    try:
        pid = int(con.execute("SELECT coalesce(max(propagation_id), 0) + 1 FROM propagation_runs").fetchone()[0])
        ex = plan.examples
        details = [json.dumps({"propagation_id": pid, "kind": k, "score": round(float(s), 4),
                               "verdicts": plan.n_verdicts, "threshold": plan.threshold, "partner_id": q},
                              sort_keys=True) for k, s, q in zip(ex["kind"], ex["score"], ex["partner_id"], strict=True)]
        events = pd.DataFrame({"example_id": ex["example_id"], "example_version": ex["example_version"],
                               "label": ex["label"], "source": "propagated", "actor": plan.actor, "detail": details})
        rows = ex.assign(event_id=append_events(con, events), propagation_id=pid)
        con.register("_propagated", rows)
        con.execute("INSERT INTO propagated_examples (propagation_id, example_id, example_version, event_id, kind, "
                    "label, score, partner_id, audit) SELECT propagation_id, example_id, example_version, event_id, "
                    "kind, CAST(label AS VARCHAR), score, CAST(partner_id AS VARCHAR), audit FROM _propagated")
        con.unregister("_propagated")
        con.execute(
            "INSERT INTO propagation_runs (propagation_id, mining_run_id, actor, policy, threshold, precision_target, "
            "estimated_precision, n_verdicts, n_lookalikes, n_copies, n_audit) VALUES (?, ?, ?, 'apply', ?, ?, ?, ?, ?, ?, ?)",
            [pid, mining_run_id, plan.actor, plan.threshold, plan.precision_target, plan.estimated_precision,
             plan.n_verdicts, plan.count("lookalike"), plan.count("copy"), plan.count("audit")])
        con.execute("COMMIT")
    except Exception:
        rollback_quietly(con)
        raise
    return pid


def undo_propagation(con: duckdb.DuckDBPyConnection, propagation_id: int, actor: str) -> dict[str, Any]:
    """Void the events of one propagation run (they stop counting in ``current_labels``).

    Raises EngineError when the run does not exist or was already undone. Returns the run's report.
    """
    row = con.execute("SELECT undone_at FROM propagation_runs WHERE propagation_id = ?", [propagation_id]).fetchall()
    if not row:
        raise EngineError(f"propagation run {propagation_id} does not exist (see `data-engine review status`)")
    if row[0][0] is not None:
        raise EngineError(f"propagation run {propagation_id} was already undone at {row[0][0]}")
    con.execute("UPDATE propagation_runs SET undone_at = now(), undone_by = ? WHERE propagation_id = ?",
                [actor, propagation_id])
    return propagation_report(con, propagation_id)[0]


def undone_examples(con: duckdb.DuckDBPyConnection) -> set[str]:
    """Ids of examples a propagation touched that a person undid, at their current version (new
    content is a new question)."""
    rows = con.execute(
        "SELECT DISTINCT pe.example_id FROM propagated_examples pe JOIN propagation_runs pr USING (propagation_id) "
        "JOIN current_examples ce ON ce.example_id = pe.example_id AND ce.version = pe.example_version "
        "WHERE pr.undone_at IS NOT NULL").fetchall()
    return {r[0] for r in rows}


def propagation_report(con: duckdb.DuckDBPyConnection, propagation_id: int | None = None) -> list[dict[str, Any]]:
    """Per propagation run: examples touched, audited, later reviewed by a person, and the measured
    precision (share of reviewed propagated examples where the person's verdict agreed)."""
    where = "WHERE pr.propagation_id = ?" if propagation_id is not None else ""
    rows = con.execute(
        "WITH checked AS ("
        "  SELECT pe.propagation_id, cl.event_id IS NOT NULL AS reviewed, "
        "         (cl.is_discarded AND pe.label IS NULL) OR cl.label = pe.label AS agreed "
        "  FROM propagated_examples pe JOIN current_examples ce "
        "    ON ce.example_id = pe.example_id AND ce.version = pe.example_version "
        "  LEFT JOIN current_labels cl ON cl.example_id = pe.example_id "
        "   AND cl.source IN ('review', 'consensus') AND cl.event_id > pe.event_id) "
        "SELECT pr.propagation_id, pr.mining_run_id, pr.actor, pr.threshold, pr.estimated_precision, pr.n_verdicts, "
        "       pr.n_lookalikes, pr.n_copies, pr.n_audit, CAST(pr.created_at AS VARCHAR), "
        "       CAST(pr.undone_at AS VARCHAR), coalesce(sum(c.reviewed::INT), 0), "
        "       coalesce(sum((c.reviewed AND c.agreed)::INT), 0) "
        f"FROM propagation_runs pr LEFT JOIN checked c USING (propagation_id) {where} "
        "GROUP BY ALL ORDER BY pr.propagation_id", [propagation_id] if propagation_id is not None else []).fetchall()
    keys = ("propagation_id", "mining_run_id", "actor", "threshold", "estimated_precision", "verdicts",
            "lookalikes", "copies", "audit", "created_at", "undone_at", "reviewed", "agreed")
    out = []
    for r in rows:
        d = dict(zip(keys, r, strict=True))
        d["touched"] = int(d["lookalikes"]) + int(d["copies"])
        d["measured_precision"] = round(d["agreed"] / d["reviewed"], 4) if d["reviewed"] else None
        out.append(d)
    return out
