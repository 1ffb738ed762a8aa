"""The user's trainer for boxes (``[dataset] task = "detection"``): ``PRED.parquet`` holds
``example_id`` and ``boxes``, each image's scored boxes in pixels.

``TRAIN.parquet``'s ``label`` is the box set in force as stored (JSON text,
``[{"label":"disc","x":3,"y":4,"w":20,"h":21}]``; ``[]``: no objects); the image column holds
absolute paths. ``PRED.parquet``'s ``boxes`` cell of an image is what a line of the external
predictions file holds under ``boxes`` (:mod:`data_engine.tasks.box_external`):
``[{"label", "x", "y", "w", "h", "score"}]``, as a Parquet list of structs or as its JSON text.
Each box is checked as an external one is (:func:`data_engine.tasks.box_files.scored_boxes`: a
class of the manifest, finite numbers, a positive size, a score in [0, 1]); the
:data:`~data_engine.tasks.box_pack.MAX_BOXES` highest-scoring boxes of an image are kept.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import numpy as np
import pandas as pd

from data_engine.errors import EngineError
from data_engine.tasks import box_pack as bp
from data_engine.tasks.box_files import scored_boxes
from data_engine.tasks.box_issues import ScoredBox
from data_engine.tasks.boxes import parse
from data_engine.tasks.set_trainer import CommandSetModel, cell
from data_engine.trainers.command import read_prediction_file

# The column of a detection trainer's PRED.parquet.
BOXES_COLUMN = "boxes"


def read_box_predictions(path: Path, ids: Sequence[str], types: Sequence[str], *,
                         what: str = "trainer `predict`") -> np.ndarray:
    """The trainer's boxes of each of ``ids`` as packed prediction rows (len(ids), MAX_BOXES * SLOT)
    in ``types`` order. Raises :class:`EngineError` naming the file, the id and the column: those of
    :func:`~data_engine.trainers.command.read_prediction_file`, no ``boxes`` column, an empty cell,
    a bad box (:func:`~data_engine.tasks.box_files.scored_boxes`)."""
    frame = read_prediction_file(path, ids, what=what)
    if BOXES_COLUMN not in frame.columns:
        raise EngineError(f"{what}: {path.name} has no {BOXES_COLUMN!r} column (a detection trainer writes "
                          f"example_id and boxes; got {list(frame.columns)})")
    found = []
    for example_id, value in zip(ids, frame[BOXES_COLUMN]):
        where = f"{what}: {path.name}: row example_id={example_id!r}, column {BOXES_COLUMN!r}"
        found.append(scored_boxes(cell(value, where), where, list(types)))
    return bp.pack(found, list(types))


class CommandBoxes(CommandSetModel):
    """A detector whose ``fit`` and ``predict_proba`` run the user's trainer (module docstring); the
    same interface as the built-in :class:`~data_engine.tasks.box_estimator.BoxDetector`."""

    task = "detection"

    def stored_labels(self, y: np.ndarray, types: Sequence[str]) -> list[str]:
        """The stored box sets of the encoded rows ``y`` (n, 1 + 5 * MAX_BOXES)."""
        return bp.decode(y, list(types))

    def label_types(self, labels: Sequence[str]) -> list[str]:
        """The classes the box sets name, sorted."""
        return sorted({b.label for label in labels for b in parse(label)})

    def read_predictions(self, path: Path, ids: Sequence[str], *, what: str = "trainer `predict`") -> np.ndarray:
        """Packed box rows (len(ids), MAX_BOXES * SLOT) from ``path`` (:func:`read_box_predictions`)."""
        return read_box_predictions(path, ids, self.types_, what=what)

    def decide(self, answer: np.ndarray) -> np.ndarray:
        """Each image's scored box set as text (what the built-in detector's ``predict`` answers), shape (n,)."""
        return np.asarray([bp.scored_text(bp.unpack(row, list(self.types_))) for row in np.asarray(answer)],
                          dtype=object)

    def scored_boxes(self, X: pd.DataFrame) -> list[list[ScoredBox]]:
        """Each image's scored boxes (pixels), from one ``COMMAND predict`` on ``X``."""
        return [bp.unpack(row, list(self.types_)) for row in self.predict_proba(X)]


__all__ = ["BOXES_COLUMN", "CommandBoxes", "read_box_predictions"]
