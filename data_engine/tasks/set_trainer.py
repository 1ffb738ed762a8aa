"""What the user's trainer is for labels that are sets of parts of an input (boxes, spans): the
shared half of :class:`~data_engine.tasks.box_trainer.CommandBoxes` and
:class:`~data_engine.tasks.ner_trainer.CommandSpans`.

``TRAIN.parquet``'s ``label`` is the label in force as the task stores it: the canonical JSON text
of the box set or span set (``[]``: labeled, nothing in it). The manifest's ``classes`` are the
dataset's box classes or entity types, in the dataset's order (also those no training row holds).
The answers are the task's packed prediction rows (:mod:`data_engine.tasks.box_pack`,
:mod:`data_engine.tasks.tokens`), so mining, the gate and serving read them as they read the
built-in detector's and tagger's.

They live with the tasks, not in :mod:`data_engine.trainers` (a layer below the tasks), because
their answers are the tasks' stored box and span sets.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from typing import Any

import numpy as np
import pandas as pd
from sklearn.base import ClassifierMixin

from data_engine.errors import EngineError
from data_engine.trainers.command import SMOKE_ROWS, CommandModel


def plain(value: Any) -> Any:
    """A cell of the trainer's Parquet file as plain Python: lists for Parquet lists (numpy arrays),
    dicts for structs, Python numbers for numpy scalars, the JSON a text cell holds parsed (a cell
    may hold the list itself or its JSON text). Raises ``ValueError`` for text that is not JSON."""
    return _plain(json.loads(value)) if isinstance(value, str) else _plain(value)


def _plain(value: Any) -> Any:
    """:func:`plain` below the cell: text stays text."""
    if isinstance(value, np.ndarray):
        return [_plain(v) for v in value.tolist()]
    if isinstance(value, (list, tuple)):
        return [_plain(v) for v in value]
    if isinstance(value, dict):
        return {str(k): _plain(v) for k, v in value.items()}
    if isinstance(value, np.generic):
        return value.item()
    return value


def cell(value: Any, where: str) -> Any:
    """:func:`plain` of one cell; :class:`EngineError` starting with ``where`` when it is missing
    (null) or text that is not JSON."""
    if value is None or (isinstance(value, float) and np.isnan(value)):
        raise EngineError(f"{where} is empty (write [] when nothing was found)")
    try:
        return plain(value)
    except ValueError as exc:
        raise EngineError(f"{where}: {str(value)[:60]!r} is not a list or its JSON text ({exc})") from None


class CommandSetModel(ClassifierMixin, CommandModel):
    """The user's trainer for set labels (module docstring). ``tags``: the box classes or entity
    types the encoded labels index (the engine sets them as for its own detector and tagger); without
    it the manifest's ``class_names``. After ``fit``: ``types_`` and ``classes_`` (those names, the
    order of the packed predictions' class indices) besides the model directory.
    """

    def __init__(self, command: Sequence[str] = (), timeout_s: float = 3600.0,
                 manifest: dict[str, Any] | None = None, out_of_fold: str = "engine",
                 tags: tuple[str, ...] | None = None) -> None:
        super().__init__(command, timeout_s, manifest, out_of_fold)
        self.tags = tags

    @classmethod
    def from_member(cls, member: Any, **params: Any) -> "CommandSetModel | None":
        """``member`` (a model member as built from the config) as this trainer when it is the user's
        trainer (the ``command`` member, built as a classifier), given ``params``; None otherwise."""
        if isinstance(member, cls):
            return member
        if not isinstance(member, CommandModel):
            return None
        shared = ("command", "timeout_s", "manifest", "out_of_fold")
        return cls(**{k: v for k, v in member.get_params().items() if k in shared}, **params)

    def stored_labels(self, y: np.ndarray, types: Sequence[str]) -> list[str]:
        """The stored spelling of each encoded label row of ``y`` (n, width)."""
        raise NotImplementedError

    def label_types(self, labels: Sequence[str]) -> list[str]:
        """The classes the stored labels name, sorted (when no class list is given)."""
        raise NotImplementedError

    def fit(self, X: pd.DataFrame, y: np.ndarray) -> "CommandSetModel":
        """Run ``COMMAND fit`` on ``X`` (n rows) with labels ``y``: stored sets (n,) or the task's
        encoded matrix (n, width); then its ``predict`` on some of the rows (a faulty predict fails
        here, before anything is registered). Raises EngineError."""
        self._fit(X, y, None)
        self.predict_proba(X.iloc[:SMOKE_ROWS])
        return self

    def fit_out_of_fold(self, X: pd.DataFrame, y: np.ndarray, folds: np.ndarray) -> np.ndarray:
        """One ``COMMAND fit`` returning out-of-fold packed predictions (n, width) for the engine's
        ``folds`` (n,) (as :meth:`~data_engine.trainers.command.CommandClassifier.fit_out_of_fold`)."""
        out = self._fit(X, y, np.asarray(folds))
        assert out is not None
        return out

    def _fit(self, X: pd.DataFrame, y: np.ndarray, folds: np.ndarray | None) -> np.ndarray | None:
        extra = dict(self.manifest or {})
        names = extra.pop("class_names", None)
        y = np.asarray(y)
        types = [str(t) for t in (self.tags if self.tags is not None else names or [])]
        if y.ndim == 2:
            if not types:
                raise EngineError(f"{self.task}: encoded labels need the class names (tags) they index")
            labels = self.stored_labels(y, types)
        else:
            labels = [str(v) for v in y]
            types = types or self.label_types(labels)
        self.types_ = tuple(types)
        self.classes_ = np.asarray(types, dtype=object)
        return self._run_fit(X, labels, {**extra, "classes": list(types)}, folds)

    def predict_proba(self, X: pd.DataFrame) -> np.ndarray:
        """Run ``COMMAND predict`` on ``X`` (n rows); the packed prediction rows (n, width) in
        ``types_`` order. Raises EngineError on a failed run or malformed predictions."""
        return self._run_predict(X)

    def predict(self, X: pd.DataFrame) -> np.ndarray:
        """Each row's predicted set as text (:meth:`decide`), shape (n,)."""
        return self.decide(self.predict_proba(X))


__all__ = ["CommandSetModel", "cell", "plain"]
