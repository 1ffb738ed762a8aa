"""Task plug-ins: one per kind of label (:class:`Task`), looked up by ``[dataset] task``."""

from __future__ import annotations

from data_engine.store.config import DatasetConfig, EngineConfig
from data_engine.tasks.base import TASKS, LabelIssues, Task
from data_engine.tasks.classification import Classification
from data_engine.tasks.detection import Detection
from data_engine.tasks.multilabel import Multilabel
from data_engine.tasks.ner import NER
from data_engine.tasks.regression import Regression

__all__ = ["TASKS", "Classification", "Detection", "LabelIssues", "Multilabel", "NER", "Regression", "Task", "check_task", "gate_metric", "model_name",
           "task_for"]


def check_task(ds: DatasetConfig) -> None:
    """Raise :class:`~data_engine.errors.ConfigError` naming ``dataset.task`` and the known tasks
    when ``ds.task`` is not registered."""
    TASKS.check(ds.task, "dataset.task")


def task_for(ds: DatasetConfig) -> Task:
    """The task plug-in of dataset ``ds`` (the class registered as ``ds.task``, given ``ds``).

    Raises :class:`~data_engine.errors.ConfigError` when the name is unknown.
    """
    check_task(ds)
    return TASKS[ds.task](ds)


def gate_metric(cfg: EngineConfig) -> str:
    """``[gate] metric``, or the dataset's task's default figure when it is not set (accuracy for
    classes, MAE for numbers)."""
    return cfg.gate.metric or task_for(cfg.dataset).default_metric


def model_name(task: Task, name: str) -> str:
    """A model's name for people: ``name`` (members joined by '+', or a spec key ``members/modality/...``)
    with its member part replaced by the task's :attr:`~data_engine.tasks.Task.own_model` when it has one
    (detection's box detector, NER's tagger train in place of the members whose name they were stored
    under); the user's trainer (member ``command``) keeps its name."""
    head, sep, rest = name.partition("/")
    return name if not task.own_model or head == "command" else f"{task.own_model}{sep}{rest}"
