"""Multi-label metrics and the gate's paired test on them.

* ``micro_f1``: F1 over every (example, tag) decision pooled; ``macro_f1``: the mean of each tag's
  F1 over the tags the gold set carries (a tag no gold example has says nothing about the model,
  as for classes); ``exact_match``: the share of examples whose predicted tag set equals the gold
  set (scikit-learn's ``accuracy_score`` on indicator matrices, "subset accuracy"), which is also
  reported as ``accuracy`` (what ``[gate] metric = "accuracy"`` compares for tags);
  ``per_tag_recall``: each gold tag's recall. Point figures by scikit-learn.
* The paired gate test: for exact match (accuracy), a mean over examples of "all tags right",
  McNemar's exact test on those per-example outcomes (:func:`data_engine.tasks.paired.mcnemar`);
  for the F1s, a paired bootstrap over examples (Efron & Tibshirani 1993, ch. 15-16; the
  same as the single-label macro-F1 test, :func:`data_engine.tasks.paired.bootstrap_macro_f1`):
  gold examples are resampled with replacement, both models' metric computed on each resample,
  the percentile interval of the difference and the share of resamples on the other side of 0.
  The per-resample metric is vectorised here (:func:`metric_rows`) because calling scikit-learn
  2,000 times per gate would take seconds; a test checks it against scikit-learn.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from typing import Any

import numpy as np

from data_engine.errors import EngineError
from data_engine.tasks.paired import BOOTSTRAP_SAMPLES, PairedDiff, bootstrap_over_examples, mcnemar
from data_engine.tasks.tagsets import encode

METRICS = ("micro_f1", "macro_f1", "exact_match", "accuracy")


def as_matrix(labels: Any, classes: Sequence[str]) -> np.ndarray:
    """Stored tag sets (n,), a 0/1 matrix or per-tag probabilities (n, K) (a tag at p >= 0.5) as a
    0/1 int8 matrix (n, K)."""
    arr = np.asarray(labels, dtype=object if not isinstance(labels, np.ndarray) else None)
    if arr.ndim == 2:
        return (arr >= 0.5).astype(np.int8) if arr.dtype.kind == "f" else arr.astype(np.int8)
    return encode([str(v) for v in arr], classes)


def tag_metrics(y_true: Any, pred: Any, classes: Sequence[str]) -> dict[str, float | None]:
    """micro_f1, macro_f1, exact_match and accuracy (= exact_match), None when n = 0, of predicted
    tag sets ``pred`` against gold ``y_true`` (each (n,) stored tag sets or (n, K) as
    :func:`as_matrix` reads). Each gold tag's recall: :meth:`Multilabel.class_recall`."""
    from sklearn.metrics import accuracy_score, f1_score

    t, p = as_matrix(y_true, classes), as_matrix(pred, classes)
    if len(t) == 0:
        return {"micro_f1": None, "macro_f1": None, "exact_match": None, "accuracy": None}
    present = [k for k in range(len(classes)) if t[:, k].any()]
    return {
        "micro_f1": float(f1_score(t, p, average="micro", zero_division=0)),
        "macro_f1": float(f1_score(t, p, labels=present, average="macro", zero_division=0)) if present else 0.0,
        "exact_match": float(accuracy_score(t, p)),
        "accuracy": float(accuracy_score(t, p)),
    }


def metric_rows(t: np.ndarray, p: np.ndarray, metric: str, tags: np.ndarray | None = None) -> np.ndarray:
    """``metric`` of each resample: ``t``, ``p`` of shape (B, n, K) 0/1; returns shape (B,).

    ``tags``: the tag columns macro-F1 averages over (default: all). F1 is 0 where a tag has no
    true and no predicted example (scikit-learn's ``zero_division=0``).
    """
    t, p = t.astype(bool), p.astype(bool)
    if metric in ("exact_match", "accuracy"):
        return np.all(t == p, axis=2).mean(axis=1)
    tp = np.sum(t & p, axis=1)  # (B, K)
    denom = np.sum(t, axis=1) + np.sum(p, axis=1)
    if metric == "micro_f1":
        num, den = 2.0 * tp.sum(axis=1), denom.sum(axis=1)
        return np.divide(num, den, out=np.zeros(len(num)), where=den > 0)
    if metric == "macro_f1":
        f1 = np.divide(2.0 * tp, denom, out=np.zeros(tp.shape), where=denom > 0)
        cols = np.arange(t.shape[2]) if tags is None else tags
        return f1[:, cols].mean(axis=1) if len(cols) else np.zeros(len(f1))
    raise EngineError(f"unknown multi-label metric {metric!r}; expected one of {', '.join(METRICS)}")


def paired_bootstrap(y_true: Any, cand_pred: Any, champ_pred: Any, metric: str, *, alpha: float,
                     classes: Sequence[str] | None = None, n_resamples: int = BOOTSTRAP_SAMPLES,
                     seed: int = 0) -> PairedDiff:
    """Paired bootstrap of ``metric`` (candidate minus champion) over the same n gold examples.

    ``y_true``, ``cand_pred``, ``champ_pred``: (n, K) 0/1, or (n,) stored tag sets with ``classes``
    (default: the tags any of them uses). Seeded, so the same inputs give the same verdict.
    """
    if classes is None:
        classes = sorted({tag for a in (y_true, cand_pred, champ_pred) if np.asarray(a).ndim == 1
                          for label in a for tag in json.loads(str(label))})
    t, c, h = (as_matrix(a, classes) for a in (y_true, cand_pred, champ_pred))
    if metric in ("accuracy", "exact_match"):
        return mcnemar((c == t).all(axis=1), (h == t).all(axis=1), alpha=alpha)
    tags = np.flatnonzero(t.any(axis=0))
    observed = float(metric_rows(t[None], c[None], metric, tags)[0] - metric_rows(t[None], h[None], metric, tags)[0])

    def statistic(idx: np.ndarray) -> np.ndarray:
        return metric_rows(t[idx], c[idx], metric, tags) - metric_rows(t[idx], h[idx], metric, tags)

    return bootstrap_over_examples(statistic, len(t), observed, alpha=alpha, identical=np.array_equal(c, h),
                                   n_resamples=n_resamples, seed=seed)
