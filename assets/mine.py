"""Issue mining as assets: out-of-sample predictions, the detectors' findings, one ranked review queue."""

import hashlib

import dagster as dg

from assets.metadata import ROW_COUNT, figure, number, numbers, table
from assets.resources import ComputeResource, EngineResource
from data_engine.mine.predictions import refresh_predictions
from data_engine.mine.run import MiningSummary
from data_engine.steps import champion_view, mine
from data_engine.store.warehouse import open_warehouse


@dg.asset(
    deps=["landed_batch"],
    group_name="mining",
    kinds={"scikitlearn", "duckdb"},
    description="Stratified K-fold out-of-sample class probabilities for every labeled, non-discarded, "
                "non-gold example; recomputed only when labels or data changed. Its data version is the "
                "label snapshot and model it was computed from: a batch without labels leaves it (and the "
                "candidate model downstream) in sync.",
)
def oof_predictions(context: dg.AssetExecutionContext, engine: EngineResource,
                    compute: ComputeResource) -> dg.MaterializeResult:
    """Refresh the stored out-of-fold predictions (re-used when the label snapshot and model match)."""
    home = engine.get_home()
    with open_warehouse(home) as con:
        # Unlabeled examples that landed since the champion last scored get its view first (the
        # `uncertain` detector prefers it); a declared dependency on champion_scores would close the
        # loop into a cycle, which an asset graph cannot hold.
        scored = champion_view(con, home)
        state = refresh_predictions(con, home.config, home=home, compute=compute.get_backend())
    context.log.info(f"{'re-used' if state.reused else 'computed'} out-of-fold predictions for {len(state.train)} examples")
    return dg.MaterializeResult(
        metadata={
            ROW_COUNT: dg.MetadataValue.int(len(state.train)),
            **numbers({"labeled_examples": len(state.train), "unlabeled_examples": len(state.unlabeled),
                       "label_snapshot": state.label_snapshot, "champion_scored_new": scored.scored,
                       "champion_flagged": scored.flagged}),
            "model_spec": dg.MetadataValue.text(state.model_spec),
            "reused": dg.MetadataValue.bool(state.reused),
            "rare_classes": dg.MetadataValue.text(", ".join(state.classes[i] for i in state.rare_classes) or "none"),
        },
        data_version=dg.DataVersion(f"labels-{state.label_snapshot}/{state.model_spec}"),
    )


def issues_metadata(summary: MiningSummary, plot_path=None) -> dict[str, dg.MetadataValue]:
    """The detectors' findings of one mining run, typed and rounded."""
    meta: dict[str, dg.MetadataValue] = {
        ROW_COUNT: dg.MetadataValue.int(sum(summary.counts.values())),
        "run_id": dg.MetadataValue.int(summary.run_id),
        **{f"flagged_{k}": dg.MetadataValue.int(v) for k, v in summary.counts.items()},
        "estimated_noise_rate": number(summary.noise_rate),
        # Its 95 % bootstrap interval over examples (data_engine.mine.noise.noise_interval).
        "estimated_noise_rate_low": number(summary.noise_interval[0] if summary.noise_interval else None),
        "estimated_noise_rate_high": number(summary.noise_interval[1] if summary.noise_interval else None),
        "seconds": number(sum(summary.timings.values()), 2),
        "seconds_per_stage": table([{"stage": k, "seconds": v} for k, v in summary.timings.items()],
                                   [("stage", str), ("seconds", float)], digits=2),
    }
    counts = (summary.class_imbalance or {}).get("counts") or {}
    if counts:
        total = max(sum(counts.values()), 1)
        minority = set((summary.class_imbalance or {}).get("minority_classes") or [])
        meta["class_balance"] = table(
            [{"class": c, "examples": n, "share": n / total, "minority": c in minority} for c, n in counts.items()],
            [("class", str), ("examples", int), ("share", float), ("minority", bool)])
    if summary.propagation:
        # What this run propagated (review.propagate = "apply") and the measured precision of earlier ones.
        prop = summary.propagation
        meta["propagated_examples"] = dg.MetadataValue.int(int(prop.get("lookalikes", 0)) + int(prop.get("copies", 0)))
        meta["propagation"] = dg.MetadataValue.json(prop)
    if summary.plot_png:
        meta |= {f"noise_matrix{k[len('figure'):]}": v for k, v in figure(
            summary.plot_png, "Estimated joint distribution of given and true labels", plot_path).items()}
    return meta


def queue_metadata(summary: MiningSummary, weights: dict[str, float]) -> dict[str, dg.MetadataValue]:
    """The ranked queue of one mining run: its size, the weights used, its top rows."""
    top = summary.queue_top
    rows = [{"rank": r["rank"], "example": r["example_id"], "issues": ", ".join(r["issue_types"]),
             "priority": r["priority"], "given": r["given_label"], "suggested": r["suggested_label"]}
            for r in top.to_dict("records")] if not top.empty else []
    return {
        ROW_COUNT: dg.MetadataValue.int(summary.queue_size),
        "run_id": dg.MetadataValue.int(summary.run_id),
        "queue_size": dg.MetadataValue.int(summary.queue_size),
        "weights": table([{"issue_type": k, "weight": v} for k, v in weights.items()],
                         [("issue_type", str), ("weight", float)]),
        "top_of_queue": table(rows, [("rank", int), ("example", str), ("issues", str), ("priority", float),
                                     ("given", str), ("suggested", str)], digits=3),
        # The budget between fixing label issues and labeling new examples (data_engine.mine.budget).
        "fix_reviews": dg.MetadataValue.int(int(sum(summary.budget_split.get("fix", {}).values()))),
        "new_examples": dg.MetadataValue.int(int(summary.budget_split.get("grow", 0))),
        "unused_reviews": dg.MetadataValue.int(int(summary.budget_split.get("unused", 0))),
        "why_short": dg.MetadataValue.text(summary.budget_split.get("short_reason") or "the queue fills the budget"),
        "budget_split": dg.MetadataValue.json(summary.budget_split),
    }


@dg.multi_asset(
    specs=[
        dg.AssetSpec("detected_issues", deps=["oof_predictions"], group_name="mining", kinds={"cleanlab", "duckdb"},
                     description="Likely label errors (confident learning), outliers, near-duplicates, uncertain "
                                 "unlabeled examples, class imbalance: one row per finding in `issues`."),
        dg.AssetSpec("review_queue", deps=["detected_issues"], group_name="mining", kinds={"duckdb"},
                     description="One ranked queue per mining run, within the review budget; weights per issue "
                                 "type learned from reviewers' verdicts. Priority is on a fixed [0, 1] scale."),
    ],
)
def mined_issues(context: dg.AssetExecutionContext, engine: EngineResource, compute: ComputeResource):
    """Run the detectors and rank the queue (one mining run: :func:`data_engine.steps.mine`)."""
    home = engine.get_home()
    with open_warehouse(home) as con:
        summary, weights = mine(con, home, compute=compute.get_backend())
        queued = con.execute("SELECT example_id || '@' || example_version FROM review_queue WHERE run_id = ? "
                             "ORDER BY 1", [summary.run_id]).fetchall()
    context.log.info(f"mining run {summary.run_id}: {summary.counts}; queue of {summary.queue_size}")
    yield dg.MaterializeResult(asset_key="detected_issues", metadata=issues_metadata(summary, summary.plot_path),
                               data_version=dg.DataVersion(f"run-{summary.run_id}"))
    # The queue's version is its content: a run that queues the same examples leaves the tasks in sync.
    content = hashlib.sha256("\n".join(r[0] for r in queued).encode()).hexdigest()[:16]
    yield dg.MaterializeResult(asset_key="review_queue", metadata=queue_metadata(summary, weights),
                               data_version=dg.DataVersion(content))
