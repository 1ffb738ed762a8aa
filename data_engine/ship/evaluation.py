"""Models on labeled data: figures (accuracy, macro-F1, per-class recall, slices) of predictions.

Used by the promotion gate (on the gold set) and by ``data-engine evaluate --file`` (on any
labeled file). Pure functions over arrays, plus loading a model's predictions for a frame.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from typing import Any

import duckdb
import numpy as np
import pandas as pd

from data_engine.errors import EngineError
from data_engine.ship.registry import ModelRecord, load_model
from data_engine.store.config import EngineConfig, SliceConfig
from data_engine.store.home import Home
from data_engine.tasks import Classification, Task


@dataclass(frozen=True)
class SliceResult:
    """A model's figures on one configured slice of the gold data."""

    n: int
    accuracy: float | None
    macro_f1: float | None


@dataclass(frozen=True)
class Evaluation:
    """A model's figures on the gold data."""

    version: int | None
    n_gold: int
    accuracy: float | None
    macro_f1: float | None
    per_class_recall: dict[str, float] = field(default_factory=dict)
    slices: dict[str, SliceResult] = field(default_factory=dict)
    per_class_support: dict[str, int] = field(default_factory=dict)
    # Every figure of the task's :meth:`~data_engine.tasks.Task.metrics` (classification: accuracy
    # and macro_f1, the fields above).
    figures: dict[str, float | None] = field(default_factory=dict)

    def metric(self, name: str) -> float | None:
        """The figure named ``name`` (one of the task's metrics: ``accuracy`` or ``macro_f1`` for classes)."""
        return self.figures[name] if name in self.figures else getattr(self, name, None)

    def to_dict(self) -> dict[str, Any]:
        """JSON-friendly form (stored in ``models.metrics``): the fields, and the task's other figures."""
        out = asdict(self)
        figures = out.pop("figures")
        return out | {k: v for k, v in figures.items() if k not in out}


def slice_mask(frame: pd.DataFrame, spec: SliceConfig) -> np.ndarray:
    """Boolean mask, shape (N,), of the rows of ``frame`` in slice ``spec``."""
    if spec.column not in frame.columns:
        raise EngineError(f"gate.slices {spec.name!r}: column {spec.column!r} is not a dataset input column")
    col = frame[spec.column]
    mask = np.ones(len(frame), dtype=bool)
    if spec.equals is not None:
        mask &= (col.astype(str) == spec.equals).to_numpy()
    if spec.min is not None or spec.max is not None:
        values = pd.to_numeric(col, errors="coerce").to_numpy(dtype=float)
        with np.errstate(invalid="ignore"):
            if spec.min is not None:
                mask &= values >= spec.min
            if spec.max is not None:
                mask &= values <= spec.max
    return mask


def evaluate_predictions(
    y_true: np.ndarray,
    y_pred: np.ndarray,
    *,
    frame: pd.DataFrame | None = None,
    slices: tuple[SliceConfig, ...] = (),
    version: int | None = None,
    task: Task | None = None,
    classes: list[str] | None = None,
    masks: dict[str, np.ndarray] | None = None,
) -> Evaluation:
    """Figures of predictions ``y_pred`` (N,) against gold labels ``y_true`` (N,), by the dataset's
    ``task`` (:meth:`~data_engine.tasks.Task.metrics` and its per-class recall; default: classification).

    ``frame`` (N rows) holds the input columns the ``slices`` select on; ``classes``: the dataset's.
    ``masks``: more slices as ``{name: (N,) bool}`` (the discovered weak slices,
    :func:`data_engine.mine.slices.stored_slice_masks`); one without gold rows is left out, not
    reported empty (it was found in the training data, and gold need not cover it).
    """
    task = task or Classification()
    classes = list(classes or ())
    y_true = np.asarray(y_true, dtype=object).astype(str)
    y_pred = np.asarray(y_pred, dtype=object)
    if len(y_true) == 0:
        return Evaluation(version, 0, None, None, {}, {s.name: SliceResult(0, None, None) for s in slices})
    results = {}
    for spec in slices:
        mask = slice_mask(frame, spec) if frame is not None else np.zeros(len(y_true), dtype=bool)
        n = int(mask.sum())
        if n == 0:
            results[spec.name] = SliceResult(0, None, None)
            continue
        figures = task.metrics(y_true[mask], y_pred[mask], classes)
        results[spec.name] = SliceResult(n, figures.get("accuracy"), figures.get("macro_f1"))
    for name, mask in (masks or {}).items():
        mask = np.asarray(mask, dtype=bool)
        if name not in results and mask.any():
            figures = task.metrics(y_true[mask], y_pred[mask], classes)
            results[name] = SliceResult(int(mask.sum()), figures.get("accuracy"), figures.get("macro_f1"))
    figures = task.metrics(y_true, y_pred, classes)
    recall = task.class_recall(y_true, y_pred)
    return Evaluation(
        version=version, n_gold=len(y_true), accuracy=figures.get("accuracy"), macro_f1=figures.get("macro_f1"),
        per_class_recall={c: r for c, (r, _) in recall.items()}, slices=results,
        per_class_support={c: n for c, (_, n) in recall.items()}, figures=figures,
    )


def load_gold(con: duckdb.DuckDBPyConnection, cfg: EngineConfig) -> pd.DataFrame:
    """The gold examples (labeled, not discarded) with their input columns and ``label``."""
    from data_engine.mine.embedders.features import with_embedding
    from data_engine.ship.training import input_schema
    from data_engine.store.dataset import load_examples

    gold = load_examples(con, cfg.dataset, subset="gold")
    gold = gold[~gold["is_discarded"].astype(bool)].reset_index(drop=True)
    # The stored vectors of the embedding ride along, so models that read it do not re-embed.
    return with_embedding(con, cfg, gold, input_schema(con, cfg))[0] if len(gold) else gold


def model_input(record: ModelRecord, frame: pd.DataFrame, what: str) -> pd.DataFrame:
    """The columns ``record`` reads, from ``frame`` (``what`` names the data in the error)."""
    missing = [c for c in record.input_schema if c not in frame.columns]
    if missing:
        raise EngineError(f"model v{record.version} reads column {missing[0]!r}, which {what} lacks")
    from data_engine.mine.embedders.features import model_inputs

    # The attached embedding (stored vectors) rides along when present; else the model embeds itself.
    return frame[model_inputs(frame, record.input_schema)]


def predict_gold(home: Home, record: ModelRecord, gold: pd.DataFrame, *, what: str = "the gold data",
                 model: Any = None) -> np.ndarray:
    """Labels ``record`` (loaded sha256-checked, unless the caller passes it as ``model``) predicts
    for ``gold`` (N rows); shape (N,), str."""
    if gold.empty:
        return np.array([], dtype=object)
    X = model_input(record, gold, what)
    model = load_model(home, record) if model is None else model
    from data_engine.ship.fitting import limited_threads

    with limited_threads():
        return np.asarray(model.predict(X)).astype(str)
