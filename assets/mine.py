"""Issue mining as assets: out-of-sample predictions, the detectors' findings, one ranked review queue."""

import hashlib
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import dagster as dg

from assets.metadata import ROW_COUNT, figure, pick, table, value, values
from assets.trainer_pipes import trainer_through_pipes
from assets.resources import ComputeResource, EngineResource
from data_engine.mine.predictions import refresh_predictions
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
        # The user's trainer, if any, through Dagster Pipes (folds sent to other processes run it plainly).
        with trainer_through_pipes(context):
            state = refresh_predictions(con, home.config, home=home, compute=compute.get_backend())
    context.log.info(f"{'re-used' if state.reused else 'computed'} out-of-fold predictions for {len(state.train)} examples")
    return dg.MaterializeResult(
        metadata=oof_metadata({
            "labeled_examples": len(state.train), "unlabeled_examples": len(state.unlabeled),
            "label_snapshot": state.label_snapshot, "champion_scored_new": scored.scored,
            "champion_flagged": scored.flagged, "model_spec": state.model_spec, "reused": state.reused,
            "rare_classes": [state.classes[i] for i in state.rare_classes]}),
        data_version=dg.DataVersion(f"labels-{state.label_snapshot}/{state.model_spec}"),
    )


OOF_KEYS = ("labeled_examples", "unlabeled_examples", "label_snapshot", "champion_scored_new", "champion_flagged",
            "model_spec", "reused")
QUEUE_COLUMNS = [("rank", int), ("example", str), ("issues", str), ("priority", float), ("given", str),
                 ("suggested", str)]
NOISE_CAPTION = "Estimated joint distribution of given and true labels"


def oof_metadata(record: Mapping[str, Any]) -> dict[str, dg.MetadataValue]:
    """The out-of-fold predictions' page from a plain record (the keys of :data:`OOF_KEYS` and
    ``rare_classes``, a list of class names)."""
    return {ROW_COUNT: value(record.get("labeled_examples")), **pick(record, OOF_KEYS),
            "rare_classes": value(", ".join(record.get("rare_classes") or []) or "none")}


def issues_metadata(record: Mapping[str, Any], plot_png: bytes | None = None,
                    plot_path: Path | None = None) -> dict[str, dg.MetadataValue]:
    """The detectors' findings of one mining run, typed and rounded.

    ``record``: a mining run as plain data (:meth:`MiningSummary.as_metadata`'s keys: ``run_id``,
    ``counts``, ``noise_rate``, ``noise_interval``, ``timings`` in seconds, ``class_imbalance``,
    ``propagation``); ``plot_png``: the noise matrix figure, if any.
    """
    counts, timings = record.get("counts") or {}, record.get("timings") or {}
    interval = record.get("noise_interval") or (None, None)
    meta: dict[str, dg.MetadataValue] = {
        ROW_COUNT: value(sum(counts.values())),
        "run_id": value(record.get("run_id")),
        **values({f"flagged_{k}": v for k, v in counts.items()}),
        "estimated_noise_rate": value(record.get("noise_rate")),
        # Its 95 % bootstrap interval over examples (data_engine.mine.noise.noise_interval).
        "estimated_noise_rate_low": value(interval[0]),
        "estimated_noise_rate_high": value(interval[1]),
        "seconds": value(sum(timings.values()), 2),
        "seconds_per_stage": table([{"stage": k, "seconds": v} for k, v in timings.items()],
                                   [("stage", str), ("seconds", float)], digits=2),
    }
    imbalance = record.get("class_imbalance") or {}
    counts = imbalance.get("counts") or {}
    if counts:
        total = max(sum(counts.values()), 1)
        minority = set(imbalance.get("minority_classes") or [])
        meta["class_balance"] = table(
            [{"class": c, "examples": n, "share": n / total, "minority": c in minority} for c, n in counts.items()],
            [("class", str), ("examples", int), ("share", float), ("minority", bool)])
    # Findings about input columns (data_engine.mine.columns): shortcut, useless, identifier, scale, no_terms,
    # case_variants.
    meta["dataset_issues"] = table(list(record.get("dataset_issues") or []),
                                   [("type", str), ("column", str), ("figure", float), ("reason", str)], digits=4)
    # Discovered weak slices (data_engine.mine.slices): where out-of-fold accuracy is far below the rest
    # (digits enough for a small p-value; the record already rounds the accuracies).
    meta["weak_slices"] = table(list(record.get("slices") or []),
                                [("name", str), ("definition", str), ("n", int), ("accuracy", float),
                                 ("rest_accuracy", float), ("p_value", float), ("rule_precision", float),
                                 ("rule_coverage", float)], digits=10)
    # What this run propagated (review.propagate = "apply") and the measured precision of earlier ones;
    # null when it propagated nothing (or, read back from the warehouse, when that is not kept).
    prop = record.get("propagation") or None
    meta["propagated_examples"] = value(int(prop.get("lookalikes", 0)) + int(prop.get("copies", 0)) if prop else None)
    meta["propagation"] = value(prop)
    if plot_png:
        meta |= figure(plot_png, NOISE_CAPTION, plot_path, key="noise_matrix")
    return meta


def queue_metadata(record: Mapping[str, Any], top: list[Mapping[str, Any]],
                   weights: Mapping[str, float]) -> dict[str, dg.MetadataValue]:
    """The ranked queue of one mining run: its size, the weights used, its top rows.

    ``record``: the run as plain data (``run_id``, ``queue_size``, ``budget_split``); ``top``: the
    first queue rows (``rank``, ``example_id``, ``issue_types`` as a list, ``priority``,
    ``given_label``, ``suggested_label``); ``weights``: per issue type.
    """
    split = record.get("budget_split") or {}
    rows = [{"rank": r["rank"], "example": r["example_id"], "issues": ", ".join(r["issue_types"]),
             "priority": r["priority"], "given": r["given_label"], "suggested": r["suggested_label"]} for r in top]
    return {
        ROW_COUNT: value(record.get("queue_size")),
        **pick(record, ("run_id", "queue_size")),
        "weights": table([{"issue_type": k, "weight": v} for k, v in weights.items()],
                         [("issue_type", str), ("weight", float)]),
        "top_of_queue": table(rows, QUEUE_COLUMNS, digits=3),
        # The budget between fixing label issues and labeling new examples (data_engine.mine.budget).
        **values({"fix_reviews": int(sum(split.get("fix", {}).values())), "new_examples": int(split.get("grow", 0)),
                  "unused_reviews": int(split.get("unused", 0)),
                  "why_short": split.get("short_reason") or "the queue fills the budget"}),
        "budget_split": dg.MetadataValue.json(split),
    }


@dg.multi_asset(
    specs=[
        dg.AssetSpec("detected_issues", deps=["oof_predictions"], group_name="mining", kinds={"cleanlab", "duckdb"},
                     description="Likely label errors (confident learning), outliers, near-duplicates, uncertain "
                                 "unlabeled examples, class imbalance: one row per finding in `issues`; "
                                 "input-column findings and discovered weak slices in the metadata."),
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
    # Timings rounded as mining_runs keeps them, so assets.history reports the same figures.
    record = {**summary.as_metadata(), "timings": {k: round(v, 4) for k, v in summary.timings.items()}}
    yield dg.MaterializeResult(asset_key="detected_issues",
                               metadata=issues_metadata(record, summary.plot_png, summary.plot_path),
                               data_version=dg.DataVersion(f"run-{summary.run_id}"))
    # The queue's version is its content: a run that queues the same examples leaves the tasks in sync.
    content = hashlib.sha256("\n".join(r[0] for r in queued).encode()).hexdigest()[:16]
    yield dg.MaterializeResult(asset_key="review_queue", metadata=queue_metadata(record, summary.queue_top.to_dict("records"), weights),
                               data_version=dg.DataVersion(content))
