"""The trivial baseline of a candidate model, for the gate's rule on a first model
(:func:`data_engine.ship.verdict.first_model_reason`): recorded with the model when it was trained
(the labels it was fitted on, :data:`BASELINE_PARAM`), or, for a model trained before baselines were
recorded, read off the training labels in force."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import asdict, dataclass
from typing import Any

import duckdb
import numpy as np

from data_engine.ship.registry import ModelRecord
from data_engine.store.config import EngineConfig
from data_engine.tasks import Task
from data_engine.tasks.baseline import TrivialBaseline

# The key of a model's ``params`` that holds its trivial baseline (kind, name, label).
BASELINE_PARAM = "trivial_baseline"


@dataclass(frozen=True)
class BaselineFigure:
    """The trivial baseline a first model is compared with (:mod:`data_engine.tasks.baseline`): its
    name, the one label (stored spelling) it answers for every example, and its figure of the gate's
    metric on the same gold examples (None when the metric has no figure there)."""

    name: str
    label: str
    figure: float | None


def recorded_baseline(task: Task, train_labels: Sequence[str]) -> dict[str, Any]:
    """The ``params`` entry of a model fitted on the stored labels ``train_labels`` (n,)."""
    return asdict(task.trivial_baseline(train_labels))


def candidate_baseline(con: duckdb.DuckDBPyConnection, cfg: EngineConfig, record: ModelRecord,
                       task: Task) -> TrivialBaseline | None:
    """Model ``record``'s trivial baseline: the one recorded at training, else the training labels in force
    (not gold, not discarded); None when there are none."""
    stored = (record.params or {}).get(BASELINE_PARAM)
    if stored:
        return TrivialBaseline(**stored)
    from data_engine.store.dataset import load_examples

    train = load_examples(con, cfg.dataset, subset="train")
    labels = train.loc[~train["is_discarded"].astype(bool), "label"].astype(str).tolist()
    return task.trivial_baseline(labels) if labels else None


def baseline_figure(baseline: TrivialBaseline, y_true: np.ndarray, metric: str, task: Task,
                    classes: Sequence[str]) -> BaselineFigure:
    """``baseline`` scored on gold labels ``y_true`` (n,) by the task's ``metric``, as the gate scores a model."""
    figure = task.metrics(y_true, baseline.predictions(len(y_true)), list(classes)).get(metric)
    return BaselineFigure(baseline.name, baseline.label, None if figure is None else float(figure))
