"""Box sets in cleanlab's object-detection format, and cleanlab's label issues per image.

cleanlab's ``object_detection`` module wants, per image, the given labels as ``{"bboxes": (m, 4)
[x1, y1, x2, y2], "labels": (m,) class index}`` and the predictions as a list of K arrays (one per
class) of shape (k, 5) ``[x1, y1, x2, y2, score]`` (cleanlab docs, ``object_detection.filter``).
This module converts (pixels ``x, y, w, h`` -> corners) and calls cleanlab; images without boxes and
images without predictions are passed as empty arrays of the right shape (an empty list crashes it,
cleanlab#1234 / #1228).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from data_engine.tasks.boxes import Box


def without_forked_pools() -> None:
    """Make cleanlab's box check compute its per-class precision on a thread pool, not in forked processes.

    ``cleanlab.object_detection.filter`` opens a ``multiprocessing.Pool`` (fork, one process by
    default) on every call and leaves it to the garbage collector. Forking the engine's processes
    (Dagster's run workers and sensors, a test worker) copies locks other threads hold, and the pool's
    worker inherits their SIGTERM handlers: a whole ``make test`` run hung for good with that worker
    waiting on the pool's queue lock, its SIGTERM at the pool's end caught and ignored. A
    ``multiprocessing.pool.ThreadPool`` has the same ``starmap`` and gives the same values without a
    process. Set on cleanlab's module (the one name it looks up), idempotent, so safe from any thread.
    """
    from multiprocessing.pool import ThreadPool

    from cleanlab.object_detection import filter as od_filter

    od_filter.Pool = ThreadPool


@dataclass(frozen=True)
class ScoredBox:
    """A model's box: ``box`` (pixels) and its ``score`` in [0, 1]."""

    box: Box
    score: float


def _index(classes: Sequence[str]) -> dict[str, int]:
    return {c: k for k, c in enumerate(classes)}


def cleanlab_labels(given: Sequence[Sequence[Box]], classes: Sequence[str]) -> list[dict[str, Any]]:
    """The given box sets of n images in cleanlab's label format (length n).
    Raises ``ValueError`` naming the image index and class of a box outside ``classes``."""
    index = _index(classes)
    out = []
    for i, boxes in enumerate(given):
        for b in boxes:
            if b.label not in index:
                raise ValueError(f"image {i}: class {b.label!r} is not one of the classes ({', '.join(classes)})")
        out.append({"bboxes": np.array([[b.x, b.y, b.x + b.w, b.y + b.h] for b in boxes], dtype=np.float64).reshape(-1, 4),
                    "labels": np.array([index[b.label] for b in boxes], dtype=np.int64)})
    return out


def cleanlab_predictions(predicted: Sequence[Sequence[ScoredBox]], classes: Sequence[str]) -> list[np.ndarray]:
    """The predicted box sets of n images in cleanlab's prediction format: per image an object array
    of K arrays (k, 5). Raises ``ValueError`` naming the image index for a class outside ``classes``
    or a score outside [0, 1]."""
    index = _index(classes)
    out = []
    for i, boxes in enumerate(predicted):
        per_class: list[list[list[float]]] = [[] for _ in classes]
        for sb in boxes:
            if sb.box.label not in index:
                raise ValueError(f"image {i}: predicted class {sb.box.label!r} is not one of the classes ({', '.join(classes)})")
            if not 0.0 <= sb.score <= 1.0:
                raise ValueError(f"image {i}: predicted box score {sb.score} is not in [0, 1]")
            b = sb.box
            per_class[index[b.label]].append([b.x, b.y, b.x + b.w, b.y + b.h, sb.score])
        arr = np.empty(len(classes), dtype=object)
        for k, rows in enumerate(per_class):
            arr[k] = np.array(rows, dtype=np.float64).reshape(-1, 5)
        out.append(arr)
    return out


@dataclass(frozen=True)
class BoxIssues:
    """cleanlab's check of n images: ``scores`` (n,) label quality score in [0, 1] (low = suspect),
    ``is_issue`` (n,) bool, and per image the per-box scores of each issue kind: ``overlooked`` (one
    per predicted box the labels miss), ``badly_located`` and ``swapped`` (one per given box); low =
    likely that kind of error, NaN where the kind does not apply."""

    scores: np.ndarray
    is_issue: np.ndarray
    overlooked: list[np.ndarray]
    badly_located: list[np.ndarray]
    swapped: list[np.ndarray]


def box_issues(given: Sequence[Sequence[Box]], predicted: Sequence[Sequence[ScoredBox]],
               classes: Sequence[str]) -> BoxIssues:
    """Label issues of n images' given box sets against out-of-sample predicted box sets (both length
    n, pixels). Source: ``cleanlab.object_detection.rank.get_label_quality_scores`` (per-image score),
    ``cleanlab.object_detection.filter.find_label_issues`` (the flags) and ``rank``'s per-box
    overlooked / badly-located / swap scores. Raises ``ValueError`` for lengths that differ or the
    errors of :func:`cleanlab_labels` / :func:`cleanlab_predictions`."""
    from cleanlab.object_detection import filter as od_filter
    from cleanlab.object_detection import rank as od_rank

    if len(given) != len(predicted):
        raise ValueError(f"{len(given)} labeled images but {len(predicted)} predictions")
    labels = cleanlab_labels(given, classes)
    preds = cleanlab_predictions(predicted, classes)
    without_forked_pools()
    scores = od_rank.get_label_quality_scores(labels, preds, verbose=False)
    # No cleanlab_copies_released here: cleanlab.object_detection.filter has its own check, not
    # cleanlab.filter's (no _reduce_issues, no module globals kept).
    flags = od_filter.find_label_issues(labels, preds)
    return BoxIssues(np.asarray(scores, dtype=float), np.asarray(flags, dtype=bool),
                     list(od_rank.compute_overlooked_box_scores(labels=labels, predictions=preds)),
                     list(od_rank.compute_badloc_box_scores(labels=labels, predictions=preds)),
                     list(od_rank.compute_swap_box_scores(labels=labels, predictions=preds)))

