"""The detector plug-in contract: what a detector reads, what it returns, and the registry."""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any, ClassVar

import numpy as np
import pandas as pd

from data_engine.plugins import Registry
from data_engine.tasks import Classification, Task

# Columns every detector returns, one row per example it judged.
ISSUE_COLUMNS = ("example_id", "is_issue", "score", "reason", "detail")


# Tabular data with at most this many input columns (none of them text) is low-dimensional: a few
# categorical or integer columns have few distinct rows, so exact copies are common (two third-class
# passengers of one age and fare) and no sign of an error (digits' 64 pixel columns are well above it).
LOW_DIMENSIONS = 16
# Rows of a detector's detail serialised to JSON at once (:func:`issues_frame`).
DETAIL_BLOCK_ROWS = 100_000


@dataclass(frozen=True)
class Neighbours:
    """The k nearest other examples of each example in feature space.

    distances : np.ndarray of shape (N, k), ascending per row
    indices : np.ndarray of shape (N, k), row indices into the same N examples (never the row itself)
    """

    distances: np.ndarray
    indices: np.ndarray


@dataclass(frozen=True)
class MiningData:
    """Everything detectors read about the N examples being mined.

    example_ids : np.ndarray of shape (N,)
    labels : np.ndarray of shape (N,) or (N, K), the task's encoded label in force (classification:
        the class index; tags: a 0/1 row), -1 (in every cell) if unlabeled
    classes : tuple of str, the K class names
    probs : np.ndarray of shape (N, W), the task's predictions (W = ``task.prediction_width(classes)``,
        classification: K class probabilities in ``classes`` order); out-of-fold for labeled rows, a
        model trained on all labeled rows (or the deployed champion) for unlabeled ones; NaN rows where none
    out_of_sample : np.ndarray of shape (N,), bool: ``probs`` came from a model that never saw the row
    feature_hash : np.ndarray of shape (N,), hash of the input columns (equal = exact duplicate)
    neighbours : Neighbours or None
    rare_classes : class indices with too few examples for K folds
    image_hashes : np.ndarray of shape (N,), uint64 perceptual hash of each row's image file, or None
    image_paths : np.ndarray of shape (N,), absolute path of each row's image file, or None
    inputs : pd.DataFrame of shape (N, D) or None, the input columns of the N examples
    schema : input column -> 'numeric' | 'categorical' | 'text' (with ``inputs``)
    modality : the dataset's modality ('tabular' | 'text' | 'image')
    verdicts : pd.DataFrame or None, one row per example a person reviewed at its current version:
        ``example_id``, ``feature_hash``, ``is_discarded``, ``label`` (the verdict, None if
        discarded), ``given_label`` and the input columns (see ``mine.runs.reviewed_examples``);
        with ``embedding``, also their vectors in ``EMBEDDING_COLUMN``
    embedding : np.ndarray of shape (N, D) or None, the modality's own vectors of the N examples
        where surface features miss input columns (image files, vector columns; see
        ``mine.embedders.features.own_embedding``)
    embedding_name : the embedder that made ``embedding``
    drift_scores : {example_id: out-of-fold probability in [0, 1] that the row is new} for the rows
        of batches found drifted at ingest (``ingest.batch_drift.drift_scores``), or None
    task : the dataset's task plug-in (what a label is; the label and uncertainty checks are its own)
    """

    example_ids: np.ndarray
    labels: np.ndarray
    classes: tuple[str, ...]
    probs: np.ndarray
    out_of_sample: np.ndarray
    feature_hash: np.ndarray
    neighbours: Neighbours | None = None
    rare_classes: tuple[int, ...] = ()
    image_hashes: np.ndarray | None = None
    image_paths: np.ndarray | None = None
    inputs: pd.DataFrame | None = None
    schema: dict[str, str] = field(default_factory=dict)
    modality: str = "tabular"
    verdicts: pd.DataFrame | None = None
    embedding: np.ndarray | None = None
    embedding_name: str = ""
    drift_scores: dict[str, float] | None = None
    task: Task = field(default_factory=Classification)

    def __post_init__(self) -> None:
        n = len(self.example_ids)
        for name in ("labels", "out_of_sample", "feature_hash"):
            if len(getattr(self, name)) != n:
                raise ValueError(f"MiningData.{name} has {len(getattr(self, name))} rows, expected {n}")
        if self.embedding is not None and len(self.embedding) != n:
            raise ValueError(f"MiningData.embedding has {len(self.embedding)} rows, expected {n}")
        width = self.task.prediction_width(self.classes)
        if self.probs.shape != (n, width):
            raise ValueError(f"MiningData.probs has shape {self.probs.shape}, expected ({n}, {width})")

    @property
    def low_dimensional(self) -> bool:
        """Tabular data with at most :data:`LOW_DIMENSIONS` numeric or categorical input columns,
        where identical rows arise legitimately and say nothing about a label."""
        kinds = list(self.schema.values())
        return (self.modality == "tabular" and self.image_paths is None and 0 < len(kinds) <= LOW_DIMENSIONS
                and "text" not in kinds)

    @property
    def labeled(self) -> np.ndarray:
        """Boolean mask of shape (N,): rows with a label in force (a number label: not NaN; a tag
        row: not -1)."""
        if self.labels.ndim == 2:
            return (self.labels >= 0).all(axis=1)
        if self.labels.dtype.kind == "f":
            return ~np.isnan(self.labels)
        return self.labels >= 0

    @property
    def label_codes(self) -> np.ndarray:
        """Shape (N,) int: the class index for classes; for number labels (regression, NaN =
        unlabeled) one code per distinct value, for tag rows one per distinct tag set, so detectors
        that compare labels for equality (copies with different labels) read all alike; -1 if unlabeled."""
        if self.labels.ndim == 1 and self.labels.dtype.kind != "f":
            return self.labels
        codes = np.full(len(self.labels), -1, dtype=np.int64)
        known = self.labeled
        if known.any():
            found = self.labels[known]
            codes[known] = np.unique(found, axis=0 if found.ndim == 2 else None, return_inverse=True)[1].reshape(-1)
        return codes

    def label_probability(self) -> np.ndarray:
        """Shape (N,): the predicted probability of each row's label in force (NaN when unlabeled,
        without predictions, or for a task without classes, or whose label row is not one entry per
        prediction column); for tags, the product of the per-tag probabilities of the given set."""
        out = np.full(len(self.labels), np.nan)
        if not self.task.has_classes:  # a probability of the given label exists only over classes
            return out
        if self.labels.ndim == 2 and self.labels.shape[1] != self.probs.shape[1]:
            return out  # a label that is not one number per prediction column (entity spans): no p(label)
        known = self.labeled & self.has_probs
        if self.labels.ndim == 1:
            out[known] = self.probs[known, self.labels[known]]
        else:
            p, y = self.probs[known], self.labels[known] > 0
            out[known] = np.prod(np.where(y, p, 1.0 - p), axis=1)
        return out

    def label_names(self, rows: np.ndarray) -> np.ndarray:
        """The stored spelling of the labels of ``rows`` (indices, shape (M,)); '' if unlabeled."""
        if self.labels.ndim == 1 and self.labels.dtype.kind != "f":
            return self.class_names(self.labels[rows])
        known = self.labeled[rows]
        out = np.full(len(rows), "", dtype=object)
        if known.any():
            out[known] = self.task.decode(self.labels[rows][known], self.classes)
        return out

    @property
    def has_probs(self) -> np.ndarray:
        """Boolean mask of shape (N,): rows with predicted probabilities."""
        return np.isfinite(self.probs).all(axis=1) if self.probs.size else np.zeros(len(self.labels), bool)

    def class_names(self, index: np.ndarray) -> np.ndarray:
        """Class names for class indices (shape (M,)); '' for -1."""
        names = np.asarray(list(self.classes) + [""], dtype=object)
        return names[np.where(index < 0, len(self.classes), index)]


@dataclass
class DetectorResult:
    """Per-example findings (``ISSUE_COLUMNS``) and a dataset-level summary."""

    issue_name: str
    issues: pd.DataFrame
    summary: dict[str, Any] = field(default_factory=dict)
    # Set by :meth:`without_rows`: the count of the rows it dropped.
    flagged: int | None = None

    @property
    def n_issues(self) -> int:
        """How many examples were flagged."""
        if self.flagged is not None:
            return self.flagged
        return int(self.issues["is_issue"].sum()) if len(self.issues) else int(self.summary.get("is_issue", False))

    def without_rows(self) -> "DetectorResult":
        """This result without its per-example rows (an empty frame of the same columns), its
        :attr:`n_issues` and summary kept: what a run needs once the rows are in its issues table
        (about 330 MB for the generated set's detectors at a million rows, docs/mining.md)."""
        return DetectorResult(self.issue_name, self.issues.iloc[:0], self.summary, flagged=self.n_issues)

    def flagged_only(self) -> "DetectorResult":
        """This result with only its flagged rows (``is_issue``), its :attr:`n_issues` and summary
        kept: what a run queues and stores of a type other than ``label`` (the outlier and copy
        checks' unflagged rows were about 200 MB at a million rows, docs/mining.md)."""
        keep = self.issues["is_issue"].to_numpy(dtype=bool) if len(self.issues) else np.zeros(0, bool)
        return DetectorResult(self.issue_name, self.issues[keep], self.summary, flagged=self.n_issues)


class Detector(ABC):
    """One issue type. Subclasses set ``issue_name`` and implement :meth:`find_issues`."""

    issue_name: ClassVar[str]
    # Whether the detector needs nearest neighbours in feature space (computed once, shared).
    needs_neighbours: ClassVar[bool] = False

    @abstractmethod
    def find_issues(self, data: MiningData) -> DetectorResult:
        """Judge the examples in ``data``; scores in [0, 1], low means likely a problem."""

    def find_flagged(self, data: MiningData) -> DetectorResult:
        """:meth:`find_issues`' result with its flagged rows only (:meth:`DetectorResult.flagged_only`):
        what a run keeps of a type other than ``label`` and ``lookalike``. A detector may override it
        to skip building the rows nobody keeps; the rows, count and summary must be those of
        ``find_issues(data).flagged_only()``."""
        return self.find_issues(data).flagged_only()


# The detectors by issue name: the built-ins (registered as their modules load) and those of the
# installed packages' ``data_engine.detectors`` entry points (docs/architecture.md).
DETECTORS: Registry[type[Detector]] = Registry("detector", "data_engine.detectors", name_attr="issue_name",
                                                base=Detector)


def register_detector(cls: type[Detector]) -> type[Detector]:
    """Class decorator adding a detector to :data:`DETECTORS` under its ``issue_name``."""
    return DETECTORS.register(cls)


def issues_frame(example_ids: np.ndarray, is_issue: np.ndarray, score: np.ndarray,
                 reason: np.ndarray | pd.api.extensions.ExtensionArray,
                 detail: pd.DataFrame | Callable[[slice], pd.DataFrame] | None = None) -> pd.DataFrame:
    """Assemble the tidy per-example result; ``detail`` columns become one JSON object per row.

    ``example_ids``, ``is_issue``, ``score`` (clipped to [0, 1]) and ``reason``: shape (N,).
    ``reason`` may already be a pandas ``str`` array (:func:`reason_column`): it is then the
    frame's column as it is, so a caller can turn a long list of reasons into it and let the list
    go before calling. ``detail`` is a frame of one row per example, or a function returning that
    frame's rows of a slice (called on :data:`DETAIL_BLOCK_ROWS` rows at a time), so a detector whose
    rows are all kept need not hold the whole table's detail columns at once: the JSON text is the
    same either way. The id, reason and detail columns are pandas' ``str`` dtype, with no rows too
    (an empty frame has no values to infer it from).
    """
    frame = pd.DataFrame({
        "example_id": pd.array(np.asarray(example_ids, dtype=object), dtype="str"),
        "is_issue": np.asarray(is_issue, dtype=bool),
        "score": np.clip(np.asarray(score, dtype=np.float64), 0.0, 1.0),
        "reason": reason_column(reason),
    })
    if detail is None or len(frame) == 0 or (isinstance(detail, pd.DataFrame) and detail.shape[1] == 0):
        frame["detail"] = pd.array(["{}"] * len(frame), dtype="str")
        return frame
    if isinstance(detail, pd.DataFrame):
        whole = detail.reset_index(drop=True)
        detail = lambda part: whole.iloc[part]  # noqa: E731 - the frame's rows of a slice
    # One JSON document per row, serialised by pandas in C rather than json.dumps per row, a block
    # of rows at a time: the whole table's JSON text and its split lines at once were the detectors'
    # largest transient (about 0.5 GB at a million rows). The column is pandas' string dtype either way.
    frame["detail"] = pd.concat(
        [pd.Series(detail(slice(i, i + DETAIL_BLOCK_ROWS)).to_json(orient="records", lines=True).splitlines())
         for i in range(0, len(frame), DETAIL_BLOCK_ROWS)], ignore_index=True).array
    return frame


def reason_column(reasons: Sequence[str] | np.ndarray | pd.api.extensions.ExtensionArray
                  ) -> pd.api.extensions.ExtensionArray:
    """``reasons`` (shape (N,)) as the frame's reason column: pandas' ``str`` array (Arrow strings,
    one buffer), not a Python object per row; returned as it is when it is one already."""
    if isinstance(reasons, pd.api.extensions.ExtensionArray) and reasons.dtype == "str":
        return reasons
    return pd.array(np.asarray(reasons, dtype=object), dtype="str")


def fmt(values: np.ndarray, spec: str = "%.2f") -> np.ndarray:
    """Format a numeric array element-wise (vectorised) as an object array of strings."""
    return np.char.mod(spec, np.asarray(values, dtype=np.float64)).astype(object)
