"""Entity-level NER metrics (exact span match) and the gate's paired bootstrap over texts.

An entity is right when the predicted span has the same start, end and type as a gold span (the
CoNLL-2003 shared-task rule; Tjong Kim Sang & De Meulder 2003). Precision = right / predicted,
recall = right / gold, F1 their harmonic mean, summed over all texts (micro) and per type.
Written here because the engine has no sequence-labelling scorer installed (seqeval is not a
dependency, and it scores BIO tag sequences, not the character spans the engine stores); the
counts per text are also what the paired bootstrap resamples.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np

from data_engine.errors import EngineError
from data_engine.tasks.paired import BOOTSTRAP_SAMPLES, PairedDiff, bootstrap_over_examples
from data_engine.tasks.spans import spans_of

METRICS = ("f1", "precision", "recall")


def counts(y_true: Sequence[str], y_pred: Sequence[str], types: Sequence[str]) -> np.ndarray:
    """Per text and type: (right, predicted, gold) entity counts, shape (n, K, 3), for stored span
    sets ``y_true``, ``y_pred`` (n,). Spans of a type outside ``types`` are left out."""
    index = {t: k for k, t in enumerate(types)}
    out = np.zeros((len(y_true), len(types), 3), dtype=np.int64)
    for i, (t, p) in enumerate(zip(y_true, y_pred)):
        gold, pred = set(spans_of(str(t))), set(spans_of(str(p)))
        for s in gold & pred:
            if s.label in index:
                out[i, index[s.label], 0] += 1
        for s in pred:
            if s.label in index:
                out[i, index[s.label], 1] += 1
        for s in gold:
            if s.label in index:
                out[i, index[s.label], 2] += 1
    return out


def _prf(c: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Precision, recall and F1 of summed counts ``c`` (..., 3); 0 where undefined."""
    right, pred, gold = c[..., 0].astype(float), c[..., 1].astype(float), c[..., 2].astype(float)
    p = np.divide(right, pred, out=np.zeros_like(right), where=pred > 0)
    r = np.divide(right, gold, out=np.zeros_like(right), where=gold > 0)
    f = np.divide(2 * right, pred + gold, out=np.zeros_like(right), where=(pred + gold) > 0)
    return p, r, f


def entity_metrics(y_true: Sequence[str], y_pred: Sequence[str], types: Sequence[str] | None = None) -> dict[str, Any]:
    """``f1``, ``precision``, ``recall`` (micro over entities) and ``per_type_f1`` / ``per_type_precision``
    / ``per_type_recall`` / ``per_type_support`` of predicted span sets ``y_pred`` (n,) against gold
    ``y_true`` (n,); the figures are None for n = 0. ``types``: default the types of either side."""
    if types is None:
        types = sorted({s.label for a in (y_true, y_pred) for v in a for s in spans_of(str(v))})
    if len(y_true) == 0:
        return {"f1": None, "precision": None, "recall": None, "per_type_f1": {}, "per_type_precision": {},
                "per_type_recall": {}, "per_type_support": {}}
    c = counts(y_true, y_pred, types)
    p, r, f = _prf(c.sum(axis=(0, 1)))
    tp, tr, tf = _prf(c.sum(axis=0))
    support = c.sum(axis=0)[:, 2]
    return {"f1": float(f), "precision": float(p), "recall": float(r),
            "per_type_f1": {t: float(tf[k]) for k, t in enumerate(types)},
            "per_type_precision": {t: float(tp[k]) for k, t in enumerate(types)},
            "per_type_recall": {t: float(tr[k]) for k, t in enumerate(types)},
            "per_type_support": {t: int(support[k]) for k, t in enumerate(types)}}


def paired_bootstrap(y_true: Sequence[str], cand_pred: Sequence[str], champ_pred: Sequence[str], metric: str, *,
                     alpha: float, n_resamples: int = BOOTSTRAP_SAMPLES, seed: int = 0) -> PairedDiff:
    """Paired bootstrap over texts of entity-level ``metric`` (candidate minus champion): the gold
    texts resampled with replacement, each model's micro figure recomputed from the resampled
    per-text counts (``scipy.stats.bootstrap``, percentile interval; Efron & Tibshirani 1993).
    Seeded, so the same inputs give the same verdict."""
    if metric not in METRICS:
        raise EngineError(f"unknown NER metric {metric!r}; expected one of {', '.join(METRICS)}")
    pick = METRICS.index(metric)
    types = sorted({s.label for a in (y_true, cand_pred, champ_pred) for v in a for s in spans_of(str(v))})
    c = counts(y_true, cand_pred, types).sum(axis=1)  # (n, 3)
    h = counts(y_true, champ_pred, types).sum(axis=1)
    order = (2, 0, 1)  # f1, precision, recall as _prf returns (p, r, f)

    def figure(cc: np.ndarray) -> np.ndarray:
        return _prf(cc)[order[pick]]

    observed = float(figure(c.sum(axis=0)) - figure(h.sum(axis=0)))

    def statistic(idx: np.ndarray) -> np.ndarray:
        return figure(c[idx].sum(axis=1)) - figure(h[idx].sum(axis=1))

    return bootstrap_over_examples(statistic, len(c), observed, alpha=alpha, identical=np.array_equal(c, h),
                                   n_resamples=n_resamples, seed=seed)
