"""mAP at IoU 0.5 and AP per class of box sets, and the gate's paired bootstrap of mAP over images.

The matching of a model's boxes to the gold boxes is cleanlab's (the one its object-detection
``find_label_issues`` uses: per image and class, predictions by falling score, each taking the
unmatched gold box of highest IoU at or above the threshold). The AP itself is computed here, by
hand, because the gate resamples *images*: each image's predictions keep their true/false-positive
mark under resampling, so a resample's AP is the same sum with per-image weights (how many times the
image was drawn). Neither cleanlab's AP (one unweighted figure, a process pool per call) nor
scikit-learn's ``average_precision_score`` (no unmatched gold boxes) computes that; torchmetrics and
pycocotools are not dependencies. The AP is PASCAL VOC's all-point interpolated one (Everingham et
al. 2010): precision made monotone from the right, summed over the recall steps. The mean runs over
the classes with at least one gold box (COCO's convention).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from data_engine.tasks.box_issues import ScoredBox, cleanlab_labels, cleanlab_predictions
from data_engine.tasks.boxes import Box
from data_engine.tasks.paired import BOOTSTRAP_SAMPLES, PairedDiff, bootstrap_over_examples


@dataclass(frozen=True)
class Matches:
    """Every predicted box of n images, one list entry per class: ``image`` (P,) its image's index,
    ``score`` (P,), ``tp`` (P,) 1.0 when it matched a gold box; ``gold`` (n, K) gold boxes per image and class."""

    image: list[np.ndarray]
    score: list[np.ndarray]
    tp: list[np.ndarray]
    gold: np.ndarray


def match(gold: Sequence[Sequence[Box]], predicted: Sequence[Sequence[ScoredBox]], classes: Sequence[str], *,
          iou: float = 0.5) -> Matches:
    """The true/false-positive mark of every predicted box (cleanlab's matching, module docstring).
    Raises ``ValueError`` for lengths that differ or a class outside ``classes``."""
    from cleanlab.object_detection.filter import _calculate_true_positives_false_positives

    if len(gold) != len(predicted):
        raise ValueError(f"{len(gold)} gold images but {len(predicted)} predictions")
    labels, preds = cleanlab_labels(gold, classes), cleanlab_predictions(predicted, classes)
    K = len(classes)
    counts = np.zeros((len(gold), K), dtype=float)
    image, score, tp = [[] for _ in range(K)], [[] for _ in range(K)], [[] for _ in range(K)]
    for i, (lab, pred) in enumerate(zip(labels, preds)):
        for k in range(K):
            g = lab["bboxes"][lab["labels"] == k]
            counts[i, k] = len(g)
            p = pred[k]
            if not len(p):
                continue
            t, _ = _calculate_true_positives_false_positives(p, g, iou)
            image[k].append(np.full(len(p), i))
            score[k].append(p[:, 4])
            tp[k].append(np.asarray(t).ravel().astype(float))
    cat = [lambda parts, dt=dt: np.concatenate(parts).astype(dt) if parts else np.zeros(0, dtype=dt)
           for dt in (np.int64, float, float)]
    return Matches([cat[0](x) for x in image], [cat[1](x) for x in score], [cat[2](x) for x in tp], counts)


def _weighted_ap(m: Matches, k: int, weights: np.ndarray) -> np.ndarray:
    """AP of class ``k`` for each row of image ``weights`` (B, n); NaN where the class has no gold box."""
    order = np.argsort(-m.score[k], kind="stable")
    w = weights[:, m.image[k][order]]                      # (B, P)
    tp = np.cumsum(w * m.tp[k][order], axis=1)
    fp = np.cumsum(w * (1.0 - m.tp[k][order]), axis=1)
    n_gold = weights @ m.gold[:, k]                        # (B,)
    with np.errstate(invalid="ignore", divide="ignore"):
        recall = tp / n_gold[:, None]
        precision = np.where(tp + fp > 0, tp / np.maximum(tp + fp, 1e-12), 0.0)
    envelope = np.maximum.accumulate(precision[:, ::-1], axis=1)[:, ::-1]
    steps = np.diff(np.concatenate([np.zeros((len(w), 1)), recall], axis=1), axis=1)
    ap = (steps * envelope).sum(axis=1) if tp.shape[1] else np.zeros(len(w))
    return np.where(n_gold > 0, ap, np.nan)


def _map(m: Matches, weights: np.ndarray) -> np.ndarray:
    """mAP for each row of image ``weights`` (B, n): the mean AP over classes with gold boxes; NaN for none."""
    import warnings

    per = np.stack([_weighted_ap(m, k, weights) for k in range(m.gold.shape[1])], axis=1)  # (B, K)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)  # a resample without gold boxes: NaN, said above
        return np.nanmean(per, axis=1)


def average_precision(gold: Sequence[Sequence[Box]], predicted: Sequence[Sequence[ScoredBox]],
                      classes: Sequence[str], *, iou: float = 0.5) -> tuple[float | None, dict[str, float]]:
    """mAP at IoU ``iou`` and AP per class (classes with gold boxes only) of predicted box sets against
    gold box sets of n images; ``(None, {})`` without gold boxes. Raises as :func:`match`."""
    m = match(gold, predicted, classes, iou=iou)
    ones = np.ones((1, len(gold)))
    per = {classes[k]: float(_weighted_ap(m, k, ones)[0]) for k in range(len(classes)) if m.gold[:, k].sum() > 0}
    return (float(np.mean(list(per.values()))), per) if per else (None, {})


def paired_bootstrap_map(gold: Sequence[Sequence[Box]], cand: Sequence[Sequence[ScoredBox]],
                         champ: Sequence[Sequence[ScoredBox]], classes: Sequence[str], *, alpha: float,
                         n_resamples: int = BOOTSTRAP_SAMPLES, seed: int = 0) -> PairedDiff:
    """The gate's paired bootstrap of mAP@0.5 over images (candidate minus champion): the gold images
    resampled with replacement, both models' mAP recomputed on each resample with per-image weights
    (:func:`data_engine.tasks.paired.bootstrap_over_examples`, percentile interval; seeded). A resample
    without gold boxes counts as no difference."""
    mc, mh = match(gold, cand, classes), match(gold, champ, classes)
    n = len(gold)
    ones = np.ones((1, n))
    observed = float(np.nan_to_num(_map(mc, ones)[0] - _map(mh, ones)[0]))

    def statistic(idx: np.ndarray) -> np.ndarray:
        weights = np.zeros((len(idx), n))
        np.add.at(weights, (np.repeat(np.arange(len(idx)), idx.shape[1]), idx.ravel()), 1.0)
        return np.nan_to_num(_map(mc, weights) - _map(mh, weights))

    same = all(list(a) == list(b) for a, b in zip(cand, champ))
    return bootstrap_over_examples(statistic, n, observed, alpha=alpha, identical=same, n_resamples=n_resamples,
                                   seed=seed)


def scored_box_sets(y_true: Any, pred: Any, classes: Sequence[str]) -> tuple[list[list[Box]], list[list[ScoredBox]],
                                                                           list[str]]:
    """Gold box sets of ``y_true`` (n,) stored box sets, the scored predicted box sets of ``pred`` (scored
    or stored box sets as text (n,), or prediction rows (n, width) of :mod:`~data_engine.tasks.box_pack`;
    a discarded row has none) and the classes they use (``classes`` first, then any other class named,
    sorted)."""
    from data_engine.tasks import box_pack
    from data_engine.tasks.boxes import boxes_of
    from data_engine.tasks.ner import DISCARD

    gold = [boxes_of(str(v)) for v in np.asarray(y_true, dtype=object)]
    pred = np.asarray(pred)
    if pred.ndim == 2 and pred.dtype.kind == "f":
        scored = [box_pack.unpack(row, [str(c) for c in classes]) for row in pred]
    else:
        scored = [box_pack.scored_of(str(v)) if str(v) != DISCARD else [] for v in pred]
    named = {b.label for s in gold for b in s} | {sb.box.label for s in scored for sb in s}
    types = [str(c) for c in classes] + sorted(named - {str(c) for c in classes})
    return gold, scored, types


def class_recall(gold: Sequence[Sequence[Box]], predicted: Sequence[Sequence[ScoredBox]], classes: Sequence[str], *,
                 min_score: float, iou: float = 0.5) -> dict[str, tuple[float, int]]:
    """The gate's per-class figures of n images: class -> (share of its gold boxes matched by a predicted
    box of the class scored at least ``min_score``, at IoU ``iou`` (cleanlab's matching, :func:`match`);
    its gold boxes), over the classes with gold boxes. Raises as :func:`match`."""
    kept = [[sb for sb in boxes if sb.score >= min_score] for boxes in predicted]
    m = match(gold, kept, classes, iou=iou)
    support = m.gold.sum(axis=0)
    return {classes[k]: (float(m.tp[k].sum() / support[k]), int(support[k]))
            for k in range(len(classes)) if support[k] > 0}
