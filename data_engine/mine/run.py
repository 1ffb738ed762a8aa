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
5. embeds the examples and finds nearest neighbours (outliers and near duplicates), runs the detectors;
6. builds the review queue, leaving out examples waiting for review or already reviewed;
7. stores ``mining_runs``, ``issues`` and ``review_queue`` in one transaction
   (:mod:`data_engine.mine.runs`).

:func:`run_mining` is what the CLI (``data-engine mine``), the Dagster assets and the benchmark call."""

from __future__ import annotations

import hashlib
import json
import logging
from dataclasses import dataclass, field
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

import dataclasses

import duckdb
import numpy as np
import pandas as pd

from data_engine.compute.backend import Backend, engine_backend
from data_engine.ingest.batch_drift import drift_scores
from data_engine.mine.detectors import DETECTORS, MiningData, run_detectors
from data_engine.mine.detectors.near_duplicate import agreeing_copies_pay
from data_engine.mine.embedders.base import EMBEDDING_COLUMN, get_embedder
from data_engine.mine.embedders.features import model_inputs
from data_engine.mine.names import check_names
from data_engine.mine.noise import estimate_noise, noise_interval, noise_plot
from data_engine.mine.predictions import PredictionState, refresh_predictions
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
from data_engine.store.cache import load_cache, save_cache
from data_engine.store.config import EngineConfig
from data_engine.store.home import Home
from data_engine.store.warehouse import release_cache
from data_engine.tasks import task_for

log = logging.getLogger(__name__)


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


def mining_data(state: PredictionState, cfg: EngineConfig, *, with_neighbours: bool = True,
                home: Home | None = None, con: duckdb.DuckDBPyConnection | None = None,
                compute: Backend | None = None, verdicts: pd.DataFrame | None = None) -> MiningData:
    """Assemble the detectors' input: training rows first, then unlabeled rows, their input
    columns (a copy of the table, which ``lookalike``, the label detector's span boundary check and
    installed detectors read), and ``verdicts`` (:func:`data_engine.mine.runs.reviewed_examples`).

    With a ``home``, the neighbour index is kept in ``HOME/models/mining`` and a run that only
    adds examples embeds and searches just the new ones (see :func:`current_neighbours`). For
    image files, the rows' paths and (with ``con``) their stored perceptual hashes go along.
    """
    frames = [state.train, state.unlabeled]
    n_train, n_unl = len(state.train), len(state.unlabeled)
    neighbours = None
    if with_neighbours and n_train + n_unl >= 3:
        # First: the ids as Python strings (about 65 MB at a million rows) need not exist during the search.
        neighbours = current_neighbours(state, cfg, home, compute)
    ids = np.concatenate([f["example_id"].astype(str).to_numpy(dtype=object) for f in frames])
    # The stored uint64 hashes themselves (8 bytes a row), not a Python string of each (about 70).
    hashes = np.concatenate([f["feature_hash"].to_numpy(dtype=np.uint64) for f in frames])
    # Unlabeled rows: -1 for class indices (in every cell of a tag row), NaN for numbers (a
    # regression label may be -1).
    unlabeled = np.nan if state.labels.dtype.kind == "f" else -1
    labels = np.concatenate([state.labels, np.full((n_unl, *state.labels.shape[1:]), unlabeled, dtype=state.labels.dtype)])
    probs = np.vstack([state.oof_probs, state.unlabeled_probs]) if n_unl else state.oof_probs
    oos = np.concatenate([np.ones(n_train, bool), np.zeros(n_unl, bool)])
    image_paths = image_hashes = None
    if cfg.dataset.image_column:
        from data_engine.store.images import perceptual_hashes

        col = cfg.dataset.image_column
        image_paths = np.concatenate([f[col].astype(str).to_numpy(dtype=object) for f in frames])
        image_hashes = perceptual_hashes(con, image_paths) if con is not None else None
    inputs = both_frames(state, list(state.schema))
    return MiningData(ids, labels, tuple(state.classes), probs, oos, hashes, neighbours, state.rare_classes,
                      image_hashes, image_paths, inputs=inputs, schema=dict(state.schema),
                      modality=cfg.dataset.modality, verdicts=verdicts, task=task_for(cfg.dataset))


def slim_state(state: PredictionState) -> PredictionState:
    """``state`` whose training frame keeps only what the run reads after its neighbour stage:
    ``example_id`` and ``version`` (the issues, the queue, second opinions), and with unlabeled rows
    the input columns and an attached embedding too (the queue's selection reads a sample of labeled
    rows beside the candidates, :mod:`data_engine.mine.plan`). Same rows; the frame's columns are not
    copied (pandas copies on write). About 150 MB of the generated set's 17 columns at a million rows."""
    keep = ["example_id", "version"]
    if len(state.unlabeled):
        keep += [c for c in model_inputs(state.train, state.schema) if c not in keep]
    return dataclasses.replace(state, train=state.train[keep])


def both_frames(state: PredictionState, cols: list[str]) -> pd.DataFrame:
    """Columns ``cols`` of the training rows, then of the unlabeled rows (N rows, a RangeIndex).

    With no unlabeled row this is the training frame's own columns: pandas copies on write, so no
    column is copied (``pd.concat`` with the empty frame copied every column, about 120 MB for the
    generated set's nine input columns at a million rows).
    """
    if len(state.unlabeled) == 0:
        return state.train[cols]
    return pd.concat([state.train[cols], state.unlabeled[cols]], ignore_index=True)


def example_keys(state: PredictionState) -> np.ndarray:
    """``<example_id>@<version>`` of the training rows, then the unlabeled rows: fixed-width numpy
    strings, shape (N,), the neighbour index's keys (a Python string each would be about 65 MB at a
    million rows, held through the search)."""
    return np.concatenate([(f["example_id"].astype(str) + "@" + f["version"].astype(str)).to_numpy(dtype=str)
                           for f in (state.train, state.unlabeled)])


def with_own_embedding(con: duckdb.DuckDBPyConnection, state: PredictionState, data: MiningData) -> MiningData:
    """``data`` with the modality's own vectors of its examples and verdicts where surface features
    miss input columns (see :func:`data_engine.mine.embedders.features.own_embedding`); unchanged otherwise."""

    from data_engine.mine.embedders.features import own_embedding

    frames = [pd.concat([state.train, state.unlabeled], ignore_index=True), data.verdicts]
    found = own_embedding(con, frames, state.schema, state.embedding)
    if found is None:
        return data
    name, (rows, verdict_vectors) = found
    verdicts = data.verdicts.assign(**{EMBEDDING_COLUMN: list(verdict_vectors)})
    return dataclasses.replace(data, embedding=rows, embedding_name=name, verdicts=verdicts)


def current_neighbours(state: PredictionState, cfg: EngineConfig, home: Home | None,
                       compute: Backend | None = None) -> Any:
    """Nearest neighbours of the current examples (training rows, then unlabeled rows).

    The index from the last run is re-used when it holds exactly these example versions, and
    extended when they are a superset of its rows; anything else rebuilds it. With a ``home`` an
    approximate index (faiss) is written by faiss into its own file beside the cache's pickle,
    ``graph-<sha256>.faiss``, whose sha256 the signed pickle records.
    """
    from data_engine.mine.detectors.faiss_calls import GraphFile
    from data_engine.mine.detectors.neighbours import align_index, build_index, extend_index

    cols = model_inputs(state.train, state.schema)
    keys = example_keys(state)
    frame = both_frames(state, cols)
    # A per-row embedding is attached by refresh_predictions; without one, tfidf is fitted here.
    vectors = np.stack(frame[EMBEDDING_COLUMN].to_numpy()) if EMBEDDING_COLUMN in frame.columns else None
    digest = hashlib.sha256(json.dumps([state.schema, cfg.dataset.modality, cfg.mining.seed,
                                        state.embedding]).encode()).hexdigest()[:20]
    path = Path(home.models) / "mining" / f"neighbours-{digest}.joblib" if home is not None else None
    graph_dir = path.parent if path is not None else None
    index = old_graph = None
    if path is not None and path.exists():
        try:
            # Unpickled only when its keyed sha256 matches (store.cache.load_cache); else rebuilt.
            index = load_cache(home, path)
        except Exception as exc:  # a damaged cache is rebuilt, never trusted
            log.warning("neighbour cache %s unreadable (%s); rebuilding", path, exc)
    if index is not None:
        if isinstance(index.graph, GraphFile):  # a copied or moved home reads (and later removes) its own file
            index.graph = GraphFile(path.parent / index.graph.path.name, index.graph.sha256)
        old_graph = index.graph
        found = align_index(index, keys)
        if found is not None:
            return found
        known = pd.Index(index.keys)
        is_new = ~pd.Index(keys).isin(known)
        if pd.Index(keys).isin(known).sum() == len(index.keys) and is_new.any():
            try:
                with engine_backend(cfg, compute) as backend:
                    index = extend_index(index, keys[is_new], frame[is_new], compute=backend,
                                         vectors=None if vectors is None else vectors[is_new], graph_dir=graph_dir)
            except ValueError as exc:  # its graph file missing or changed: rebuilt, never trusted
                log.warning("neighbour graph unreadable (%s); rebuilding", exc)
                index = None
        else:
            index = None
    if index is None:
        with engine_backend(cfg, compute) as backend:
            index = build_index(keys, frame, state.schema, cfg.dataset.modality, seed=cfg.mining.seed,
                                compute=backend, vectors=vectors, graph_dir=graph_dir)
    if path is not None:
        save_cache(home, index, path)
        if isinstance(old_graph, GraphFile) and old_graph != index.graph:
            old_graph.path.unlink(missing_ok=True)  # the replaced index's graph; nothing refers to it now
    return align_index(index, keys)
