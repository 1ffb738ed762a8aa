"""Mining against the warehouse: predictions, issues, one ranked review queue per run.

A run:

1. loads the labeled training examples (labeled, not discarded, not gold) and the unlabeled ones;
2. re-uses the stored out-of-fold predictions when the label snapshot (highest label event id),
   the model spec and the set of example versions are unchanged, else recomputes them
   (:mod:`data_engine.oof`) and replaces them;
3. gets probabilities for unlabeled examples: the deployed champion's where it scored them, else
   a model fitted on all training examples (cached in ``HOME/models/mining``), scoring only the
   examples not yet scored for this snapshot, so a new unlabeled batch costs in proportion to it;
4. embeds the examples and finds nearest neighbours (outliers and near duplicates);
5. runs the detectors, estimates the noise rate (cleanlab's joint of given and true labels);
6. builds the review queue, leaving out examples waiting for review or already reviewed;
7. stores ``mining_runs``, ``issues`` and ``review_queue`` in one transaction.

:func:`run_mining` is what the CLI (``data-engine mine``), the Dagster assets and the benchmark call.
"""

from __future__ import annotations

import hashlib
import io
import json
import logging
import warnings
from dataclasses import dataclass, field
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

import duckdb
import numpy as np
import pandas as pd

from data_engine.config import EngineConfig
from data_engine.detectors import DETECTORS, DetectorResult, MiningData, run_detectors
from data_engine.errors import EngineError
from data_engine.home import Home
from data_engine.labelstudio.labeling import FINISHED_TASK_STATUSES
from data_engine.registry import load_cache, save_cache
from data_engine.review_queue import build_queue
from data_engine.stages import StageClock
from data_engine.warehouse import rollback_quietly

log = logging.getLogger(__name__)

# Dataset-level detectors always run: they are cheap and their findings are metadata.
ALWAYS_DETECTORS = ("class_imbalance",)
# Rows of the queue shown in summaries (Dagster metadata, CLI output).
QUEUE_PREVIEW_ROWS = 10
# The noise-matrix plot labels its axes only up to this many classes.
PLOT_MAX_LABELED_CLASSES = 30
# Sources of label events that mean a person has looked at the example.
REVIEW_SOURCES = ("review", "consensus", "vote")


@dataclass
class PredictionState:
    """Probabilities for the training and unlabeled examples, and what they were computed from.

    ``train`` / ``unlabeled``: frames from :func:`data_engine.dataset.load_examples`;
    ``labels``: shape (N_train,) class indices; ``oof_probs``: shape (N_train, K);
    ``folds``: shape (N_train,); ``unlabeled_probs``: shape (N_unlabeled, K), NaN rows if none.
    """

    train: pd.DataFrame
    unlabeled: pd.DataFrame
    classes: list[str]
    schema: dict[str, str]
    label_snapshot: int
    model_spec: str
    labels: np.ndarray
    oof_probs: np.ndarray
    folds: np.ndarray
    unlabeled_probs: np.ndarray
    reused: bool
    newly_scored: int
    champion_scored: int
    rare_classes: tuple[int, ...] = ()
    member_weights: dict[str, float] = field(default_factory=dict)


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
            "counts": self.counts, "noise_rate": self.noise_rate, "class_imbalance": self.class_imbalance,
            "timings": {k: round(v, 3) for k, v in self.timings.items()}, "queue_size": self.queue_size,
            "rare_classes": self.rare_classes,
            "ensemble_weights": {k: round(v, 4) for k, v in self.ensemble_weights.items()},
        }


# --- public entry points --------------------------------------------------------------------------


def run_mining(con: duckdb.DuckDBPyConnection, cfg: EngineConfig, *, home: Home | None = None,
               force: bool = False, budget: int | None = None, weights: dict[str, float] | None = None,
               clock: StageClock | None = None) -> MiningSummary:
    """Mine the warehouse once and store the run; see the module docstring for the stages.

    ``home`` enables the cache of the model that scores unlabeled examples; ``force`` recomputes
    predictions even when stored ones match; ``budget`` / ``weights`` override ``[review]``;
    ``clock`` collects per-stage time (and memory, if it tracks it).
    """
    clock = clock or StageClock()
    started = datetime.now(timezone.utc)
    state = refresh_predictions(con, cfg, home=home, force=force, clock=clock)
    names = tuple(dict.fromkeys(tuple(cfg.mining.detectors) + ALWAYS_DETECTORS))
    with clock.stage("neighbours"):
        data = mining_data(state, cfg, with_neighbours=any(DETECTORS[n].needs_neighbours for n in names), home=home)
    with clock.stage("detectors"):
        results = run_detectors(data, names)
    with clock.stage("noise"):
        noise_rate, joint, joint_classes = estimate_noise(state)
        plot = noise_plot(joint, joint_classes, noise_rate) if joint is not None else None
    with clock.stage("queue"):
        issues = issues_table(results, state)
        # A single reviewer's label the model still plainly contradicts may go out once more.
        flagged = set(issues.loc[(issues["issue_type"] == "label") & issues["is_issue"].astype(bool), "example_id"])
        excluded = sorted(set(excluded_examples(con))
                          - (second_opinion_candidates(con, cfg.review.max_opinions) & flagged))
        queue = build_queue(issues, weights=weights if weights is not None else cfg.review.weights,
                            budget=budget or cfg.review.budget, exclude=excluded,
                            examples=example_info(state))
    with clock.stage("store"):
        run_id = store_run(con, state, issues, queue, results, noise_rate=noise_rate, started=started,
                           timings=clock.seconds)
    counts = {name: r.n_issues for name, r in results.items()}
    return MiningSummary(
        run_id=run_id, label_snapshot=state.label_snapshot, model_spec=state.model_spec,
        reused_predictions=state.reused, n_labeled=len(state.train), n_unlabeled=len(state.unlabeled),
        newly_scored_unlabeled=state.newly_scored, counts=counts, noise_rate=noise_rate,
        class_imbalance=results["class_imbalance"].summary if "class_imbalance" in results else {},
        detector_summaries={n: r.summary for n, r in results.items()}, timings=dict(clock.seconds),
        queue_size=len(queue), queue_top=queue.head(QUEUE_PREVIEW_ROWS),
        rare_classes=[state.classes[i] for i in state.rare_classes], ensemble_weights=state.member_weights,
        plot_png=plot, peak_mib=dict(clock.peak_mib),
    )


def refresh_predictions(con: duckdb.DuckDBPyConnection, cfg: EngineConfig, *, home: Home | None = None,
                        force: bool = False, clock: StageClock | None = None) -> PredictionState:
    """Out-of-fold probabilities for the training examples and probabilities for unlabeled ones.

    Stored predictions are re-used when they match; new ones are written to ``predictions``.
    """
    from data_engine.dataset import label_snapshot, load_classes, load_examples
    from data_engine.models import Schema, build_estimator, build_members, resolve_spec
    from data_engine.schema import stored_columns

    clock = clock or StageClock()
    ds = cfg.dataset
    with clock.stage("load"):
        classes = load_classes(con)
        if len(classes) < 2:
            raise EngineError("mining needs the dataset's classes (at least two); ingest a labeled batch first")
        stored = stored_columns(con)
        missing = [c for c in ds.input_columns if c not in stored]
        if missing:
            raise EngineError(f"input column {missing[0]!r} is not in the warehouse yet; ingest a batch first")
        schema = {c: stored[c] for c in ds.input_columns}
        snapshot = label_snapshot(con)
        train = load_examples(con, ds, subset="train")
        train = train[~train["is_discarded"].astype(bool)].reset_index(drop=True)
        unlabeled = load_examples(con, ds, subset="unlabeled").reset_index(drop=True)
        index = pd.Series(np.arange(len(classes)), index=classes)
        labels = train["label"].astype(str).map(index)
        if labels.isna().any():
            bad = train.loc[labels.isna(), "label"].iloc[0]
            raise EngineError(f"label {bad!r} is not one of the dataset's classes ({', '.join(classes)})")
        labels = labels.to_numpy(dtype=np.int64)
    spec = resolve_spec(cfg.mining.model, ds.modality, seed=cfg.mining.seed, n_rows=len(train))
    spec_key = f"{spec.key}/folds={cfg.mining.folds}"
    members = build_members(spec, Schema.from_mapping(schema))
    with clock.stage("predictions"):
        found = None if force else _stored_oof(con, train, spec_key, snapshot, len(classes))
        if found is not None:
            probs, folds = found
            rare: tuple[int, ...] = _rare(labels, len(classes), cfg.mining.folds)
            weights = _stored_weights(con, spec_key, snapshot) or {m: 1.0 / len(members) for m in members}
            reused = True
        else:
            from data_engine.oof import ensemble_out_of_fold_probabilities

            with warnings.catch_warnings():
                warnings.simplefilter("ignore", category=UserWarning)
                result = ensemble_out_of_fold_probabilities(members, train[list(schema)], labels, len(classes),
                                                            folds=cfg.mining.folds, seed=cfg.mining.seed,
                                                            n_jobs=cfg.mining.n_jobs)
            probs, folds, rare, reused, weights = result.probs, result.folds, result.rare_classes, False, result.weights
            if rare:
                log.warning("classes with fewer labeled examples than folds: %s",
                            ", ".join(classes[i] for i in rare))
            _write_predictions(con, train, probs, classes, spec_key, snapshot, kind="oof", folds=folds)
            _store_weights(con, spec_key, snapshot, weights)
    estimator = build_estimator(spec, Schema.from_mapping(schema), weights=weights)
    with clock.stage("score_unlabeled"):
        unl_probs, newly, champion = _unlabeled_probabilities(con, unlabeled, train, labels, estimator, schema,
                                                              classes, spec_key, snapshot, home, weights)
    return PredictionState(train=train, unlabeled=unlabeled, classes=classes, schema=schema,
                           label_snapshot=snapshot, model_spec=spec_key, labels=labels, oof_probs=probs,
                           folds=folds, unlabeled_probs=unl_probs, reused=reused, newly_scored=newly,
                           champion_scored=champion, rare_classes=tuple(rare), member_weights=weights)


def mining_data(state: PredictionState, cfg: EngineConfig, *, with_neighbours: bool = True,
                home: Home | None = None) -> MiningData:
    """Assemble the detectors' input: training rows first, then unlabeled rows.

    With a ``home``, the neighbour index is kept in ``HOME/models/mining`` and a run that only
    adds examples embeds and searches just the new ones (see :func:`current_neighbours`).
    """
    frames = [state.train, state.unlabeled]
    n_train, n_unl = len(state.train), len(state.unlabeled)
    ids = np.concatenate([f["example_id"].astype(str).to_numpy(dtype=object) for f in frames])
    hashes = np.concatenate([f["feature_hash"].astype(str).to_numpy(dtype=object) for f in frames])
    labels = np.concatenate([state.labels, np.full(n_unl, -1, dtype=np.int64)])
    probs = np.vstack([state.oof_probs, state.unlabeled_probs]) if n_unl else state.oof_probs
    oos = np.concatenate([np.ones(n_train, bool), np.zeros(n_unl, bool)])
    neighbours = None
    if with_neighbours and len(ids) >= 3:
        neighbours = current_neighbours(state, cfg, ids, home)
    return MiningData(ids, labels, tuple(state.classes), probs, oos, hashes, neighbours, state.rare_classes)


def current_neighbours(state: PredictionState, cfg: EngineConfig, ids: np.ndarray, home: Home | None) -> Any:
    """Nearest neighbours of the current examples (training rows, then unlabeled rows).

    The index from the last run is re-used when it holds exactly these example versions, and
    extended when they are a superset of its rows; anything else rebuilds it.
    """
    from data_engine.detectors.neighbours import align_index, build_index, extend_index

    cols = list(state.schema)
    versions = np.concatenate([state.train["version"].to_numpy(), state.unlabeled["version"].to_numpy()])
    keys = (pd.Series(ids, dtype=object) + "@" + pd.Series(versions).astype(str)).to_numpy(dtype=object)
    frame = pd.concat([state.train[cols], state.unlabeled[cols]], ignore_index=True)
    digest = hashlib.sha256(json.dumps([state.schema, cfg.dataset.modality, cfg.mining.seed]).encode()).hexdigest()[:20]
    path = Path(home.models) / "mining" / f"neighbours-{digest}.joblib" if home is not None else None
    index = None
    if path is not None and path.exists():
        try:
            # Unpickled only when its keyed sha256 matches (registry.load_cache); else rebuilt.
            index = load_cache(home, path)
        except Exception as exc:  # a damaged cache is rebuilt, never trusted
            log.warning("neighbour cache %s unreadable (%s); rebuilding", path, exc)
    if index is not None:
        found = align_index(index, keys)
        if found is not None:
            return found
        known = pd.Index(index.keys)
        is_new = ~pd.Index(keys).isin(known)
        if pd.Index(keys).isin(known).sum() == len(index.keys) and is_new.any():
            index = extend_index(index, keys[is_new], frame[is_new], n_jobs=cfg.mining.n_jobs)
        else:
            index = None
    if index is None:
        index = build_index(keys, frame, state.schema, cfg.dataset.modality, seed=cfg.mining.seed,
                            n_jobs=cfg.mining.n_jobs)
    if path is not None:
        save_cache(home, index, path)
    return align_index(index, keys)


def estimate_noise(state: PredictionState) -> tuple[float | None, np.ndarray | None, list[str]]:
    """cleanlab's estimate of the joint distribution of given and true labels.

    Returns the noise rate (1 - trace of the joint: the share of labels estimated wrong), the
    joint of shape (K', K') over the K' classes that have labeled examples, and those classes.
    """
    from cleanlab.count import estimate_joint

    present = np.unique(state.labels)
    if len(present) < 2 or len(state.labels) < 2:
        return None, None, []
    remap = np.full(len(state.classes), -1)
    remap[present] = np.arange(len(present))
    probs = state.oof_probs[:, present]
    totals = probs.sum(axis=1, keepdims=True)
    probs = np.where(totals > 0, probs / np.where(totals > 0, totals, 1.0), 1.0 / len(present))
    joint = estimate_joint(remap[state.labels], probs)
    return float(1.0 - np.trace(joint)), joint, [state.classes[i] for i in present]


def noise_plot(joint: np.ndarray, classes: list[str], noise_rate: float | None) -> bytes:
    """A PNG heat map of the estimated joint of given (rows) and true (columns) labels."""
    import matplotlib

    matplotlib.use("Agg")
    from matplotlib import pyplot as plt

    k = len(classes)
    size = min(10.0, 2.5 + 0.35 * k)
    fig, ax = plt.subplots(figsize=(size, size * 0.85), dpi=100)
    try:
        image = ax.imshow(joint, cmap="viridis")
        fig.colorbar(image, ax=ax, fraction=0.046, pad=0.04, label="share of examples")
        if k <= PLOT_MAX_LABELED_CLASSES:
            short = [c if len(c) <= 12 else c[:11] + "…" for c in classes]
            ax.set_xticks(range(k), short, rotation=60, ha="right", fontsize=8)
            ax.set_yticks(range(k), short, fontsize=8)
        ax.set_xlabel("estimated true label")
        ax.set_ylabel("given label")
        rate = "n/a" if noise_rate is None else f"{noise_rate:.1%}"
        ax.set_title(f"Estimated joint of given and true labels (noise rate {rate})", fontsize=10)
        fig.tight_layout()
        out = io.BytesIO()
        fig.savefig(out, format="png")
        return out.getvalue()
    finally:
        plt.close(fig)


def issues_table(results: dict[str, DetectorResult], state: PredictionState) -> pd.DataFrame:
    """All detectors' per-example rows in one frame with ``issue_type`` and ``example_version``."""
    parts = []
    for name, result in results.items():
        if len(result.issues):
            parts.append(result.issues.assign(issue_type=name))
    if not parts:
        return pd.DataFrame(columns=["example_id", "example_version", "issue_type", "score", "is_issue", "reason",
                                     "detail"])
    issues = pd.concat(parts, ignore_index=True)
    versions = pd.concat([state.train[["example_id", "version"]], state.unlabeled[["example_id", "version"]]])
    issues["example_version"] = issues["example_id"].map(versions.set_index("example_id")["version"]).astype("Int64")
    return issues


def example_info(state: PredictionState) -> pd.DataFrame:
    """Per example: version, given label (None if unlabeled), suggested label and its probability."""
    classes = np.asarray(state.classes, dtype=object)
    probs = np.vstack([state.oof_probs, state.unlabeled_probs]) if len(state.unlabeled) else state.oof_probs
    has = np.isfinite(probs).all(axis=1)
    best = np.where(has, np.nan_to_num(probs, nan=-1.0).argmax(axis=1), 0)
    given = np.concatenate([classes[state.labels], np.full(len(state.unlabeled), None, dtype=object)])
    return pd.DataFrame({
        "example_id": pd.concat([state.train["example_id"], state.unlabeled["example_id"]], ignore_index=True),
        "example_version": pd.concat([state.train["version"], state.unlabeled["version"]], ignore_index=True),
        "given_label": given,
        "suggested_label": np.where(has, classes[best], None),
        "suggested_score": np.where(has, np.nan_to_num(probs, nan=0.0).max(axis=1), np.nan),
    })


def excluded_examples(con: duckdb.DuckDBPyConnection) -> list[str]:
    """Examples not to queue: waiting for review, or reviewed at their current version since the
    last ingested label (a newer ingest event re-opens an example)."""
    waiting = []
    if _has_table(con, "review_tasks"):
        waiting = [r[0] for r in con.execute(
            "SELECT DISTINCT example_id FROM review_tasks WHERE status NOT IN (SELECT unnest(?::VARCHAR[]))",
            [list(FINISHED_TASK_STATUSES)],
        ).fetchall()]
    reviewed = [r[0] for r in con.execute(
        "SELECT DISTINCT r.example_id FROM label_events r "
        "JOIN current_examples ce ON ce.example_id = r.example_id AND r.example_version = ce.version "
        "WHERE list_contains(?::VARCHAR[], r.source) AND NOT EXISTS ("
        "  SELECT 1 FROM label_events i WHERE i.example_id = r.example_id AND i.source = 'ingest' "
        "  AND i.event_id > r.event_id AND (i.example_version IS NULL OR i.example_version = ce.version))",
        [list(REVIEW_SOURCES)],
    ).fetchall()]
    return sorted(set(waiting) | set(reviewed))


def second_opinion_candidates(con: duckdb.DuckDBPyConnection, max_opinions: int) -> set[str]:
    """Reviewed examples that may be reviewed once more, if the model contradicts their label.

    Reviewers make mistakes (the simulated one in 2 % of answers), and a wrong answer is final
    unless someone looks again: after the demo's loop 8 of its 12 remaining label errors were
    reviewers' slips. Eligible: the label in force came from one reviewer (``review``, not a
    consensus of several), fewer than ``max_opinions`` tasks of the current content version were
    sent, and none is still open. Mining queues them only when the label detector flags them.
    """
    if max_opinions <= 1 or not _has_table(con, "review_tasks"):
        return set()
    return {r[0] for r in con.execute(
        "SELECT cl.example_id FROM current_labels cl "
        "JOIN current_examples ce ON ce.example_id = cl.example_id "
        "LEFT JOIN (SELECT example_id, example_version, count(*) AS opinions, "
        "           count(*) FILTER (WHERE status NOT IN (SELECT unnest(?::VARCHAR[]))) AS unfinished "
        "           FROM review_tasks GROUP BY ALL) t "
        "  ON t.example_id = cl.example_id AND t.example_version = ce.version "
        "WHERE cl.source = 'review' AND NOT cl.is_discarded "
        "AND coalesce(t.opinions, 0) < ? AND coalesce(t.unfinished, 0) = 0",
        [list(FINISHED_TASK_STATUSES), int(max_opinions)],
    ).fetchall()}


def store_run(con: duckdb.DuckDBPyConnection, state: PredictionState, issues: pd.DataFrame, queue: pd.DataFrame,
              results: dict[str, DetectorResult], *, noise_rate: float | None, started: datetime,
              timings: dict[str, float]) -> int:
    """Write ``mining_runs``, ``issues`` (every label row, flagged rows of other types) and
    ``review_queue`` in one transaction; return the run id."""
    keep = issues[(issues["issue_type"] == "label") | issues["is_issue"].astype(bool)]
    counts = {name: r.n_issues for name, r in results.items()}
    summary = {name: r.summary for name, r in results.items()}
    summary["rare_classes"] = [state.classes[i] for i in state.rare_classes]
    summary["ensemble_weights"] = state.member_weights
    con.execute("BEGIN TRANSACTION")
    try:
        run_id = int(con.execute("SELECT nextval('mining_run_seq')").fetchall()[0][0])
        con.execute(
            "INSERT INTO mining_runs (run_id, started_at, finished_at, label_snapshot, model_spec, counts, timings, "
            "noise_rate, reused_predictions, n_labeled, n_unlabeled, summary) VALUES (?, ?, now(), ?, ?, ?, ?, ?, ?, ?, ?, ?)",
            [run_id, started, state.label_snapshot, state.model_spec, json.dumps(counts),
             json.dumps({k: round(v, 4) for k, v in timings.items()}), noise_rate, state.reused,
             len(state.train), len(state.unlabeled), json.dumps(summary, default=_json_default)],
        )
        rows = keep[["example_id", "example_version", "issue_type", "score", "is_issue", "reason", "detail"]]
        con.register("_mined_issues", rows)
        con.execute(
            "INSERT INTO issues (run_id, example_id, example_version, issue_type, score, is_issue, reason, detail) "
            "SELECT ?, example_id, example_version, issue_type, score, is_issue, reason, CAST(detail AS JSON) "
            "FROM _mined_issues", [run_id],
        )
        con.register("_mined_queue", queue.astype({"issue_types": object}))
        con.execute(
            "INSERT INTO review_queue (run_id, rank, example_id, example_version, issue_types, priority, "
            "suggested_label, suggested_score, given_label, scores) SELECT ?, rank, example_id, example_version, "
            "CAST(issue_types AS VARCHAR[]), priority, suggested_label, suggested_score, given_label, "
            "CAST(scores AS JSON) FROM _mined_queue", [run_id],
        )
        con.execute("COMMIT")
    except BaseException:
        # A failed COMMIT (full disk) leaves no transaction: the original error must surface.
        rollback_quietly(con)
        raise
    finally:
        for name in ("_mined_issues", "_mined_queue"):
            try:
                con.unregister(name)
            except duckdb.Error:
                pass
    return run_id


def latest_run(con: duckdb.DuckDBPyConnection) -> dict[str, Any] | None:
    """The newest row of ``mining_runs`` as a dict, or None before the first run."""
    if not _has_table(con, "mining_runs"):
        return None
    df = con.execute("SELECT * FROM mining_runs ORDER BY run_id DESC LIMIT 1").fetchdf()
    return None if df.empty else df.iloc[0].to_dict()


# --- storage helpers ------------------------------------------------------------------------------


def _has_table(con: duckdb.DuckDBPyConnection, name: str) -> bool:
    return bool(con.execute("SELECT count(*) FROM information_schema.tables WHERE table_name = ?", [name]).fetchall()[0][0])


def _json_default(value: Any) -> Any:
    if isinstance(value, np.generic):
        return value.item()
    if isinstance(value, np.ndarray):
        return value.tolist()
    return str(value)


def _stored_weights(con: duckdb.DuckDBPyConnection, spec_key: str, snapshot: int) -> dict[str, float] | None:
    rows = con.execute("SELECT weights FROM ensemble_weights WHERE model_spec = ? AND label_snapshot = ?",
                       [spec_key, snapshot]).fetchall()
    return {str(k): float(v) for k, v in json.loads(rows[0][0]).items()} if rows else None


def _store_weights(con: duckdb.DuckDBPyConnection, spec_key: str, snapshot: int, weights: dict[str, float]) -> None:
    con.execute("DELETE FROM ensemble_weights WHERE model_spec = ? AND label_snapshot = ?", [spec_key, snapshot])
    con.execute("INSERT INTO ensemble_weights (model_spec, label_snapshot, weights) VALUES (?, ?, ?)",
                [spec_key, snapshot, json.dumps(weights)])


def _rare(labels: np.ndarray, n_classes: int, folds: int) -> tuple[int, ...]:
    counts = np.bincount(labels, minlength=n_classes)
    return tuple(int(c) for c in np.flatnonzero((counts > 0) & (counts < folds)))


def _probs_arrow(probs: np.ndarray) -> Any:
    """A (N, K) array as an Arrow list column (no Python object per row)."""
    import pyarrow as pa

    n, k = probs.shape
    offsets = pa.array(np.arange(0, n * k + 1, k, dtype=np.int32))
    return pa.ListArray.from_arrays(offsets, pa.array(probs.ravel().astype(np.float64)))


def _write_predictions(con: duckdb.DuckDBPyConnection, frame: pd.DataFrame, probs: np.ndarray, classes: list[str],
                       spec_key: str, snapshot: int, *, kind: str, folds: np.ndarray | None = None,
                       replace_all: bool = True) -> None:
    """Store ``probs`` (shape (N, K)) for the example versions in ``frame``.

    ``replace_all`` drops every older row of this ``kind`` (stale once labels changed); otherwise
    only rows of the same example versions are replaced.
    """
    import pyarrow as pa

    best = probs.argmax(axis=1) if len(probs) else np.array([], dtype=int)
    table = pa.table({
        "example_id": pa.array(frame["example_id"].astype(str).to_numpy(dtype=object), pa.string()),
        "example_version": pa.array(frame["version"].to_numpy(dtype=np.int32)),
        "fold": pa.array(folds.astype(np.int32)) if folds is not None else pa.nulls(len(frame), pa.int32()),
        "probs": _probs_arrow(probs),
        "predicted_label": pa.array(np.asarray(classes, dtype=object)[best], pa.string()),
        "predicted_score": pa.array(probs.max(axis=1) if len(probs) else np.array([], float)),
    })
    con.execute("BEGIN TRANSACTION")
    try:
        con.register("_new_predictions", table)
        if replace_all:
            con.execute("DELETE FROM predictions WHERE kind = ?", [kind])
        else:
            con.execute(
                "DELETE FROM predictions WHERE kind = ? AND (example_id, example_version) IN "
                "(SELECT example_id, example_version FROM _new_predictions)", [kind],
            )
        con.execute(
            "INSERT INTO predictions (example_id, example_version, model_spec, label_snapshot, fold, probs, "
            "predicted_label, predicted_score, computed_at, kind) SELECT example_id, example_version, ?, ?, fold, "
            "probs, predicted_label, predicted_score, now(), ? FROM _new_predictions",
            [spec_key, snapshot, kind],
        )
        con.execute("COMMIT")
    except BaseException:
        # A failed COMMIT (full disk) leaves no transaction: the original error must surface.
        rollback_quietly(con)
        raise
    finally:
        con.unregister("_new_predictions")


def _fetch_probs(con: duckdb.DuckDBPyConnection, sql: str, params: list[Any], k: int) -> tuple[np.ndarray, pd.DataFrame]:
    """Run ``sql`` selecting ``row_index``, ``fold`` and ``probs``; return probs (M, K) and the other columns."""
    table = con.sql(sql, params=params).to_arrow_table()
    probs_col = table.column("probs").combine_chunks()
    values = probs_col.flatten().to_numpy(zero_copy_only=False)
    lengths = probs_col.value_lengths().to_numpy(zero_copy_only=False)
    if len(lengths) and not (lengths == k).all():
        raise EngineError(f"stored predictions have {int(lengths.min())}-{int(lengths.max())} classes, expected {k}; "
                          "the class list changed: run `data-engine mine --force`")
    rest = table.drop_columns(["probs"]).to_pandas()
    return values.reshape(len(rest), k), rest


def _stored_oof(con: duckdb.DuckDBPyConnection, train: pd.DataFrame, spec_key: str, snapshot: int,
                k: int) -> tuple[np.ndarray, np.ndarray] | None:
    """Stored out-of-fold predictions for exactly the current training example versions, or None."""
    keys = pd.DataFrame({"example_id": train["example_id"].astype(str), "version": train["version"].astype("int32"),
                         "row_index": np.arange(len(train), dtype=np.int64)})
    n_stored = con.execute(
        "SELECT count(*) FROM predictions WHERE kind = 'oof' AND model_spec = ? AND label_snapshot = ?",
        [spec_key, snapshot],
    ).fetchall()[0][0]
    if n_stored != len(train) or len(train) == 0:
        return None
    con.register("_train_keys", keys)
    try:
        probs, rest = _fetch_probs(
            con,
            "SELECT t.row_index, p.fold, p.probs FROM predictions p JOIN _train_keys t "
            "ON p.example_id = t.example_id AND p.example_version = t.version "
            "WHERE p.kind = 'oof' AND p.model_spec = ? AND p.label_snapshot = ? ORDER BY t.row_index",
            [spec_key, snapshot], k,
        )
    finally:
        con.unregister("_train_keys")
    if len(rest) != len(train):
        return None
    return probs, rest["fold"].to_numpy(dtype=np.int32)


def _unlabeled_probabilities(con: duckdb.DuckDBPyConnection, unlabeled: pd.DataFrame, train: pd.DataFrame,
                             labels: np.ndarray, estimator: Any, schema: dict[str, str], classes: list[str],
                             spec_key: str, snapshot: int, home: Home | None,
                             weights: dict[str, float]) -> tuple[np.ndarray, int, int]:
    """Probabilities (shape (N_unlabeled, K)) for unlabeled examples: champion's, stored, or new.

    Returns them with the number newly scored and the number taken from the champion.
    """
    k = len(classes)
    out = np.full((len(unlabeled), k), np.nan)
    if unlabeled.empty:
        return out, 0, 0
    keys = pd.DataFrame({"example_id": unlabeled["example_id"].astype(str),
                         "version": unlabeled["version"].astype("int32"),
                         "row_index": np.arange(len(unlabeled), dtype=np.int64)})
    con.register("_unl_keys", keys)
    try:
        champ, champ_rows = _fetch_probs(
            con,
            "SELECT t.row_index, p.probs FROM predictions p JOIN _unl_keys t "
            "ON p.example_id = t.example_id AND p.example_version = t.version WHERE p.kind = 'champion' "
            "QUALIFY row_number() OVER (PARTITION BY t.row_index ORDER BY p.computed_at DESC) = 1",
            [], k,
        )
        own, own_rows = _fetch_probs(
            con,
            "SELECT t.row_index, p.probs FROM predictions p JOIN _unl_keys t "
            "ON p.example_id = t.example_id AND p.example_version = t.version "
            "WHERE p.kind = 'full' AND p.model_spec = ? AND p.label_snapshot = ?",
            [spec_key, snapshot], k,
        )
    finally:
        con.unregister("_unl_keys")
    out[own_rows["row_index"].to_numpy(dtype=np.int64)] = own
    # The deployed champion's view wins: it is the model whose uncertainty matters in production.
    out[champ_rows["row_index"].to_numpy(dtype=np.int64)] = champ
    todo = np.flatnonzero(~np.isfinite(out).all(axis=1))
    if len(todo) == 0:
        return out, 0, len(champ_rows)
    model = _full_model(estimator, train, labels, schema, f"{spec_key}|{json.dumps(weights, sort_keys=True)}",
                        snapshot, home)
    from data_engine.oof import single_threaded

    with single_threaded():
        part = model.predict_proba(unlabeled.iloc[todo][list(schema)])
    full = np.zeros((len(todo), k))
    full[:, np.asarray(model.classes_, dtype=int)] = part
    out[todo] = full
    _write_predictions(con, unlabeled.iloc[todo], full, classes, spec_key, snapshot, kind="full", replace_all=False)
    con.execute("DELETE FROM predictions WHERE kind = 'full' AND (model_spec <> ? OR label_snapshot <> ?)",
                [spec_key, snapshot])
    return out, len(todo), len(champ_rows)


def _full_model(estimator: Any, train: pd.DataFrame, labels: np.ndarray, schema: dict[str, str], spec_key: str,
                snapshot: int, home: Home | None) -> Any:
    """The estimator fitted on all training examples, cached per (spec, snapshot) under the home.

    The cache is a joblib pickle in ``HOME/models/mining``: the engine's own private state,
    unpickled only when its keyed sha256 matches (registry.load_cache), else rebuilt.
    """
    from sklearn.base import clone

    from data_engine.oof import MAX_FIT_ROWS, fit_subset, single_threaded

    digest = hashlib.sha256(f"{spec_key}|{snapshot}|{len(train)}".encode()).hexdigest()[:20]
    path = Path(home.models) / "mining" / f"full-{digest}.joblib" if home is not None else None
    if path is not None and path.exists():
        try:
            cached = load_cache(home, path)  # None unless its keyed sha256 matches
            if cached is not None:
                return cached
        except Exception as exc:  # a damaged cache is rebuilt, never trusted
            log.warning("mining model cache %s unreadable (%s); refitting", path, exc)
    model = clone(estimator)
    rows = fit_subset(np.arange(len(train)), labels, max_rows=MAX_FIT_ROWS, seed=0)
    with single_threaded(), warnings.catch_warnings():
        warnings.simplefilter("ignore", category=UserWarning)
        model.fit(train[list(schema)].iloc[rows], labels[rows])
    if path is not None:
        path.parent.mkdir(parents=True, exist_ok=True)
        for old in path.parent.glob("full-*.joblib*"):
            old.unlink(missing_ok=True)
        save_cache(home, model, path)
    return model
