"""Retraining with its promotion gate, deployment, and the champion's scores.

The gate runs in the candidate's own step and reports as the asset check ``promotion_gate`` of
``candidate_model``: the candidate's gold figures and the verdict sit on the candidate's page. A
refusal is a normal outcome, not a failure: the check reports it with WARN severity, the run
succeeds, and ``champion_model`` records that the champion stays (same data version).
"""

from typing import Any

import dagster as dg

from assets.metadata import ROW_COUNT, gate_metadata, number, table
from assets.resources import EngineResource
from data_engine.errors import EngineError
from data_engine.mine.candidates import ServedChoice
from data_engine.ship.deploy import promote_gated
from data_engine.ship.gate import gate_record_of, run_gate
from data_engine.ship.registry import current_champion, gate_record, latest_model
from data_engine.ship.training import train_candidate
from data_engine.ship.verdict import GateVerdict
from data_engine.store.warehouse import open_warehouse

GATE_CHECK = "promotion_gate"


def per_class_table(verdict: GateVerdict) -> dg.MetadataValue:
    """Per-class gold recall of both models, with the paired difference and its p-value."""
    cand, champ = verdict.candidate, verdict.champion
    checks = {c.name: c for c in verdict.checks}
    rows = []
    for cls, recall in (cand.per_class_recall if cand else {}).items():
        check = checks.get(f"recall {cls}")
        rows.append({"class": cls, "support": cand.per_class_support.get(cls, 0), "candidate_recall": recall,
                     "champion_recall": champ.per_class_recall.get(cls) if champ else None,
                     "difference": check.diff if check else None, "p_worse": check.p_worse if check else None,
                     "passed": check.passed if check else None})
    return table(rows, [("class", str), ("support", int), ("candidate_recall", float),
                        ("champion_recall", float), ("difference", float), ("p_worse", float), ("passed", bool)])


def verdict_metadata(verdict: GateVerdict) -> dict[str, Any]:
    """The gate's verdict as typed, rounded Dagster metadata (for the check and the candidate's page)."""
    meta: dict[str, Any] = {
        **gate_metadata(gate_record_of(verdict, verdict.candidate_version or 0)),
        "gold_only_candidate_right": number(verdict.wins), "gold_only_champion_right": number(verdict.losses),
        "low_recall_classes": dg.MetadataValue.text(", ".join(verdict.low_recall or {}) or "none"),
    }
    if verdict.checks:
        meta["checks"] = table(
            [{"name": c.name, "n": c.n, "candidate": c.candidate, "champion": c.champion, "difference": c.diff,
              "ci_low": c.low, "ci_high": c.high, "p_worse": c.p_worse, "passed": c.passed} for c in verdict.checks],
            [("name", str), ("n", int), ("candidate", float), ("champion", float), ("difference", float),
             ("ci_low", float), ("ci_high", float), ("p_worse", float), ("passed", bool)])
    return meta


def gate_check_result(verdict: GateVerdict) -> dg.AssetCheckResult:
    """The check's result: a refusal is reported with WARN severity (an outcome, not a failure)."""
    return dg.AssetCheckResult(check_name=GATE_CHECK, passed=verdict.promote, severity=dg.AssetCheckSeverity.WARN,
                               metadata=verdict_metadata(verdict),
                               description=("promoted: " if verdict.promote else "refused: ") + verdict.reason)


# Labels reach a model through oof_predictions (whose data version is the label snapshot) and the
# verdicts: a landed file without labels leaves the candidate in sync, as the retrain sensor does.
@dg.asset(
    deps=["oof_predictions", "review_verdicts"],
    group_name="models",
    kinds={"scikitlearn", "duckdb"},
    description="A model trained on the labels in force (no discarded, no gold examples), registered as a "
                "candidate and judged by the promotion gate against the champion on gold data.",
    check_specs=[dg.AssetCheckSpec(GATE_CHECK, asset="candidate_model",
                                   description="The promotion gate: a paired test against the champion on the "
                                               "same gold examples; a refusal is a WARN, not a failure.")],
)
def candidate_model(context: dg.AssetExecutionContext, engine: EngineResource) -> dg.MaterializeResult:
    """Train and register a new candidate, then run the gate on it."""
    home = engine.get_home()
    with open_warehouse(home) as con:
        result = train_candidate(con, home)
        verdict = run_gate(con, home, version=result.record.version)
    r = result.record
    context.log.info(f"trained candidate v{r.version} on {r.train_size} labels in {result.seconds:.1f} s; "
                     f"gate: {'promoted' if verdict.promote else 'refused'}: {verdict.reason}")
    cand = verdict.candidate
    meta: dict[str, Any] = {
        "version": number(r.version), "model_spec": dg.MetadataValue.text(r.model_spec),
        "train_size": number(r.train_size), "label_snapshot": number(r.label_snapshot),
        "reviewed_labels": number(verdict.candidate_seen.reviewed_labels if verdict.candidate_seen else None),
        "sha256": dg.MetadataValue.text(r.sha256), "seconds": number(result.seconds, 1),
        "weighted_by_label_quality": dg.MetadataValue.bool(result.weighted),
        "gold_accuracy": number(cand.accuracy if cand else None),
        "gold_macro_f1": number(cand.macro_f1 if cand else None),
        "champion_gold_accuracy": number(verdict.champion.accuracy if verdict.champion else None),
        "gate_verdict": dg.MetadataValue.text("promoted" if verdict.promote else "refused"),
        "gate_reason": dg.MetadataValue.text(verdict.reason),
        "gold_per_class": per_class_table(verdict),
    }
    meta |= served_choice_metadata(result.choice)
    return dg.MaterializeResult(metadata=meta, check_results=[gate_check_result(verdict)])


def served_choice_metadata(choice: ServedChoice | None) -> dict[str, Any]:
    """Which served model was trained, why, and every candidate's out-of-fold score (a table)."""
    if choice is None:
        return {}
    meta: dict[str, Any] = {"served_choice": dg.MetadataValue.text(choice.chosen),
                            "served_choice_rule": dg.MetadataValue.text(choice.rule)}
    if choice.candidates:
        meta["candidates_out_of_fold"] = table(
            [{"candidate": c.name, "accuracy": c.accuracy, "macro_f1": c.macro_f1, "chosen": c.name == choice.chosen}
             for c in choice.candidates],
            [("candidate", str), ("accuracy", float), ("macro_f1", float), ("chosen", bool)])
    return meta


@dg.asset(
    deps=[candidate_model],
    group_name="models",
    kinds={"python"},
    description="The deployed model: the newest candidate if the gate passed it, else the champion stays.",
)
def champion_model(context: dg.AssetExecutionContext, engine: EngineResource) -> dg.MaterializeResult:
    """Promote the newest model if the gate passed it; otherwise record that the champion stays."""
    home = engine.get_home()
    with open_warehouse(home) as con:
        newest = latest_model(con)
        gate = gate_record(con, newest.version) if newest is not None else None
        passed = newest is not None and newest.status == "candidate" and gate is not None and gate.passed
        if passed:
            # The verdict comes from the gate (recorded on the model), not from a second evaluation;
            # promote_gated refuses a candidate the gate did not pass against the current champion.
            try:
                deployment = promote_gated(con, home, newest.version)
            except EngineError as exc:
                raise dg.Failure(str(exc)) from None
        champ = current_champion(con)
    version = champ.version if champ else None
    if passed:
        context.log.info(f"champion is now v{version}")
        note = f"promoted v{version}"
        meta = {"previous_version": number(deployment.previous_version), "deployment_id": number(deployment.deployment_id)}
    else:
        why = f"v{newest.version} {newest.status}: {newest.reason}" if newest else "no model trained yet"
        note = f"champion stays {'v' + str(version) if version else 'none'} ({why})"
        context.log.info(note)
        meta = {}
    # The data version is the champion itself: when it stays, nothing downstream is out of date.
    return dg.MaterializeResult(
        metadata={"champion_version": number(version), "promoted": dg.MetadataValue.bool(passed),
                  "note": dg.MetadataValue.text(note), **meta},
        data_version=dg.DataVersion(f"v{version}" if version else "none"),
    )


@dg.asset(
    deps=["landed_batch", champion_model],
    group_name="models",
    kinds={"scikitlearn", "duckdb"},
    description="The champion's predictions on unlabeled examples (the fleet's view); unsure ones and "
                "disagreements with the newest candidate feed the `uncertain` detector.",
)
def champion_scores(context: dg.AssetExecutionContext, engine: EngineResource) -> dg.MaterializeResult:
    """Score the unlabeled examples the champion has not scored yet (cost proportional to the new rows)."""
    from data_engine.ship.scoring import score_unlabeled

    home = engine.get_home()
    with open_warehouse(home) as con:
        result = score_unlabeled(con, home)
    context.log.info(f"champion v{result.champion_version} scored {result.scored} example(s); {result.flagged} flagged")
    return dg.MaterializeResult(metadata={
        "champion_version": number(result.champion_version), ROW_COUNT: number(result.scored),
        "scored": number(result.scored), "already_scored": number(result.already_scored), "unsure": number(result.unsure),
        "disagreements_with_candidate": number(result.disagreements), "flagged_for_review": number(result.flagged),
        "seconds": number(result.seconds, 2), "note": dg.MetadataValue.text(result.reason or "-"),
    })


@dg.asset(
    deps=["landed_batch", "review_verdicts"],
    group_name="models",
    kinds={"duckdb", "parquet"},
    description="The cleaned training data: every training example with its label in force, the label's "
                "source and the label snapshot, as HOME/exports/DATASET.parquet (discarded and gold examples "
                "left out; unlabeled examples with an empty label). Materialized on demand.",
)
def training_data_export(context: dg.AssetExecutionContext, engine: EngineResource) -> dg.MaterializeResult:
    """Write the labels in force to ``HOME/exports/DATASET.parquet`` (the same code as ``data-engine export``)."""
    from assets.metadata import ROW_COUNT, table
    from data_engine.ship.export import export_training_data

    home = engine.get_home()
    folder = home.root / "exports"
    folder.mkdir(exist_ok=True)
    with open_warehouse(home, read_only=True) as con:
        result = export_training_data(con, home.config.dataset, folder / f"{home.config.dataset.name}.parquet",
                                      "parquet")
    context.log.info(result.summary())
    return dg.MaterializeResult(
        metadata={
            "path": dg.MetadataValue.path(str(result.path)), ROW_COUNT: number(result.rows),
            "labeled": number(result.labeled), "unlabeled": number(result.unlabeled),
            "label_snapshot": number(result.label_snapshot),
            "label_sources": table([{"source": k, "examples": v} for k, v in sorted(result.sources.items())],
                                   [("source", str), ("examples", int)]),
        },
        # The same labels in force and examples give the same file: nothing downstream is out of date.
        data_version=dg.DataVersion(f"{result.label_snapshot}-{result.rows}"),
    )
