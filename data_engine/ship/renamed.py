"""A model trained before ``data-engine classes rename`` answers with the classes' current names.

A fitted estimator learned the class names of its training labels (``classes_``); a later rename
(a row of ``class_changes``) gives a class a new name while the artifact keeps the old one. Every
place that loads a recorded model (gate, ``evaluate``, scoring, ``predict``, ``serve``) reads its
answers through :class:`RenamedClasses`, so the champion is scored on gold by the classes' current
names, as the candidate trained after the rename is. The artifact itself is never rewritten (its
sha256 is its identity). Written by hand: no library maps an estimator's class names.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import duckdb
import numpy as np


def renames_since(con: duckdb.DuckDBPyConnection, created_at: Any, classes: Sequence[str]) -> dict[str, str]:
    """``{learned name: current name}`` for the ``classes`` a model created at ``created_at`` learned
    that ``classes rename`` renamed after it was trained (chains followed in order: a renamed to b,
    then b to c gives ``{a: c}``); empty when none was. Only renames after ``created_at`` count: a
    model trained later learned the new name, and a class added later under an old name is another."""
    if not classes:
        return {}
    rows = con.execute(
        "SELECT old_label, class_label FROM class_changes WHERE kind = 'rename' "
        "AND (?::TIMESTAMPTZ IS NULL OR created_at > ?::TIMESTAMPTZ) ORDER BY change_id",
        [created_at, created_at]).fetchall()
    current = {str(c): str(c) for c in classes}
    for old, new in rows:
        for learned, now in current.items():
            if now == old:
                current[learned] = new
    return {k: v for k, v in current.items() if k != v}


def current_names(classes: Sequence[str], renamed: Mapping[str, str]) -> tuple[str, ...]:
    """``classes`` with each renamed one under its current name, same order."""
    return tuple(renamed.get(c, c) for c in classes)


class RenamedClasses:
    """``model`` whose class names read as their current names: ``classes_`` and ``predict`` (1-D
    labels, shape (N,)) map through ``renamed`` (``{learned: current}``); ``predict_proba`` columns
    are unchanged (same order as ``classes_``); every other attribute is the model's."""

    def __init__(self, model: Any, renamed: Mapping[str, str]) -> None:
        self._model = model
        self._renamed = dict(renamed)

    @property
    def classes_(self) -> np.ndarray:
        """The learned classes (index-coded ones unchanged), renamed ones under their current name."""
        learned = np.asarray(self._model.classes_)
        if learned.dtype.kind in "iu":
            return learned
        return np.asarray([self._renamed.get(str(c), str(c)) for c in learned], dtype=object)

    def predict(self, X: Any) -> np.ndarray:
        """The model's labels, renamed ones under their current name."""
        out = np.asarray(self._model.predict(X))
        if out.ndim != 1 or out.dtype.kind in "iufb":
            return out
        return np.asarray([self._renamed.get(str(v), str(v)) for v in out], dtype=object)

    def __getattr__(self, name: str) -> Any:
        return getattr(self._model, name)


def read_renamed(model: Any, renamed: Mapping[str, str] | None) -> Any:
    """``model`` itself when nothing was renamed, else read through :class:`RenamedClasses`."""
    return RenamedClasses(model, renamed) if renamed else model


def renamed_away(con: duckdb.DuckDBPyConnection) -> dict[str, str]:
    """``{old name: current name}`` for every name ``classes rename`` took away that is not a class
    again (chains followed): how a file written before a rename names its classes."""
    from data_engine.store.schema import load_classes

    olds = [r[0] for r in con.execute(
        "SELECT DISTINCT old_label FROM class_changes WHERE kind = 'rename' ORDER BY 1").fetchall()]
    now = set(load_classes(con))
    return {old: new for old, new in renames_since(con, None, olds).items() if old not in now and new in now}
