"""The built-in baseline detector: region proposals from scikit-image, a scikit-learn classifier on HOG.

It needs no download and no GPU, and it is weak: it proposes one box per connected blob of pixels
that differ from the image's background (the most common border colour), so it only works where
objects stand apart on a plain background (drawn scenes, parts on a conveyor, documents). Touching
or overlapping objects merge into one proposal, textured backgrounds make many false ones, and a
box is never finer than the blob. Each proposal's crop is resized to 32x32 and described by its HOG
(``skimage.feature.hog``) plus its aspect ratio and ink share; a logistic regression over the classes
and ``background`` (proposals that match no given box at IoU 0.5) scores it. Teams with a real
detector supply its boxes instead (``[mining] predictions = "external"``), the main path.

Proposals are disjoint blobs, so no non-maximum suppression is needed.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from data_engine.tasks.box_issues import ScoredBox
from data_engine.tasks.boxes import Box
from data_engine.tasks.boxes import iou as _iou

BACKGROUND = "__background__"
CROP = 32
MIN_AREA = 16  # pixels: smaller blobs are noise (JPEG artefacts, antialiasing)


def proposals(image: np.ndarray) -> list[Box]:
    """Candidate boxes of one image (H, W, 3) or (H, W): the bounding boxes (pixels, label '') of the
    connected blobs of pixels more than 40 (of 255, max over channels) from the background colour,
    after a 3x3 closing so a thin outline stays one blob."""
    from skimage.measure import label, regionprops
    from skimage.morphology import closing, footprint_rectangle

    img = image.astype(np.int16)
    if img.ndim == 2:
        img = img[:, :, None]
    border = np.concatenate([img[0], img[-1], img[:, 0], img[:, -1]])
    colours, counts = np.unique(border, axis=0, return_counts=True)
    bg = colours[counts.argmax()]
    ink = np.abs(img - bg).max(axis=2) > 40
    blobs = label(closing(ink, footprint_rectangle((3, 3))))
    out = []
    for r in regionprops(blobs):
        if r.area < MIN_AREA:
            continue
        y0, x0, y1, x1 = r.bbox
        out.append(Box("", float(x0), float(y0), float(x1 - x0), float(y1 - y0)))
    return out


def features(image: np.ndarray, boxes: Sequence[Box]) -> np.ndarray:
    """Features of each box's crop of ``image``: HOG of the grey crop resized to CROP x CROP, the
    box's aspect ratio and its share of ink pixels; shape (len(boxes), d)."""
    from skimage.color import rgb2gray
    from skimage.feature import hog
    from skimage.transform import resize

    grey = rgb2gray(image) if image.ndim == 3 else image.astype(float) / 255.0
    rows = []
    for b in boxes:
        x0, y0 = int(max(0, b.x)), int(max(0, b.y))
        crop = grey[y0:int(b.y + b.h), x0:int(b.x + b.w)]
        if crop.size == 0:
            crop = np.zeros((2, 2))
        small = resize(crop, (CROP, CROP), anti_aliasing=True)
        edge = np.median(np.concatenate([crop[0], crop[-1], crop[:, 0], crop[:, -1]]))
        h = hog(small, orientations=8, pixels_per_cell=(8, 8), cells_per_block=(2, 2))
        rows.append(np.concatenate([h, [b.w / max(b.h, 1.0), float((np.abs(small - edge) > 0.15).mean())]]))
    return np.asarray(rows, dtype=float).reshape(len(rows), -1)


class BaselineDetector:
    """The baseline (module docstring): ``fit(images, box_sets)`` then ``predict(images)``."""

    def __init__(self, classes: Sequence[str], *, seed: int = 0) -> None:
        self.classes = list(classes)
        self.seed = seed
        self.model = None

    def fit(self, images: Sequence[np.ndarray], box_sets: Sequence[Sequence[Box]]) -> BaselineDetector:
        """Fit on n images and their given box sets: each given box's crop is an example of its class,
        each proposal matching no given box (IoU < 0.5) an example of background. Raises
        ``ValueError`` when fewer than two kinds of example are found."""
        from sklearn.linear_model import LogisticRegression
        from sklearn.pipeline import make_pipeline
        from sklearn.preprocessing import StandardScaler

        X, y = [], []
        for image, given in zip(images, box_sets):
            given = [b for b in given if b.label in self.classes]
            bg = [p for p in proposals(image) if all(_iou(p, g) < 0.5 for g in given)]
            boxes = [*given, *bg]
            if boxes:
                X.append(features(image, boxes))
                y += [b.label for b in given] + [BACKGROUND] * len(bg)
        if len(set(y)) < 2:
            raise ValueError("the baseline detector needs boxes of at least two kinds (classes or background) to fit")
        self.model = make_pipeline(StandardScaler(), LogisticRegression(max_iter=2000, C=0.5, random_state=self.seed))
        self.model.fit(np.vstack(X), np.asarray(y))
        return self

    def predict(self, images: Sequence[np.ndarray]) -> list[list[ScoredBox]]:
        """Each image's scored boxes: one per proposal the classifier does not call background, of its
        most likely class, scored with that class's probability."""
        if self.model is None:
            raise ValueError("fit the baseline detector before predicting")
        labels = list(self.model.classes_)
        out = []
        for image in images:
            props = proposals(image)
            if not props:
                out.append([])
                continue
            p = self.model.predict_proba(features(image, props))
            found = []
            for b, row in zip(props, p):
                k = int(row.argmax())
                if labels[k] != BACKGROUND:
                    found.append(ScoredBox(Box(labels[k], b.x, b.y, b.w, b.h), float(row[k])))
            out.append(found)
        return out


def out_of_fold_boxes(images: Sequence[np.ndarray], box_sets: Sequence[Sequence[Box]], classes: Sequence[str], *,
                      folds: int = 5, seed: int = 0) -> list[list[ScoredBox]]:
    """Out-of-fold predicted box sets of n images: each image's boxes come from a detector fitted on
    the other folds' images (images shuffled into ``folds`` folds at ``seed``)."""
    from sklearn.model_selection import KFold

    n = len(images)
    out: list[list[ScoredBox]] = [[] for _ in range(n)]
    for train, test in KFold(n_splits=folds, shuffle=True, random_state=seed).split(np.arange(n)):
        det = BaselineDetector(classes, seed=seed).fit([images[i] for i in train], [box_sets[i] for i in train])
        for i, pred in zip(test, det.predict([images[i] for i in test])):
            out[i] = pred
    return out
