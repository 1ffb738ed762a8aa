"""`make demo`'s main job: rounds of the loop on a home's data, then the course's comparison.

Each round runs the same core code the Dagster sensors run (mine: :func:`data_engine.steps.mine_step`,
push to Label Studio, pull the verdicts, retrain + gate + deploy: :func:`data_engine.ship.step.ship_step`), with the simulated reviewer answering in the real Label Studio
in between. Any home whose oracle exists works (``HOME/oracle.jsonl`` or the digits demo's
``oracle.csv``, see :mod:`data_engine.review.oracle`). The oracle is read here and by the simulated
reviewer only: to *measure* the engine (queue precision, true errors), never to steer it. The labels
as they landed come from the warehouse's ingest events, not from the oracle.
"""

from __future__ import annotations

import json
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass
from typing import TYPE_CHECKING, Any

import numpy as np
import pandas as pd

from data_engine.errors import EngineError
from data_engine.mine.spec import ModelSpec
from data_engine.store.home import Home

if TYPE_CHECKING:
    from data_engine.tasks import Task


@dataclass
class RoundReport:
    """One round of the loop, as printed."""

    round: int
    queued: int
    reviewed: int
    corrected: int
    queue_precision: float | None
    gold_accuracy: float | None
    champion_version: int | None
    gate: str
    # The gold figure ``gold_accuracy`` holds: the gate's metric (accuracy for classes, MAE for numbers ...).
    gold_metric: str = "accuracy"

    def line(self) -> str:
        """One line for people."""
        prec = "n/a" if self.queue_precision is None else f"{self.queue_precision:.2f}"
        acc = "n/a" if self.gold_accuracy is None else f"{self.gold_accuracy:.4f}"
        return (f"round {self.round}: queued {self.queued}, reviewed {self.reviewed}, corrected {self.corrected}, "
                f"queue precision {prec}, gold {self.gold_metric} {acc}, champion v{self.champion_version} ({self.gate})")


def ingest_landing(home: Home) -> list[Any]:
    """Ingest every file in the landing folder the landing sensor would ingest (the same rule:
    :func:`data_engine.ingest.landing.not_ingested_reason`), in path order, as its runs do."""
    from data_engine.ingest.landing import not_ingested_reason
    from data_engine.steps import ingest_step

    files = sorted(p for p in home.landing.rglob("*")
                   if p.is_file() and not_ingested_reason(p.relative_to(home.landing).as_posix()) is None)
    return ingest_step(home, files)


def headline_metric(home: Home) -> str:
    """The figure the demo reports: ``[gate] metric``, else the task's default (accuracy for classes,
    micro-F1 for tags, MAE for numbers; :attr:`data_engine.tasks.base.Task.default_metric`)."""
    from data_engine.tasks import task_for

    return home.config.gate.metric or task_for(home.config.dataset).default_metric


def _train_and_deploy(home: Home, *, force: bool = False) -> tuple[int | None, float | None, str]:
    """Retrain when the retrain sensor's rule says so (or ``force``, when reviewed labels are in no
    model yet: the loop's settling retrain), gate, deploy if it passes.

    Returns (champion version, its gold :func:`headline_metric`, what happened).
    """
    from data_engine.ship.registry import current_champion
    from data_engine.ship.step import ship_step
    from data_engine.ship.training import retrain_decision
    from data_engine.store.warehouse import open_warehouse

    with open_warehouse(home) as con:
        decision = retrain_decision(con, home.config)
        if decision.retrain or (force and decision.new_labels > 0):
            step = ship_step(con, home)
            deployment = step.promotion.deployment
            gate = f"promoted v{deployment.model_version}" if deployment else f"refused: {step.verdict.reason}"
        else:
            gate = f"no retrain: {decision.reason}"
        champ = current_champion(con)
    acc = champ.metrics.get(headline_metric(home)) if champ is not None and champ.metrics else None
    return (champ.version if champ else None), acc, gate


def _round_truth(home: Home, oracle: pd.DataFrame, since_event: int) -> tuple[int, int, int]:
    """Reviews pulled after ``since_event``: (reviewed, corrected, reviewed whose given label was wrong).

    The given label is the one in force before the review (a first reviewer's, for a second opinion).
    """
    from data_engine.store.warehouse import open_warehouse

    with open_warehouse(home, read_only=True) as con:
        reviews = con.execute(
            "SELECT r.example_id, r.label, "
            "(SELECT i.label FROM label_events i WHERE i.example_id = r.example_id AND i.event_id < r.event_id "
            " ORDER BY i.event_id DESC LIMIT 1) AS given "
            "FROM label_events r WHERE r.source IN ('review', 'consensus') AND r.event_id > ?",
            [since_event],
        ).fetchdf()
    if reviews.empty:
        return 0, 0, 0
    truth = oracle.set_index("example_id")["label"].astype(str)
    given = reviews["given"].astype(str)
    corrected = int((reviews["label"].astype(str) != given).sum())
    wrong = int((truth.reindex(reviews["example_id"]).to_numpy() != given.to_numpy()).sum())
    return len(reviews), corrected, wrong


# Folds of the held-out evaluation below: every training example is predicted once, by a model
# trained on the other four fifths.
EVAL_FOLDS = 5


@dataclass(frozen=True)
class HeldOut:
    """The demo's examples for the comparison: inputs ``X`` (N, D), ``truth`` (N,) from the oracle,
    ``is_gold`` (N,) bool, and the input columns' kinds."""

    X: pd.DataFrame
    example_ids: np.ndarray
    truth: np.ndarray
    is_gold: np.ndarray
    schema: dict[str, str]


def load_held_out(home: Home, oracle: pd.DataFrame) -> HeldOut:
    """Every stored example with its true label (from the oracle), for :func:`held_out_accuracy`."""
    from data_engine.store.dataset import load_examples
    from data_engine.store.schema import stored_columns
    from data_engine.store.warehouse import open_warehouse

    cfg = home.config
    with open_warehouse(home, read_only=True) as con:
        frame = load_examples(con, cfg.dataset, subset="all")
        schema = {c: t for c, t in stored_columns(con).items() if c in cfg.dataset.input_columns}
    truth = oracle.set_index("example_id")["label"].astype(str).reindex(frame["example_id"])
    frame = frame[truth.notna().to_numpy()].reset_index(drop=True)
    return HeldOut(X=frame[list(schema)], example_ids=frame["example_id"].to_numpy(),
                   truth=truth.dropna().to_numpy(), is_gold=frame["is_gold"].astype(bool).to_numpy(),
                   schema=schema)


def held_out_metrics(data: HeldOut, recipes: dict[str, tuple[Any, ...]], *, seed: int = 0,
                     n_jobs: int = 2, task: Task | None = None,
                     classes: list[str] | None = None) -> dict[str, dict[str, float | None]]:
    """The task's figures (:meth:`Task.metrics`: accuracy and macro-F1 for classes, the F1s and exact
    match for tags, MAE, RMSE and R² for numbers) against the true labels of each recipe (model
    spec, training labels by example id, optionally the members' mixture weights), with every
    example predicted by a model that never trained on it.

    The gold examples are predicted by the model trained on all training examples with the recipe's
    labels; each training example by :data:`EVAL_FOLDS`-fold cross-validation over the training
    examples (trained on the recipe's labels, scored against the truth). Why not the gold split
    alone: the demo's is 359 digits, where one example is 0.28 points and the noisy-to-clean gap of
    a robust model a couple of examples; this way all 1,797 count.

    ``task`` / ``classes``: the dataset's task and classes (default: one class per example). For
    tags the models are the task's one-vs-rest wrappers fitted on the tag matrix, the folds plain
    shuffled K-fold (numbers too: no classes to stratify by).
    """
    from joblib import Parallel, delayed
    from sklearn.base import clone
    from sklearn.model_selection import KFold, StratifiedKFold

    from data_engine.mine.models import Schema, build_estimator
    from data_engine.ship.training import limited_threads
    from data_engine.tasks import Classification

    task = task or Classification()
    classes = list(classes or sorted(set(data.truth)))
    # Fitted on the stored labels (one class per example) or on the task's array (tags, numbers).
    plain = isinstance(task, Classification)
    train = np.flatnonzero(~data.is_gold)
    gold = np.flatnonzero(data.is_gold)
    # Folds stratified by the truth (tags, numbers: shuffled), the same for every recipe, so recipes differ only in labels.
    splitter = StratifiedKFold if plain else KFold
    folds = splitter(EVAL_FOLDS, shuffle=True, random_state=seed).split(train, data.truth[train])
    # A home without gold data (a user's own) is measured on its training examples alone.
    splits = [(train[fit], train[test]) for fit, test in folds] + ([(train, gold)] if len(gold) else [])
    tasks = []
    for name, (spec, labels, *weights) in recipes.items():
        # Examples without a label in the recipe (discarded ones) are left out of training only.
        y = labels.reindex(data.example_ids).to_numpy(dtype=object)
        est = task.members_for({"served": build_estimator(spec, Schema.from_mapping(data.schema),
                                                          weights=weights[0] if weights else None)})["served"]
        if task.encode([], classes).ndim == 2:  # the one-vs-rest wrapper of tags
            est.set_params(tags=tuple(classes))
        tasks += [(name, clone(est), fit[pd.notna(y[fit])], test, y.astype(str)) for fit, test in splits]

    def run(est: Any, fit: np.ndarray, test: np.ndarray, y: np.ndarray) -> np.ndarray:
        with limited_threads():
            est.fit(data.X.iloc[fit], y[fit] if plain else task.encode(list(y[fit]), classes))
            return np.asarray(est.predict(data.X.iloc[test]))

    preds = Parallel(n_jobs=n_jobs)(delayed(run)(est, fit, test, y) for _, est, fit, test, y in tasks)
    out: dict[str, dict[str, float | None]] = {}
    for name in recipes:
        parts = [(test, p) for (n, _, _, test, _), p in zip(tasks, preds) if n == name]
        idx = np.concatenate([t for t, _ in parts])
        pred = np.concatenate([p for _, p in parts])
        out[name] = task.metrics(data.truth[idx], pred.astype(str) if plain else pred, classes)
    return out


def held_out_accuracy(data: HeldOut, recipes: dict[str, tuple[Any, ...]], *, seed: int = 0, n_jobs: int = 2,
                      task: Task | None = None, classes: list[str] | None = None) -> dict[str, float]:
    """Each recipe's held-out accuracy (:func:`held_out_metrics`' ``accuracy``: exact match for tags)."""
    return {name: figures["accuracy"] for name, figures in
            held_out_metrics(data, recipes, seed=seed, n_jobs=n_jobs, task=task, classes=classes).items()}


def compare(home: Home, oracle: pd.DataFrame, cleaned: pd.Series, noisy: pd.Series) -> dict[str, Any]:
    """The course's comparison: model-centric alternatives on the noisy labels (``noisy``: the labels
    as they landed, by example id; other families, and the mining ensemble built to withstand noise),
    the served model on the noisy, the cleaned and the true labels (``oracle``: columns
    ``example_id``, ``label``; see :func:`held_out_accuracy` for how it is measured)."""
    from data_engine.mine.models import resolve_spec

    cfg = home.config
    modality, seed = cfg.dataset.modality, cfg.mining.seed
    clean = oracle.set_index("example_id")["label"].astype(str)
    data = load_held_out(home, oracle)
    n_train = int((~data.is_gold).sum())
    # The served models as the engine chose them: on the labels as landed (the first champion) and
    # after the loop (the champion now); the latter is also scored on the true labels.
    first, final = served_models(home, n_train)
    candidates = {m: resolve_spec(m, modality, seed=seed) for m in ("hgb", "linear", "knn")}
    ensemble = resolve_spec("auto", modality, seed=seed, n_rows=n_train)
    candidates["+".join(ensemble.members)] = ensemble
    # Only the families that can read this data set's columns (gradient boosting reads no text).
    alternatives_specs = {name: spec for name, spec in candidates.items()
                          if spec.members != first[1].members and _reads(spec, data.schema)}
    recipes: dict[str, tuple[Any, ...]] = {name: (spec, noisy) for name, spec in alternatives_specs.items()}
    recipes |= {"noisy": (first[1], noisy, first[2]), "final": (final[1], cleaned, final[2]),
                "clean": (final[1], clean, final[2])}
    from data_engine.store.schema import load_classes
    from data_engine.store.warehouse import open_warehouse
    from data_engine.tasks import task_for

    with open_warehouse(home, read_only=True) as con:
        classes = load_classes(con)
    task = task_for(cfg.dataset)
    metric = headline_metric(home)
    figures = held_out_metrics(data, recipes, seed=seed, task=task, classes=classes or None)
    sign = 1.0 if task.higher_is_better(metric) else -1.0
    alternatives = {name: figures[name][metric] for name in alternatives_specs}
    best = max(alternatives, key=lambda k: sign * alternatives[k])
    return {
        "metric": metric,
        "served_model": final[0],
        "served_model_first": first[0],
        "model_centric": alternatives,
        "model_centric_best": best,
        f"{metric}_model_centric": alternatives[best],
        f"{metric}_noisy": figures["noisy"][metric],
        f"{metric}_final": figures["final"][metric],
        f"{metric}_clean": figures["clean"][metric],
        "figures": {k: figures[k] for k in ("noisy", "final", "clean")},
        "evaluated_on": len(data.truth),
    }


def _reads(spec: ModelSpec, schema: dict[str, str]) -> bool:
    """Whether the model ``spec`` can be built on input columns of these kinds."""
    from data_engine.mine.models import Schema, build_estimator

    try:
        build_estimator(spec, Schema.from_mapping(schema))
    except EngineError:
        return False
    return True


def served_models(home: Home, n_train: int) -> tuple[tuple[str, ModelSpec, dict[str, float] | None], ...]:
    """(name, spec, mixture weights) of the first champion and of the champion now, as the engine
    chose them (``served_choice`` in the model's params); the configured default where none was recorded."""
    from data_engine.mine.candidates import ServedChoice
    from data_engine.mine.embedders import configured_embedding
    from data_engine.mine.models import resolve_spec
    from data_engine.ship.deploy import history
    from data_engine.ship.registry import current_champion, get_model
    from data_engine.store.warehouse import open_warehouse

    cfg = home.config
    modality, seed = cfg.dataset.modality, cfg.mining.seed
    embedding = configured_embedding(cfg)
    default = resolve_spec(cfg.retrain.model, modality, seed=seed, n_rows=n_train, served=True, key="retrain.model",
                           embedding=embedding)
    with open_warehouse(home, read_only=True) as con:
        promoted = [d.model_version for d in history(con) if d.action == "promote"]
        records = [get_model(con, promoted[0]) if promoted else None, current_champion(con)]
    out = []
    for record in records:
        raw = record.params.get("served_choice") if record is not None else None
        if raw is None:
            out.append(("+".join(default.members), default, None))
            continue
        choice = ServedChoice.from_dict(raw)
        out.append((choice.chosen, ModelSpec(choice.members, modality, seed, embedding), choice.weights or None))
    return tuple(out)


def landed_labels(home: Home) -> pd.Series:
    """The label each example's current version landed with (its ingest event), by example id;
    examples that landed unlabeled are left out."""
    from data_engine.store.warehouse import open_warehouse

    with open_warehouse(home, read_only=True) as con:
        rows = con.execute(
            "SELECT le.example_id, le.label FROM label_events le JOIN current_examples ce "
            "ON ce.example_id = le.example_id AND le.example_version = ce.version "
            "WHERE le.source = 'ingest' AND le.label IS NOT NULL "
            "QUALIFY row_number() OVER (PARTITION BY le.example_id ORDER BY le.event_id DESC) = 1").fetchall()
    return pd.Series({e: lab for e, lab in rows}, dtype=object)


def _oracle_coverage(home: Home, oracle: pd.DataFrame, landed: pd.Series) -> tuple[int, int]:
    """(training labels that landed wrong, gold examples stored: the gold set the gate scores, whether
    or not the oracle lists them); an error when the oracle names none of the stored examples (ids in another spelling, or the oracle of another data set)."""
    from data_engine.review.oracle import oracle_path
    from data_engine.store.warehouse import open_warehouse

    with open_warehouse(home, read_only=True) as con:
        stored = con.execute("SELECT example_id, is_gold FROM current_examples").fetchdf()
    truth = oracle.set_index("example_id")["label"]
    known = stored[stored["example_id"].isin(truth.index)]
    if known.empty:
        shown = ", ".join(stored["example_id"].head(3)) or "none stored yet"
        raise EngineError(f"{oracle_path(home)}: none of its {len(truth)} ids is an example of this home "
                          f"(stored ids look like: {shown}); `data-engine export` writes them")
    train = known.loc[~known["is_gold"].astype(bool), "example_id"]
    given = landed.reindex(train)
    wrong = given.notna() & (given.astype(str) != truth.reindex(train).astype(str))
    return int(wrong.sum()), int(stored["is_gold"].astype(bool).sum())


def labels_in_force(home: Home) -> pd.Series:
    """The label in force per example id (``current_labels``; discarded examples left out)."""
    from data_engine.store.warehouse import open_warehouse

    with open_warehouse(home, read_only=True) as con:
        rows = con.execute("SELECT example_id, label FROM current_labels WHERE NOT is_discarded").fetchall()
    return pd.Series({e: lab for e, lab in rows}, dtype=object)


def run_demo(home: Home, *, accuracy: float = 0.98, max_rounds: int = 8, budget: int | None = None,
             say: Callable[[str], None] = print) -> dict[str, Any]:
    """Run rounds of the loop until the review budget is spent or nothing is left to review.

    Returns the final figures (also printed as one JSON line by the CLI).
    """
    from data_engine.review.labelstudio.server import ensure_server
    from data_engine.review.project import make_client
    from data_engine.review.oracle import oracle_path, read_oracle
    from data_engine.review.simulate import simulate_reviews
    from data_engine.tasks import task_for
    from data_engine.steps import mine_step, pull_step, push_step
    from data_engine.store.dataset import label_snapshot, load_classes
    from data_engine.store.warehouse import open_warehouse

    started = time.perf_counter()
    cfg = home.config
    total_budget = budget if budget is not None else 2 * cfg.review.budget
    name = cfg.dataset.name
    # Read before the server starts: a missing or malformed oracle is the user's to fix, at once.
    label_task = task_for(cfg.dataset)
    oracle_map = read_oracle(oracle_path(home), label_task)
    info = ensure_server(home)
    say(f"Label Studio: {info.url} ({'re-used' if info.reused else 'started'})")
    results = ingest_landing(home)
    say(f"ingested {sum(r.rows_ok for r in results)} rows from {len(results)} file(s)")
    oracle = pd.DataFrame({"example_id": list(oracle_map), "label": list(oracle_map.values())}, dtype=str)
    landed = landed_labels(home)
    true_errors, n_gold = _oracle_coverage(home, oracle, landed)

    metric = headline_metric(home)
    champion, gold_acc, gate = _train_and_deploy(home)
    accuracy_noisy = gold_acc
    say(f"round 0: champion v{champion} trained on the {name} labels as they landed: gold {metric} "
        f"{_fmt(gold_acc)} ({gate})")
    client = make_client(home)
    rounds: list[RoundReport] = []
    reviewed_total = 0
    try:
        for n in range(1, max_rounds + 1):
            remaining = total_budget - reviewed_total
            if remaining <= 0:
                say("review budget spent")
                break
            summary = mine_step(home).summary
            push = push_step(home, client, limit=min(remaining, cfg.review.budget)).result
            with open_warehouse(home) as con:
                classes = load_classes(con)
                before = label_snapshot(con)
            if push.sent == 0:
                say(f"round {n}: nothing left to review (mining run {getattr(summary, 'run_id', '?')})")
                break
            simulate_reviews(client, push.project_id, oracle_map, classes, accuracy=accuracy, seed=n,
                             label_task=label_task)
            pull_step(home, client)
            reviewed, corrected, wrong = _round_truth(home, oracle, before)
            reviewed_total += reviewed
            champion, gold_acc, gate = _train_and_deploy(home)
            report = RoundReport(n, push.sent, reviewed, corrected, (wrong / reviewed) if reviewed else None,
                                 gold_acc, champion, gate, metric)
            rounds.append(report)
            say(report.line())
    finally:
        client.close()
    if rounds and rounds[-1].gate.startswith("no retrain"):
        # The loop would wait for more corrections; the demo ends here, so the last ones count too.
        champion, gold_acc, gate = _train_and_deploy(home, force=True)
        say(f"final retrain on every correction: gold {metric} {_fmt(gold_acc)}, champion v{champion} ({gate})")
    say(f"comparing recipes: every {name} example predicted by a model that did not train on it ...")
    figures = compare(home, oracle, labels_in_force(home), landed)
    # Keys name the task's figure: accuracy_noisy for classes, micro_f1_noisy for tags, mae_noisy for numbers.
    final = {
        f"{metric}_noisy": figures[f"{metric}_noisy"],
        f"{metric}_model_centric": figures[f"{metric}_model_centric"],
        "model_centric_best": figures["model_centric_best"],
        f"{metric}_final": figures[f"{metric}_final"],
        f"{metric}_clean": figures[f"{metric}_clean"],
        f"gold_{metric}_first": accuracy_noisy,
        f"gold_{metric}_final": gold_acc,
        "evaluated_on": figures["evaluated_on"],
        "reviewed": reviewed_total,
        "true_errors": true_errors,
        "rounds": len(rounds),
        "seconds": round(time.perf_counter() - started, 1),
    }
    noisy_v, final_v, clean_v = (final[f"{metric}_{k}"] or 0 for k in ("noisy", "final", "clean"))
    # The gap is measured in the direction the metric improves (an error such as MAE falls).
    sign = 1.0 if task_for(cfg.dataset).higher_is_better(metric) else -1.0
    gap = sign * (clean_v - noisy_v)
    recovered = sign * (final_v - noisy_v) / gap if gap > 0 else None
    say("")
    say(f"{metric} on all {figures['evaluated_on']} {name} examples against their true labels, each predicted by "
        "a model "
        f"that did not train on it (gold: the model trained on every training example; training examples: "
        f"{EVAL_FOLDS}-fold cross-validation):")
    served = figures["served_model"]
    say(f"  the served model chosen on the labels as they landed ({figures['served_model_first']}), on them: "
        f"{noisy_v:.4f}")
    say("  model-centric (other models on the noisy labels): "
        + ", ".join(f"{k} {v:.4f}" for k, v in figures["model_centric"].items()))
    say(f"  data-centric (the served model, {served}, on the cleaned labels): {final_v:.4f}")
    say(f"  clean-label ceiling (the served model, {served}, on the true labels): {clean_v:.4f}")
    others = {k: v for k, v in figures["figures"]["final"].items() if k != metric and isinstance(v, float)}
    if others and metric != "accuracy":  # one class per example keeps its lines as they always were
        say("  the served model's other figures, cleaned / true labels: " + ", ".join(
            f"{k} {v:.4f} / {figures['figures']['clean'][k]:.4f}" for k, v in others.items()))
    say(f"the champion's gold {metric} went from {_fmt(accuracy_noisy)} to {_fmt(gold_acc)} "
        f"(on {n_gold} gold examples one example is {1 / max(n_gold, 1):.2%})")
    if recovered is not None:
        say(f"the loop recovered {recovered:.0%} of the noisy-to-clean gap")
    say(f"reviewed {reviewed_total} examples for {true_errors} true label errors")
    final["metric"] = metric
    final["figures"] = figures["figures"]
    final["rounds_detail"] = [asdict(r) for r in rounds]
    return final


def _fmt(value: float | None) -> str:
    return "n/a" if value is None else f"{value:.4f}"


def final_json(final: dict[str, Any]) -> str:
    """The closing JSON line (the figures the issue names, first), named by the task's figure
    (``accuracy_noisy`` for classes; ``mae_noisy`` for numbers, with ``figures``: every metric)."""
    m = final.get("metric", "accuracy")
    keys = [f"{m}_noisy", f"{m}_model_centric", f"{m}_final", f"{m}_clean", "reviewed",
            "true_errors", "rounds", "seconds"]
    extra = ["model_centric_best", "evaluated_on", f"gold_{m}_first", f"gold_{m}_final"]
    if m != "accuracy":  # one class per example keeps its line as it always was
        extra.append("figures")
    return json.dumps({k: final[k] for k in keys + extra})
