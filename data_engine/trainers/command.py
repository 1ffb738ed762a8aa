"""The user's trainer as a scikit-learn classifier: ``COMMAND fit`` and ``COMMAND predict`` through files.

The contract (docs/own-model.md):

- ``COMMAND fit --train TRAIN.parquet --manifest MANIFEST.json --out MODEL_DIR``: ``TRAIN.parquet``
  holds ``example_id``, the input columns and ``label`` (the label in force); ``MANIFEST.json``
  names the task, the classes, the feature columns, the image root and the label snapshot.
- ``COMMAND predict --model MODEL_DIR --input INPUT.parquet --out PRED.parquet``: ``PRED.parquet``
  holds ``example_id`` and one probability column per class (named as the class), rows summing to 1.

:class:`CommandClassifier` follows the scikit-learn estimator contract (``fit``, ``predict_proba``,
``classes_``), so the engine's out-of-fold predictions (K fits on its folds), retraining, the gate
and serving use it as they use a built-in member. The fitted model directory is kept inside the
estimator as a tar archive with its SHA-256: it is stored (and hashed again) with the engine's model
artifact under ``HOME/models/`` and unpacked into a temporary directory for each ``predict``; the
engine never unpickles anything the trainer wrote. Running the command is a :data:`Runner`
(:mod:`data_engine.trainers.runner`); the CLI uses :func:`subprocess_runner`, the Dagster assets pass
one that goes through Dagster Pipes.
"""

from __future__ import annotations

import hashlib
import io
import json
import tarfile
import tempfile
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
from sklearn.base import BaseEstimator, ClassifierMixin

from data_engine.errors import EngineError
from data_engine.trainers.runner import (  # noqa: F401  (the runner's names, as this module offered them)
    STDERR_TAIL_LINES,
    Runner,
    run_trainer,
    set_runner,
    stderr_tail,
    subprocess_runner,
)

# How far a row of probabilities may sum from 1 (float32 rounding of a softmax stays well inside).
SUM_TOLERANCE = 1e-3

# Training rows the fitted model predicts before fit returns (checks its predict and output format).
SMOKE_ROWS = 50


def pack_dir(path: Path) -> tuple[bytes, str]:
    """The files under ``path`` as an uncompressed tar archive (sorted, no owners or times, so equal
    contents give equal bytes) and the archive's SHA-256 hex digest."""
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w") as tar:
        for f in sorted(p for p in path.rglob("*") if p.is_file()):
            info = tarfile.TarInfo(f.relative_to(path).as_posix())
            info.size = f.stat().st_size
            with f.open("rb") as fh:
                tar.addfile(info, fh)
    data = buf.getvalue()
    return data, hashlib.sha256(data).hexdigest()


def read_prediction_file(path: Path, ids: Sequence[str], *, what: str = "trainer `predict`") -> pd.DataFrame:
    """The trainer's predictions file with exactly one row per id of ``ids``, in their order (the
    index). ``what`` names the call in errors. Raises :class:`EngineError` naming the fault: no file,
    not Parquet, no ``example_id``, a missing, extra or repeated id."""
    if not path.is_file():
        raise EngineError(f"{what} wrote no {path.name}")
    try:
        frame = pd.read_parquet(path)
    except Exception as exc:  # pyarrow raises several kinds for a file that is not Parquet
        raise EngineError(f"{what}: {path.name} is not a Parquet file: {exc}") from None
    if "example_id" not in frame.columns:
        raise EngineError(f"{what}: {path.name} has no example_id column (columns: {list(frame.columns)})")
    got = frame["example_id"].astype(str)
    dup = got[got.duplicated()]
    if len(dup):
        raise EngineError(f"{what}: {path.name}: example_id {dup.iloc[0]!r} appears more than once")
    missing = [i for i in ids if i not in set(got)]
    if missing:
        raise EngineError(f"{what}: {path.name} misses {len(missing)} of {len(ids)} example_id, "
                          f"e.g. {missing[0]!r}")
    extra = sorted(set(got) - set(ids))
    if extra:
        raise EngineError(f"{what}: {path.name} has example_id {extra[0]!r}, not in the input")
    return frame.set_index(got).loc[list(ids)]


def validate_predictions(path: Path, ids: Sequence[str], classes: Sequence[str], *,
                         what: str = "trainer `predict`", per_tag: bool = False) -> np.ndarray:
    """Read the trainer's ``PRED.parquet`` and return its probabilities, shape (len(ids), len(classes)),
    in the order of ``ids`` and ``classes``. ``what`` names the call in errors. ``per_tag``: the
    columns are tags, each an independent probability in [0, 1] (multi-label); else classes whose
    probabilities sum to 1 on each row.

    Raises :class:`EngineError` naming the fault: those of :func:`read_prediction_file`, a missing
    class (or tag) column, a non-number, NaN or negative value, with ``per_tag`` a value above 1,
    else a row not summing to 1 within :data:`SUM_TOLERANCE`.
    """
    kind = "tag" if per_tag else "class"
    frame = read_prediction_file(path, ids, what=what)
    absent = [c for c in classes if c not in frame.columns]
    if absent:
        raise EngineError(f"{what}: {path.name} has no probability column for {kind} {absent[0]!r} "
                          f"(expected one column per {kind}: {list(classes)}; got {list(frame.columns)})")
    try:
        probs = frame[list(classes)].to_numpy(dtype=float)
    except (TypeError, ValueError):
        raise EngineError(f"{what}: {path.name}: column {_non_number(frame, classes)!r} holds a non-number "
                          "(probabilities are numbers)") from None
    upper = 1.0 + SUM_TOLERANCE if per_tag else np.inf
    bad = np.argwhere(~np.isfinite(probs) | (probs < 0) | (probs > upper))
    if len(bad):
        r, c = bad[0]
        rule = "in [0, 1]" if per_tag else "finite and >= 0"
        raise EngineError(f"{what}: {path.name}: row example_id={ids[r]!r}, column {classes[c]!r} is "
                          f"{float(probs[r, c])} (probabilities must be {rule})")
    if per_tag:  # independent per-tag probabilities: a row may sum to anything in [0, K]
        return np.clip(probs, 0.0, 1.0)
    sums = probs.sum(axis=1)
    off = np.flatnonzero(np.abs(sums - 1.0) > SUM_TOLERANCE)
    if len(off):
        raise EngineError(f"{what}: {path.name}: probabilities of example_id={ids[off[0]]!r} sum to "
                          f"{sums[off[0]]:.6g}, not 1 (±{SUM_TOLERANCE:g}; {len(off)} such rows)")
    return probs


def _non_number(frame: pd.DataFrame, columns: Sequence[str]) -> str:
    """The first of ``columns`` whose values do not all read as floats."""
    for c in columns:
        try:
            frame[c].to_numpy(dtype=float)
        except (TypeError, ValueError):
            return str(c)
    return str(columns[0])


class CommandModel(BaseEstimator):
    """What the user's trainer is to the engine whatever the task: the command, the files, the model
    directory kept as hashed tar bytes. Subclasses (:class:`CommandClassifier`, and the regressor of
    :mod:`data_engine.trainers.numbers`) say what the labels and predictions are.

    ``command``: the program and its first arguments (no shell); ``timeout_s``: seconds one call may
    take; ``manifest``: extra manifest entries (feature columns and kinds, image root, label snapshot,
    ``class_names`` for index-coded labels); ``out_of_fold``: who makes the out-of-fold predictions,
    ``"engine"`` (K fits on the engine's folds) or ``"trainer"`` (one fit returns them).
    ``X``: a DataFrame of the input columns: ``example_id`` is its column ``example_id`` if present,
    else the row position. After ``fit``: ``model_`` (the model directory as tar bytes) and
    ``model_sha256_``.
    """

    task = "classification"

    def __init__(self, command: Sequence[str] = (), timeout_s: float = 3600.0,
                 manifest: dict[str, Any] | None = None, out_of_fold: str = "engine") -> None:
        self.command = command
        self.timeout_s = timeout_s
        self.manifest = manifest
        self.out_of_fold = out_of_fold

    @staticmethod
    def _ids(X: pd.DataFrame) -> list[str]:
        if "example_id" in X.columns:
            return X["example_id"].astype(str).tolist()
        return [str(i) for i in range(len(X))]

    @staticmethod
    def _frame(X: pd.DataFrame, ids: list[str]) -> pd.DataFrame:
        frame = X.drop(columns=["example_id"], errors="ignore").reset_index(drop=True).copy()
        frame.insert(0, "example_id", ids)
        return frame

    def read_predictions(self, path: Path, ids: Sequence[str], *, what: str = "trainer `predict`") -> np.ndarray:
        """The predictions file of ``ids``, checked, in their order (a subclass's layout)."""
        raise NotImplementedError

    def read_answer(self, path: Path, ids: Sequence[str], inputs: pd.DataFrame, *,
                    what: str = "trainer `predict`") -> np.ndarray:
        """The predictions file of ``ids`` for the rows ``inputs`` (``INPUT.parquet``'s or
        ``TRAIN.parquet``'s table, in the order of ``ids``): :meth:`read_predictions`, unless a
        subclass needs the inputs to check the answer (spans: the texts their offsets point into)."""
        return self.read_predictions(path, ids, what=what)

    def decide(self, answer: np.ndarray) -> np.ndarray:
        """``predict``'s answer, shape (n,), from :meth:`read_predictions`'s ``answer`` for n rows (the
        serve worker answers with the same files, so it decides through its model)."""
        raise NotImplementedError

    def _run_fit(self, X: pd.DataFrame, labels: Any, manifest: dict[str, Any], folds: np.ndarray | None
                 ) -> np.ndarray | None:
        """Write ``TRAIN.parquet`` (``example_id``, the inputs, ``label``; with ``folds``, ``fold``) and
        ``MANIFEST.json``, run ``COMMAND fit``, keep ``MODEL_DIR``; with ``folds``, return the
        out-of-fold predictions the trainer wrote (:meth:`read_predictions`)."""
        if not self.command:
            raise EngineError('model.command is empty; set it when model.trainer = "command"')
        ids = self._ids(X)
        frame = self._frame(X, ids)
        features = [c for c in frame.columns if c != "example_id"]
        frame["label"] = labels
        manifest = {"task": self.task, "feature_columns": features, **manifest}
        with tempfile.TemporaryDirectory(prefix="trainer-fit-") as tmp:
            t = Path(tmp)
            if folds is not None:
                frame["fold"] = np.asarray(folds).astype(np.int64)
                manifest["out_of_fold"] = {"path": str(t / "OOF.parquet"), "folds": int(np.max(folds)) + 1,
                                           "fold_column": "fold"}
            frame.to_parquet(t / "TRAIN.parquet", index=False)
            (t / "MANIFEST.json").write_text(json.dumps(manifest, indent=2, default=str), encoding="utf-8")
            out = t / "model"
            out.mkdir()
            run_trainer(self.command, ["fit", "--train", str(t / "TRAIN.parquet"), "--manifest",
                                       str(t / "MANIFEST.json"), "--out", str(out)], self.timeout_s)
            if not any(out.iterdir()):
                raise EngineError("trainer `fit` exited 0 but wrote nothing into its --out model directory")
            self.model_, self.model_sha256_ = pack_dir(out)
            if folds is None:
                return None
            return self.read_answer(t / "OOF.parquet", ids, frame, what="trainer `fit` (out of fold)")

    def _run_predict(self, X: pd.DataFrame) -> np.ndarray:
        """Run ``COMMAND predict`` on ``X`` (n rows); return :meth:`read_predictions` of its file."""
        ids = self.input_ids(X)
        with tempfile.TemporaryDirectory(prefix="trainer-predict-") as tmp:
            t = Path(tmp)
            model = self.unpack_model(t / "model")
            frame = self.input_frame(X, ids)
            frame.to_parquet(t / "INPUT.parquet", index=False)
            run_trainer(self.command, ["predict", "--model", str(model), "--input", str(t / "INPUT.parquet"),
                                       "--out", str(t / "PRED.parquet")], self.timeout_s)
            return self.read_answer(t / "PRED.parquet", ids, frame)

    def unpack_model(self, dest: Path) -> Path:
        """Unpack the fitted model directory into ``dest`` (created) after checking its SHA-256; return ``dest``.
        Raises EngineError when the bytes do not match the recorded digest."""
        if hashlib.sha256(self.model_).hexdigest() != self.model_sha256_:
            raise EngineError("the trainer's model directory does not match its recorded SHA-256")
        with tarfile.open(fileobj=io.BytesIO(self.model_), mode="r") as tar:
            tar.extractall(dest, filter="data")
        return dest

    def input_ids(self, X: pd.DataFrame) -> list[str]:
        """The ``example_id`` of each row of ``X`` sent to ``predict``: its own when unique, else the row position."""
        ids = self._ids(X)
        # Row positions may repeat between calls but not within one; duplicate ids would be ambiguous.
        return ids if len(set(ids)) == len(ids) else [str(i) for i in range(len(X))]

    def input_frame(self, X: pd.DataFrame, ids: list[str]) -> pd.DataFrame:
        """``INPUT.parquet``'s table: ``example_id`` first, then the input columns of ``X``."""
        return self._frame(X, ids)


class CommandClassifier(ClassifierMixin, CommandModel):
    """A classifier whose ``fit`` and ``predict_proba`` run the user's trainer (:class:`CommandModel`).
    After ``fit`` also ``classes_`` and ``class_names_`` (the classes' names, ``PRED.parquet``'s columns)."""

    def fit(self, X: pd.DataFrame, y: Sequence[Any]) -> "CommandClassifier":
        """Run ``COMMAND fit`` on ``X`` (n rows) with labels ``y`` (n); raise EngineError on a failed run.

        ``y`` holds class names, or class indices when the manifest's ``class_names`` (the dataset's
        classes) says what they index (the mining stage's encoding): ``TRAIN.parquet`` always holds names.
        """
        self._fit(X, y, None)
        # A model whose predict fails or writes malformed predictions must fail here, in fit, so that
        # nothing is registered: the engine registers a candidate before anything scores it.
        self.predict_proba(X.iloc[:SMOKE_ROWS])
        return self

    def fit_out_of_fold(self, X: pd.DataFrame, y: Sequence[Any], folds: np.ndarray) -> np.ndarray:
        """One ``COMMAND fit`` that also returns out-of-fold probabilities (``[model] out_of_fold =
        "trainer"``): ``TRAIN.parquet`` gets a ``fold`` column (``folds``, shape (n,), the engine's
        folds) and the manifest's ``out_of_fold`` names the file the trainer must write, one row per
        training example, each from a model that did not train on that example's fold.

        Returns (n, len(classes_)) probabilities in ``classes_`` order; raises EngineError on a failed
        run or a malformed file (the checks of :func:`validate_predictions`).
        """
        probs = self._fit(X, y, np.asarray(folds))
        assert probs is not None
        return probs

    def _fit(self, X: pd.DataFrame, y: Sequence[Any], folds: np.ndarray | None) -> np.ndarray | None:
        extra = dict(self.manifest or {})
        dataset_classes = extra.pop("class_names", None)
        y = np.asarray(y)
        self.classes_ = np.unique(y)
        if dataset_classes is not None and y.dtype.kind in "iu":
            lookup = np.asarray([str(c) for c in dataset_classes], dtype=object)
            self.class_names_ = [str(v) for v in lookup[self.classes_]]
            labels = lookup[y]
        else:
            self.class_names_ = [str(c) for c in self.classes_]
            labels = np.asarray([str(v) for v in y], dtype=object)
        return self._run_fit(X, labels, {**extra, "classes": self.class_names_}, folds)

    def output_columns(self) -> list[str]:
        """The class columns ``PRED.parquet`` must have, in ``classes_`` order (the classes' names)."""
        # Models fitted before class_names_ existed learned names as their classes.
        return list(getattr(self, "class_names_", None) or [str(c) for c in self.classes_])

    def read_predictions(self, path: Path, ids: Sequence[str], *, what: str = "trainer `predict`") -> np.ndarray:
        """Probabilities (len(ids), len(classes_)) from ``path`` (:func:`validate_predictions`)."""
        return validate_predictions(path, ids, self.output_columns(), what=what)

    def predict_proba(self, X: pd.DataFrame) -> np.ndarray:
        """Run ``COMMAND predict`` on ``X`` (n rows); return (n, len(classes_)) probabilities in the
        order of ``classes_``. Raises EngineError on a failed run or malformed predictions."""
        return self._run_predict(X)

    def decide(self, answer: np.ndarray) -> np.ndarray:
        """The most probable class of each row of probabilities ``answer`` (n, len(classes_)), shape (n,)."""
        return self.classes_[np.argmax(answer, axis=1)]

    def predict(self, X: pd.DataFrame) -> np.ndarray:
        """The most probable class of each row of ``X``, shape (n,)."""
        return self.decide(self.predict_proba(X))
