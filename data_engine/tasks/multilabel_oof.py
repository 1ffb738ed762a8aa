"""Out-of-fold per-tag probabilities for multi-label data: one calibrated binary model per tag.

Each of the modality's members (the single-label classifiers of :mod:`data_engine.mine.models`)
becomes a :class:`TagwiseClassifier`: one copy of the member per tag, fitted on "has the tag / has
not", its probability calibrated by Platt scaling (``sklearn.calibration.CalibratedClassifierCV``,
``method="sigmoid"``) so that a tag's 0.7 means about 70 % like another tag's. The result has shape
(n, K) and its rows need not sum to 1 (cleanlab's multi-label check reads it so).

Written here rather than with ``sklearn.multiclass.OneVsRestClassifier`` because that one takes a
single estimator for every tag: a tag seen on 2 examples cannot hold 3 calibration folds, and a
tag that a fold's training part never (or always) carries has nothing to learn. Per tag this
picks what the data allows: calibrated (at least :data:`MIN_CALIBRATION_POSITIVES` of each side),
uncalibrated (both sides seen), or the training share (one side only).

Folds are plain shuffled K-fold (scikit-learn has no multi-label stratification); members are
mixed by the convex weights that maximise the out-of-fold likelihood of the given tags, each
(example, tag) a Bernoulli observation (:func:`data_engine.tasks.oof.mixture_weights`).
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import numpy as np
import pandas as pd
from sklearn.base import BaseEstimator, ClassifierMixin, clone

from data_engine.compute.backend import Backend, LocalBackend
from data_engine.errors import EngineError
from data_engine.tasks.oof import OOFResult, mixture_weights, single_threaded

# Platt scaling needs this many examples with and without a tag (one per calibration fold and more).
MIN_CALIBRATION_POSITIVES = 6
CALIBRATION_FOLDS = 3


class TagwiseClassifier(ClassifierMixin, BaseEstimator):
    """One binary copy of ``estimator`` per tag (columns of a 0/1 matrix ``Y`` of shape (n, K)).

    ``predict_proba(X)`` gives shape (n, K): each tag's calibrated probability. ``classes_`` holds
    ``tags`` (the tag names, for a served model), else ``0..K-1``.
    """

    def __init__(self, estimator: Any, calibrate: bool = True, tags: tuple[str, ...] | None = None) -> None:
        self.estimator = estimator
        self.calibrate = calibrate
        self.tags = tags

    def fit(self, X: Any, Y: np.ndarray) -> TagwiseClassifier:
        """Fit one model per tag column of ``Y`` (n, K) 0/1."""
        from sklearn.calibration import CalibratedClassifierCV

        Y = np.asarray(Y, dtype=np.int8)
        if Y.ndim != 2:
            raise EngineError(f"multi-label targets must be a (n, K) 0/1 matrix, got shape {Y.shape}")
        if self.tags is not None and len(self.tags) != Y.shape[1]:
            raise EngineError(f"{len(self.tags)} tag names for {Y.shape[1]} tag columns")
        self.classes_ = np.asarray(list(self.tags) if self.tags is not None else list(range(Y.shape[1])), dtype=object)
        self.models_: list[Any] = []
        self.priors_ = Y.mean(axis=0) if len(Y) else np.zeros(Y.shape[1])
        for k in range(Y.shape[1]):
            pos = int(Y[:, k].sum())
            neg = len(Y) - pos
            if pos == 0 or neg == 0:
                self.models_.append(None)  # one side only: the training share is the probability
                continue
            if self.calibrate and min(pos, neg) >= MIN_CALIBRATION_POSITIVES:
                model = CalibratedClassifierCV(clone(self.estimator), method="sigmoid", cv=CALIBRATION_FOLDS)
            else:
                model = clone(self.estimator)
            self.models_.append(model.fit(X, Y[:, k]))
        return self

    def predict_proba(self, X: Any) -> np.ndarray:
        """Per-tag probabilities, shape (n, K)."""
        out = np.empty((len(X), len(self.models_)), dtype=np.float64)
        for k, model in enumerate(self.models_):
            if model is None:
                out[:, k] = self.priors_[k]
            else:
                proba = model.predict_proba(X)
                cls = list(model.classes_)
                out[:, k] = proba[:, cls.index(1)] if 1 in cls else 0.0
        return out

    def predict(self, X: Any) -> np.ndarray:
        """The tags at probability >= 0.5: with ``tags`` (a served model) the stored tag sets, shape
        (n,) (as a classifier answers class names, so the gate and scoring read them alike); else
        the 0/1 tag matrix (n, K)."""
        on = (self.predict_proba(X) >= 0.5).astype(np.int8)
        if self.tags is None:
            return on
        from data_engine.tasks.tagsets import decode

        return np.asarray(decode(on, list(self.tags)), dtype=object)


def one_vs_rest(member: Any) -> Any:
    """The multi-label estimator over one single-label member: a :class:`TagwiseClassifier`; the
    user's trainer is given the tag sets themselves (:class:`data_engine.tasks.multilabel_trainer.CommandTagger`);
    a multi-label estimator already is returned as it is."""
    from data_engine.trainers.command import CommandClassifier
    from data_engine.tasks.multilabel_trainer import CommandTagger

    if isinstance(member, (TagwiseClassifier, CommandTagger)):
        return member
    if isinstance(member, CommandClassifier):
        return CommandTagger(**member.get_params())
    return TagwiseClassifier(member)


def assign_tag_folds(Y: np.ndarray, *, folds: int, seed: int) -> tuple[np.ndarray, int, tuple[int, ...]]:
    """Shuffled K-fold ids for n examples (shape (n,)), the folds used, and the rare tags
    (indices of tags given to fewer examples than ``folds``). Raises ``EngineError`` below 2 examples."""
    from sklearn.model_selection import KFold

    Y = np.asarray(Y)
    n = len(Y)
    n_folds = int(min(folds, n))
    if n_folds < 2:
        raise EngineError("out-of-fold predictions need at least two labeled examples")
    fold_of = np.empty(n, dtype=np.int32)
    for k, (_, test) in enumerate(KFold(n_splits=n_folds, shuffle=True, random_state=seed).split(np.zeros(n))):
        fold_of[test] = k
    counts = Y.sum(axis=0) if Y.ndim == 2 else np.zeros(0)
    rare = tuple(int(k) for k in np.flatnonzero(counts < folds))
    return fold_of, n_folds, rare


def mix_tag_probabilities(member_preds: Mapping[str, np.ndarray], Y: np.ndarray) -> tuple[np.ndarray, dict[str, float]]:
    """Members' (n, K) tag probabilities mixed by the weights that maximise the given tags'
    likelihood, every (example, tag) a Bernoulli observation; returns the mix (n, K) and the weights."""
    names = list(member_preds)
    stacked = np.stack([member_preds[m] for m in names])  # (M, n, K)
    m, n, k = stacked.shape
    # As two-class probabilities [1 - p, p] of n*K observations: the single-label EM applies as is.
    as_binary = np.stack([1.0 - stacked, stacked], axis=-1).reshape(m, n * k, 2)
    w = mixture_weights(as_binary, np.asarray(Y, dtype=np.int64).reshape(-1))
    return np.tensordot(w, stacked, axes=1), {name: float(v) for name, v in zip(names, w)}


def _fit_predict_tags(estimator: Any, X_train: pd.DataFrame, Y_train: np.ndarray,
                      X_test: pd.DataFrame) -> np.ndarray:
    """Fit on the training part, return the test part's (m, K) tag probabilities."""
    with single_threaded():
        return estimator.fit(X_train, Y_train).predict_proba(X_test)


def out_of_fold_tag_probabilities(members: Mapping[str, Any], X: pd.DataFrame, Y: np.ndarray, *, folds: int = 5,
                                  seed: int = 0, n_jobs: int = 1, compute: Backend | None = None) -> OOFResult:
    """Out-of-fold per-tag probabilities of every member on the same folds, mixed.

    Parameters
    ----------
    members : name -> unfitted estimator (a multi-label one, or a single-label member that
        :func:`one_vs_rest` wraps)
    X : pd.DataFrame of shape (n, D)
    Y : np.ndarray of shape (n, K), 0/1 given tags
    folds, seed, n_jobs, compute : as :func:`data_engine.tasks.oof.ensemble_out_of_fold_probabilities`

    Returns
    -------
    OOFResult with ``probs`` of shape (n, K) (independent per-tag probabilities), ``rare_classes``
    the tags given to fewer examples than folds, ``weights`` and ``member_probs`` per member.
    """
    Y = np.asarray(Y, dtype=np.int8)
    if len(X) != len(Y):
        raise EngineError(f"{len(X)} feature rows but {len(Y)} labels")
    fold_of, n_folds, rare = assign_tag_folds(Y, folds=folds, seed=seed)
    X = X.reset_index(drop=True)
    estimators = {name: one_vs_rest(est) for name, est in members.items()}
    names = list(estimators)
    splits = [(np.flatnonzero(fold_of != k), np.flatnonzero(fold_of == k)) for k in range(n_folds)]
    calls = [(name, k) for name in names for k in range(n_folds)]
    compute = compute or LocalBackend(n_jobs)
    parts = compute.starmap(_fit_predict_tags, [(clone(estimators[name]), X.iloc[splits[k][0]], Y[splits[k][0]],
                                                 X.iloc[splits[k][1]]) for name, k in calls],
                            description="out-of-fold fits", unit="fits")
    member_probs = {name: np.empty(Y.shape, dtype=np.float64) for name in names}
    for (name, k), part in zip(calls, parts):
        member_probs[name][splits[k][1]] = part
    probs, weights = mix_tag_probabilities(member_probs, Y)
    return OOFResult(probs=probs, folds=fold_of, rare_classes=rare, n_folds=n_folds, weights=weights,
                     member_probs=member_probs)
