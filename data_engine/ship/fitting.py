"""Fitting an estimator: the native-thread cap every fit and prediction runs under, the modality's
default served estimator, and a fit that shows its progress (one unit per member of a voting
ensemble)."""

from __future__ import annotations

import contextlib
import io
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import numpy as np
import pandas as pd

from data_engine.errors import EngineError
from data_engine.store.config import EngineConfig

# Native threads (OpenMP, BLAS) per fit/predict. Measured here: training the default ensemble on the
# 1,438 demo labels took 308 s with the libraries' default threads on a busy 2-core machine (OpenMP
# spinning against other processes) and 17 s with one thread. The engine runs beside Label Studio,
# Dagster and other runs, so one thread is the safe default; parallelism belongs to the caller.
NATIVE_THREADS = 1


@contextmanager
def limited_threads(limit: int = NATIVE_THREADS) -> Iterator[None]:
    """Cap OpenMP/BLAS threads of the libraries scikit-learn uses, for the duration of the block."""
    from threadpoolctl import threadpool_limits

    with threadpool_limits(limits=limit):
        yield


def build_estimator(cfg: EngineConfig, schema: dict[str, str], *, n_rows: int | None = None) -> tuple[Any, str]:
    """The modality's default served estimator (unfitted) and its spec string, without scoring
    candidates (:func:`data_engine.ship.training.train_candidate` chooses by evidence instead, see
    :mod:`data_engine.mine.candidates`). ``n_rows`` lets "auto" leave out members that do not
    scale (kNN on large sets).
    """
    from data_engine.mine.models import build_model

    return build_model(cfg, schema, n_rows=n_rows)


def fit_estimator(estimator: Any, X: pd.DataFrame, y: np.ndarray, *, description: str | None = None) -> Any:
    """Fit ``estimator`` on ``X`` (N, D) and labels ``y`` (N,) (or a tag matrix (N, K)); wrap a
    fitting failure in EngineError.

    With a ``description``, the fit shows progress (:mod:`data_engine.progress`: a bar on a terminal,
    log lines otherwise), one unit per member of a voting ensemble.
    """
    try:
        if description is None:
            return estimator.fit(X, y)
        return _fit_with_progress(estimator, X, y, description)
    except (ValueError, TypeError) as exc:
        raise EngineError(f"training {type(estimator).__name__} failed: {exc}") from None


class _MemberTicks(io.TextIOBase):
    """A stdout stand-in during a fit: each line of scikit-learn's own ``[Voting] ... (i of n)``
    report advances the bar; anything else goes on to the real stdout."""

    def __init__(self, bar: Any, out: Any) -> None:
        self._bar, self._out = bar, out
        self._after_report = False

    def write(self, text: str) -> int:
        if "[Voting]" in text:
            self._bar.advance(text.count("[Voting]"))
            self._after_report = True  # print() writes the line's end separately
        elif text == "\n" and self._after_report:
            self._after_report = False
        elif text:
            self._after_report = False
            self._out.write(text)
        return len(text)


def _fit_with_progress(estimator: Any, X: pd.DataFrame, y: np.ndarray, description: str) -> Any:
    """Fit with a progress bar. A voting ensemble counts its members through scikit-learn's own
    per-member report (``verbose``), switched on for this fit only so the stored model is unchanged."""
    from data_engine.progress import progress

    members = getattr(estimator, "estimators", None)
    voting = isinstance(members, list) and len(members) > 1 and "verbose" in estimator.get_params(deep=False)
    targets = np.asarray(y)
    # A tag matrix (N, K) has K tags; labels (N,) their distinct classes.
    kinds = f"{targets.shape[1]} tags" if targets.ndim == 2 else f"{len(pd.unique(targets))} classes"
    what = (f"{description}: {', '.join(name for name, _ in members)}" if voting else description)
    with progress(f"{what} on {len(y)} labels in {kinds}", len(members) if voting else 1,
                  unit="members" if voting else "fits") as bar:
        if not voting:
            fitted = estimator.fit(X, y)
            bar.advance()
            return fitted
        estimator.set_params(verbose=True)
        try:
            with contextlib.redirect_stdout(_MemberTicks(bar, sys.stdout)):
                return estimator.fit(X, y)
        finally:
            estimator.set_params(verbose=False)
