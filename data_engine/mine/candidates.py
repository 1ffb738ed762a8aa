"""The served model chosen by evidence: candidates scored out of fold on the labels in force.

With ``[retrain] model = "auto"`` the served model is not fixed per modality: every candidate is
scored by stratified K-fold out-of-fold predictions on the labels in force (the same folds and
seed as mining), by the promotion gate's metric (``[gate] metric``: accuracy or macro-F1), and
the best one is trained on all labels and registered. The candidates:

* the members' mixture, weighted by the out-of-fold likelihood (:func:`data_engine.tasks.oof.mixture_weights`),
  which is what mining reads;
* each member of the mining ensemble (``[mining] model``), alone;
* the linear model on the stored per-row embedding (``embedding``: e5-small vectors on text,
  the user's own vectors with ``embedding = "column"``), when mining does not already have it;
* the modality's clean-label specialist (:data:`data_engine.mine.spec.SERVED_AUTO`: the RBF SVM
  on images up to :data:`~data_engine.mine.spec.SVM_MAX_ROWS` rows).

Ties go to the earlier candidate in that order (a mixture averages its members' mistakes). Why: on emotion-labelled tweets the unweighted
vote of e5 + TF-IDF + naive Bayes scored 0.626 on held-out data while a logistic regression on the
same e5 vectors scored 0.751 on the same noisy labels; which family is best depends on the data
and on how clean its labels are, so it is measured on the user's data each time. The promotion
gate still judges the trained model on gold before it is served.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import asdict, dataclass, field
from typing import Any

import numpy as np
import pandas as pd

from data_engine.errors import EngineError
from data_engine.mine.embedders import configured_embedding
from data_engine.mine.probs_column import fetch_probs, probs_arrow
from data_engine.mine.models import resolve_spec
from data_engine.mine.spec import SERVED_AUTO, SVM_MAX_ROWS, ModelSpec
from data_engine.store.config import EngineConfig
from data_engine.tasks import Classification, Task, gate_metric, model_name, task_for

# The suffix naming the weighted mixture among the candidates (and in the served model's spec key).
MIXTURE_SUFFIX = " (weighted)"


@dataclass(frozen=True)
class CandidateScore:
    """One candidate's out-of-fold figures on the labels in force (fractions in [0, 1])."""

    name: str
    members: tuple[str, ...]
    accuracy: float | None
    macro_f1: float | None
    weights: dict[str, float] = field(default_factory=dict)
    # Out-of-fold recall of each class, in the class order the labels index (0 for a class without
    # labels); the promotion gate reads it for classes gold cannot measure (data_engine.ship.gold).
    class_recall: tuple[float, ...] = ()
    # Every figure of the task's metrics (a task without classes has no accuracy: MAE, RMSE, R²).
    figures: dict[str, float | None] = field(default_factory=dict)

    def metric(self, name: str) -> float:
        """The figure ``name``: ``accuracy`` or ``macro_f1``, or one of the task's metrics (NaN when
        the candidate has no such figure, e.g. a number's accuracy). Raises EngineError for a name
        that is none of them."""
        if name in self.figures:
            value = self.figures[name]
        elif name in ("accuracy", "macro_f1"):
            value = getattr(self, name)
        else:
            raise EngineError(f"candidate {self.name!r} has no figure {name!r} (it has accuracy, macro_f1"
                              + "".join(f", {k}" for k in self.figures) + ")")
        return float("nan") if value is None else float(value)

    def as_dict(self) -> dict[str, Any]:
        """JSON-friendly form (None for a figure the task does not have)."""
        return {**asdict(self), "members": list(self.members), "class_recall": list(self.class_recall)}

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> "CandidateScore":
        """Inverse of :meth:`as_dict`; a figure stored as null stays None."""
        def num(value: Any) -> float | None:
            return None if value is None else float(value)

        # A model recorded before figures were the task's scalar metrics may hold a per-type table
        # (NER's per_type_f1): not a figure, so not read back.
        figures = {str(k): num(v) for k, v in (data.get("figures") or {}).items() if not isinstance(v, Mapping)}
        return cls(str(data["name"]), tuple(data["members"]), num(data.get("accuracy")), num(data.get("macro_f1")),
                   dict(data.get("weights") or {}), tuple(float(r) for r in data.get("class_recall") or ()), figures)


@dataclass(frozen=True)
class ServedChoice:
    """Which served model was trained and why.

    ``chosen``: the candidate's name; ``members`` / ``weights``: what it is built from (weights
    only for the mixture); ``rule``: one sentence; ``candidates``: every candidate's scores, in
    the order ties are broken; ``n_scored``: labeled examples the scores are measured on.
    """

    chosen: str
    members: tuple[str, ...]
    rule: str
    metric: str
    candidates: tuple[CandidateScore, ...] = ()
    weights: dict[str, float] = field(default_factory=dict)
    n_scored: int = 0
    # Whether a larger ``metric`` is better (False for an error such as MAE); the task's
    # :meth:`~data_engine.tasks.Task.higher_is_better`, recorded so a reader needs no config.
    higher_is_better: bool = True

    def score_of(self, name: str) -> float | None:
        """The out-of-fold metric of candidate ``name``, or None if it was not scored."""
        found = [c for c in self.candidates if c.name == name]
        return found[0].metric(self.metric) if found else None

    @property
    def best(self) -> CandidateScore | None:
        """The best-scoring candidate by ``metric`` in its direction (first on ties), or None when
        none was scored."""
        if not self.candidates:
            return None
        return best_candidate(self.candidates, self.metric, self.higher_is_better)

    def as_dict(self) -> dict[str, Any]:
        """JSON-friendly form, stored in the model's ``params`` as ``served_choice``."""
        out = asdict(self)
        out["candidates"] = [c.as_dict() for c in self.candidates]
        out["members"] = list(self.members)
        return out

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> "ServedChoice":
        """Inverse of :meth:`as_dict`. A choice stored before the direction was recorded takes it
        from the task that names the metric (:func:`metric_direction`)."""
        metric = str(data["metric"])
        higher = data.get("higher_is_better")
        return cls(str(data["chosen"]), tuple(data["members"]), str(data["rule"]), metric,
                   tuple(CandidateScore.from_dict(c) for c in data.get("candidates", ())),
                   dict(data.get("weights") or {}), int(data.get("n_scored", 0)),
                   metric_direction(metric) if higher is None else bool(higher))

    def line(self, task: Task | None = None) -> str:
        """One line for people: the choice and every candidate's score, named by ``task``
        (:meth:`~data_engine.tasks.Task.model_name`; as stored without one)."""
        def name(n: str) -> str:
            return model_name(task, n) if task is not None else n

        if not self.candidates:
            return f"served model {name(self.chosen)}: {self.rule}"
        scores = ", ".join(f"{name(c.name)} {c.metric(self.metric):.4f}" for c in self.candidates)
        return (f"served model {name(self.chosen)}: {self.rule} (out-of-fold {self.metric} on {self.n_scored} labels: "
                f"{scores})")


def best_candidate(candidates: Sequence[CandidateScore], metric: str, higher_is_better: bool) -> CandidateScore:
    """The best of ``candidates`` (non-empty) by ``metric`` in its direction; ties and unmeasured
    (NaN) figures go to the earlier candidate."""
    sign = 1.0 if higher_is_better else -1.0

    def key(c: CandidateScore) -> tuple[float, int]:
        value = c.metric(metric)
        return (sign * value if np.isfinite(value) else -np.inf, -candidates.index(c))

    return max(candidates, key=key)


def metric_direction(metric: str) -> bool:
    """Whether a larger ``metric`` is better, by the registered task whose metrics name it (True
    when none does: scores are the common case)."""
    from data_engine.tasks import TASKS

    for name in TASKS:
        task = TASKS[name]()
        if metric in task.metric_names():
            return task.higher_is_better(metric)
    return True


def mixture_name(members: tuple[str, ...]) -> str:
    """The candidate name of the weighted mixture of ``members``."""
    return "+".join(members) + MIXTURE_SUFFIX


def candidate_members(cfg: EngineConfig, n_rows: int) -> tuple[ModelSpec, tuple[str, ...]]:
    """The mining ensemble's spec and every member a candidate needs (its members, then the extras).

    ``n_rows``: labeled training rows (kNN and the SVM are left out of large sets, as by "auto").
    """
    from data_engine.mine.embedders.base import get_embedder

    modality = cfg.dataset.modality
    embedding = configured_embedding(cfg)
    mining = resolve_spec(cfg.mining.model, modality, seed=cfg.mining.seed, n_rows=n_rows, embedding=embedding,
                          trainer=cfg.model)
    if cfg.model.trainer == "command":
        return mining, mining.members
    extra: list[str] = []
    if get_embedder(embedding).per_row:
        extra.append("embedding")
    if n_rows <= SVM_MAX_ROWS:
        extra += list(SERVED_AUTO.get(modality, ()))
    members = tuple(mining.members) + tuple(m for m in dict.fromkeys(extra) if m not in mining.members)
    return mining, members


def score_candidates(member_probs: Mapping[str, np.ndarray], mixture: tuple[str, ...],
                     labels: np.ndarray, task: Task | None = None, classes: Sequence[str] = ()) -> list[CandidateScore]:
    """Every candidate's out-of-fold figures against ``labels``, by the dataset's ``task``
    (:meth:`~data_engine.tasks.Task.candidate_figures`; classification, the default: accuracy,
    macro-F1 and per-class recall; numbers: MAE, RMSE and R²).

    ``member_probs``: member name -> out-of-fold predictions, shape (N, W); ``mixture``: the
    members mixed into the weighted candidate (the ``task``'s ensemble, :meth:`~data_engine.tasks.Task.mix`,
    on the same labels); ``labels``: shape (N,), the task's encoded labels; ``classes``: the
    dataset's. Order: the mixture (when it has more than one member), then each member as given.
    """
    task = task or Classification()
    classes = list(classes) or [str(i) for i in range(next(iter(member_probs.values())).shape[1])]

    def scored(name: str, members: tuple[str, ...], pred: np.ndarray, weights: dict[str, float]) -> CandidateScore:
        figures, recall = task.candidate_figures(labels, pred, classes)
        # accuracy and macro-F1 have fields of their own; ``figures`` keeps the task's others.
        others = {k: v for k, v in figures.items() if k not in ("accuracy", "macro_f1")}
        return CandidateScore(name, members, figures.get("accuracy"), figures.get("macro_f1"), weights, recall,
                              figures=others)

    out: list[CandidateScore] = []
    if len(mixture) > 1:
        mixed, weights = task.mix({m: member_probs[m] for m in mixture}, labels)
        out.append(scored(mixture_name(mixture), mixture, mixed, weights))
    out += [scored(m, (m,), p, {}) for m, p in member_probs.items()]
    return out


def member_key(member: str, cfg: EngineConfig) -> str:
    """The stored key of one member's out-of-fold probabilities: its model spec key and the folds."""
    modality = cfg.dataset.modality
    command = tuple(cfg.model.command) if member == "command" else ()
    spec = ModelSpec((member,), modality, cfg.mining.seed, configured_embedding(cfg), command,
                     out_of_fold=cfg.model.out_of_fold)
    return f"{spec.key}/folds={cfg.mining.folds}"


def stored_member_probs(con: Any, ids: np.ndarray, versions: np.ndarray, keys: Mapping[str, str], snapshot: int,
                        width: int) -> dict[str, np.ndarray]:
    """Members whose out-of-fold probabilities are stored for exactly these example versions
    (``ids``, ``versions``: shape (N,)) on ``snapshot``: member -> (N, width), rows in the given order."""

    if not len(ids):
        return {}
    frame = pd.DataFrame({"example_id": np.asarray(ids).astype(str), "version": np.asarray(versions).astype("int32"),
                          "row_index": np.arange(len(ids), dtype=np.int64)})
    found: dict[str, np.ndarray] = {}
    con.register("_cand_keys", frame)
    try:
        for member, key in keys.items():
            probs, rest = fetch_probs(
                con, "SELECT t.row_index, c.probs FROM candidate_predictions c JOIN _cand_keys t "
                     "ON c.example_id = t.example_id AND c.example_version = t.version "
                     "WHERE c.member_spec = ? AND c.label_snapshot = ? ORDER BY t.row_index", [key, int(snapshot)],
                width)
            if len(rest) == len(ids):
                found[member] = probs
    finally:
        con.unregister("_cand_keys")
    return found


def store_member_probs(con: Any, ids: np.ndarray, versions: np.ndarray, member_probs: Mapping[str, np.ndarray],
                       keys: Mapping[str, str], snapshot: int) -> None:
    """Store each member's out-of-fold probabilities (member -> (N, K)) for these example versions;
    rows of other label snapshots are dropped (they are stale once labels changed)."""
    import pyarrow as pa

    from data_engine.store.warehouse import rollback_quietly

    con.execute("BEGIN TRANSACTION")
    try:
        con.execute("DELETE FROM candidate_predictions WHERE label_snapshot <> ?", [int(snapshot)])
        for member, probs in member_probs.items():
            table = pa.table({"example_id": pa.array(np.asarray(ids).astype(str).astype(object), pa.string()),
                              "example_version": pa.array(np.asarray(versions).astype(np.int32)),
                              "probs": probs_arrow(probs)})
            con.register("_cand_new", table)
            try:
                con.execute("DELETE FROM candidate_predictions WHERE member_spec = ? AND label_snapshot = ?",
                            [keys[member], int(snapshot)])
                con.execute("INSERT INTO candidate_predictions (example_id, example_version, member_spec, label_snapshot, "
                            "probs) SELECT example_id, example_version, ?, ?, probs FROM _cand_new",
                            [keys[member], int(snapshot)])
            finally:
                con.unregister("_cand_new")
        con.execute("COMMIT")
    except BaseException:
        rollback_quietly(con)
        raise


def members_out_of_fold(con: Any, cfg: EngineConfig, built: Mapping[str, Any], X: pd.DataFrame, labels: np.ndarray,
                        classes: list[str], *, ids: np.ndarray, versions: np.ndarray, snapshot: int,
                        compute: Any = None) -> dict[str, np.ndarray]:
    """Each member's out-of-fold predictions, member -> (N, width): the stored ones where training or
    mining already fitted them on this label snapshot, the others fitted now (and stored).

    ``built``: member -> unfitted estimator (the task's, :meth:`~data_engine.tasks.Task.members_for`);
    ``X``: (N, D) inputs; ``labels``: (N,) the task's encoded labels; ``classes``: the dataset's
    classes; ``ids`` / ``versions``: (N,) the example versions the rows are. The width and the folds
    are the configured task's. Raises EngineError when the labels are too few for folds.
    """
    import warnings

    from data_engine.compute.backend import engine_backend

    from data_engine.trainers.context import engine_manifest, with_engine_manifest, with_example_ids

    task = task_for(cfg.dataset)
    keys = {m: member_key(m, cfg) for m in built}
    width = task.prediction_width(classes)
    found = stored_member_probs(con, ids, versions, keys, snapshot, width) if con is not None else {}
    todo = with_engine_manifest({m: est for m, est in built.items() if m not in found},
                                engine_manifest(con, cfg, classes, snapshot))
    # The user's trainer may make its own out-of-fold predictions ([model] out_of_fold = "trainer").
    supplied = {m: est for m, est in todo.items() if getattr(est, "out_of_fold", "engine") == "trainer"}
    fitted: dict[str, np.ndarray] = {}
    if supplied:
        fitted |= _trainer_out_of_fold(task, supplied, with_example_ids(X.reset_index(drop=True), ids, supplied),
                                       labels, classes, cfg)
    if rest := {m: est for m, est in todo.items() if m not in supplied}:
        with warnings.catch_warnings(), engine_backend(cfg, compute) as backend:
            warnings.simplefilter("ignore", category=UserWarning)
            oof = task.out_of_fold(rest, with_example_ids(X.reset_index(drop=True), ids, rest), labels, classes,
                                   folds=cfg.mining.folds, seed=cfg.mining.seed, compute=backend)
        fitted |= oof.member_probs
    if fitted and con is not None:
        store_member_probs(con, ids, versions, fitted, keys, snapshot)
    found |= fitted
    return {m: found[m] for m in built}


def _trainer_out_of_fold(task: Task, supplied: Mapping[str, Any], X: pd.DataFrame, labels: np.ndarray,
                         classes: list[str], cfg: EngineConfig) -> dict[str, np.ndarray]:
    """Out-of-fold probabilities (member -> (N, len(classes)); tags: per tag) the user's trainers return from one fit
    on the engine's folds (the same seeded folds the engine would fit); raises EngineError as
    :meth:`~data_engine.trainers.command.CommandClassifier.fit_out_of_fold` does, or when the task
    has no classes to return probabilities of."""
    import warnings

    if task.estimator_kind != "classifier" or not task.has_classes:
        raise EngineError(f'model.out_of_fold = "trainer": supported for classes, tags, boxes and spans, not for {task.name}')
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", category=UserWarning)
        folds, _, _ = task.fold_ids(labels, classes, folds=cfg.mining.folds, seed=cfg.mining.seed)
    out = {}
    for name, est in supplied.items():
        raw = est.fit_out_of_fold(X, labels, folds)  # (N, classes the labels hold); tags, boxes, spans: (N, width)
        if labels.ndim == 2:
            out[name] = raw
            continue
        probs = np.zeros((len(X), len(classes)), dtype=float)
        probs[:, np.asarray(est.classes_, dtype=np.int64)] = raw
        out[name] = probs
    return out


def choose_served(cfg: EngineConfig, schema: Mapping[str, str], X: pd.DataFrame, y: np.ndarray,
                  classes: list[str], *, compute: Any = None, con: Any = None, ids: np.ndarray | None = None,
                  versions: np.ndarray | None = None, snapshot: int = 0) -> tuple[ServedChoice, ModelSpec]:
    """The served model for ``[retrain] model`` and the labels ``y`` (shape (N,), str) of ``X`` (N, D).

    ``"auto"``: every candidate (see the module) is scored out of fold and the best by
    ``[gate] metric`` is returned; a named model is returned as named. Falls back to the
    modality's default (and says so in ``rule``) when the labels are too few for folds.
    """
    from data_engine.mine.models import Schema, build_members

    task = task_for(cfg.dataset)
    modality, seed, metric = cfg.dataset.modality, cfg.mining.seed, gate_metric(cfg)
    if con is not None and (ids is None or versions is None):
        raise EngineError("choose_served: re-using stored predictions needs the example ids and versions")
    embedding = configured_embedding(cfg)
    if cfg.retrain.model != "auto" or cfg.model.trainer == "command":
        spec = resolve_spec(cfg.retrain.model, modality, seed=seed, n_rows=len(y), served=True, key="retrain.model",
                            embedding=embedding, trainer=cfg.model)
        rule = ("the user's trainer ([model] trainer = \"command\")" if cfg.model.trainer == "command"
                else f"named in [retrain] model = {cfg.retrain.model!r}")
        return ServedChoice("+".join(spec.members), spec.members, rule, metric,
                            higher_is_better=task.higher_is_better(metric)), spec
    mining, members = candidate_members(cfg, len(y))
    labels = task.encode([str(v) for v in y], classes)
    built = task.members_for(build_members(ModelSpec(members, modality, seed, embedding), Schema.from_mapping(dict(schema))))
    try:
        member_probs = members_out_of_fold(con, cfg, built, X, labels, classes, ids=ids, versions=versions,
                                           snapshot=snapshot, compute=compute)
    except EngineError as exc:
        spec = resolve_spec("auto", modality, seed=seed, n_rows=len(y), served=True, embedding=embedding)
        return ServedChoice("+".join(spec.members), spec.members,
                            f"the modality's default: candidates could not be scored out of fold ({exc})", metric,
                            higher_is_better=task.higher_is_better(metric)), spec
    candidates = score_candidates(member_probs, tuple(m for m in mining.members if m in member_probs), labels,
                                  task, classes)
    best = best_candidate(candidates, metric, task.higher_is_better(metric))
    rule = f"best out-of-fold {metric} on the labels in force ({cfg.mining.folds} folds, seed {seed})"
    choice = ServedChoice(best.name, best.members, rule, metric, tuple(candidates), best.weights, len(labels),
                          task.higher_is_better(metric))
    return choice, ModelSpec(best.members, modality, seed, embedding)


def served_estimator(choice: ServedChoice, spec: ModelSpec, schema: Mapping[str, str],
                     task: Task | None = None) -> tuple[Any, str]:
    """The unfitted estimator of ``choice`` and its spec key (the mixture's key ends in ``/weights=oof``);
    ``task``: the dataset's (its kind of estimator; default classification)."""
    from data_engine.mine.models import Schema, build_estimator

    estimator = build_estimator(spec, Schema.from_mapping(dict(schema)), weights=choice.weights or None, task=task)
    return estimator, spec.key + ("/weights=oof" if choice.weights else "")


__all__ = ["CandidateScore", "ServedChoice", "best_candidate", "candidate_members", "choose_served", "member_key", "members_out_of_fold", "metric_direction",
           "mixture_name", "score_candidates", "served_estimator", "store_member_probs", "stored_member_probs"]
