"""Retraining, the promotion gate (a blocking asset check) and deployment."""

import dagster as dg

from assets.resources import EngineResource
from data_engine.errors import EngineError
from data_engine.ship.deploy import promote_gated
from data_engine.ship.gate import run_gate
from data_engine.ship.registry import latest_candidate
from data_engine.ship.training import train_candidate
from data_engine.store.warehouse import open_warehouse


# Labels reach a model through oof_predictions (whose data version is the label snapshot) and the
# verdicts: a landed file without labels leaves the candidate in sync, as the retrain sensor does.
@dg.asset(
    deps=["oof_predictions", "review_verdicts"],
    group_name="models",
    kinds={"scikitlearn", "duckdb"},
    description="A model trained on the labels in force (no discarded, no gold examples), registered as a candidate.",
)
def candidate_model(context: dg.AssetExecutionContext, engine: EngineResource) -> dg.MaterializeResult:
    """Train and register a new candidate."""
    home = engine.get_home()
    with open_warehouse(home) as con:
        result = train_candidate(con, home)
    r = result.record
    context.log.info(f"trained candidate v{r.version} on {r.train_size} labels in {result.seconds:.1f} s")
    return dg.MaterializeResult(metadata={
        "version": r.version, "model_spec": r.model_spec, "train_size": r.train_size,
        "label_snapshot": r.label_snapshot, "sha256": r.sha256, "seconds": round(result.seconds, 2),
        "weighted_by_label_quality": result.weighted,
    })


@dg.asset_check(asset=candidate_model, blocking=True,
                description="The promotion gate: at least as good as the champion on gold, no class or slice "
                            "dropping by more than the tolerance; refuses without gold data.")
def promotion_gate(engine: EngineResource) -> dg.AssetCheckResult:
    """Evaluate the newest candidate against the champion on the gold examples."""
    home = engine.get_home()
    with open_warehouse(home) as con:
        verdict = run_gate(con, home)
    meta = {k: v for k, v in verdict.metadata().items() if v is not None}
    meta["checks"] = dg.MetadataValue.md(verdict.checks_markdown())
    return dg.AssetCheckResult(passed=verdict.promote, metadata=meta,
                               description=verdict.reason)


@dg.asset(
    deps=[candidate_model],
    group_name="models",
    kinds={"python"},
    description="The deployed model: the candidate that passed the gate becomes the champion that serving loads.",
)
def champion_model(context: dg.AssetExecutionContext, engine: EngineResource) -> dg.MaterializeResult:
    """Promote the candidate that passed the gate (the blocking check stops this step otherwise)."""
    home = engine.get_home()
    with open_warehouse(home) as con:
        record = latest_candidate(con)
        if record is None:
            raise dg.Failure("no candidate to deploy")
        # The verdict comes from the gate check (recorded on the model), not from a second evaluation;
        # promote_gated refuses a candidate the gate did not pass against the current champion.
        try:
            deployment = promote_gated(con, home, record.version)
        except EngineError as exc:
            raise dg.Failure(str(exc)) from None
    context.log.info(f"champion is now v{deployment.model_version}")
    return dg.MaterializeResult(metadata={"champion_version": deployment.model_version,
                                          "previous_version": deployment.previous_version or 0,
                                          "deployment_id": deployment.deployment_id})


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
        "champion_version": result.champion_version or 0, "scored": result.scored,
        "already_scored": result.already_scored, "unsure": result.unsure,
        "disagreements_with_candidate": result.disagreements, "flagged_for_review": result.flagged,
        "seconds": round(result.seconds, 2), "note": result.reason or "",
    })
