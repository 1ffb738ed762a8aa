"""The fleet: the champion scores new unlabeled data; what it is unsure of joins the next review.
When the gold set changed, the champion is re-scored on it (:func:`rescore_champion`).

For every unlabeled example not yet scored by the current champion (at its current version), the
champion's class probabilities go into ``predictions`` (``kind = 'champion'``), and a row into
``champion_flags`` says whether the champion is unsure (top-2 margin below ``unsure_margin``) or
disagrees with the newest candidate (a model trained after the champion). Those flags are the
``uncertain`` detector's input (:func:`uncertain_candidates`). Cost is proportional to the new rows.
"""

from __future__ import annotations

import time
from dataclasses import dataclass

import duckdb
import numpy as np
import pandas as pd

from data_engine.errors import EngineError
from data_engine.ship.gold import (
    GoldChange,
    GoldVersion,
    assess_unmeasured,
    gold_change,
    last_scored_gold,
    record_gold_score,
    record_gold_version,
)
from data_engine.ship.registry import ModelRecord, current_champion, load_model
from data_engine.store.config import EngineConfig
from data_engine.store.home import Home
from data_engine.store.warehouse import transaction
from data_engine.tasks import Classification, Task, task_for
from data_engine.tasks.classification import aligned_probabilities, margins  # noqa: F401 - scoring's public names

# Top-1 minus top-2 probability below this: the champion is unsure.
UNSURE_MARGIN = 0.2
# A disagreement with the newest candidate halves the score (low score = review first): two models
# trained on different labels disagreeing is stronger evidence than one model's small margin.
DISAGREEMENT_FACTOR = 0.5


@dataclass(frozen=True)
class ScoringResult:
    """What one scoring pass did."""

    champion_version: int | None
    candidate_version: int | None
    scored: int
    already_scored: int
    unsure: int
    disagreements: int
    flagged: int
    seconds: float
    reason: str = ""


def champion_spec(record: ModelRecord) -> str:
    """The ``model_spec`` stored with the champion's predictions: the spec and the model version."""
    return f"{record.model_spec}@model-v{record.version}"


def flag_rows(champ_probs: np.ndarray, classes: list[str], candidate_labels: np.ndarray | None,
              *, unsure_margin: float = UNSURE_MARGIN, task: Task | None = None) -> pd.DataFrame:
    """Per-row flags from the champion's predictions (N, width; class probabilities for classification,
    the default ``task``) and the candidate's labels (N,) or None. Pure.

    The champion's label is the task's :meth:`~data_engine.tasks.Task.best`; its margin is
    :meth:`~data_engine.tasks.Task.certainty` (1 - uncertainty; for classes the top-2 margin).
    Columns: champion_label, margin, is_unsure, is_disagreement, is_flagged, score (in [0, 1], low
    means review first), reason.
    """
    task = task or Classification()
    labels = np.asarray(task.best(champ_probs, classes)[0], dtype=object)
    margin = task.certainty(champ_probs) if len(champ_probs) else np.array([])
    unsure = margin < unsure_margin
    if candidate_labels is None:
        disagree = np.zeros(len(labels), dtype=bool)
    else:
        disagree = np.asarray(candidate_labels, dtype=object).astype(str) != labels.astype(str)
    score = np.where(disagree, margin * DISAGREEMENT_FACTOR, margin)
    reasons = np.where(
        disagree & unsure, "champion unsure and newest candidate disagrees",
        np.where(disagree, "newest candidate disagrees with the champion",
                 np.where(unsure, f"champion unsure (margin < {unsure_margin})", "")),
    )
    return pd.DataFrame({
        "champion_label": labels, "margin": margin, "is_unsure": unsure, "is_disagreement": disagree,
        "is_flagged": unsure | disagree, "score": score, "reason": reasons,
    })


def _newest_candidate(con: duckdb.DuckDBPyConnection, champion: ModelRecord) -> ModelRecord | None:
    """The newest model trained after the champion that is not retired (candidate or refused)."""
    from data_engine.ship.registry import list_models

    newer = [m for m in list_models(con) if m.version > champion.version and m.status in ("candidate", "refused")]
    return newer[-1] if newer else None


def score_unlabeled(
    con: duckdb.DuckDBPyConnection,
    home: Home,
    cfg: EngineConfig | None = None,
    *,
    batch_id: str | None = None,
    unsure_margin: float = UNSURE_MARGIN,
) -> ScoringResult:
    """Score the unlabeled examples (of ``batch_id``, or all) the current champion has not scored yet."""
    from data_engine.store.dataset import load_examples

    cfg = cfg or home.config
    started = time.perf_counter()
    if not 0.0 <= unsure_margin <= 1.0:
        raise EngineError(f"unsure_margin = {unsure_margin}: must be in [0, 1]")
    champion = current_champion(con)
    if champion is None:
        return ScoringResult(None, None, 0, 0, 0, 0, 0, time.perf_counter() - started, "no champion deployed yet")
    frame = load_examples(con, cfg.dataset, subset="unlabeled")
    frame = frame[~frame["is_discarded"].astype(bool)]
    if batch_id is not None:
        frame = frame[frame["batch_id"] == batch_id]
    candidate = _newest_candidate(con, champion)
    # Scored already = by this champion, against this same newest candidate: a new candidate means
    # new disagreements to find, so those rows are scored again.
    done = con.execute(
        "SELECT example_id || ':' || example_version FROM champion_flags WHERE champion_version = ? "
        "AND candidate_version IS NOT DISTINCT FROM ?",
        [champion.version, candidate.version if candidate else None],
    ).fetchall()
    keys = frame["example_id"].astype(str) + ":" + frame["version"].astype(str)
    todo = frame[~keys.isin({k[0] for k in done})].reset_index(drop=True)
    already = len(frame) - len(todo)
    if todo.empty:
        return ScoringResult(champion.version, candidate.version if candidate else None, 0, already, 0, 0, 0,
                             time.perf_counter() - started, "nothing new to score")
    from data_engine.store.dataset import load_classes

    # `predictions.probs` follows the dataset's class order (a class the champion never saw gets 0).
    classes = load_classes(con) or list(champion.classes)
    from data_engine.mine.embedders.features import with_embedding

    todo, _ = with_embedding(con, cfg, todo, champion.input_schema)
    X = candidate_input(todo, champion)
    from data_engine.ship.fitting import limited_threads

    task = task_for(cfg.dataset)
    with limited_threads():
        probs = task.predict(load_model(home, champion), X, classes)
        cand_labels = None
        if candidate is not None:
            cand_model = load_model(home, candidate)
            cand_labels = np.asarray(cand_model.predict(candidate_input(todo, candidate))).astype(str)
    flags = flag_rows(probs, classes, cand_labels, unsure_margin=unsure_margin, task=task)
    _write(con, todo, probs, task.best(probs, classes)[1], flags, champion, candidate, cand_labels)
    return ScoringResult(
        champion.version, candidate.version if candidate else None, len(todo), already,
        int(flags["is_unsure"].sum()), int(flags["is_disagreement"].sum()), int(flags["is_flagged"].sum()),
        time.perf_counter() - started,
    )


def candidate_input(frame: pd.DataFrame, record: ModelRecord) -> pd.DataFrame:
    """The columns ``record`` reads, from ``frame`` (with the attached embedding, if any)."""
    from data_engine.mine.embedders.features import model_inputs

    return frame[model_inputs(frame, record.input_schema)]


def _write(con: duckdb.DuckDBPyConnection, todo: pd.DataFrame, probs: np.ndarray, scores: np.ndarray,
           flags: pd.DataFrame, champion: ModelRecord, candidate: ModelRecord | None,
           cand_labels: np.ndarray | None) -> None:
    """Store predictions (N, width) with the champion label's score (N,) and flags in one transaction
    (set-based: DataFrames, never row loops)."""
    spec = champion_spec(champion)
    preds = pd.DataFrame({
        "example_id": todo["example_id"].astype(str), "example_version": todo["version"].astype("int32"),
        "model_spec": spec, "label_snapshot": champion.label_snapshot,
        "probs": list(probs), "predicted_label": flags["champion_label"].astype(str),
        "predicted_score": scores,
    })
    fl = pd.DataFrame({
        "example_id": preds["example_id"], "example_version": preds["example_version"],
        "champion_version": champion.version,
        "candidate_version": candidate.version if candidate else None,
        "champion_label": flags["champion_label"].astype(str),
        "candidate_label": cand_labels if cand_labels is not None else None,
        "margin": flags["margin"], "is_unsure": flags["is_unsure"], "is_disagreement": flags["is_disagreement"],
        "is_flagged": flags["is_flagged"], "score": flags["score"], "reason": flags["reason"],
    })
    with transaction(con, scored_preds=preds, scored_flags=fl):
        con.execute(
            "DELETE FROM predictions WHERE kind = 'champion' AND model_spec = ? AND (example_id, example_version) "
            "IN (SELECT example_id, example_version FROM scored_preds)", [spec],
        )
        con.execute(
            "INSERT INTO predictions (example_id, example_version, model_spec, label_snapshot, fold, probs, "
            "predicted_label, predicted_score, computed_at, kind) "
            "SELECT example_id, example_version, model_spec, label_snapshot, NULL, probs::DOUBLE[], "
            "predicted_label, predicted_score, now(), 'champion' FROM scored_preds"
        )
        con.execute(
            "DELETE FROM champion_flags WHERE champion_version = ? AND (example_id, example_version) "
            "IN (SELECT example_id, example_version FROM scored_flags)", [champion.version],
        )
        con.execute(
            "INSERT INTO champion_flags (example_id, example_version, champion_version, candidate_version, "
            "champion_label, candidate_label, margin, is_unsure, is_disagreement, is_flagged, score, reason) "
            "SELECT example_id, example_version, champion_version, candidate_version, champion_label, "
            "candidate_label, margin, is_unsure, is_disagreement, is_flagged, score, nullif(reason, '') "
            "FROM scored_flags"
        )


def uncertain_candidates(con: duckdb.DuckDBPyConnection) -> pd.DataFrame:
    """The current champion's flags on examples still unlabeled, lowest score first.

    Columns: example_id, example_version, score (in [0, 1], low = review first), is_flagged, reason,
    champion_label, candidate_label. Empty before the first champion. Input of the ``uncertain`` detector.
    """
    champion = current_champion(con)
    if champion is None:
        return pd.DataFrame(columns=["example_id", "example_version", "score", "is_flagged", "reason",
                                     "champion_label", "candidate_label"])
    return con.execute(
        "SELECT f.example_id, f.example_version, f.score, f.is_flagged, f.reason, f.champion_label, "
        "f.candidate_label FROM champion_flags f "
        "JOIN current_examples ce ON ce.example_id = f.example_id AND ce.version = f.example_version "
        "LEFT JOIN current_labels cl ON cl.example_id = f.example_id "
        "WHERE f.champion_version = ? AND cl.example_id IS NULL AND NOT ce.is_gold "
        "ORDER BY f.score, f.example_id",
        [champion.version],
    ).fetchdf()


@dataclass(frozen=True)
class GoldRescore:
    """The champion re-scored on a gold version it had not been scored on."""

    champion_version: int
    gold: GoldVersion
    change: GoldChange | None
    before: tuple[float | None, float | None] | None  # (accuracy, macro-F1) on the earlier gold, if scored
    accuracy: float | None
    macro_f1: float | None
    unmeasured: tuple[str, ...]
    line: str
    # Gold examples left out for a copy in the training data (the gate's selection: leakage.scored_gold).
    gold_leaked: int = 0


def _figure(value: float | None) -> str:
    """A figure for a line: four decimals, or "none" where the task has no figure on this gold (a detector's
    map50 on gold without boxes)."""
    return "none" if value is None else f"{value:.4f}"


def rescore_champion(con: duckdb.DuckDBPyConnection, home: Home, cfg: EngineConfig | None = None) -> GoldRescore | None:
    """Score the champion on the current gold when it was last scored on another gold version (or
    never); None when there is no champion, no gold, or nothing changed. The line says what changed
    in gold (a relabel in place included) and the champion's figures before and after.

    The champion is scored on the gold the gate scores on (:func:`data_engine.ship.leakage.scored_gold`:
    without the examples that copy a training example), so its recorded figure and ``n_gold`` are
    comparable with the gate's."""
    from data_engine.ship.evaluation import evaluate_predictions, predict_gold
    from data_engine.ship.leakage import scored_gold
    from data_engine.ship.registry import record_metrics

    cfg = cfg or home.config
    champion = current_champion(con)
    if champion is None:
        return None
    gold = record_gold_version(con)
    last = last_scored_gold(con, champion.version)
    if gold.n_gold == 0 or (last is not None and last[0] == gold.version):
        return None
    frame, leaked = scored_gold(con, cfg)
    y = frame["label"].astype(str).to_numpy()
    # The dataset's task scores it, as the gate does: classification's figures on numbers or tag sets mean nothing.
    task = task_for(cfg.dataset)
    ev = evaluate_predictions(y, predict_gold(home, champion, frame), frame=frame, slices=cfg.gate.slices,
                              version=champion.version, task=task, classes=list(champion.classes))
    metric = cfg.gate.metric or task.default_metric
    # The figure on the earlier gold, where the champion's recorded figures are from it (read before they are replaced).
    earlier = champion.metrics or {}
    scored_on = earlier.get("gold_version", (earlier.get("gate") or {}).get("gold_version"))
    before = earlier.get(metric) if last is not None and scored_on == last[0] else None
    from data_engine.store.schema import load_classes

    holes = assess_unmeasured([*load_classes(con), *champion.classes], ev.per_class_support, ev.per_class_recall,
                              cfg.gate)
    names = tuple(u.name for u in holes)
    record_metrics(con, champion.version, {**ev.to_dict(), "gold_version": gold.version})
    record_gold_score(con, champion.version, gold, ev, names)
    change = gold_change(con, last[0], gold.version) if last else None
    head = change.line() if change else (f"gold {gold.version} ({gold.n_gold} examples; the champion was not "
                                         "scored on a recorded gold version before)")
    if not ev.n_gold:
        figures = "no figures (every gold example has a copy in the training data)"
    elif not isinstance(task, Classification):
        now = ev.metric(metric)
        figures = f"{metric} {_figure(before)} -> {_figure(now)}" if before is not None else f"{metric} {_figure(now)}"
    elif last is not None and last[1] is not None:
        figures = f"accuracy {last[1]:.4f} -> {ev.accuracy:.4f}, macro-F1 {last[2]:.4f} -> {ev.macro_f1:.4f}"
    else:
        figures = f"accuracy {ev.accuracy:.4f}, macro-F1 {ev.macro_f1:.4f}"
    holes_txt = f"; unmeasured on gold: {', '.join(repr(n) for n in names)}" if names else ""
    left_out = (f" (left out {leaked} gold example(s) with an exact or near copy in the training data, as the "
                "gate does)" if leaked else "")
    line = (f"{head}; champion v{champion.version} re-scored on {ev.n_gold} gold examples{left_out}: "
            f"{figures}{holes_txt}")
    return GoldRescore(champion.version, gold, change, (last[1], last[2]) if last else None, ev.accuracy,
                       ev.macro_f1, names, line, leaked)
