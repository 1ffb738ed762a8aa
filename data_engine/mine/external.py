"""Bring your own predictions: ``[mining] predictions = "external"``.

Mining then reads the class probabilities of the user's own model from the files under
``landing/predictions/`` (CSV, Parquet or JSONL) instead of fitting its own out-of-fold models.
Each file has a column ``example_id``, one column per class of the dataset (the class name), and a
column ``model`` naming the model (one name per file; the file's name when the column is absent).
Files are read in name order; a later file's row replaces an earlier one for the same example.

A task may read its own format instead (:meth:`~data_engine.tasks.Task.read_external`): a
detector's boxes per image (``{"example_id" or "image", "boxes": [...]}``, detection) or a
tagger's scored spans or per-token probabilities per text (NER), one JSONL row each.

Confident learning needs out-of-sample probabilities (every labeled example predicted by a model
that did not train on it): with external predictions that is the user's promise, not checked here.
"""

from __future__ import annotations

import hashlib
import logging
from collections.abc import Mapping
from pathlib import Path

import numpy as np
import pandas as pd

from data_engine.errors import EngineError
from data_engine.tasks import Classification, Task

log = logging.getLogger(__name__)

FORMATS = {".csv": "csv", ".parquet": "parquet", ".jsonl": "jsonl", ".ndjson": "jsonl"}


def read_external(folder: Path, classes: list[str], task: Task | None = None, *,
                  examples: pd.DataFrame | None = None,
                  sources: Mapping[str, str] | None = None) -> tuple[pd.DataFrame, str]:
    """All external predictions under ``folder`` as a frame indexed by ``example_id`` with one float
    column per prediction column of the dataset's ``task`` (:meth:`~data_engine.tasks.Task.prediction_columns`;
    classification, the default: one per class in ``classes`` order), and a key naming the model(s)
    and the files' content.

    Raises EngineError naming the file, row and column of a problem: no files, a missing
    ``example_id`` or prediction column, an unknown column, a repeated id, a value the task refuses
    (:meth:`~data_engine.tasks.Task.prediction_problem`: for classes a value that is not a
    probability, a row that does not sum to 1). A file in the task's own format is read by
    :meth:`~data_engine.tasks.Task.read_external` with ``examples`` (the training and unlabeled
    examples: ``example_id`` and the input columns) and ``sources`` (image reference as landed ->
    example id).
    """
    task = task or Classification()
    columns = task.prediction_columns(classes)
    files = sorted(p for p in folder.rglob("*") if p.is_file() and p.suffix.lower() in FORMATS) if folder.is_dir() else []
    if not files:
        raise EngineError(f"mining.predictions = 'external' but {folder} holds no CSV, Parquet or JSONL file")
    frames, names, digest = [], [], hashlib.sha256()
    examples = examples if examples is not None else pd.DataFrame({"example_id": pd.Series([], dtype=object)})
    for path in files:
        own = task.read_external(path, classes, examples, sources or {})
        frame, model = (own, path.stem) if own is not None else _read_one(path, columns, task)
        frames.append(frame)
        names.append(model)
        digest.update(path.read_bytes())
    merged = pd.concat(frames)
    merged = merged[~merged.index.duplicated(keep="last")]
    key = f"external:{'+'.join(dict.fromkeys(names))}/{digest.hexdigest()[:12]}"
    return merged, key


def _read_one(path: Path, classes: list[str], task: Task) -> tuple[pd.DataFrame, str]:
    """One predictions file, checked; returns (predictions indexed by example_id, model name).
    ``classes``: the task's prediction columns (the class names for classification)."""
    fmt = FORMATS[path.suffix.lower()]
    try:
        if fmt == "csv":
            raw = pd.read_csv(path, dtype={"example_id": str, "model": str})
        elif fmt == "parquet":
            raw = pd.read_parquet(path)
        else:
            raw = pd.read_json(path, lines=True, dtype={"example_id": str, "model": str})
    except Exception as exc:  # any reader failure is the file's fault: one line naming it
        raise EngineError(f"{path}: cannot read predictions ({str(exc).splitlines()[0] if str(exc) else type(exc).__name__})") from None
    if "example_id" not in raw.columns:
        raise EngineError(f"{path}: no 'example_id' column (columns: {', '.join(map(str, raw.columns))})")
    raw.columns = [str(c) for c in raw.columns]
    missing = [c for c in classes if c not in raw.columns]
    if missing:
        raise EngineError(f"{path}: no column for class {missing[0]!r}; expected one column per class "
                          f"({', '.join(classes)})")
    extra = [c for c in raw.columns if c not in (*classes, "example_id", "model")]
    if extra:
        raise EngineError(f"{path}: unknown column {extra[0]!r}; expected example_id, model and the classes")
    model = path.stem
    if "model" in raw.columns:
        names = raw["model"].dropna().astype(str).unique()
        if len(names) != 1:
            raise EngineError(f"{path}: column 'model' must hold one model name, found {len(names)}")
        model = names[0]
    ids = raw["example_id"].astype(str).str.strip()
    if (raw["example_id"].isna() | (ids == "")).any():
        raise EngineError(f"{path}: row {_row(raw['example_id'].isna() | (ids == ''))} has no example_id")
    dup = ids.duplicated()
    if dup.any():
        raise EngineError(f"{path}: example_id {ids[dup].iloc[0]!r} appears twice (row {_row(dup)})")
    probs = raw[classes].apply(pd.to_numeric, errors="coerce").to_numpy(dtype=np.float64)
    problem = task.prediction_problem(probs)
    if problem is not None:
        r, c, what = problem
        if c is None:
            raise EngineError(f"{path}: row {r + 1}: {what}")
        raise EngineError(f"{path}: row {r + 1}, column {classes[c]!r}: {raw[classes[c]].iloc[r]!r} {what}")
    return pd.DataFrame(probs, index=pd.Index(ids, name="example_id"), columns=classes), model


def _row(mask: pd.Series) -> int:
    """The 1-based data row of the first True in ``mask``."""
    return int(np.flatnonzero(mask.to_numpy())[0]) + 1


def external_probabilities(folder: Path, classes: list[str], train_ids: np.ndarray,
                           unlabeled_ids: np.ndarray, task: Task | None = None, *,
                           examples: pd.DataFrame | None = None,
                           sources: Mapping[str, str] | None = None) -> tuple[np.ndarray, np.ndarray, str]:
    """Predictions for the training examples (shape (N_train, W), all required) and the unlabeled
    ones (shape (N_unlabeled, W), NaN rows where the files have none), and the model key; W the
    ``task``'s prediction width (classification, the default: K class probabilities).

    ``examples`` / ``sources``: see :func:`read_external`. Raises EngineError when a labeled example
    has no prediction (naming how many and a few ids).
    """
    table, key = read_external(folder, classes, task, examples=examples, sources=sources)
    train = table.reindex(pd.Index(np.asarray(train_ids, dtype=str)))
    lacking = train.index[train.isna().any(axis=1)]
    if len(lacking):
        shown = ", ".join(map(repr, lacking[:3].tolist()))
        raise EngineError(f"external predictions in {folder} miss {len(lacking)} of {len(train)} labeled examples "
                          f"(e.g. {shown}); every labeled example needs an out-of-sample prediction")
    unlabeled = table.reindex(pd.Index(np.asarray(unlabeled_ids, dtype=str)))
    # Predictions for ids mining does not use (gold or discarded examples, or ids the dataset does
    # not have, e.g. a typo or another split) are not used; say so rather than drop them unseen.
    unused = table.index.difference(train.index.union(unlabeled.index))
    if len(unused):
        log.warning("external predictions in %s: %d of %d ids are not training or unlabeled examples and are "
                    "not used (e.g. %s)", folder, len(unused), len(table), ", ".join(map(repr, unused[:3].tolist())))
    return train.to_numpy(dtype=np.float64), unlabeled.to_numpy(dtype=np.float64), key
