"""The prediction state of a mining run: out-of-fold probabilities for labeled examples and a full
model's (or the champion's) for unlabeled ones, stored per label snapshot and model spec and
re-used while neither changes."""

from __future__ import annotations

import hashlib
import json
import logging
import warnings
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import duckdb
import numpy as np
import pandas as pd

from data_engine.compute.backend import Backend
from data_engine.errors import EngineError
from data_engine.mine.probs_column import fetch_probs, probs_arrow
from data_engine.stages import StageClock
from data_engine.store.cache import load_cache, save_cache
from data_engine.store.config import EngineConfig
from data_engine.store.home import Home
from data_engine.store.warehouse import release_cache, rollback_quietly
from data_engine.tasks import Classification, Task

log = logging.getLogger(__name__)


@dataclass
class PredictionState:
    """Probabilities for the training and unlabeled examples, and what they were computed from.

    ``train`` / ``unlabeled``: frames from :func:`data_engine.store.dataset.load_examples`;
    ``labels``: the task's encoded labels (classification: shape (N_train,) class indices; tags:
    (N_train, K) 0/1); ``oof_probs``: shape (N_train, W), W the task's prediction width (K class
    or tag probabilities); ``folds``: shape (N_train,); ``unlabeled_probs``: shape (N_unlabeled, W),
    NaN rows if none.
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
    # The resolved [mining] embedding; for a per-row embedder both frames carry its vectors in
    # EMBEDDING_COLUMN (read from the cache; ``newly_embedded`` rows were embedded by this run).
    embedding: str = "tfidf"
    newly_embedded: int = 0
    # The dataset's task: what ``labels`` encode and what the prediction columns are.
    task: Task = field(default_factory=Classification)


def refresh_predictions(con: duckdb.DuckDBPyConnection, cfg: EngineConfig, *, home: Home | None = None,
                        force: bool = False, clock: StageClock | None = None,
                        compute: Backend | None = None) -> PredictionState:
    """Out-of-fold probabilities for the training examples and probabilities for unlabeled ones.

    Stored predictions are re-used when they match; new ones are written to ``predictions``. The
    fold fits run on ``compute`` (default: the back-end of ``[compute] scheduler``, connected only
    when there is something to fit).
    """
    from data_engine.mine.embedders import configured_embedding
    from data_engine.mine.embedders.features import model_inputs
    from data_engine.mine.models import Schema, build_members, build_model, resolve_spec
    from data_engine.store.dataset import label_snapshot, load_classes, load_examples
    from data_engine.store.schema import stored_columns
    from data_engine.tasks import task_for

    clock = clock or StageClock()
    ds = cfg.dataset
    task = task_for(ds)
    with clock.stage("load"):
        classes = load_classes(con)
        if task.has_classes and len(classes) < 2:
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
        try:
            labels = task.encode(train["label"].astype(str).tolist(), classes)
        except ValueError as exc:
            raise EngineError(str(exc)) from None
        release_cache(con)  # the blocks the load read stay cached otherwise (store.warehouse.release_cache)
    embedding = configured_embedding(cfg)
    with clock.stage("embedding"):
        train, unlabeled, newly_embedded = _with_embedding(con, cfg, train, unlabeled, schema, compute)
    if cfg.mining.predictions == "external":
        with clock.stage("predictions"):
            return _external_state(con, home, task, train, unlabeled, labels, classes, schema, snapshot, embedding,
                                   newly_embedded, cfg.mining.folds)
    width = task.prediction_width(classes)
    spec = resolve_spec(cfg.mining.model, ds.modality, seed=cfg.mining.seed, n_rows=len(train), embedding=embedding,
                        trainer=cfg.model)
    spec_key = f"{spec.key}/folds={cfg.mining.folds}"
    members = task.members_for(build_members(spec, Schema.from_mapping(schema)))
    inputs = model_inputs(train, schema)
    with clock.stage("predictions"):
        found = None if force else _stored_oof(con, train, spec_key, snapshot, width)
        if found is not None:
            probs, folds = found
            rare: tuple[int, ...] = _rare(task, labels, classes, cfg.mining.folds)
            weights = _stored_weights(con, spec_key, snapshot) or {m: 1.0 / len(members) for m in members}
            reused = True
        else:
            from data_engine.mine.candidates import members_out_of_fold

            # Each member's out-of-fold probabilities, re-used where `train` already fitted them on
            # this label snapshot (it scores the same members as served-model candidates).
            member_probs = members_out_of_fold(con, cfg, members, train[inputs], labels, classes,
                                               ids=train["example_id"].to_numpy(), versions=train["version"].to_numpy(),
                                               snapshot=snapshot, compute=compute)
            with warnings.catch_warnings():
                warnings.simplefilter("ignore", category=UserWarning)
                folds, _, rare = task.fold_ids(labels, classes, folds=cfg.mining.folds, seed=cfg.mining.seed)
            probs, weights = task.mix({m: member_probs[m] for m in members}, labels)
            reused = False  # rare classes: in the run's summary, said once by `mine`
            _write_predictions(con, task, train, probs, classes, spec_key, snapshot, kind="oof", folds=folds)
            _store_weights(con, spec_key, snapshot, weights)
    # Unlabeled examples are scored by the model that will be served (the champion where it scored
    # them, else the served spec fitted on all training rows): its calibrated doubt is what a new
    # label should resolve, not the mining ensemble's (issue 16: on the digits the served SVM's
    # margin picks beat the ensemble's, which were no better than random).
    served, served_key = build_model(cfg, schema, n_rows=len(train))
    from data_engine.trainers.context import engine_manifest, with_engine_manifest

    # The user's trainer learns class (tag) names, not mining's indices (data_engine.trainers.context).
    served = with_engine_manifest({"served": served}, engine_manifest(con, cfg, classes, snapshot))["served"]
    if labels.ndim == 2 and "tags" in served.get_params():
        # As training does: a matrix of set labels (tags, boxes, spans) indexes the dataset's classes.
        served.set_params(tags=tuple(str(c) for c in classes))
    with clock.stage("score_unlabeled"):
        unl_probs, newly, champion = _unlabeled_probabilities(con, task, unlabeled, train, labels, served, inputs,
                                                              classes, served_key, snapshot, home, {})
    return PredictionState(train=train, unlabeled=unlabeled, classes=classes, schema=schema,
                           label_snapshot=snapshot, model_spec=spec_key, labels=labels, oof_probs=probs,
                           folds=folds, unlabeled_probs=unl_probs, reused=reused, newly_scored=newly,
                           champion_scored=champion, rare_classes=tuple(rare), member_weights=weights,
                           embedding=embedding, newly_embedded=newly_embedded, task=task)


def _with_embedding(con: duckdb.DuckDBPyConnection, cfg: EngineConfig, train: pd.DataFrame, unlabeled: pd.DataFrame,
                    schema: dict[str, str], compute: Backend | None) -> tuple[pd.DataFrame, pd.DataFrame, int]:
    """Both frames with the vectors of a per-row embedding attached (from the cache, embedding
    only content not seen before, on the Dask cluster when there is one), and the number of rows
    newly embedded."""
    from data_engine.mine.embedders.features import with_embedding

    both, new = with_embedding(con, cfg, pd.concat([train, unlabeled], ignore_index=True), schema, compute=compute)
    return both.iloc[:len(train)].reset_index(drop=True), both.iloc[len(train):].reset_index(drop=True), new


def _external_state(con: duckdb.DuckDBPyConnection, home: Home | None, task: Task, train: pd.DataFrame,
                    unlabeled: pd.DataFrame, labels: np.ndarray, classes: list[str], schema: dict[str, str],
                    snapshot: int, embedding: str, newly_embedded: int, folds: int) -> PredictionState:
    """The prediction state from the user's own model's predictions in the ``task``'s columns (see
    data_engine.mine.external)."""
    from data_engine.mine.external import external_probabilities

    if home is None:
        raise EngineError("mining.predictions = 'external' reads landing/predictions/ and needs the engine home")
    probs, unl_probs, key = external_probabilities(home.predictions_landing, classes, train["example_id"].to_numpy(),
                                                   unlabeled["example_id"].to_numpy(), task,
                                                   examples=pd.concat([train, unlabeled], ignore_index=True),
                                                   sources=_image_sources(con, schema))
    fold_of = np.full(len(train), -1, dtype=np.int32)
    _write_predictions(con, task, train, probs, classes, key, snapshot, kind="oof", folds=fold_of)
    scored = np.isfinite(unl_probs).all(axis=1)
    _write_predictions(con, task, unlabeled[scored], unl_probs[scored], classes, key, snapshot, kind="full")
    return PredictionState(train=train, unlabeled=unlabeled, classes=classes, schema=schema, label_snapshot=snapshot,
                           model_spec=key, labels=labels, oof_probs=probs, folds=fold_of, unlabeled_probs=unl_probs,
                           reused=False, newly_scored=int(scored.sum()), champion_scored=0,
                           rare_classes=_rare(task, labels, classes, folds), embedding=embedding,
                           newly_embedded=newly_embedded, task=task)


def _image_sources(con: duckdb.DuckDBPyConnection, schema: dict[str, str]) -> dict[str, str]:
    """Each image reference as a landed file wrote it -> the example id whose current version it is
    (empty without image files): a detector's predictions may name the image instead of the id. A
    reference several examples share (``images/1.png`` in two landed folders) maps to ``""``: it
    names no one image, and the reader says so."""
    if "image" not in schema.values():
        return {}
    rows = con.execute("SELECT src.source, CASE WHEN count(DISTINCT ce.example_id) = 1 THEN any_value(ce.example_id) "
                       "ELSE '' END FROM current_examples ce JOIN image_sources src "
                       "ON src.batch_id = ce.batch_id AND src.row_number = ce.row_number GROUP BY src.source").fetchall()
    return {str(source): str(example_id) for source, example_id in rows}


def _stored_weights(con: duckdb.DuckDBPyConnection, spec_key: str, snapshot: int) -> dict[str, float] | None:
    rows = con.execute("SELECT weights FROM ensemble_weights WHERE model_spec = ? AND label_snapshot = ?",
                       [spec_key, snapshot]).fetchall()
    return {str(k): float(v) for k, v in json.loads(rows[0][0]).items()} if rows else None


def _store_weights(con: duckdb.DuckDBPyConnection, spec_key: str, snapshot: int, weights: dict[str, float]) -> None:
    con.execute("DELETE FROM ensemble_weights WHERE model_spec = ? AND label_snapshot = ?", [spec_key, snapshot])
    con.execute("INSERT INTO ensemble_weights (model_spec, label_snapshot, weights) VALUES (?, ?, ?)",
                [spec_key, snapshot, json.dumps(weights)])


def _rare(task: Task, labels: np.ndarray, classes: list[str], folds: int) -> tuple[int, ...]:
    """The task's rare classes of ``labels`` (their folds are recomputed quietly)."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", category=UserWarning)
        try:
            return task.fold_ids(labels, classes, folds=folds, seed=0)[2]
        except EngineError:
            return ()


def _write_predictions(con: duckdb.DuckDBPyConnection, task: Task, frame: pd.DataFrame, probs: np.ndarray,
                       classes: list[str],
                       spec_key: str, snapshot: int, *, kind: str, folds: np.ndarray | None = None,
                       replace_all: bool = True) -> None:
    """Store ``probs`` (shape (N, width), the task's prediction columns) for the example versions in
    ``frame``, with the task's predicted label and score of each.

    ``replace_all`` drops every older row of this ``kind`` (stale once labels changed); otherwise
    only rows of the same example versions are replaced.
    """
    import pyarrow as pa

    best, score = task.best(probs, classes)
    table = pa.table({
        "example_id": pa.array(frame["example_id"].astype(str).to_numpy(dtype=object), pa.string()),
        "example_version": pa.array(frame["version"].to_numpy(dtype=np.int32)),
        "fold": pa.array(folds.astype(np.int32)) if folds is not None else pa.nulls(len(frame), pa.int32()),
        "probs": probs_arrow(probs),
        "predicted_label": pa.array(np.asarray(best, dtype=object), pa.string()),
        "predicted_score": pa.array(np.asarray(score, dtype=np.float64)),
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
        probs, rest = fetch_probs(
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


def _unlabeled_probabilities(con: duckdb.DuckDBPyConnection, task: Task, unlabeled: pd.DataFrame, train: pd.DataFrame,
                             labels: np.ndarray, estimator: Any, inputs: list[str], classes: list[str],
                             spec_key: str, snapshot: int, home: Home | None,
                             weights: dict[str, float]) -> tuple[np.ndarray, int, int]:
    """Predictions (shape (N_unlabeled, width)) for unlabeled examples: champion's, stored, or new.

    Returns them with the number newly scored and the number taken from the champion.
    """
    k = task.prediction_width(classes)
    out = np.full((len(unlabeled), k), np.nan)
    if unlabeled.empty:
        return out, 0, 0
    keys = pd.DataFrame({"example_id": unlabeled["example_id"].astype(str),
                         "version": unlabeled["version"].astype("int32"),
                         "row_index": np.arange(len(unlabeled), dtype=np.int64)})
    con.register("_unl_keys", keys)
    try:
        champ, champ_rows = fetch_probs(
            con,
            "SELECT t.row_index, p.probs FROM predictions p JOIN _unl_keys t "
            "ON p.example_id = t.example_id AND p.example_version = t.version WHERE p.kind = 'champion' "
            "QUALIFY row_number() OVER (PARTITION BY t.row_index ORDER BY p.computed_at DESC) = 1",
            [], k,
        )
        own, own_rows = fetch_probs(
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
    model = _full_model(estimator, train, labels, inputs, f"{spec_key}|{json.dumps(weights, sort_keys=True)}",
                        snapshot, home)
    from data_engine.tasks.oof import single_threaded

    with single_threaded():
        full = task.predict(model, unlabeled.iloc[todo][inputs], classes)
    out[todo] = full
    _write_predictions(con, task, unlabeled.iloc[todo], full, classes, spec_key, snapshot, kind="full",
                       replace_all=False)
    con.execute("DELETE FROM predictions WHERE kind = 'full' AND (model_spec <> ? OR label_snapshot <> ?)",
                [spec_key, snapshot])
    return out, len(todo), len(champ_rows)


def _full_model(estimator: Any, train: pd.DataFrame, labels: np.ndarray, inputs: list[str], spec_key: str,
                snapshot: int, home: Home | None) -> Any:
    """The estimator fitted on all training examples, cached per (spec, snapshot) under the home.

    The cache is a joblib pickle in ``HOME/models/mining``: the engine's own private state,
    unpickled only when its keyed sha256 matches (store.cache.load_cache), else rebuilt.
    """
    from sklearn.base import clone

    from data_engine.tasks.oof import MAX_FIT_ROWS, fit_subset, single_threaded

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
        model.fit(train[inputs].iloc[rows], labels[rows])
    if path is not None:
        path.parent.mkdir(parents=True, exist_ok=True)
        for old in path.parent.glob("full-*.joblib*"):
            old.unlink(missing_ok=True)
        save_cache(home, model, path)
    return model
