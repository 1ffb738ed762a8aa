"""Issue detectors, one plug-in per issue type (see :mod:`data_engine.mine.detectors.base`).

Each returns, per example it judged, ``example_id``, ``is_issue``, ``score`` in [0, 1] (low means
likely a problem), a short ``reason`` and a JSON ``detail``; plus a dataset-level summary.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Any

import numpy as np

from data_engine.mine.detectors.base import (
    DETECTORS,
    ISSUE_COLUMNS,
    Detector,
    DetectorResult,
    MiningData,
    Neighbours,
    issues_frame,
    register_detector,
)
from data_engine.mine.detectors.class_imbalance import ClassImbalanceDetector
from data_engine.mine.detectors.drift import DriftDetector
from data_engine.mine.detectors.label import LabelDetector
from data_engine.mine.detectors.lookalike import LookalikeDetector
from data_engine.mine.detectors.near_duplicate import NearDuplicateDetector
from data_engine.mine.detectors.outlier import OutlierDetector
from data_engine.mine.detectors.uncertain import UncertainDetector

__all__ = [
    "DETECTORS", "ISSUE_COLUMNS", "ClassImbalanceDetector", "Detector", "DetectorResult", "DriftDetector", "LabelDetector",
    "LookalikeDetector", "MiningData", "NearDuplicateDetector", "Neighbours", "OutlierDetector",
    "UncertainDetector", "get_detector", "register_detector", "run_detectors",
    "skipped_result",
]


def get_detector(name: str, **options: Any) -> Detector:
    """A detector instance by issue name (``options``: its keyword arguments); raise EngineError
    naming the known ones."""
    return DETECTORS.get_piece(name)(**options)


def run_detectors(data: MiningData, names: Iterable[str],
                  options: Mapping[str, Mapping[str, Any]] | None = None, *,
                  flagged_only: bool = False) -> dict[str, DetectorResult]:
    """Run the named detectors on ``data``; results by issue name, in the given order.
    ``options``: keyword arguments per detector name. A detector that does not apply to the task
    (:meth:`data_engine.tasks.Task.applies`) is skipped: its result flags nothing and says so.
    ``flagged_only``: each result holds its flagged rows only (:meth:`Detector.find_flagged`)."""
    options = options or {}
    results = {}
    for name in names:
        if not data.task.applies(name):
            results[name] = skipped_result(name, f"does not apply to task {data.task.name!r}")
            continue
        detector = get_detector(name, **dict(options.get(name, {})))
        results[name] = detector.find_flagged(data) if flagged_only else detector.find_issues(data)
    return results


def skipped_result(name: str, why: str) -> DetectorResult:
    """The result of detector ``name`` that did not run: no rows, ``why`` in the summary."""
    empty = issues_frame(np.array([], object), np.array([], bool), np.array([]), np.array([], object))
    return DetectorResult(name, empty, {"skipped": why})
