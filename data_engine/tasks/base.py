"""The task plug-in: what a kind of label (one class, tags, a number, boxes, spans) means to each stage.

A :class:`Task` answers, for its kind of label, the questions a stage asks instead of the stage
assuming one class per example. The stages look the configured task up by ``[dataset] task``
(:func:`data_engine.tasks.task_for`); a new kind of label is a subclass registered in
:data:`TASKS` (or installed through the entry-point group ``data_engine.tasks``), see
docs/architecture.md "Adding a task".

This package sits above the store and compute and below the stages: it imports only
``data_engine.store``, ``data_engine.compute``, :mod:`data_engine.plugins` and libraries.
"""

from __future__ import annotations

import random
from abc import ABC, abstractmethod
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any, ClassVar

from data_engine.errors import EngineError
from data_engine.plugins import Registry
from data_engine.tasks.label_issues import LabelIssues  # noqa: F401 - the interface's public name

if TYPE_CHECKING:  # numpy, pandas and DuckDB load when a method runs: ingest's start-up stays light
    import duckdb
    import numpy as np
    import pandas as pd

    from data_engine.compute.backend import Backend
    from data_engine.store.config import DatasetConfig
    from data_engine.tasks.baseline import TrivialBaseline
    from data_engine.tasks.oof import OOFResult
    from data_engine.tasks.paired import PairedDiff


class Task(ABC):
    """One kind of label. Subclasses set ``name`` (the ``[dataset] task`` value) and implement every method.

    SQL fragments are DuckDB expressions over one batch's rows (ingest is set-based SQL over the
    raw rows, :mod:`data_engine.ingest.validate`); a column is passed already quoted.
    """

    name: str = ""

    # Whether a label draws on a fixed vocabulary (classes, tags) recorded in ``dataset_classes``.
    has_classes: ClassVar[bool] = True
    # What the column checks (data_engine.mine.columns) read the labels as: "class" (``encode``'s class indices (n,)),
    # "number" (``encode``'s (n,) float) or "tags" (:meth:`carried_tags`' (n, K) 0/1: which tags, entity types or box
    # classes each example carries; each is judged as its own two-class label).
    column_labels: ClassVar[str] = "class"
    # What one of the K columns of :meth:`carried_tags` is called in the column checks' reasons.
    tag_noun: ClassVar[str] = "tag"
    # The detector names (issue names) that apply to this kind of label; None = every registered detector. The mining
    # run skips the others with a note.
    detectors: ClassVar[frozenset[str] | None] = None
    # The kind of estimator the modality's model members are built as ('classifier' | 'regressor'); :meth:`members_for`
    # adapts them to the task.
    estimator_kind: ClassVar[str] = "classifier"
    # The gate's figure when ``[gate] metric`` is not set; one of :meth:`metrics`' keys.
    default_metric: ClassVar[str] = "accuracy"
    # Whether reviews the flags and new examples leave unused go down the label quality ranking past the flags (the
    # queue's ``ranked`` rows). True where the flags under-call: a number's fixed k-sd cut-off, tags flagged one-vs-rest,
    # boxes and spans whose flags stop early (a shifted box, a wrong entity type), docs/mining.md. False for one class
    # per example, whose confident-learning flags estimate the number of errors over all classes at once.
    reviews_past_flags: ClassVar[bool] = False
    # The model the task trains in place of the modality's members ("" = them), named so (tasks.model_name).
    own_model: ClassVar[str] = ""

    # The total a drift check adds to :meth:`carried_tags`' counts per class ("all boxes"), "" for none.
    count_noun: ClassVar[str] = ""
    # The trivial baseline a first model must beat on gold (:mod:`data_engine.tasks.baseline`): "majority" (the
    # training labels' most common), "tag_majority" (each tag's training majority), "mean" or "empty" (no box, no span).
    baseline_kind: ClassVar[str] = "majority"
    # Whether a label cell holds one of a few values (a class name): ingest then tests the label column's
    # distinct cells rather than every row (:mod:`data_engine.ingest.validate`). False where cells are
    # numbers, tag lists, spans or boxes, nearly one per row, whose grouping would cost more than it saves.
    few_label_values: ClassVar[bool] = False
    # The figure :meth:`oof_share` estimates, as the budget split names its gains ("expected <it> per review"), and
    # the ``models.metrics`` key holding the same figure on gold (the learning curve's), None when none is stored.
    share_points: ClassVar[str] = "accuracy points"
    share_metric: ClassVar[str | None] = "accuracy"

    def __init__(self, ds: DatasetConfig | None = None) -> None:
        """``ds``: the dataset the task reads labels of (settings such as ``[dataset] label_separator``,
        a regression's ``[dataset] label_range``); None gives the task's defaults."""
        self.ds = ds

    # -- ingest: the class vocabulary -------------------------------------------------------------

    @abstractmethod
    def record_classes(self, con: duckdb.DuckDBPyConnection, ds: DatasetConfig, batch_id: str,
                       label_present: bool) -> list[str]:
        """Ingest: record the dataset's classes in ``dataset_classes`` when not known yet (from the
        config, or inferred from batch ``batch_id``'s ``raw_rows``) and return them in order;
        ``[]`` when there are none (yet, or ever for a task without classes).

        Raises :class:`data_engine.store.schema.NotClasses` (or another ``EngineError``) when the
        label column cannot be this kind of label."""

    # -- labels as arrays --------------------------------------------------------------------------

    @abstractmethod
    def encode(self, labels: Sequence[str], classes: Sequence[str]) -> np.ndarray:
        """Stored labels (length n, the spelling :meth:`label_sql` stores) as the array models and
        detectors read: classification int codes of shape (n,) in [0, K); a tag matrix (n, K) of
        0/1; numbers (n,) float.

        Raises ``ValueError`` naming the first label that is not valid for ``classes``."""

    @abstractmethod
    def decode(self, y: np.ndarray, classes: Sequence[str]) -> list[str]:
        """The inverse of :meth:`encode`: ``y`` (n,) or (n, K) as n labels in the stored spelling."""

    def carried_tags(self, y: np.ndarray, classes: Sequence[str], counts: bool = False) -> np.ndarray:
        """Which of ``classes`` each labeled example carries, a 0/1 int matrix (n, K), from ``encode``'s
        array ``y`` (``counts``: how many of each, e.g. boxes of a class); for tasks whose ``column_labels``
        is ``"tags"``. Raises ``NotImplementedError`` for a task whose label is one class or one number."""
        raise NotImplementedError(f"task {self.name!r} labels are not sets of tags")

    # -- out-of-sample predictions -----------------------------------------------------------------

    @abstractmethod
    def prediction_width(self, classes: Sequence[str]) -> int:
        """How many numbers one stored prediction holds (the width of ``predictions.probs``):
        K probabilities for classes or tags, 3 for a value with its interval."""

    @abstractmethod
    def prediction_columns(self, classes: Sequence[str]) -> list[str]:
        """The names of the :meth:`prediction_width` numbers, in order (classes; or prediction, lower, upper)."""

    def prediction_problem(self, pred: np.ndarray) -> tuple[int, int | None, str] | None:
        """The first row of ``pred`` (n, width), a user's own model's predictions (``[mining]
        predictions = "external"``), that is not a valid prediction: ``(row index, column index or
        None for the whole row, what is wrong)``; None when all are valid. Default: every number finite."""
        import numpy as np

        bad = ~np.isfinite(pred)
        if bad.any():
            r, c = np.argwhere(bad)[0]
            return int(r), int(c), "is not a number"
        return None

    def read_external(self, path: Path, classes: Sequence[str], examples: pd.DataFrame,
                      sources: Mapping[str, str]) -> pd.DataFrame | None:
        """A predictions file (``[mining] predictions = "external"``) in the task's own format, as a
        frame indexed by ``example_id`` with the :meth:`prediction_columns` (floats); None (the
        default) when ``path`` holds those columns themselves (CSV, Parquet or JSONL).

        ``examples``: the training and unlabeled examples (``example_id`` and the input columns);
        ``sources``: each image reference as the landed file wrote it -> its ``example_id`` (empty
        without image files). Raises ``EngineError`` naming the file, row and key of a bad value."""
        return None

    @abstractmethod
    def members_for(self, members: Mapping[str, Any]) -> dict[str, Any]:
        """The modality's estimators (name -> unfitted scikit-learn estimator of kind
        :attr:`estimator_kind`, built by the mining stage: its members, and the served model under
        the name ``"served"``) adapted to this task, same names (unchanged for classification; a
        one-vs-rest wrapper per estimator for tags)."""

    @abstractmethod
    def fold_ids(self, y: np.ndarray, classes: Sequence[str], *, folds: int,
                 seed: int) -> tuple[np.ndarray, int, tuple[int, ...]]:
        """The fold each of n labeled examples is held out in (shape (n,)), the number of folds used
        and the rare classes (indices with fewer examples than folds; ``()`` without classes).
        Seeded: the same labels give the same folds, so stored member predictions stay comparable.
        Raises ``EngineError`` when ``y`` cannot be split into two folds."""

    @abstractmethod
    def mix(self, member_preds: Mapping[str, np.ndarray], y: np.ndarray) -> tuple[np.ndarray, dict[str, float]]:
        """The ensemble of several members' out-of-fold predictions (name -> (n, width)) on labels
        ``y`` (:meth:`encode`'s array): the mixed predictions (n, width) and each member's weight."""

    @abstractmethod
    def out_of_fold(self, members: Mapping[str, Any], X: pd.DataFrame, y: np.ndarray, classes: Sequence[str], *,
                    folds: int = 5, seed: int = 0, n_jobs: int = 1, compute: Backend | None = None) -> OOFResult:
        """Out-of-fold predictions of ``members`` (name -> unfitted estimator, from :meth:`members_for`)
        for ``X`` (n rows) with labels ``y`` (:meth:`encode`'s array), mixed as the task says.

        Returns an :class:`~data_engine.tasks.oof.OOFResult` whose ``probs`` has shape
        (n, :meth:`prediction_width`) in :meth:`prediction_columns` order. Fits run on ``compute``
        (default: ``n_jobs`` local processes). Raises ``EngineError`` when the labels cannot be split."""

    @abstractmethod
    def predict(self, model: Any, X: pd.DataFrame, classes: Sequence[str]) -> np.ndarray:
        """A fitted model's predictions for ``X`` (n rows) in the stored layout: shape
        (n, :meth:`prediction_width`), columns as :meth:`prediction_columns` (classification: the
        probabilities of ``classes``, a class the model never saw at 0). ``model`` was fitted on
        :meth:`encode`'s array (the mining stage's models) or on the stored labels (the served model)."""

    @abstractmethod
    def best(self, pred: np.ndarray, classes: Sequence[str]) -> tuple[list[str], np.ndarray]:
        """Each row's predicted label (stored spelling) and its score: ``pred`` (n, width) ->
        (n labels, scores (n,)). Stored beside each prediction (``predicted_label``, ``predicted_score``)."""

    def prediction_summary(self, pred: np.ndarray, classes: Sequence[str]) -> dict[str, np.ndarray]:
        """What the batch drift check compares of predictions ``pred`` (n, width): name -> (n,) values, float read as
        numbers (two-sample KS), object as categories (chi-square). Of :meth:`best`: a class or a number, named ""; a
        set as its count of each class (0/1 for tags: the predicted rate) and of all (``"all " + count_noun``)."""
        import numpy as np

        labels = self.best(pred, classes)[0]
        if self.column_labels != "tags":
            return {"": np.asarray(labels, dtype=float if self.column_labels == "number" else object)}
        counts = self.carried_tags(self.encode(labels, classes), classes, counts=True).astype(float)
        out = {str(c): counts[:, k] for k, c in enumerate(classes)}
        return out | ({f"all {self.count_noun}": counts.sum(axis=1)} if self.count_noun else {})

    # -- mining ------------------------------------------------------------------------------------

    @abstractmethod
    def label_issues(self, y: np.ndarray, pred: np.ndarray, classes: Sequence[str], inputs: pd.DataFrame | None = None) -> LabelIssues:
        """The label-error check of n labeled examples: given labels ``y`` (:meth:`encode`'s array) against
        their out-of-sample predictions ``pred`` (n, width), ``inputs`` their input columns (n rows) or None
        (read by tasks whose check needs them). The source is cleanlab's check for the task
        (``cleanlab.filter.find_label_issues`` / ``cleanlab.rank``; its multi-label and regression modules)."""

    @abstractmethod
    def uncertainty(self, pred: np.ndarray) -> np.ndarray:
        """How unsure each prediction is, shape (n,) in [0, 1], higher = less sure
        (classification: 1 - margin between the two most likely classes). ``pred``: (n, width)."""

    def selection_uncertainty(self, pred: np.ndarray, method: str = "margin_sampling") -> np.ndarray:
        """The uncertainty active-learning strategies rank candidates by, shape (n,), higher = less
        sure. ``pred``: (n, width) out-of-sample predictions; ``method``: scikit-activeml's
        ``margin_sampling``, ``entropy`` or ``least_confident``. Default: scikit-activeml's
        ``uncertainty_scores`` (pool-based uncertainty sampling, Settles 2009), which needs each row
        to be one distribution over the classes; a task whose predictions are not one (per-tag
        probabilities, a value with its interval, tokens) overrides it."""
        import numpy as np
        from skactiveml.pool import uncertainty_scores

        pred = np.asarray(pred, dtype=np.float64)
        if not len(pred):
            return np.zeros(0)
        return np.nan_to_num(uncertainty_scores(pred, method=method), nan=0.0)

    def certainty(self, pred: np.ndarray) -> np.ndarray:
        """``1 - uncertainty(pred)``, shape (n,): the margin the uncertain detector and the champion's
        flags compare with their thresholds (a task may give it exactly, without float round-off)."""
        return 1.0 - self.uncertainty(pred)

    def example_correct(self, y: np.ndarray, pred: np.ndarray, classes: Sequence[str] = ()) -> np.ndarray:
        """Whether each of n labeled examples' out-of-sample prediction is right, shape (n,) bool: the per-example
        figure weak-slice discovery compares between a slice and the rest (:mod:`data_engine.mine.slices`). ``y``:
        :meth:`encode`'s array; ``pred``: (n, width); ``classes``: the dataset's classes (for tasks whose arrays hold
        class indices). Default: the most likely class is the given one (accuracy); non-finite predictions are wrong."""
        import numpy as np

        pred = np.asarray(pred, dtype=float)
        if not len(pred):
            return np.zeros(0, dtype=bool)
        ok = np.isfinite(pred).all(axis=1)
        return ok & (np.nan_to_num(pred, nan=-np.inf).argmax(axis=1) == np.asarray(y))

    def oof_share(self, y: np.ndarray, pred: np.ndarray, classes: Sequence[str] = ()) -> float:
        """Share in [0, 1] of the n labeled examples the out-of-fold prediction ``pred`` (n, width) gets right, over
        the rows with finite predictions (0.5 when none): the figure whose complement falls as ``n**-ALPHA`` in the
        budget split's power-law prior (:mod:`data_engine.mine.budget`). Default: accuracy (argmax, no copy of ``pred``)."""
        import numpy as np

        ok = np.isfinite(pred).all(axis=1)
        if not ok.any():
            return 0.5
        if ok.all():  # the array itself, not a copy of it (80 MB at a million rows and ten classes)
            return float((pred.argmax(axis=1) == y).mean())
        return float((pred[ok].argmax(axis=1) == y[ok]).mean())

    def applies(self, detector: str) -> bool:
        """Whether the detector named ``detector`` judges this kind of label (:attr:`detectors`)."""
        return self.detectors is None or detector in self.detectors

    def cell_classes_sql(self, cell: str) -> str | None:
        """SQL: the ``VARCHAR[]`` of class names a raw label ``cell`` holds when it holds several (tags,
        entity types), each named alone when it is not a class; None when the cell is one class."""
        return None

    @abstractmethod
    def label_sql(self, cell: str, plain: bool) -> str:
        """Ingest: a VARCHAR SQL expression turning the raw label ``cell`` into the stored label.

        ``plain``: every cell of the column is already in the normalised spelling (ASCII, no
        surrounding spaces; :func:`data_engine.store.values.all_plain`), so it may be kept as is.
        The stored spelling is the one labels are compared in (a label is "changed" when this
        value differs), e.g. one class name in its normalised spelling; '' or NULL is unlabeled."""

    @abstractmethod
    def label_reasons(self, label: str, classes_known: bool) -> list[tuple[str, str]]:
        """Ingest: ``(condition, reason)`` SQL pairs over the stored ``label`` column; a row whose
        condition holds is quarantined with the reason (a VARCHAR expression a person understands).

        ``classes_known``: whether ``dataset_classes`` holds the dataset's classes yet."""

    def check_image_labels(self, con: duckdb.DuckDBPyConnection, ds: DatasetConfig,
                           batch_id: str) -> tuple[int, list[str]]:
        """Ingest, datasets of image files: check the labels against their images once the images
        are read (after :mod:`data_engine.ingest.images` put the stored copy's path in ``raw_rows``;
        the ``images`` table holds each one's width and height). May add rows to the temp table
        ``rejected``, parts of labels to ``quarantine`` (batch ``batch_id``) and put a view in front of
        ``raw_rows`` that corrects the label cells. Returns the rows newly rejected and notes for the
        batch's result. Default: nothing to check."""
        return 0, []

    @abstractmethod
    def labeling_config(self, item: str, partner: str, classes: Sequence[str], *, from_name: str,
                        to_name: str, discard: str, partner_prefix: str) -> str:
        """Review: the Label Studio labeling config (XML ``<View>``) of a review task.

        ``item`` / ``partner``: the XML tags showing the example and its near-duplicate partner
        (built by the review stage per modality); ``classes``: the dataset's classes in order;
        ``from_name`` / ``to_name``: the names the answer control and the example tag take (the
        pull stage reads answers by ``from_name``); ``discard``: the answer meaning "not a valid
        example"; ``partner_prefix``: the task data fields' prefix of the partner."""

    @abstractmethod
    def prediction_result(self, label: str, *, from_name: str, to_name: str) -> list[dict[str, Any]]:
        """Review: the Label Studio ``result`` (a list of regions) that answers with ``label``: the
        model's suggestion pre-filled as a task's prediction, and a simulated reviewer's answer."""

    def review_result(self, label: str, data: Mapping[str, Any], *, from_name: str,
                      to_name: str) -> list[dict[str, Any]]:
        """Review: :meth:`prediction_result` for the task whose data fields are ``data`` (built by the
        review stage: the example's rendering, e.g. ``image_width`` / ``image_height`` in pixels for
        image files). A task whose regions depend on the example (boxes in percent of the image)
        overrides it; by default the example does not matter."""
        return self.prediction_result(label, from_name=from_name, to_name=to_name)

    @abstractmethod
    def answer_label(self, result: Sequence[Mapping[str, Any]], *, from_name: str) -> str | None:
        """Pull: the label an annotation ``result`` gives (in the spelling :meth:`label_sql` stores, or
        the review stage's discard answer), or None when the reviewer answered nothing. Malformed
        regions are ignored, never raised on: the result comes from the server."""

    def answer_problem(self, label: str, choices: Sequence[str]) -> str | None:
        """Pull: why an answer ``label`` (from :meth:`answer_label`) is not one the ledger can hold, or None.
        ``choices``: the dataset's classes and the discard answer; by default an answer must be one of them."""
        return None if label in choices else f"{label[:40]!r} is not one of the classes"

    @abstractmethod
    def consensus(self, labels: Sequence[str]) -> str | None:
        """Review: the verdict of several reviewers' answers to one example (stored spelling, the
        review stage's discard answer counting as one more answer), or None when they disagree
        (the task stays pending)."""

    def agreement(self, labels: Sequence[str], verdict: str) -> float:
        """Review: the share of ``labels`` that agree with ``verdict`` (in [0, 1]); equality by default."""
        return sum(label == verdict for label in labels) / len(labels) if labels else 0.0

    @abstractmethod
    def oracle_label(self, value: Any) -> str:
        """Simulation: one true-label value of an oracle file (a JSON value or a CSV cell) in the
        stored spelling. Raises ``ValueError`` saying what is wrong (the caller names file and row)."""

    @abstractmethod
    def wrong_answer(self, truth: str, classes: Sequence[str], rng: random.Random) -> str:
        """Simulation: a plausible wrong answer to an example whose true label is ``truth`` (a
        simulated reviewer's mistake), drawn from ``rng``."""

    # -- ship: gate, serving, evaluation --------------------------------------------------------------

    @abstractmethod
    def metrics(self, y_true: np.ndarray, pred: np.ndarray, classes: Sequence[str]) -> dict[str, float | None]:
        """The gate's figures of predictions ``pred`` (n,) (a model's ``predict``: stored-spelling
        labels for classification) against gold labels ``y_true`` (n,) (stored spelling); each
        ``None`` when n = 0. Keys are the names ``[gate] metric`` may take."""

    def metric_names(self) -> tuple[str, ...]:
        """The names :meth:`metrics` returns: the values ``[gate] metric`` may take."""
        import numpy as np

        return tuple(self.metrics(np.array([]), np.array([]), []))

    def check_metric(self, metric: str) -> None:
        """Raise :class:`EngineError` naming ``metric`` and :meth:`metric_names` unless it is one of them (each
        :meth:`paired_test` calls it first: a figure the task lacks must not fall back to another silently)."""
        known = self.metric_names()
        if metric not in known:
            raise EngineError(f"unknown {self.name} metric {metric!r}; expected one of {', '.join(known)}")

    def higher_is_better(self, metric: str) -> bool:
        """Whether a larger ``metric`` is better (True for scores; an error measure says False)."""
        return True

    def trivial_baseline(self, train_labels: Sequence[str]) -> TrivialBaseline:
        """The gate's trivial baseline for a first model: the one label (stored spelling) it predicts for every gold
        example, from the stored training labels ``train_labels`` (n,) alone, by :attr:`baseline_kind`
        (:func:`data_engine.tasks.baseline.trivial_baseline`; ValueError without labels)."""
        from data_engine.tasks.baseline import trivial_baseline

        return trivial_baseline(self.baseline_kind, train_labels)

    @abstractmethod
    def paired_test(self, y_true: np.ndarray, cand_pred: np.ndarray, champ_pred: np.ndarray, metric: str, *,
                    alpha: float) -> PairedDiff:
        """The gate's paired test of ``metric``: candidate minus champion on the same n gold examples
        (``y_true``, ``cand_pred``, ``champ_pred`` as in :meth:`metrics`), one-sided p-values at
        ``alpha`` (:mod:`data_engine.tasks.paired`: McNemar's exact test, a paired bootstrap)."""

    def candidate_figures(self, y: np.ndarray, pred: np.ndarray,
                          classes: Sequence[str]) -> tuple[dict[str, float | None], tuple[float, ...]]:
        """Choosing the served model (``[retrain] model = "auto"``): one candidate's out-of-fold figures,
        its predictions ``pred`` (n, width) against the labels ``y`` (:meth:`encode`'s array), and each
        class's out-of-fold recall in ``classes`` order (``()`` without classes). Default: the :meth:`metric_names`
        figures of :meth:`metrics` on the decoded labels (not a per-type table: NER's ``per_type_f1``), no recall."""
        import numpy as np

        figures = self.metrics(np.asarray(self.decode(y, classes), dtype=object), pred, classes)
        return {k: v for k, v in figures.items() if k in self.metric_names()}, ()

    def class_recall(self, y_true: np.ndarray, pred: np.ndarray) -> dict[str, tuple[float, int]]:
        """The gate's per-class figures: class -> (recall of predictions ``pred`` (n,), gold support)
        over the classes in gold ``y_true`` (n,); ``{}`` (the default) for a task without them."""
        return {}

    def class_tests(self, y_true: np.ndarray, cand_pred: np.ndarray, champ_pred: np.ndarray, *,
                    alpha: float) -> list[tuple[str, str, PairedDiff]]:
        """The gate's paired tests per class beside the metric's: ``(check name, words, PairedDiff)``
        each (Holm-adjusted together with the slices); ``[]`` (the default) for none."""
        return []

    @abstractmethod
    def predict_output(self, pred_row: np.ndarray, classes: Sequence[str]) -> dict[str, Any]:
        """``/predict``: the answer for one row, ``pred_row`` of shape (width,) from :meth:`predict`
        (classification: ``{"label": ..., "probabilities": {class: p}}``)."""

    def predict_fields(self) -> dict[str, Any] | None:
        """``/predict``'s schema of one answer: each key :meth:`predict_output` returns -> its Python
        type (the server's response model and OpenAPI page); None (the default) = a free-form object."""
        return None

    @abstractmethod
    def predict_table(self, pred: np.ndarray, classes: Sequence[str]) -> dict[str, np.ndarray]:
        """``predict FILE``: the output columns (name -> shape (n,)) for predictions ``pred`` (n, width),
        written after the id column (classification: ``predicted_label``, ``predicted_score``, ``p_<class>``)."""

    @abstractmethod
    def evaluate_output(self, figures: Mapping[str, Any], n: int) -> dict[str, Any]:
        """``evaluate --file --json``: the figures part of the object for n labeled rows.
        ``figures``: :meth:`metrics` plus the per-class breakdown the evaluation keeps."""

    @abstractmethod
    def evaluate_lines(self, figures: Mapping[str, Any], n: int) -> tuple[str, list[str]]:
        """``evaluate --file``'s text: the figures phrase of the head line and the lines below it."""


TASKS: Registry[type[Task]] = Registry("task", "data_engine.tasks", name_attr="name", base=Task)
