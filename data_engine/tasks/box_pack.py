"""Box sets as fixed-width arrays: the given box sets the stages pass as one matrix, and a detector's
scored boxes stored as one prediction row per image (``predictions.probs``).

A given box set is encoded as one float row of ``1 + 5 * MAX_BOXES`` numbers: the box count, then
``class index, x, y, w, h`` (pixels) per box in stored order, zero-padded; the stages mark an
unlabeled row with NaN. A prediction row holds :data:`MAX_BOXES` slots of :data:`SLOT` numbers
``x, y, w, h, class index, score``; an unused slot is ``-1, -1, -1, -1, -1, 0``. An image with more
predicted boxes keeps its :data:`MAX_BOXES` highest-scoring ones (COCO's evaluation keeps 100 per
image as well); a given box set of more boxes cannot be encoded (``ValueError``).

A scored box set in text (what the baseline's ``predict`` returns and the gate scores) is the stored
spelling with a ``score`` per box: ``[{"label","x","y","w","h","score"}]``.
"""

from __future__ import annotations

import json
from collections.abc import Sequence

import numpy as np

from data_engine.tasks.box_issues import ScoredBox
from data_engine.tasks.boxes import Box, NotABoxSet, boxes_of, canonical, parse

MAX_BOXES = 100
SLOT = 6  # x, y, w, h, class index, score
FIELDS = ("x", "y", "w", "h", "class", "score")


def encode(labels: Sequence[str], classes: Sequence[str]) -> np.ndarray:
    """Stored box sets (n,) as a float matrix (n, 1 + 5 * MAX_BOXES) (module docstring). Raises
    ``ValueError`` naming the first label that is not a box set, names a class outside ``classes`` or
    holds more than MAX_BOXES boxes."""
    index = {c: k for k, c in enumerate(classes)}
    out = np.zeros((len(labels), 1 + 5 * MAX_BOXES), dtype=np.float64)
    for i, label in enumerate(labels):
        try:
            boxes = parse(label)
        except NotABoxSet as exc:
            raise ValueError(f"label {i}: {exc}") from None
        if len(boxes) > MAX_BOXES:
            raise ValueError(f"label {i}: {len(boxes)} boxes, more than the {MAX_BOXES} one image may hold")
        out[i, 0] = len(boxes)
        for j, b in enumerate(boxes):
            if b.label not in index:
                raise ValueError(f"label {i}: class {b.label!r} is not one of the classes ({', '.join(classes)})")
            out[i, 1 + 5 * j:6 + 5 * j] = (index[b.label], b.x, b.y, b.w, b.h)
    return out


def given_boxes(y: np.ndarray, classes: Sequence[str]) -> list[list[Box]]:
    """The box sets of the rows of ``y`` (n, 1 + 5 * MAX_BOXES), the inverse of :func:`encode`."""
    out = []
    for row in np.asarray(y, dtype=float):
        m = int(row[0])
        out.append([Box(str(classes[int(row[1 + 5 * j])]), *map(float, row[2 + 5 * j:6 + 5 * j])) for j in range(m)])
    return out


def carried_classes(y: np.ndarray, n_classes: int, counts: bool = False) -> np.ndarray:
    """Which of ``n_classes`` classes the boxes of each row of ``y`` (n, 1 + 5 * MAX_BOXES, as
    :func:`encode` makes it) hold: a 0/1 int matrix (n, n_classes); ``counts``: how many boxes of each."""
    y = np.asarray(y, dtype=float)
    out = np.zeros((len(y), n_classes), dtype=int)
    for i, row in enumerate(y):
        found = row[1:1 + 5 * int(row[0]):5].astype(int)
        if counts:
            np.add.at(out[i], found, 1)
        else:
            out[i, found] = 1
    return out


def decode(y: np.ndarray, classes: Sequence[str]) -> list[str]:
    """The stored box sets (canonical JSON) of the rows of ``y``."""
    return [canonical(b) for b in given_boxes(y, classes)]


def pack(predicted: Sequence[Sequence[ScoredBox]], classes: Sequence[str]) -> np.ndarray:
    """Scored box sets of n images as prediction rows (n, MAX_BOXES * SLOT), each image's boxes by
    falling score; a box of a class outside ``classes`` is left out (a model fitted before a class
    was added predicts none of it, one fitted with a class since removed keeps it out)."""
    index = {c: k for k, c in enumerate(classes)}
    out = np.zeros((len(predicted), MAX_BOXES, SLOT), dtype=np.float64)
    out[:, :, :5] = -1.0
    for i, boxes in enumerate(predicted):
        kept = sorted((sb for sb in boxes if sb.box.label in index), key=lambda sb: -sb.score)[:MAX_BOXES]
        for j, sb in enumerate(kept):
            b = sb.box
            out[i, j] = (b.x, b.y, b.w, b.h, index[b.label], sb.score)
    return out.reshape(len(predicted), MAX_BOXES * SLOT)


def unpack(pred_row: np.ndarray, classes: Sequence[str]) -> list[ScoredBox]:
    """One prediction row (MAX_BOXES * SLOT,) as its scored boxes (unused slots dropped). Raises
    ``ValueError`` on a row of the wrong width."""
    row = np.asarray(pred_row, dtype=float)
    if row.shape != (MAX_BOXES * SLOT,):
        raise ValueError(f"a box prediction row holds {MAX_BOXES * SLOT} numbers, got {row.shape}")
    slots = row.reshape(MAX_BOXES, SLOT)
    return [ScoredBox(Box(str(classes[int(s[4])]), float(s[0]), float(s[1]), float(s[2]), float(s[3])), float(s[5]))
            for s in slots if s[4] >= 0]


def slot_problem(pred: np.ndarray, n_classes: int) -> tuple[int, int | None, str] | None:
    """The first row of prediction rows ``pred`` (n, MAX_BOXES * SLOT) with a used slot that is not a
    box: ``(row, column, what)``; None when all are valid. A used slot needs a positive size, a class
    index in [0, n_classes) and a score in [0, 1]."""
    slots = np.asarray(pred, dtype=float).reshape(len(pred), MAX_BOXES, SLOT)
    used = slots[:, :, 4] >= 0
    checks = ((2, (slots[:, :, 2] <= 0) | (slots[:, :, 3] <= 0), "is not a positive box size"),
              (4, (slots[:, :, 4] >= n_classes) | (slots[:, :, 4] != np.floor(slots[:, :, 4])), "is not a class index"),
              (5, (slots[:, :, 5] < 0) | (slots[:, :, 5] > 1), "is not a score in [0, 1]"))
    for field, bad, what in checks:
        hit = used & bad
        if hit.any():
            r, j = np.argwhere(hit)[0]
            return int(r), int(j) * SLOT + field, what
    return None


def slot_columns() -> list[str]:
    """Names of a prediction row's numbers: ``b<i>_x``, ``b<i>_y``, ``b<i>_w``, ``b<i>_h``, ``b<i>_class``, ``b<i>_score``."""
    return [f"b{i}_{f}" for i in range(MAX_BOXES) for f in FIELDS]


def scored_text(boxes: Sequence[ScoredBox]) -> str:
    """A scored box set as text: the stored spelling's boxes (sorted) each with its ``score`` (6 decimals)."""
    order = sorted(boxes, key=lambda sb: (sb.box, -sb.score))
    return json.dumps([{**json.loads(canonical([sb.box]))[0], "score": round(float(sb.score), 6)} for sb in order],
                      ensure_ascii=False, separators=(",", ":"))


def scored_of(value: object) -> list[ScoredBox]:
    """The scored boxes of a scored box set's text, or of a stored box set (each box scored 1.0).
    Raises :class:`~data_engine.tasks.boxes.NotABoxSet` for text that is neither."""
    items = json.loads(value) if isinstance(value, str) else value
    if not isinstance(items, list):
        raise NotABoxSet(f"{str(value)[:60]!r} is not a list of boxes")
    out = []
    for item in items:
        score = item.get("score", 1.0) if isinstance(item, dict) else 1.0
        (box,) = parse([{k: v for k, v in item.items() if k != "score"}] if isinstance(item, dict) else [item])
        out.append(ScoredBox(box, float(score)))
    return out


def boxes_or_empty(label: str) -> list[Box]:
    """The boxes of a stored label; ``[]`` for a value that is not a box set (a discard answer)."""
    try:
        return boxes_of(label)
    except (ValueError, TypeError, KeyError):
        return []
