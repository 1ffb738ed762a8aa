"""How a neighbour search is measured: the share of the true neighbours it finds (recall@k) and
the wall-clock seconds of each of its stages."""

from __future__ import annotations

import time
from collections.abc import Callable

import numpy as np


def recall_at_k(found: np.ndarray, truth: np.ndarray) -> float:
    """Share of the true neighbours found: ``found`` and ``truth`` are row numbers, shape (Q, k);
    order within a row does not matter (the usual recall@k of approximate-neighbour benchmarks)."""
    if truth.size == 0:
        return 1.0
    hits = sum(len(np.intersect1d(f, t)) for f, t in zip(found, truth))
    return hits / truth.size


def stopwatch() -> Callable[[], float]:
    """A lap timer: each call gives the seconds since the previous call (or since it was made)."""
    clock = [time.perf_counter()]

    def lap() -> float:
        clock.append(time.perf_counter())
        return clock[-1] - clock[-2]

    return lap
