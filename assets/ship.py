"""Retraining with its promotion gate, deployment, and the champion's scores.

The gate runs in the candidate's own step and reports as the asset check ``promotion_gate`` of
``candidate_model``: the candidate's gold figures and the verdict sit on the candidate's page. A
refusal is a normal outcome, not a failure: the check reports it with WARN severity, the run
succeeds, and ``champion_model`` records that the champion stays (same data version).
"""

from collections.abc import Mapping, Sequence
from dataclasses import asdict
from pathlib import Path
from typing import Any

import dagster as dg

from assets.metadata import ROW_COUNT, pick, table, value, values
from assets.resources import EngineResource
from data_engine.errors import EngineError
from data_engine.ship.gate import gate_record_of
from data_engine.ship.registry import GateRecord
from assets.trainer_pipes import trainer_through_pipes
from data_engine.ship.step import promote_if_passed, train_and_gate
from data_engine.ship.verdict import Check, GateVerdict
from data_engine.store.warehouse import open_warehouse
from data_engine.tasks import task_for

GATE_CHECK = "promotion_gate"

# The metadata keys of each page: a record read back from the warehouse (assets.history) that lacks
# one gets a null there, so both show the same keys.
GATE_KEYS = ("verdict", "outcome", "test", "metric", "n_gold", "champion_version", "difference", "ci_low",
             "ci_high", "p_worse", "p_better", "gold_only_candidate_right", "gold_only_champion_right",
             "low_recall_classes", "unmeasured_classes", "baseline", "baseline_figure", "gold_version", "reason")
# The gold figures of one class per example; another task names its own (Task.metric_names).
CLASS_METRICS = ("accuracy", "macro_f1")
CHAMPION_KEYS = ("champion_version", "promoted", "note", "previous_version", "deployment_id")
PER_CLASS_COLUMNS = [("class", str), ("support", int), ("candidate_recall", float), ("champion_recall", float),
                     ("difference", float), ("p_worse", float), ("passed", bool)]
CHECK_COLUMNS = [("name", str), ("n", int), ("candidate", float), ("champion", float), ("difference", float),
                 ("ci_low", float), ("ci_high", float), ("p_worse", float), ("passed", bool)]


def per_class_rows(candidate: Mapping[str, Any], champion: Mapping[str, Any] | None,
                   checks: list[Check]) -> list[dict[str, Any]]:
    """Per-class gold recall of both models, with the paired difference and its p-value.

    ``candidate``/``champion``: a model's gold figures as ``models.metrics`` keeps them
    (``per_class_recall``, ``per_class_support``); ``checks``: the gate's checks (empty when not known).
    """
    by_name = {c.name: c for c in checks}
    champion_recall = (champion or {}).get("per_class_recall") or {}
    rows = []
    for cls, recall in (candidate.get("per_class_recall") or {}).items():
        check = by_name.get(f"recall {cls}")
        rows.append({"class": cls, "support": (candidate.get("per_class_support") or {}).get(cls, 0),
                     "candidate_recall": recall, "champion_recall": champion_recall.get(cls),
                     "difference": check.diff if check else None, "p_worse": check.p_worse if check else None,
                     "passed": check.passed if check else None})
    return rows


def candidate_record(model: Mapping[str, Any], metrics: Mapping[str, Any], seconds: float | None = None,
                     weighted: bool | None = None, metric_names: Sequence[str] = CLASS_METRICS) -> dict[str, Any]:
    """A candidate model as a plain record (its version, spec, sizes, the gate's verdict) with ``gold_<name>``
    for each of the task's ``metric_names`` (:meth:`Task.metric_names`: accuracy and macro-F1 for
    classes, the F1s and exact match for tags, MAE, RMSE and R² for numbers) and
    ``champion_gold_<first name>``.

    ``model``: a ``models`` row (``version``, ``model_spec``, ``train_size``, ``label_snapshot``,
    ``sha256``); ``metrics``: its gold figures with the gate's under ``"gate"``, as ``models.metrics``
    keeps them; ``seconds`` (training time) and ``weighted`` are known to the run only.
    """
    gate = metrics.get("gate") or {}
    return {**{k: model.get(k) for k in ("version", "model_spec", "train_size", "label_snapshot", "sha256")},
            "reviewed_labels": gate.get("candidate_reviewed_labels"), "seconds": seconds,
            "weighted_by_label_quality": weighted, **{f"gold_{m}": metrics.get(m) for m in metric_names},
            f"champion_gold_{metric_names[0]}": gate.get(f"champion_{metric_names[0]}"),
            "gate_verdict": gate.get("verdict"), "gate_reason": gate.get("reason")}


def gate_fields(gate: GateRecord, figures: Mapping[str, Any]) -> dict[str, Any]:
    """The gate's verdict as a plain record (the keys of :data:`GATE_KEYS`).

    ``gate``: its typed row (``gate_verdicts``, :func:`~data_engine.ship.gate.gate_record_of` in a
    run); ``figures``: its flat figures (:meth:`GateVerdict.metadata`, kept in ``models.metrics["gate"]``)
    for what the row does not hold (the discordant gold examples, the low-recall classes).
    """
    return {
        "verdict": "promoted" if gate.passed else "refused", "outcome": gate.outcome or None,
        "test": f"{gate.test} (alpha {gate.alpha:g})" if gate.test == "paired" and gate.alpha is not None else gate.test,
        "metric": gate.metric, "n_gold": gate.n_gold, "champion_version": gate.champion_version,
        "difference": gate.difference, "ci_low": gate.ci_low, "ci_high": gate.ci_high, "p_worse": gate.p_worse,
        "p_better": gate.p_better, "gold_only_candidate_right": figures.get("gold_only_candidate_right"),
        "gold_only_champion_right": figures.get("gold_only_champion_right"),
        "low_recall_classes": ", ".join(figures.get("low_recall_classes") or {}) or "none",
        "unmeasured_classes": ", ".join(gate.unmeasured or figures.get("unmeasured_classes") or {}) or "none",
        # A first model's trivial baseline and its figure of the metric on the same gold (None with a champion).
        "baseline": figures.get("baseline"), "baseline_figure": figures.get("baseline_figure"),
        "gold_version": gate.gold_version, "reason": gate.reason,
    }


def gate_metadata(record: Mapping[str, Any], checks: list[dict[str, Any]]) -> dict[str, Any]:
    """The gate's verdict (a :func:`gate_fields` record) and its checks as metadata (the check's and the
    candidate's page)."""
    meta: dict[str, Any] = pick(record, GATE_KEYS)
    if checks:
        meta["checks"] = table(checks, CHECK_COLUMNS)
    return meta


def verdict_metadata(verdict: GateVerdict) -> dict[str, Any]:
    """The gate's verdict as typed, rounded Dagster metadata (for the check and the candidate's page)."""
    record = gate_fields(gate_record_of(verdict, verdict.candidate_version or 0), verdict.metadata())
    return gate_metadata(record, [
        {"name": c.name, "n": c.n, "candidate": c.candidate, "champion": c.champion, "difference": c.diff,
         "ci_low": c.low, "ci_high": c.high, "p_worse": c.p_worse, "passed": c.passed} for c in verdict.checks])


def candidate_metadata(record: Mapping[str, Any], per_class: list[dict[str, Any]]) -> dict[str, Any]:
    """A candidate model's page: the keys of a :func:`candidate_record` and its per-class gold table."""
    return {**pick(record, list(record)), "gold_per_class": table(per_class, PER_CLASS_COLUMNS)}


def champion_metadata(record: Mapping[str, Any]) -> dict[str, Any]:
    """The champion's page: the keys of :data:`CHAMPION_KEYS`."""
    return pick(record, CHAMPION_KEYS)


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
    with trainer_through_pipes(context) as reported, open_warehouse(home) as con:
        result, verdict = train_and_gate(con, home)
    r = result.record
    context.log.info(f"trained candidate v{r.version} on {r.train_size} labels in {result.seconds:.1f} s; "
                     f"gate: {'promoted' if verdict.promote else 'refused'}: {verdict.reason}")
    cand = verdict.candidate.to_dict() if verdict.candidate else {}
    # The same record the warehouse keeps (models.metrics), so assets.history reports the same page.
    record = candidate_record(asdict(r), {**cand, "gate": verdict.metadata()}, round(result.seconds, 1),
                              result.weighted, task_for(home.config.dataset).metric_names())
    meta = candidate_metadata(record, per_class_rows(cand, verdict.champion.to_dict() if verdict.champion else None,
                                                     verdict.checks))
    meta |= served_choice_metadata(result.choice.as_dict() if result.choice else None)
    meta |= reported  # what the user's trainer reported through Dagster Pipes ([model] trainer = "command")
    return dg.MaterializeResult(metadata=meta, check_results=[gate_check_result(verdict)])


def served_choice_metadata(choice: Mapping[str, Any] | None) -> dict[str, Any]:
    """Which served model was trained, why, and every candidate's out-of-fold score (a table).

    ``choice``: :meth:`ServedChoice.as_dict`, as a run returns it or as ``models.params["served_choice"]``
    keeps it; None (a model trained before the choice was recorded) gives nulls and an empty table.
    """
    choice = choice or {}
    rows = [{"candidate": c["name"], "accuracy": c["accuracy"], "macro_f1": c["macro_f1"],
             "chosen": c["name"] == choice.get("chosen")} for c in choice.get("candidates") or []]
    return {"served_choice": value(choice.get("chosen")), "served_choice_rule": value(choice.get("rule")),
            "candidates_out_of_fold": table(rows, [("candidate", str), ("accuracy", float), ("macro_f1", float),
                                                   ("chosen", bool)])}


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
        # The verdict comes from the gate (recorded on the model), not from a second evaluation;
        # promote_gated refuses a candidate the gate did not pass against the current champion.
        try:
            promotion = promote_if_passed(con, home)
        except EngineError as exc:
            raise dg.Failure(str(exc)) from None
    newest, deployment, champ, passed = promotion.newest, promotion.deployment, promotion.champion, promotion.promoted
    version = champ.version if champ else None
    if passed:
        context.log.info(f"champion is now v{version}")
        note = f"promoted v{version}"
        extra = {"previous_version": deployment.previous_version, "deployment_id": deployment.deployment_id}
    else:
        why = f"v{newest.version} {newest.status}: {newest.reason}" if newest else "no model trained yet"
        note = f"champion stays {'v' + str(version) if version else 'none'} ({why})"
        context.log.info(note)
        extra = {}
    # The data version is the champion itself: when it stays, nothing downstream is out of date.
    return dg.MaterializeResult(
        metadata=champion_metadata({"champion_version": version, "promoted": passed, "note": note, **extra}),
        data_version=dg.DataVersion(f"v{version}" if version else "none"),
    )


@dg.asset(
    deps=["landed_batch", champion_model],
    group_name="models",
    kinds={"scikitlearn", "duckdb"},
    description="The champion's predictions on unlabeled examples (the fleet's view); unsure ones and "
                "disagreements with the newest candidate feed the `uncertain` detector. Also the champion's "
                "figures on the current gold version, re-scored when gold changed.",
)
def champion_scores(context: dg.AssetExecutionContext, engine: EngineResource) -> dg.MaterializeResult:
    """Score the unlabeled examples the champion has not scored yet (cost proportional to the new rows),
    and the champion on gold when the gold version changed since it was last scored."""
    from data_engine.ship.scoring import rescore_champion, score_unlabeled

    home = engine.get_home()
    with open_warehouse(home) as con:
        result = score_unlabeled(con, home)
        gold = rescore_champion(con, home)
    context.log.info(f"champion v{result.champion_version} scored {result.scored} example(s); {result.flagged} flagged")
    if gold is not None:
        (context.log.warning if gold.change else context.log.info)(gold.line)
    return dg.MaterializeResult(metadata=values({
        "gold_version": gold.gold.version if gold else None, "gold_rescore": gold.line if gold else None,
        "champion_version": result.champion_version, ROW_COUNT: result.scored,
        "scored": result.scored, "already_scored": result.already_scored, "unsure": result.unsure,
        "disagreements_with_candidate": result.disagreements, "flagged_for_review": result.flagged,
        "seconds": round(result.seconds, 2), "note": result.reason,
    }))


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
            **values({"path": Path(result.path), ROW_COUNT: result.rows, "labeled": result.labeled,
                      "unlabeled": result.unlabeled, "label_snapshot": result.label_snapshot}),
            "label_sources": table([{"source": k, "examples": v} for k, v in sorted(result.sources.items())],
                                   [("source", str), ("examples", int)]),
        },
        # The same labels in force and examples give the same file: nothing downstream is out of date.
        data_version=dg.DataVersion(f"{result.label_snapshot}-{result.rows}"),
    )
