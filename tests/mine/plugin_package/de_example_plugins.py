"""Example plug-ins for the data engine, as a user's package would write them.

``far_right`` flags the examples with the largest value of the first numeric input column;
``first_rows`` picks candidates in pool order; ``row_sums`` embeds a tabular row as the sum and
the mean of its numeric inputs; ``prior`` is a model member predicting the class shares it was
fitted on. Each counts its calls, so a test can see the engine used it.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

import numpy as np
import pandas as pd
from sklearn.dummy import DummyClassifier

from data_engine.mine.detectors import Detector, DetectorResult, MiningData
from data_engine.mine.detectors.base import issues_frame
from data_engine.mine.embedders import Embedder
from data_engine.mine.models import Schema
from data_engine.mine.selection import SelectionPool, SelectionStrategy
from data_engine.mine.spec import ModelSpec

CALLS = {"far_right": 0, "first_rows": 0, "row_sums": 0, "prior": 0}


class FarRightDetector(Detector):
    """Flags the ``top`` examples with the largest first numeric input (score 0 for them, 1 else)."""

    issue_name = "far_right"

    def __init__(self, *, top: int = 2) -> None:
        self.top = top

    def find_issues(self, data: MiningData) -> DetectorResult:
        """Judge all N examples from ``data.inputs``."""
        CALLS["far_right"] += 1
        column = next(c for c, kind in data.schema.items() if kind == "numeric")
        values = pd.to_numeric(data.inputs[column], errors="coerce").fillna(-np.inf).to_numpy()
        flags = np.zeros(len(values), bool)
        flags[np.argsort(-values, kind="stable")[: self.top]] = True
        reason = np.where(flags, f"largest {column}", "typical").astype(object)
        frame = issues_frame(data.example_ids, flags, np.where(flags, 0.0, 1.0), reason)
        return DetectorResult(self.issue_name, frame, {"flagged": int(flags.sum())})


class FirstRowsStrategy(SelectionStrategy):
    """The first ``budget`` candidates, in pool order."""

    name = "first_rows"
    needs_model = False

    def select(self, pool: SelectionPool, budget: int) -> np.ndarray:
        """Indices 0 .. min(budget, N) - 1."""
        CALLS["first_rows"] += 1
        return np.arange(min(budget, pool.size))


class RowSumsEmbedder(Embedder):
    """A tabular row as (sum, mean) of its numeric inputs (missing numbers count as 0)."""

    name = "row_sums"
    modalities = ("tabular",)
    version = "1"

    def input_columns(self, schema: Mapping[str, str]) -> list[str]:
        """The numeric columns."""
        return [c for c, kind in schema.items() if kind == "numeric"]

    def embed(self, frame: pd.DataFrame, columns: Sequence[str]) -> np.ndarray:
        """Float32 of shape (N, 2)."""
        CALLS["row_sums"] += len(frame)
        values = frame[list(columns)].apply(pd.to_numeric, errors="coerce").fillna(0.0).to_numpy(np.float64)
        return np.column_stack([values.sum(axis=1), values.mean(axis=1)]).astype(np.float32)


def build_prior(schema: Schema, spec: ModelSpec) -> DummyClassifier:
    """An unfitted member that ignores the inputs and predicts the class shares (scikit-learn's
    DummyClassifier, strategy "prior")."""
    CALLS["prior"] += 1
    return DummyClassifier(strategy="prior")
