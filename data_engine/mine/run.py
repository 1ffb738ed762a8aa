"""The mining run: predictions, issues, one ranked review queue per run.

A run:

1. loads the labeled training examples (labeled, not discarded, not gold) and the unlabeled ones;
2. re-uses the stored out-of-fold predictions when the label snapshot (highest label event id),
   the model spec and the set of example versions are unchanged, else recomputes them
   (:mod:`data_engine.tasks.oof`) and replaces them (:mod:`data_engine.mine.predictions`);
3. gets probabilities for unlabeled examples: the deployed champion's where it scored them, else
   a model fitted on all training examples (cached in ``HOME/models/mining``), scoring only the
   examples not yet scored for this snapshot, so a new unlabeled batch costs in proportion to it;
4. checks the input columns, looks for weak slices (:mod:`data_engine.mine.slices`), estimates the
   noise rate (:mod:`data_engine.mine.noise`): these read the state alone, so they run before the
   neighbour index and the detectors' rows take memory;
5. embeds the examples and finds nearest neighbours (outliers and near duplicates) for the detectors'
   input (:mod:`data_engine.mine.detector_input`), runs the detectors;
6. builds the review queue, leaving out examples waiting for review or already reviewed;
7. stores ``mining_runs``, ``issues`` and ``review_queue`` in one transaction
   (:mod:`data_engine.mine.runs`).

:func:`run_mining` is what the CLI (``data-engine mine``), the Dagster assets and the benchmark call."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

import dataclasses

import duckdb
import numpy as np
import pandas as pd

from data_engine.compute.backend import Backend
from data_engine.ingest.batch_drift import drift_scores
from data_engine.mine.detector_input import mining_data, slim_state, with_own_embedding
from data_engine.mine.detectors import DETECTORS, run_detectors
from data_engine.mine.detectors.near_duplicate import agreeing_copies_pay
from data_engine.mine.embedders.base import get_embedder
from data_engine.mine.names import check_names
from data_engine.mine.noise import estimate_noise, noise_interval, noise_plot
from data_engine.mine.predictions import refresh_predictions
from data_engine.mine.plan import plan_queue
from data_engine.mine.propagate import apply_propagation, plan_propagation, propagation_report, undone_examples
from data_engine.mine.second_opinions import worth_second_opinion
from data_engine.mine.runs import (
    example_info,
    excluded_examples,
    issues_table,
    reviewed_examples,
    second_opinion_candidates,
    store_run,
)
from data_engine.stages import StageClock, map_large_blocks, release_arrow_memory
from data_engine.store.config import EngineConfig
from data_engine.store.home import Home
from data_engine.store.warehouse import release_cache


# Always run: class_imbalance is cheap and its findings are metadata; drift flags nothing until a
# batch is found drifted at ingest, then its newest-looking rows (worth a label) whatever the list says.
ALWAYS_DETECTORS = ("class_imbalance", "drift")


# Rows of the queue shown in summaries (Dagster metadata, CLI output).
QUEUE_PREVIEW_ROWS = 10


@dataclass
class MiningSummary:
    """What one mining run found; everything a Dagster asset puts in its metadata.

    ``counts``: flagged examples per issue type; ``timings``: seconds per stage;
    ``queue_top``: the first rows of the queue; ``plot_png``: the estimated joint distribution of
    given and true labels as a PNG (None when it could not be estimated).
    """

    run_id: int
    label_snapshot: int
    model_spec: str
    reused_predictions: bool
    n_labeled: int
    n_unlabeled: int
    newly_scored_unlabeled: int
    counts: dict[str, int]
    noise_rate: float | None
    class_imbalance: dict[str, Any]
    detector_summaries: dict[str, dict[str, Any]]
    timings: dict[str, float]
    queue_size: int
    queue_top: pd.DataFrame
    rare_classes: list[str] = field(default_factory=list)
    ensemble_weights: dict[str, float] = field(default_factory=dict)
    plot_png: bytes | None = None
    peak_mib: dict[str, float] = field(default_factory=dict)
    embedding: str = ""
    # What the embedding is for this data set, for people (Embedder.describe): a tabular home's
    # "tfidf" is its scaled numbers and one-hot categories.
    embedding_space: str = ""
    newly_embedded: int = 0
    # The propagation of this run (review.propagate = "apply"): its id, examples touched, and the
    # measured precision of earlier ones (data_engine.mine.propagate.propagation_report).
    propagation: dict[str, Any] = field(default_factory=dict)
    plot_path: Path | None = None
    budget_split: dict[str, Any] = field(default_factory=dict)
    # The noise rate's 95 % bootstrap interval (data_engine.mine.noise.noise_interval), shares in [0, 1].
    noise_interval: tuple[float, float] | None = None
    # Findings about input columns (data_engine.mine.columns): dicts type/column/figure/reason.
    dataset_issues: list[dict[str, Any]] = field(default_factory=list)
    column_checks: dict[str, Any] = field(default_factory=dict)
    # Discovered weak slices (data_engine.mine.slices): dicts name/definition/n/accuracy/rest_accuracy/p_value.
    slices: list[dict[str, Any]] = field(default_factory=list)
    slice_search: dict[str, Any] = field(default_factory=dict)

    def queue_markdown(self, rows: int = QUEUE_PREVIEW_ROWS) -> str:
        """The top of the queue as a Markdown table."""
        if self.queue_top.empty:
            return "_The review queue is empty._"
        top = self.queue_top.head(rows)
        lines = ["| rank | example | issues | priority | given | suggested |", "|---:|---|---|---:|---|---|"]
        cells = (top["rank"].astype(str) + " | " + top["example_id"].astype(str).str.replace("|", "\\|")
                 + " | " + top["issue_types"].map(", ".join) + " | " + top["priority"].map("{:.3f}".format)
                 + " | " + top["given_label"].fillna("").astype(str) + " | "
                 + top["suggested_label"].fillna("").astype(str))
        return "\n".join(lines + ("| " + cells + " |").tolist())

    def as_metadata(self) -> dict[str, Any]:
        """Plain JSON-able values (numbers, strings, dicts) describing the run."""
        return {
            "run_id": self.run_id, "label_snapshot": self.label_snapshot, "model_spec": self.model_spec,
            "reused_predictions": self.reused_predictions, "n_labeled": self.n_labeled,
            "n_unlabeled": self.n_unlabeled, "newly_scored_unlabeled": self.newly_scored_unlabeled,
            "counts": self.counts, "noise_rate": self.noise_rate,
            "noise_interval": list(self.noise_interval) if self.noise_interval else None,
            "class_imbalance": self.class_imbalance,
            "dataset_issues": self.dataset_issues, "column_checks": self.column_checks,
            "slices": self.slices, "slice_search": self.slice_search,
            "timings": {k: round(v, 3) for k, v in self.timings.items()}, "queue_size": self.queue_size,
            "rare_classes": self.rare_classes,
            "ensemble_weights": {k: round(v, 4) for k, v in self.ensemble_weights.items()},
            "embedding": self.embedding, "newly_embedded": self.newly_embedded,
            "propagation": self.propagation,
            "budget_split": self.budget_split,
            "data_facts": {"copies": self.detector_summaries.get("near_duplicate", {}).get("copies_fact")},
        }


def run_mining(con: duckdb.DuckDBPyConnection, cfg: EngineConfig, *, home: Home | None = None,
               force: bool = False, budget: int | None = None, weights: dict[str, float] | None = None,
               clock: StageClock | None = None, compute: Backend | None = None) -> MiningSummary:
    """Mine the warehouse once and store the run; see the module docstring for the stages.

    ``home`` enables the cache of the model that scores unlabeled examples; ``force`` recomputes
    predictions even when stored ones match; ``budget`` / ``weights`` override ``[review]``;
    ``clock`` collects per-stage time (and memory, if it tracks it); ``compute`` is where fold
    fits and neighbour search run (default: the back-end of ``[compute] scheduler``).
    """
    check_names(cfg)  # a misspelt detector, strategy or model fails before any computing
    # The stages' large arrays go back to the system once freed, not into the heap's holes.
    map_large_blocks()
    clock = clock or StageClock()
    started = datetime.now(timezone.utc)
    # DuckDB's cached blocks (an ingest's, the predictions' write) would be held through every stage.
    release_cache(con)
    state = refresh_predictions(con, cfg, home=home, force=force, clock=clock, compute=compute)
    release_cache(con)
    # The column checks, the slice search and the noise estimate read the state alone: they run before
    # the neighbour index and the detectors' rows exist (about 640 MB at a million rows, docs/mining.md).
    with clock.stage("columns"):
        from data_engine.mine.columns import column_issues

        # Every member standardises numbers (data_engine.mine.models), so no column's scale matters.
        # Tag sets, span sets and box sets are read as which tags, entity types or box classes each
        # example carries: what a leaking column would give away (Task.carried_tags).
        kind = state.task.column_labels
        columns = column_issues(state.train, state.task.carried_tags(state.labels, state.classes) if kind == "tags"
                                else state.labels, state.schema, regression=kind == "number", tag_sets=kind == "tags",
                                classes=[str(c) for c in state.classes], tag_noun=state.task.tag_noun,
                                scale_sensitive=False, seed=cfg.mining.seed, label_column=cfg.dataset.label_column)
    with clock.stage("slices"):
        from data_engine.mine.slices import discover_slices

        # A column the run names identifier, shortcut or useless is kept out of slice rules (slice_rules.NOT_IN_RULES);
        # the findings that do not (a later one for the same column would hide these) are left out of the map.
        slices = discover_slices(state, cfg.dataset.modality, seed=cfg.mining.seed,
                                 findings={i["column"]: i["type"] for i in columns.issues
                                           if i["type"] not in ("scale", "no_terms", "case_variants")})
        from data_engine.wording import verb

        leaks = [i["column"] for i in columns.issues if i["type"] == "shortcut"]
        if leaks and not slices.slices and "skipped" not in slices.summary:
            # A model that reads a leak fits even noisy labels, so a weak slice hides behind it (a trial's
            # planted slice was found only once its leak was dropped): an empty search is not a clean one.
            slices.summary["hidden_by_shortcut"] = (
                f"no weak slice found while {', '.join(map(repr, leaks))} {verb(len(leaks), 'looks', 'look')} like a "
                "shortcut: the model fits the labels through it, so weak slices can hide; drop it from the input "
                "columns and mine again")
    with clock.stage("noise"):
        noise_rate, joint, joint_classes = estimate_noise(state)
        noise_ci = noise_interval(state, seed=cfg.mining.seed) if noise_rate is not None else None
        plot = noise_plot(joint, joint_classes, noise_rate) if joint is not None else None
    names = tuple(n for n in dict.fromkeys(tuple(cfg.mining.detectors) + ALWAYS_DETECTORS)
                  if n != "lookalike" or cfg.review.propagate != "off")
    with clock.stage("neighbours"):
        data = mining_data(state, cfg, with_neighbours=any(DETECTORS[n].needs_neighbours for n in names), home=home,
                           con=con, compute=compute,
                           verdicts=reviewed_examples(con, list(state.schema)) if "lookalike" in names else None)
        if data.verdicts is not None and len(data.verdicts):
            data = with_own_embedding(con, state, data)
        if "drift" in names:
            data = dataclasses.replace(data, drift_scores=drift_scores(con))
    # The training frame's other columns are read by nothing past here (the detectors' input holds what
    # they read): a slimmer state, so the table's columns go once the detectors are done.
    state = slim_state(state)
    with clock.stage("detectors"):
        options = {"lookalike": {"precision_target": cfg.review.propagate_precision,
                                 "min_count": cfg.review.propagate_min_verdicts, "seed": cfg.mining.seed},
                   "near_duplicate": {"copies_pay": agreeing_copies_pay(con)}}
        # Past the detectors every row is read only of `label` (all stored, ranked past its flags) and of
        # `lookalike` (its propagation plan); of the other types only the flagged rows are queued and stored,
        # so each detector's other rows go as it ends, not all detectors' rows at once.
        # Each detector reads ``data`` alone, so the order they run in changes nothing; `label`, whose rows
        # all stay, runs last, so the others' transients do not stand on its rows (results keep ``names``' order).
        results: dict[str, Any] = dict.fromkeys(names)
        order = sorted(names, key=lambda n: n == "label")
        for i, name in enumerate(order):
            if data.neighbours is not None and not any(DETECTORS[n].needs_neighbours for n in order[i:]):
                data = dataclasses.replace(data, neighbours=None)  # the (N, k) arrays: no detector left reads them
            keep_all = name in ("label", "lookalike")
            found = run_detectors(data, [name], options, flagged_only=not keep_all)[name]
            results[name] = found if keep_all else found.flagged_only()  # (a skipped one's count set)
            del found
            release_arrow_memory()  # the dropped rows' detail strings
        versions = pd.Series(np.concatenate([state.train["version"].to_numpy(), state.unlabeled["version"].to_numpy()]),
                             index=data.example_ids)
        plan = plan_propagation(results.get("lookalike"), versions, cfg.review,
                                seed=cfg.mining.seed + state.label_snapshot, undone=undone_examples(con))
        if "lookalike" in results:
            results["lookalike"] = results["lookalike"].flagged_only()
        del data, versions  # the detectors' input (columns, probabilities: ~300 MB at 1M rows), read by nothing after
        issues = issues_table(results, state)
        # The detectors' rows are in ``issues`` now; only their counts and summaries are read after this.
        results = {name: r.without_rows() for name, r in results.items()}
        release_arrow_memory()
    with clock.stage("queue"):
        # A single reviewer's label the label detector flags goes out once more only where a slip of the reviewer
        # is likelier than an error of the model (data_engine.mine.second_opinions): the reviewed flags, not a set
        # of every flagged id (~200k strings at a million rows). The estimate reads one class per example (tags: none yet).
        reopen = second_opinion_candidates(con, cfg.review.max_opinions)
        flagged = set(issues.loc[(issues["issue_type"] == "label") & issues["is_issue"].astype(bool)
                                 & issues["example_id"].isin(reopen), "example_id"])
        second = worth_second_opinion(con, flagged, state.train["example_id"], state.labels, state.oof_probs) \
            if state.labels.ndim == 1 else set()
        excluded = sorted((set(excluded_examples(con)) - second) | (plan.withheld if plan is not None else set()))
        if plan is not None:  # the audited share of a propagation comes first in the queue
            audited = issues["example_id"].isin(plan.examples.loc[plan.examples["audit"], "example_id"])
            issues.loc[audited & (issues["issue_type"] == "lookalike"), "score"] = 0.0
        queue, split = plan_queue(con, cfg, state, issues, weights=weights if weights is not None else cfg.review.weights,
                                  budget=budget or cfg.review.budget, exclude=excluded, second_opinions=second,
                                  examples=lambda ids: example_info(state, ids),  # the queued fixes' details only
                                  weak_slice=slices.unlabeled_members(len(state.unlabeled)))
    with clock.stage("store"):
        run_id = store_run(con, state, issues, queue, results, noise_rate=noise_rate, started=started,
                           timings=clock.seconds, budget_split=split.as_metadata(), dataset_issues=columns.issues,
                           slices=slices)
        propagation: dict[str, Any] = {"policy": cfg.review.propagate}
        if plan is not None:
            pid = apply_propagation(con, plan, run_id)
            propagation.update(propagation_id=pid, threshold=plan.threshold,
                               estimated_precision=plan.estimated_precision, verdicts=plan.n_verdicts,
                               lookalikes=plan.count("lookalike"), copies=plan.count("copy"), audit=plan.count("audit"))
        earlier = [r for r in propagation_report(con) if r["propagation_id"] != propagation.get("propagation_id")]
        if earlier:  # what reviewers said about the audited share of the previous propagations
            propagation["measured"] = {str(r["propagation_id"]): {"touched": r["touched"], "reviewed": r["reviewed"],
                                                                   "measured_precision": r["measured_precision"],
                                                                   "undone_at": r["undone_at"]}
                                       for r in earlier[-5:]}
    counts = {name: r.n_issues for name, r in results.items()}
    plot_path = None
    if plot is not None and home is not None:
        # Kept beside the warehouse so the Dagster UI (and a history replayed into it) can show it.
        plot_path = home.root / "plots" / f"noise-matrix-run-{run_id}.png"
        plot_path.parent.mkdir(exist_ok=True)
        plot_path.write_bytes(plot)
    return MiningSummary(
        run_id=run_id, label_snapshot=state.label_snapshot, model_spec=state.model_spec,
        reused_predictions=state.reused, n_labeled=len(state.train), n_unlabeled=len(state.unlabeled),
        newly_scored_unlabeled=state.newly_scored, counts=counts, noise_rate=noise_rate, noise_interval=noise_ci,
        class_imbalance=results["class_imbalance"].summary if "class_imbalance" in results else {},
        detector_summaries={n: r.summary for n, r in results.items()}, timings=dict(clock.seconds),
        queue_size=len(queue), queue_top=queue.head(QUEUE_PREVIEW_ROWS),
        rare_classes=[state.classes[i] for i in state.rare_classes], ensemble_weights=state.member_weights,
        plot_png=plot, peak_mib=dict(clock.peak_mib), embedding=state.embedding,
        embedding_space=get_embedder(state.embedding).describe(state.schema, cfg.dataset.modality),
        newly_embedded=state.newly_embedded, propagation=propagation, plot_path=plot_path, budget_split=split.as_metadata(),
        dataset_issues=columns.issues, column_checks=columns.summary,
        slices=slices.records(), slice_search=slices.summary,
    )
