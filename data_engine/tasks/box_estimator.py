"""The detection task's model as the stages fit and serve it: the baseline detector
(:class:`~data_engine.tasks.box_model.BaselineDetector`) behind scikit-learn's estimator interface,
reading image files by the paths in a frame's image column.

``fit(X, y)``: ``X`` a frame whose image column holds absolute image paths (the stages load them so),
``y`` stored box sets (n,) or their encoded matrix (:func:`data_engine.tasks.box_pack.encode`, with
``tags`` the classes it indexes). ``predict_proba(X)``: prediction rows (n, MAX_BOXES * SLOT) in
``tags`` order. ``predict(X)``: each image's scored box set as text (what the gate and ``evaluate
--file`` score by mAP: the scores order the boxes).
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import pandas as pd
from sklearn.base import BaseEstimator, ClassifierMixin

from data_engine.errors import EngineError
from data_engine.tasks import box_pack as bp
from data_engine.tasks.box_issues import ScoredBox
from data_engine.tasks.boxes import Box, parse


def image_column_of(X: pd.DataFrame, column: str | None) -> pd.Series:
    """The image column of model inputs ``X``: ``column`` when given and present, else the only
    column. Raises ``EngineError`` when there is no single one."""
    if column is not None and column in X.columns:
        return X[column]
    if X.shape[1] != 1:
        raise EngineError(f"the detector reads one image column; inputs have {list(X.columns)}")
    return X.iloc[:, 0]


def load_images(paths: Sequence[object]) -> list[np.ndarray]:
    """The pixels of each image file (H, W, 3) uint8, RGB; ``EngineError`` naming a file that cannot be read."""
    from PIL import Image

    out = []
    for p in paths:
        try:
            with Image.open(str(p)) as im:
                out.append(np.asarray(im.convert("RGB"), dtype=np.uint8))
        except (OSError, ValueError) as exc:
            raise EngineError(f"image {p}: cannot be read ({exc})") from None
    return out


class BoxDetector(ClassifierMixin, BaseEstimator):
    """The baseline detector on image files (module docstring)."""

    def __init__(self, tags: tuple[str, ...] | None = None, image_column: str | None = None, seed: int = 0) -> None:
        self.tags = tags
        self.image_column = image_column
        self.seed = seed

    def fit(self, X: pd.DataFrame, y: Sequence[str] | np.ndarray) -> BoxDetector:
        """Fit the baseline on ``X``'s images and their box sets ``y`` (n,). Raises ``EngineError``
        when the boxes give fewer than two kinds of example (classes or background) to learn."""
        from data_engine.tasks.box_model import BaselineDetector

        y = np.asarray(y)
        if y.ndim == 2:
            if self.tags is None:
                raise EngineError("an encoded box matrix needs the detector's classes (tags)")
            box_sets = bp.given_boxes(y, list(self.tags))
        else:
            box_sets = [parse(str(v)) for v in y]
        images = load_images(image_column_of(X, self.image_column).tolist())
        if len(images) != len(box_sets):
            raise EngineError(f"{len(images)} images but {len(box_sets)} labels")
        self.types_ = tuple(self.tags) if self.tags is not None else tuple(sorted({b.label for s in box_sets for b in s}))
        self.classes_ = np.asarray(self.types_, dtype=object)
        try:
            self.detector_ = BaselineDetector(list(self.types_), seed=self.seed).fit(images, box_sets)
        except ValueError as exc:
            raise EngineError(str(exc)) from None
        return self

    def scored_boxes(self, X: pd.DataFrame) -> list[list[ScoredBox]]:
        """Each image's scored boxes (pixels)."""
        return self.detector_.predict(load_images(image_column_of(X, self.image_column).tolist()))

    def predict_proba(self, X: pd.DataFrame) -> np.ndarray:
        """Prediction rows (n, MAX_BOXES * SLOT) in ``types_`` order."""
        return bp.pack(self.scored_boxes(X), self.types_)

    def predict(self, X: pd.DataFrame) -> np.ndarray:
        """Each image's scored box set as text (:func:`data_engine.tasks.box_pack.scored_text`), shape (n,) object."""
        return np.asarray([bp.scored_text(b) for b in self.scored_boxes(X)], dtype=object)


def aligned_boxes(model: object, X: pd.DataFrame, classes: Sequence[str]) -> np.ndarray:
    """A fitted detector's prediction rows for ``X`` in ``classes`` order (n, MAX_BOXES * SLOT); its boxes
    of a class not in ``classes`` are left out."""
    if hasattr(model, "scored_boxes"):
        return bp.pack(model.scored_boxes(X), [str(c) for c in classes])
    # A model that only answers scored box sets in text (e.g. one renamed after training).
    from data_engine.tasks.box_pack import scored_of

    return bp.pack([scored_of(str(v)) for v in np.asarray(model.predict(X))], [str(c) for c in classes])


__all__ = ["Box", "BoxDetector", "aligned_boxes", "load_images"]
