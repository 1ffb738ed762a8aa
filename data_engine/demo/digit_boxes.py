"""Scenes of real handwritten digits with boxes: a held-out detection set nobody tuned the detector to.

scikit-learn's bundled handwritten digits (:func:`sklearn.datasets.load_digits`: 1,797 8x8 scans of
digits written by 43 people, UCI "Optical Recognition of Handwritten Digits", bundled with
scikit-learn, no download) are scaled up by 3 or 4 (nearest neighbour: each scan pixel a square)
and placed at seeded random positions on a :data:`SIDE` x :data:`SIDE` white canvas, one to three
per scene, not touching one another. Ink is dark grey: a scan value ``v`` of 16 becomes
``255 - 15 v``. The true box of a digit is the bounding box of its scan pixels with any ink
(``v > 0``), scaled: what an annotator who boxes the visible stroke would draw. Classes are the digit
values ``"0"`` ... ``"9"``. Each scan is used at most once, in a seeded order, so a set of ``n``
scenes needs at most about ``3 n`` <= 1,797 digits.

Errors are injected as for the drawn scenes (:func:`data_engine.demo.drawn_boxes.inject_box_errors`:
a box missing, shifted by 60 % of its size, or given another digit).
"""

from __future__ import annotations

import numpy as np

from data_engine.demo.drawn_boxes import Scene, _overlaps
from data_engine.tasks.boxes import Box

SIDE = 96
CLASSES = tuple(str(d) for d in range(10))
SCALES = (3, 4)


def make_digit_scenes(n: int, *, seed: int = 0) -> list[Scene]:
    """``n`` scenes of handwritten digits with their true boxes (``given`` = ``truth``), at ``seed``.
    Raises ``ValueError`` when the 1,797 bundled scans run out."""
    from sklearn.datasets import load_digits

    digits = load_digits()
    rng = np.random.default_rng(seed)
    order = iter(rng.permutation(len(digits.target)).tolist())
    scenes = []
    for _ in range(n):
        canvas = np.full((SIDE, SIDE), 255, dtype=np.uint8)
        boxes: list[Box] = []
        cells: list[Box] = []
        wanted = int(rng.integers(1, 4))
        for _ in range(wanted * 10):  # tries: place up to 1-3 digits that do not touch
            if len(boxes) == wanted:
                break
            scale = int(SCALES[int(rng.integers(len(SCALES)))])
            size = 8 * scale
            x, y = int(rng.integers(1, SIDE - size - 1)), int(rng.integers(1, SIDE - size - 1))
            cell = Box("", x, y, size, size)
            if any(_overlaps(cell, c) for c in cells):  # whole scan squares apart, so no digit is painted over
                continue
            try:
                k = next(order)
            except StopIteration:
                raise ValueError(f"{n} digit scenes need more than the {len(digits.target)} bundled scans") from None
            scan = digits.images[k]
            canvas[y:y + size, x:x + size] = np.kron(255 - 15 * scan, np.ones((scale, scale))).astype(np.uint8)
            rows, cols = np.nonzero(scan > 0)
            cells.append(cell)
            boxes.append(Box(str(int(digits.target[k])), x + int(cols.min()) * scale, y + int(rows.min()) * scale,
                             (int(cols.max()) - int(cols.min()) + 1) * scale, (int(rows.max()) - int(rows.min()) + 1) * scale))
        image = np.repeat(canvas[:, :, None], 3, axis=2)
        scenes.append(Scene(image, sorted(boxes), sorted(boxes)))
    return scenes
