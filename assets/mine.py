"""Issue mining as assets: out-of-sample predictions, the detectors' findings, one ranked review queue."""

import base64

import dagster as dg

from assets.resources import EngineResource
from data_engine.mine.predictions import refresh_predictions
from data_engine.mine.run import run_mining
from data_engine.review.verdicts import effective_weights
from data_engine.ship.scoring import score_unlabeled
from data_engine.store.warehouse import open_warehouse


@dg.asset(
    deps=["landed_batch"],
    group_name="mining",
    kinds={"scikitlearn", "duckdb"},
    description="Stratified K-fold out-of-sample class probabilities for every labeled, non-discarded, "
                "non-gold example; recomputed only when labels or data changed.",
)
def oof_predictions(context: dg.AssetExecutionContext, engine: EngineResource) -> dg.MaterializeResult:
    """Refresh the stored out-of-fold predictions (re-used when the label snapshot and model match)."""
    home = engine.get_home()
    with open_warehouse(home) as con:
        # Unlabeled examples that landed since the champion last scored get its view first (the
        # `uncertain` detector prefers it); a declared dependency on champion_scores would close the
        # loop into a cycle, which an asset graph cannot hold.
        scored = score_unlabeled(con, home)
        state = refresh_predictions(con, home.config, home=home)
    context.log.info(f"{'re-used' if state.reused else 'computed'} out-of-fold predictions for {len(state.train)} examples")
    return dg.MaterializeResult(metadata={
        "labeled_examples": len(state.train), "unlabeled_examples": len(state.unlabeled),
        "model_spec": state.model_spec, "label_snapshot": state.label_snapshot, "reused": state.reused,
        "champion_scored_new": scored.scored, "champion_flagged": scored.flagged,
        "rare_classes": ", ".join(state.classes[i] for i in state.rare_classes) or "none",
    })


@dg.multi_asset(
    specs=[
        dg.AssetSpec("detected_issues", deps=["oof_predictions"], group_name="mining", kinds={"cleanlab", "duckdb"},
                     description="Likely label errors (confident learning), outliers, near-duplicates, uncertain "
                                 "unlabeled examples, class imbalance: one row per finding in `issues`."),
        dg.AssetSpec("review_queue", deps=["detected_issues"], group_name="mining", kinds={"duckdb"},
                     description="One ranked queue per mining run, within the review budget; weights per issue "
                                 "type learned from reviewers' verdicts."),
    ],
)
def mined_issues(context: dg.AssetExecutionContext, engine: EngineResource):
    """Run the detectors and rank the queue (one mining run)."""
    home = engine.get_home()
    with open_warehouse(home) as con:
        weights = effective_weights(con, home.config)
        summary = run_mining(con, home.config, home=home, weights=weights)
    context.log.info(f"mining run {summary.run_id}: {summary.counts}; queue of {summary.queue_size}")
    issues_meta = {
        "run_id": summary.run_id,
        **{f"flagged_{k}": v for k, v in summary.counts.items()},
        "estimated_noise_rate": summary.noise_rate if summary.noise_rate is not None else float("nan"),
        "class_imbalance": dg.MetadataValue.json(summary.class_imbalance or {}),
        "seconds_per_stage": dg.MetadataValue.json({k: round(v, 2) for k, v in summary.timings.items()}),
    }
    if summary.plot_png:
        uri = base64.b64encode(summary.plot_png).decode()
        issues_meta["noise_matrix"] = dg.MetadataValue.md(
            f"Estimated joint distribution of given and true labels\n\n![noise matrix](data:image/png;base64,{uri})")
    yield dg.MaterializeResult(asset_key="detected_issues", metadata=issues_meta)
    yield dg.MaterializeResult(asset_key="review_queue", metadata={
        "run_id": summary.run_id, "queue_size": summary.queue_size,
        "weights": dg.MetadataValue.json(weights),
        "fix_reviews": sum(summary.budget_split.get("fix", {}).values()),
        "new_examples": summary.budget_split.get("grow", 0),
        "budget_split": dg.MetadataValue.json(summary.budget_split),
        "top_of_queue": dg.MetadataValue.md(summary.queue_markdown()),
    })
