"""The whole task interface: every registered task implements it, and the stages ask the task.

The stage tests use ``Tally``, a toy task registered for one test: a digit class stored as usual
but predicted, judged and served in its own words, so a stage that still assumed one class per
example (argmax over class names, its own cleanlab call, McNemar) gives a different answer than
one that asks the task.
"""

from __future__ import annotations

import inspect
import random
from collections.abc import Iterator, Mapping, Sequence
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import numpy as np
import pandas as pd
import pytest

from data_engine.errors import EngineError
from data_engine.review.consensus import _TIE, _Answer, _consensus
from data_engine.review.oracle import read_oracle
from data_engine.ship.evaluation import evaluate_predictions
from data_engine.ship.gate import decide_promotion
from data_engine.ship.serve import LoadedModel, predict_rows
from data_engine.store.config import GateConfig
from data_engine.store.warehouse import open_warehouse
from data_engine.tasks import TASKS, Classification, LabelIssues, Task
from data_engine.tasks.paired import PairedDiff
from tests import homes


def _abstract_methods() -> list[str]:
    return sorted(Task.__abstractmethods__)


@pytest.mark.parametrize("name", list(TASKS))
def test_every_registered_task_implements_every_method(name: str) -> None:
    cls = TASKS[name]
    assert cls.name == name
    assert not cls.__abstractmethods__, f"{name} leaves {sorted(cls.__abstractmethods__)} unimplemented"
    task = cls()
    for method in _abstract_methods():
        ours, theirs = inspect.signature(getattr(Task, method)), inspect.signature(getattr(cls, method))
        # A task may add keyword arguments with defaults, never rename or drop the interface's.
        assert list(ours.parameters)[:len(ours.parameters)] == list(theirs.parameters)[:len(ours.parameters)], method
    assert isinstance(task.has_classes, bool)
    assert task.detectors is None or all(isinstance(d, str) for d in task.detectors)
    assert task.estimator_kind in ("classifier", "regressor")
    classes = ["a", "b", "c"]
    assert task.prediction_width(classes) == len(task.prediction_columns(classes))


def test_the_interface_covers_every_stage_question() -> None:
    # The names agreed for the three task plug-ins (classification, tags, numbers) are all there.
    agreed = {"record_classes", "encode", "decode", "prediction_width", "prediction_columns", "out_of_fold",
              "members_for", "label_issues", "uncertainty", "labeling_config", "prediction_result", "answer_label",
              "consensus", "oracle_label", "metrics", "paired_test", "predict_output", "evaluate_output",
              "label_sql", "label_reasons"}
    assert agreed <= set(_abstract_methods())
    for attribute in ("has_classes", "detectors", "default_metric", "higher_is_better", "applies"):
        assert hasattr(Task, attribute)


def test_classification_encodes_decodes_and_reads_like_the_stages_did() -> None:
    task = Classification()
    classes = ["cat", "dog", "owl"]
    y = task.encode(["owl", "cat", "owl"], classes)
    assert y.tolist() == [2, 0, 2] and task.decode(y, classes) == ["owl", "cat", "owl"]
    with pytest.raises(ValueError, match="'emu' is not one of the dataset's classes"):
        task.encode(["emu"], classes)
    probs = np.array([[0.1, 0.6, 0.3], [0.5, 0.45, 0.05]])
    labels, scores = task.best(probs, classes)
    assert labels == ["dog", "cat"] and scores.tolist() == [0.6, 0.5]
    assert np.allclose(task.certainty(probs), [0.3, 0.05])
    assert np.allclose(task.uncertainty(probs), [0.7, 0.95])
    assert task.consensus(["dog", "cat", "dog"]) == "dog"
    assert task.consensus(["dog", "cat"]) is None  # a tie stays pending
    assert task.oracle_label(7.0) == "7"
    with pytest.raises(ValueError, match="a text or a number is needed"):
        task.oracle_label(["cat"])
    assert task.wrong_answer("cat", classes, random.Random(0)) in ("dog", "owl")


class Tally(Classification):
    """A toy task: classes as usual, but its own predicted spelling, label check, verdict rule, gate
    test and served answer (each recognisable in the stage's output)."""

    name = "tally"
    detectors = frozenset({"label", "class_imbalance"})

    def best(self, pred: np.ndarray, classes: Sequence[str]) -> tuple[list[str], np.ndarray]:
        labels, scores = super().best(pred, classes)
        return [f"tally-{c}" for c in labels], scores

    def label_issues(self, y: np.ndarray, pred: np.ndarray, classes: Sequence[str], inputs: pd.DataFrame | None = None) -> LabelIssues:
        # Every labeled example is suspect, in the task's own words.
        n = len(y)
        return LabelIssues(np.zeros(n), np.ones(n, bool), ["tally"] * n, np.ones(n), ["tally says no"] * n,
                           {"checked_by": "tally"})

    def consensus(self, labels: Sequence[str]) -> str | None:
        return labels[0] if len(set(labels)) == 1 else None  # unanimity or nothing

    def oracle_label(self, value: Any) -> str:
        return f"T{super().oracle_label(value)}"

    def metrics(self, y_true: np.ndarray, pred: np.ndarray, classes: Sequence[str]) -> dict[str, float | None]:
        return {**super().metrics(y_true, pred, classes), "tally": float(len(y_true))}

    def paired_test(self, y_true: np.ndarray, cand_pred: np.ndarray, champ_pred: np.ndarray, metric: str, *,
                    alpha: float) -> PairedDiff:
        return PairedDiff(len(y_true), 0.5, 0.4, 0.6, 1.0, 0.0, 1 - 2 * alpha, "tally test")

    def class_tests(self, y_true: np.ndarray, cand_pred: np.ndarray, champ_pred: np.ndarray, *,
                    alpha: float) -> list[tuple[str, str, PairedDiff]]:
        return []

    def predict_fields(self) -> dict[str, Any] | None:
        return {"tally": str}

    def predict_output(self, pred_row: np.ndarray, classes: Sequence[str]) -> dict[str, Any]:
        return {"tally": f"{len(pred_row)} numbers"}


@pytest.fixture()
def tally(monkeypatch: pytest.MonkeyPatch) -> Iterator[Tally]:
    """``Tally`` registered as ``[dataset] task = "tally"`` for one test only."""
    monkeypatch.setitem(TASKS._builtins, "tally", Tally)
    yield Tally()


def test_mining_asks_the_task_for_predictions_detectors_and_label_issues(tmp_path: Path, tally: Tally) -> None:
    from data_engine.mine.run import run_mining

    home = homes.make_home(tmp_path, {"dataset": {"task": "tally"}, "mining": {"folds": 3}}, seed=0,
                           n_train=200, n_gold=20, n_unlabeled=30)
    with open_warehouse(home) as con:
        summary = run_mining(con, home.config, home=home)
        predicted = {r[0] for r in con.execute("SELECT DISTINCT predicted_label FROM predictions").fetchall()}
        reasons = {r[0] for r in con.execute("SELECT DISTINCT reason FROM issues WHERE issue_type = 'label'").fetchall()}
    # The stored predicted label is the task's (Task.best), not the argmax's class name.
    assert predicted and all(p.startswith("tally-") for p in predicted)
    # The label detector is the task's check: every labeled example flagged, in its words.
    assert reasons == {"tally says no"}
    assert summary.counts["label"] == 200
    assert summary.detector_summaries["label"] == {"checked_by": "tally"}
    # Detectors the task does not list are skipped with a note, not run.
    skipped = {n for n, s in summary.detector_summaries.items() if s.get("skipped") == "does not apply to task 'tally'"}
    from data_engine.mine.run import ALWAYS_DETECTORS

    assert skipped == (set(home.config.mining.detectors) | set(ALWAYS_DETECTORS)) - {"label", "class_imbalance"} and skipped


def test_consensus_is_the_tasks_rule(tally: Tally) -> None:
    answers = [_Answer(i, i, f"r{i}", choice, None, f"2026-01-01T00:00:0{i}.000000Z")
               for i, choice in enumerate(["a", "a", "b"], start=1)]
    ((_, classification, *_),) = list(_consensus([(7, answers)], Classification()))
    ((_, toy, agreement, votes, _),) = list(_consensus([(7, answers)], tally))
    assert classification == "a"  # the majority
    assert toy is _TIE and agreement is None and votes == 3  # the toy wants unanimity


def test_oracle_labels_are_read_by_the_task(tmp_path: Path, tally: Tally) -> None:
    path = tmp_path / "oracle.jsonl"
    path.write_text('{"id": 1, "label": 3}\n{"id": 2, "label": "4.0"}\n', encoding="utf-8")
    assert read_oracle(path, tally) == {"1": "T3", "2": "T4"}
    assert read_oracle(path) == {"1": "3", "2": "4"}


def test_the_gate_takes_the_tasks_figures_and_paired_test(tally: Tally) -> None:
    y = np.array(["a", "b"] * 30)
    same = y.copy()  # both models identical: classification can only call it a tie
    gate = GateConfig(metric="accuracy", min_gold=10, test="paired")
    cand = evaluate_predictions(y, same, version=2, task=tally)
    champ = evaluate_predictions(y, same, version=1, task=tally)
    assert cand.metric("tally") == 60.0 and cand.to_dict()["tally"] == 60.0
    assert decide_promotion(cand, champ, gate, pairs=(y, same, same)).outcome == "tied"
    verdict = decide_promotion(cand, champ, gate, pairs=(y, same, same), task=tally)
    assert verdict.outcome == "better" and verdict.promote and "tally test" in verdict.reason


def test_predict_answers_in_the_tasks_shape(tally: Tally) -> None:
    class Model:
        classes_ = np.array(["a", "b"], dtype=object)

        def predict_proba(self, X: pd.DataFrame) -> np.ndarray:
            return np.tile([0.25, 0.75], (len(X), 1))

    loaded = LoadedModel(SimpleNamespace(classes=("a", "b"), version=3), Model(), 0.0)
    frame = pd.DataFrame({"x": [1.0, 2.0]})
    assert predict_rows(loaded, frame) == {"model_version": 3, "predictions": [
        {"label": "b", "probabilities": {"a": 0.25, "b": 0.75}}] * 2}
    assert predict_rows(loaded, frame, tally) == {"model_version": 3, "predictions": [{"tally": "2 numbers"}] * 2}


def test_a_mapping_of_member_estimators_passes_through_classification() -> None:
    members: Mapping[str, Any] = {"linear": object()}
    assert Classification().members_for(members) == dict(members)


@pytest.mark.parametrize("name", list(TASKS))
def test_a_paired_test_of_a_metric_the_task_lacks_is_refused_by_name(name: str) -> None:
    # Classification once fell back to the macro-F1 bootstrap for any name it did not know.
    task = TASKS[name]()
    y = np.array([], dtype=object)
    with pytest.raises(EngineError) as caught:
        task.paired_test(y, y, y, "median_f1", alpha=0.05)
    assert str(caught.value) == (f"unknown {task.name} metric 'median_f1'; expected one of "
                                 f"{', '.join(task.metric_names())}")
