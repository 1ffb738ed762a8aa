"""Retraining: the training set from the labels in force, the configured model, a new candidate.

The training set is every example with a label in force that is neither discarded nor gold
(:func:`data_engine.store.dataset.load_examples` with ``subset="train"``). With
``[retrain] weight_by_label_quality = true``, labels the latest mining run flagged as likely wrong
get weight 0 until a reviewer confirms or corrects them (the seed's "curriculum": trust low-quality
labels less until reviewed); ``data-engine bench weighting`` measures whether that helps.

When to train is :mod:`data_engine.ship.retrain_decision`; how a fit runs (threads, progress),
:mod:`data_engine.ship.fitting`.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from typing import Any

import duckdb
import numpy as np
import pandas as pd

from data_engine.errors import EngineError
from data_engine.mine.candidates import ServedChoice
from data_engine.ship.fitting import fit_estimator, limited_threads
from data_engine.ship.registry import ModelRecord, register_model
from data_engine.store.config import EngineConfig
from data_engine.store.home import Home
from data_engine.tasks import Task, task_for

# Sources whose labels a person gave or confirmed: always full weight.
REVIEWED_SOURCES = frozenset({"review", "consensus"})


@dataclass(frozen=True)
class TrainingSet:
    """What a candidate learns from.

    ``X``: DataFrame of shape (N, D), the dataset's input columns; ``y``: labels, shape (N,), str;
    ``example_ids``, ``sources`` (each label's source in the ledger): shape (N,).
    """

    X: pd.DataFrame
    y: np.ndarray
    example_ids: np.ndarray
    sources: np.ndarray
    classes: list[str]
    label_snapshot: int
    input_schema: dict[str, str]
    # Each row's example version, shape (N,) (stored out-of-fold predictions are keyed by it).
    versions: np.ndarray | None = None


class AlreadyTrained(EngineError):
    """A model with the same spec was already trained on this label snapshot: training it again
    would repeat the work (and register a twin the gate would compare with itself)."""

    def __init__(self, version: int, label_snapshot: int, model_spec: str) -> None:
        super().__init__(f"model v{version} ({model_spec}) was already trained on label snapshot {label_snapshot}; "
                         "nothing to retrain until labels change")
        self.version = version


def trained_on(con: duckdb.DuckDBPyConnection, label_snapshot: int, model_spec: str) -> int | None:
    """The version of a model with ``model_spec`` trained on ``label_snapshot``, if any."""
    row = con.execute("SELECT min(version) FROM models WHERE label_snapshot = ? AND model_spec = ?",
                      [int(label_snapshot), model_spec]).fetchone()
    return None if row is None or row[0] is None else int(row[0])


@dataclass(frozen=True)
class TrainResult:
    """A trained and registered candidate."""

    record: ModelRecord
    seconds: float
    weighted: bool
    dropped: int = 0
    class_counts: dict[str, int] = field(default_factory=dict)
    # Which served model was trained and every candidate's out-of-fold score (data_engine.mine.candidates).
    choice: ServedChoice | None = None


def input_schema(con: duckdb.DuckDBPyConnection, cfg: EngineConfig) -> dict[str, str]:
    """``{input column: 'numeric' | 'categorical' | 'text' | 'image'}`` as fixed in the warehouse, in config order."""
    from data_engine.store.schema import stored_columns

    stored = stored_columns(con)
    missing = [c for c in cfg.dataset.input_columns if c not in stored]
    if missing:
        raise EngineError(f"input column {missing[0]!r} is not in the warehouse yet; ingest a batch first")
    return {c: stored[c] for c in cfg.dataset.input_columns}


def load_training_set(con: duckdb.DuckDBPyConnection, cfg: EngineConfig) -> TrainingSet:
    """The labels in force (not discarded, not gold) with their input columns and label sources."""
    from data_engine.store.dataset import label_snapshot, load_classes, load_examples

    snapshot = label_snapshot(con)
    schema = input_schema(con, cfg)
    df = load_examples(con, cfg.dataset, subset="train")
    df = df[~df["is_discarded"].astype(bool)]
    if df.empty:
        raise EngineError("no labeled training examples (all are gold, discarded or unlabeled); ingest labeled data")
    task = task_for(cfg.dataset)
    if task.has_classes:
        classes = load_classes(con) or sorted(df["label"].unique())
        try:
            encoded = task.encode(df["label"].astype(str).tolist(), classes)
        except ValueError as exc:
            raise EngineError(str(exc)) from None
        # One class per example needs two classes; a tag model learns each tag on its own.
        if encoded.ndim == 1 and df["label"].nunique() < 2:
            raise EngineError(f"the training set has only one class ({df['label'].iloc[0]!r}); a model needs two")
    else:  # numbers: no classes, but a model needs two different values to learn from
        classes = []
        if df["label"].nunique() < 2:
            raise EngineError(f"the training set has only one value ({df['label'].iloc[0]!r}); a model needs two")
    sources = con.execute(
        "SELECT t.example_id, cl.source FROM (SELECT unnest(?::VARCHAR[]) AS example_id) t "
        "JOIN current_labels cl USING (example_id)",
        [df["example_id"].tolist()],
    ).fetchdf()
    source_of = dict(zip(sources["example_id"], sources["source"]))
    from data_engine.mine.embedders.features import model_inputs, with_embedding

    # The stored vectors ride along (the served model would otherwise embed every training row).
    df, _ = with_embedding(con, cfg, df.reset_index(drop=True), schema)
    return TrainingSet(
        X=df[model_inputs(df, schema)],
        y=df["label"].astype(str).to_numpy(),
        example_ids=df["example_id"].to_numpy(),
        sources=np.array([source_of.get(e, "ingest") for e in df["example_id"]], dtype=object),
        classes=list(classes),
        label_snapshot=snapshot,
        input_schema=schema,
        versions=df["version"].to_numpy(),
    )


def label_trust_mask(sources: np.ndarray, flagged: np.ndarray) -> np.ndarray:
    """Which labels to train on, shape (N,) bool: reviewed labels always; others unless flagged.

    ``sources``: shape (N,), each label's source; ``flagged``: shape (N,) bool, the latest mining
    run's ``label`` flags. Distrust is all or nothing (weight 0 or 1) because the default model is a
    soft-voting ensemble of pipelines, which cannot route sample weights to its members.
    """
    reviewed = np.isin(np.asarray(sources, dtype=object), list(REVIEWED_SOURCES))
    return reviewed | ~np.asarray(flagged, dtype=bool)


def latest_label_flags(con: duckdb.DuckDBPyConnection, example_ids: np.ndarray) -> np.ndarray:
    """The latest mining run's ``label`` flags for ``example_ids``, shape (N,) bool (False if unknown)."""
    found = con.execute(
        "SELECT i.example_id FROM issues i JOIN current_examples ce ON ce.example_id = i.example_id "
        "WHERE i.issue_type = 'label' AND i.is_issue "
        "AND (i.example_version IS NULL OR i.example_version = ce.version) "  # a flag on old content is void
        "AND i.run_id = (SELECT run_id FROM mining_runs ORDER BY started_at DESC, run_id DESC LIMIT 1)"
    ).fetchall()
    flagged = {r[0] for r in found}
    return np.array([e in flagged for e in example_ids], dtype=bool)


def train_candidate(con: duckdb.DuckDBPyConnection, home: Home, cfg: EngineConfig | None = None) -> TrainResult:
    """Train the configured model on the labels in force and register it as a new candidate.

    Raises :class:`AlreadyTrained` when a model of the same spec was trained on the same label
    snapshot (checked before fitting), :class:`EngineError` when there is nothing to train on.
    """
    cfg = cfg or home.config
    started = time.perf_counter()
    ts = load_training_set(con, cfg)
    X, y, ids, dropped = ts.X, ts.y, ts.example_ids, 0
    if cfg.retrain.weight_by_label_quality:
        keep = label_trust_mask(ts.sources, latest_label_flags(con, ts.example_ids))
        dropped = int((~keep).sum())
        X, y, ids = ts.X[keep].reset_index(drop=True), ts.y[keep], ts.example_ids[keep]
        if len(set(y)) < 2:
            raise EngineError("retrain.weight_by_label_quality: fewer than two classes left after dropping "
                              "flagged labels; review them first or turn the option off")
    from data_engine.mine.candidates import choose_served, served_estimator
    from data_engine.ship.baseline import BASELINE_PARAM, recorded_baseline
    from data_engine.ship.gold import OOF_PARAM, out_of_fold_recall

    # The user's trainer is one model whatever retrain.model says; its twin is found by its spec
    # (which hashes the command), so a changed command trains on the same labels.
    if cfg.retrain.model == "auto" and cfg.model.trainer != "command":
        # The choice is a function of the label snapshot and the config: one auto model per snapshot.
        twin_auto = _auto_trained_on(con, ts.label_snapshot)
        if twin_auto is not None:
            raise AlreadyTrained(*twin_auto)
    # Candidates are scored on every label in force (weighting changes what the chosen one fits on).
    choice, chosen = choose_served(cfg, ts.input_schema, ts.X, ts.y, ts.classes, con=con, ids=ts.example_ids,
                                   versions=ts.versions, snapshot=ts.label_snapshot)
    task = task_for(cfg.dataset)
    estimator, spec = served_estimator(choice, chosen, ts.input_schema, task)
    # The served model is adapted to the task as the mining members are (classification: as built;
    # numbers: served_estimator already built the regressors, left as they are).
    estimator = task.members_for({"served": estimator})["served"]
    # The user's trainer is told the label snapshot and where the images are (data_engine.trainers.context).
    from data_engine.trainers.context import engine_manifest, with_engine_manifest, with_example_ids

    estimator = with_engine_manifest({"served": estimator},
                                     engine_manifest(con, cfg, ts.classes, ts.label_snapshot))["served"]
    X = with_example_ids(X, ids, {"served": estimator})
    twin = trained_on(con, ts.label_snapshot, spec)
    if twin is not None:
        raise AlreadyTrained(twin, ts.label_snapshot, spec)
    if task.estimator_kind == "regressor":
        target = task.encode(list(y), [])  # a regressor learns numbers (the stored labels are their text)
    else:
        target = task.encode([str(v) for v in y], ts.classes)
        if target.ndim == 2:
            # Tags: the one-vs-rest wrapper is fitted on the 0/1 tag matrix, its classes_ the dataset's tags.
            estimator.set_params(tags=tuple(ts.classes))
        else:
            target = y
    with limited_threads():
        fitted = fit_estimator(estimator, X, target, description=f"training {spec}")
    # The model's class order must be the dataset's, or probabilities would be mislabeled downstream.
    model_classes = [str(c) for c in getattr(fitted, "classes_", [])]
    counts = pd.Series(y).value_counts().to_dict() if task.has_classes else {}
    params = {
        "estimator": _short_repr(fitted),
        "weight_by_label_quality": bool(cfg.retrain.weight_by_label_quality),
        "dropped_flagged_labels": dropped,
        "seed": cfg.mining.seed,
        "model_classes": model_classes,
        "requested_model": cfg.retrain.model,
        "served_choice": choice.as_dict(),
        # Per-class out-of-fold recall of the served candidate: the gate's evidence on classes gold
        # cannot measure (data_engine.ship.gold); None when no candidate was scored out of fold.
        OOF_PARAM: out_of_fold_recall(choice, ts.classes, ts.y),
        # What a model that learnt nothing answers, from the labels fitted on: a first model must beat it on gold.
        BASELINE_PARAM: recorded_baseline(task, [str(v) for v in y]),
    }
    record = register_model(
        con, home, fitted, label_snapshot=ts.label_snapshot, train_size=len(y), model_spec=spec,
        classes=model_classes, input_schema=ts.input_schema, params=params,
    )
    return TrainResult(record=record, seconds=time.perf_counter() - started,
                       weighted=bool(cfg.retrain.weight_by_label_quality), dropped=dropped,
                       class_counts={str(k): int(v) for k, v in counts.items()}, choice=choice)


def _auto_trained_on(con: duckdb.DuckDBPyConnection, label_snapshot: int) -> tuple[int, int, str] | None:
    """(version, snapshot, spec) of a model ``[retrain] model = "auto"`` chose on ``label_snapshot``, if any."""
    row = con.execute(
        "SELECT version, model_spec FROM models WHERE label_snapshot = ? "
        "AND json_extract_string(params, '$.requested_model') = 'auto' ORDER BY version LIMIT 1",
        [int(label_snapshot)]).fetchone()
    return None if row is None else (int(row[0]), int(label_snapshot), str(row[1]))


def _short_repr(estimator: Any) -> str:
    """A one-line description of the estimator for the ``params`` column."""
    return " ".join(repr(estimator).split())[:2000]


def describe(result: TrainResult, task: Task | None = None) -> str:
    """One line for the CLI; ``task`` names the model (:func:`data_engine.tasks.model_name`)."""
    from data_engine.tasks import model_name

    r = result.record
    spec = model_name(task, r.model_spec) if task is not None else r.model_spec
    line = (f"trained candidate v{r.version} ({spec}) on {r.train_size} labels "
            f"(label snapshot {r.label_snapshot}"
            f"{f'; {result.dropped} flagged labels left out until reviewed' if result.weighted else ''}) "
            f"in {result.seconds:.1f} s")
    return line + (f"\n{result.choice.line(task)}" if result.choice is not None else "")


__all__ = ["AlreadyTrained", "trained_on", "TrainingSet", "TrainResult", "load_training_set", "label_trust_mask",
           "latest_label_flags", "train_candidate", "input_schema", "describe"]
