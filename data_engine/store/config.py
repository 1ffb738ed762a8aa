"""``engine.toml``: the engine's configuration, validated on load.

Each section is a frozen dataclass; a key the dataclass does not declare is an error (a typo must
not be silently ignored), and every error names the key (``review.budget``) and the problem.
"""

from __future__ import annotations

import tomllib
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

from data_engine.errors import ConfigError, EngineError
from data_engine.store.review_url import check_review_url
from data_engine.store.toml_tables import build_table, join_key, kind_of, printable

Modality = Literal["tabular", "text", "image"]
# "vector": one list of numbers per row (a Parquet list column, a JSONL array), for `embedding = "column"`.
ColumnType = Literal["numeric", "categorical", "vector"]
# The detectors ``[mining] detectors`` runs when it is not set. Names of pluggable pieces (detectors,
# strategies, embedders, model members) are checked against their registries by the stage that owns
# them (data_engine.mine.names), not here: the store sits below the stages.
DEFAULT_DETECTORS = ("label", "outlier", "near_duplicate", "uncertain", "lookalike")
# ``[compute] scheduler``: "local" or the address of a Dask scheduler with one of these schemes
# (the ones dask.distributed's TCP-based comms understand; anything else is a typo).
LOCAL_SCHEDULER = "local"
SCHEDULER_SCHEMES = ("tcp://", "tls://")

# Names the warehouse uses for its own columns in ``examples``; a dataset column may not take them.
RESERVED_COLUMNS = frozenset(
    {"example_id", "batch_id", "version", "ingested_at", "content_hash", "feature_hash", "is_gold",
     "row_number", "label_event_id", "__row"}
)


# Cells a numeric column reads as missing (``[dataset] na_values``); other columns keep them as text.
NA_VALUES = ("", "NA", "N/A", "n/a", "na", "null", "NULL", "Null", "NaN", "nan", "None", "-", "?")


@dataclass(frozen=True)
class DatasetConfig:
    """What the data looks like: its id, label, and feature columns (no id column: ids from content)."""

    name: str
    modality: Modality
    label_column: str
    id_column: str | None = None
    feature_columns: tuple[str, ...] = ()
    text_column: str | None = None
    # Image files (modality "image"): the column holding each image's path or file:// URI; relative
    # paths are read under image_root when set, else beside the landed file (see data_engine.ingest.images).
    image_column: str | None = None
    image_root: str | None = None
    classes: tuple[str, ...] | None = None
    # The kind of label (data_engine.tasks): "classification" (one class per example) or "multilabel"
    # (a set of tags per example). Checked against the task registry where the stages start
    # (data_engine.mine.names.check_names, ingest).
    task: str = "classification"
    # Multi-label data: what separates the tags of a CSV cell that is not a JSON array ("a|b").
    label_separator: str = "|"
    # Regression only: [lo, hi], the values a label can possibly take; a label outside is quarantined
    # with the reason (a price below 0, a rating of 55 on a 1-5 scale). None: any finite number.
    label_range: tuple[float, ...] | None = None
    # Optional per-column override of the type inferred from the first batch.
    column_types: dict[str, ColumnType] = field(default_factory=dict)
    na_values: tuple[str, ...] = NA_VALUES

    @property
    def input_columns(self) -> tuple[str, ...]:
        """The columns a model reads: the feature columns, then the text or image column if any."""
        extra = tuple(c for c in (self.text_column, self.image_column) if c)
        return tuple(self.feature_columns) + extra


@dataclass(frozen=True)
class MiningConfig:
    """How out-of-sample predictions are made and which detectors run."""

    model: str = "auto"
    folds: int = 5
    seed: int = 0
    n_jobs: int = 2
    detectors: tuple[str, ...] = DEFAULT_DETECTORS
    # How examples become vectors (data_engine.mine.embedders): "auto" (per modality), "tfidf",
    # "e5-small", "column" (vectors the user supplies in the input columns), ...
    embedding: str = "auto"
    # "own": out-of-fold predictions of the engine's models; "external": the class probabilities
    # landed under landing/predictions/ (data_engine.mine.external; out-of-sample is the user's promise).
    predictions: Literal["own", "external"] = "own"


@dataclass(frozen=True)
class ReviewConfig:
    """Label Studio and the review queue. The API key itself is read from ``api_key_env``."""

    url: str = "http://127.0.0.1:8080"
    api_key_env: str = "LABEL_STUDIO_API_KEY"
    # The API key goes to ``url`` with every request: a url off this machine must be allowed here.
    allow_remote: bool = False
    project_title: str = ""
    budget: int = 200
    annotators_per_task: int = 1
    # Reviews of one example version at most: a single reviewer's label the model still plainly
    # contradicts gets one more, independent look (1 turns second opinions off).
    max_opinions: int = 2
    import_batch_size: int = 2000
    # The server's LOCAL_FILES_DOCUMENT_ROOT, which image paths in tasks are relative to; "" means
    # the engine home (what `labelstudio up` sets).
    local_files_root: str = ""
    timeout_seconds: float = 30.0
    weights: dict[str, float] = field(
        default_factory=lambda: {"label": 1.0, "near_duplicate": 0.6, "uncertain": 0.5, "outlier": 0.3,
                                 "lookalike": 1.2, "drift": 0.5}
    )
    # Carrying verdicts to look-alikes and copies (data_engine.mine.propagate): "off", "suggest"
    # (flag them for review) or "apply" (discard look-alikes above the threshold chosen for
    # propagate_precision on at least propagate_min_verdicts held-out verdicts; exact copies take
    # their reviewed partner's verdict); propagate_audit: share of propagated examples re-reviewed.
    propagate: Literal["off", "suggest", "apply"] = "suggest"
    propagate_precision: float = 0.98
    propagate_min_verdicts: int = 30
    propagate_audit: float = 0.05
    # What to label next (data_engine.mine.selection) and the share of new examples picked at random
    # so the strategy's gain over random keeps being measured on real reviews.
    strategy: str = "diverse_minibatch"
    explore_share: float = 0.1
    # New verdicts alone re-mine (and refill the queue) once fewer than this share of `budget`
    # tasks are open; new examples re-mine at once (data_engine.triggers.mining_trigger).
    refill_below: float = 0.5


@dataclass(frozen=True)
class IngestConfig:
    """How landed files are judged beyond their rows."""

    # A batch with a larger share of its rows quarantined is ingested with a warning (a file
    # with no good row at all fails whatever this says).
    max_quarantine_share: float = 0.5


@dataclass(frozen=True)
class DriftConfig:
    """When a landed batch counts as drifted from the training data in force (data_engine.ingest.drift)."""

    # Family-wise error rate per batch: per-column p-values are Holm-corrected across columns.
    alpha: float = 0.05
    # The domain classifier's out-of-fold AUC at or above which the batch is drifted (0.5: no signal).
    auc: float = 0.75
    # Rows sampled from each side at most (bounds the cost of the tests and the classifier).
    max_rows: int = 2000


@dataclass(frozen=True)
class RetrainConfig:
    """When a new candidate model is trained."""

    min_new_labels: int = 50
    weight_by_label_quality: bool = False
    # The served model: "auto" (the best candidate by out-of-fold [gate] metric on the labels in force,
    # see data_engine.mine.candidates) or members joined by "+" as in [mining] model.
    model: str = "auto"


@dataclass(frozen=True)
class SliceConfig:
    """A named subset of the gold data that must not regress (a model "unit test")."""

    name: str
    column: str
    equals: str | None = None
    min: float | None = None
    max: float | None = None


@dataclass(frozen=True)
class GateConfig:
    """The promotion gate (see data_engine.ship.gate): a paired test on gold, or the old strict rule."""

    # The figure the gate compares: one of the task's metrics ("accuracy", "macro_f1" for classes;
    # "mae", "rmse", "r2" for numbers); None = the task's default (data_engine.tasks.Task.default_metric).
    # Checked against the task where names are checked (data_engine.mine.names.check_names).
    metric: str | None = None
    min_gold: int = 20
    slices: tuple[SliceConfig, ...] = ()
    # "paired": refuse only when the candidate is worse beyond what gold resolves (one-sided, alpha);
    # "strict": the candidate must match the champion exactly (classes and slices within tolerance).
    test: Literal["paired", "strict"] = "paired"
    alpha: float = 0.05
    min_class_recall: float = 0.5  # classes below it on gold are named in every verdict
    # Fewer gold examples: the class is "unmeasured" (unset: the smallest n with 0.5^n < alpha, 5 at
    # 0.05); `unmeasured` says what such a class does to promotion (data_engine.ship.gold).
    min_class_gold: int | None = None
    unmeasured: Literal["out_of_fold", "refuse", "allow"] = "out_of_fold"
    unmeasured_tolerance: float = 0.1
    # Deprecated: only test = "strict" reads it (default 0.02 there); the paired test ignores it.
    tolerance: float | None = None
    # A paired tie goes to the model trained on more reviewed labels only if the candidate is not
    # worse on gold's point estimate by more than this share of the champion's figure (0.01: 1 %
    # of its accuracy, micro-F1 or MAE; in the metric's direction, data_engine.ship.gate).
    tie_tolerance: float = 0.01


@dataclass(frozen=True)
class ServeConfig:
    """The prediction service (always bound to 127.0.0.1)."""

    port: int = 8000


@dataclass(frozen=True)
class ComputeConfig:
    """Where mining's heavy pieces run: "local" (processes here) or a Dask scheduler's address."""

    scheduler: str = "local"


@dataclass(frozen=True)
class ModelConfig:
    """Whose code trains the model: the engine's scikit-learn members or the user's command."""

    # "builtin": [mining] model / [retrain] model; "command": the user's trainer, run as
    # `COMMAND fit ...` and `COMMAND predict ...` (data_engine.trainers.command, docs/own-model.md).
    trainer: Literal["builtin", "command"] = "builtin"
    # The program and its first arguments, as a list (run without a shell).
    command: tuple[str, ...] = ()
    # Seconds one fit or predict call may take before it is killed and the run fails.
    timeout_s: float = 3600.0
    # Seconds `serve`'s long-lived worker (`COMMAND serve`) may take to load the model or to answer
    # one request before it is stopped (the request gets a 503 naming the cause).
    serve_timeout_s: float = 30.0
    # Who makes the out-of-fold predictions mining reads: "engine" (K fits and predicts on the
    # engine's folds) or "trainer" (one fit that also writes them for the folds it is given).
    out_of_fold: Literal["engine", "trainer"] = "engine"


@dataclass(frozen=True)
class EngineConfig:
    """The whole ``engine.toml``."""

    dataset: DatasetConfig
    ingest: IngestConfig = field(default_factory=IngestConfig)
    drift: DriftConfig = field(default_factory=DriftConfig)
    mining: MiningConfig = field(default_factory=MiningConfig)
    review: ReviewConfig = field(default_factory=ReviewConfig)
    retrain: RetrainConfig = field(default_factory=RetrainConfig)
    gate: GateConfig = field(default_factory=GateConfig)
    serve: ServeConfig = field(default_factory=ServeConfig)
    compute: ComputeConfig = field(default_factory=ComputeConfig)
    model: ModelConfig = field(default_factory=ModelConfig)


def load_config(path: Path) -> EngineConfig:
    """Read and validate ``engine.toml`` at ``path``; raise :class:`ConfigError` naming the key."""
    try:
        raw = tomllib.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        # A home's own engine.toml is created by init; any other path is a file the user named.
        hint = "no engine config here; run `data-engine init` first" if path.name == "engine.toml" else "no such file"
        raise ConfigError(f"{path}: {hint}") from None
    except IsADirectoryError:
        raise ConfigError(f"{path}: is a directory, not a config file") from None
    except UnicodeDecodeError as exc:
        raise ConfigError(f"{path}: not UTF-8 text ({exc.reason} at byte {exc.start})") from None
    except tomllib.TOMLDecodeError as exc:
        raise ConfigError(f"{path}: not valid TOML: {exc}") from None
    try:
        return parse_config(raw)
    except ConfigError as exc:
        raise ConfigError(f"{path}: {exc}") from None


def parse_config(raw: dict[str, Any]) -> EngineConfig:
    """Validate a parsed TOML document into an :class:`EngineConfig`."""
    if "dataset" not in raw:
        raise ConfigError("missing required section [dataset]")
    try:
        cfg = build_table(EngineConfig, raw, "")
        _check_dataset(cfg.dataset)
        _check_ranges(cfg)
        _check_model(cfg.model, cfg.dataset.task)
    except ConfigError as exc:
        # Keys and values come from the user's file: a newline or control character in one must
        # not break the one-line error.
        raise ConfigError(printable(str(exc))) from None
    return cfg


COMMAND_TASKS = ("classification", "multilabel", "regression", "detection", "ner")  # the user's trainer's contracts (docs/own-model.md)


def _check_model(model: ModelConfig, task: str) -> None:
    """Cross-field checks of [model] (``task``: ``[dataset] task``)."""
    if model.trainer == "command" and task not in COMMAND_TASKS:
        raise ConfigError(f'model.trainer = "command" is not supported yet for dataset.task = {task!r} (contracts '
                          f'for {", ".join(COMMAND_TASKS)}: docs/own-model.md); use model.trainer = "builtin" for it')
    if model.trainer == "command" and not model.command:
        raise ConfigError('model.command: required when model.trainer = "command" (e.g. ["venv/bin/python", "train.py"])')
    if model.trainer == "builtin" and (model.command or model.out_of_fold != "engine"):
        key = "command" if model.command else 'out_of_fold = "trainer"'
        raise ConfigError(f'model.{key} is only read when model.trainer = "command"')


def _check_dataset(ds: DatasetConfig) -> None:
    """Cross-field checks of [dataset]."""
    for key in ("name", "id_column", "label_column"):
        if getattr(ds, key) is not None:
            _check_name(getattr(ds, key), f"dataset.{key}")
    for i, col in enumerate(ds.feature_columns):
        _check_name(col, f"dataset.feature_columns[{i}]")
    if ds.image_column and ds.modality != "image":
        raise ConfigError("dataset.image_column is only read when dataset.modality = 'image'")
    if ds.modality == "text":
        if not ds.text_column:
            raise ConfigError("dataset.text_column is required when dataset.modality = 'text'")
        _check_name(ds.text_column, "dataset.text_column")
    elif ds.image_column:
        _check_name(ds.image_column, "dataset.image_column")
        # Detection's detector reads the image alone: columns beside it are metadata (a camera, a site)
        # that drift and weak slices are described by. For image classes they would be read as pixels.
        if ds.feature_columns and ds.task != "detection":
            raise ConfigError("dataset: give image_column (image files) or feature_columns (pixel columns), not both "
                              '(metadata columns beside image files are read with task = "detection" only)')
    elif not ds.feature_columns:
        hint = " (or image_column for image files)" if ds.modality == "image" else ""
        raise ConfigError(f"dataset.feature_columns must name at least one column{hint} for modality '{ds.modality}'")
    if ds.image_root is not None and not ds.image_column:
        raise ConfigError("dataset.image_root is only read with dataset.image_column")
    if ds.task == "detection" and not ds.image_column:
        raise ConfigError("dataset.task = \"detection\" needs image files: set dataset.modality = \"image\" and "
                          "dataset.image_column (the column of image paths)")
    cols = [c for c in (ds.id_column, ds.label_column, *ds.input_columns) if c is not None]
    seen: set[str] = set()
    for col in cols:
        if col.lower() in seen:
            raise ConfigError(f"dataset: column {col!r} is named twice (id, label, features and text must differ)")
        seen.add(col.lower())
    for col in [ds.label_column, *ds.input_columns]:
        if col.lower() in RESERVED_COLUMNS:
            raise ConfigError(f"dataset: column name {col!r} is reserved by the warehouse; rename it in your files")
    for col in ds.column_types:
        if col not in ds.feature_columns:
            raise ConfigError(f"dataset.column_types.{col}: not one of dataset.feature_columns")
    if not ds.label_separator or ds.label_separator != ds.label_separator.strip() or "[" in ds.label_separator:
        raise ConfigError(f"dataset.label_separator = {ds.label_separator!r}: must be non-empty, without surrounding "
                          "spaces and without '[' (a cell starting with '[' is read as a JSON array)")
    if ds.label_range is not None:
        if ds.task != "regression":
            raise ConfigError("dataset.label_range is only read when dataset.task = \"regression\"")
        if len(ds.label_range) != 2 or not ds.label_range[0] < ds.label_range[1]:
            raise ConfigError(f"dataset.label_range = {list(ds.label_range)}: must be [lo, hi] with lo < hi")
    if ds.classes is not None and ds.task == "regression":
        raise ConfigError("dataset.classes: a regression label is a number, not a class; remove classes "
                          "(or set dataset.task = \"classification\")")
    if ds.classes is not None:
        if len(ds.classes) < 2:
            raise ConfigError("dataset.classes: needs at least two classes")
        if len(set(ds.classes)) != len(ds.classes):
            raise ConfigError("dataset.classes: a class is listed twice")
        for i, c in enumerate(ds.classes):
            if not c.strip() or c != c.strip():
                raise ConfigError(f"dataset.classes[{i}] = {c!r}: must be non-empty without surrounding spaces")


# [section] key -> (whether a value is in range, what the range is). One table, so every range check
# says the same thing the same way: "<key> = <value>: <range>".
_RANGES: dict[str, tuple[Callable[[Any], bool], str]] = {
    "mining.folds": (lambda v: v >= 2, "must be at least 2"),
    "mining.n_jobs": (lambda v: v >= 1, "must be at least 1"),
    "review.budget": (lambda v: v >= 1, "must be at least 1"),
    "review.annotators_per_task": (lambda v: v >= 1, "must be at least 1"),
    "review.max_opinions": (lambda v: 1 <= v <= 5, "must be between 1 and 5"),
    "review.import_batch_size": (lambda v: 1 <= v <= 50_000, "must be between 1 and 50000"),
    "review.propagate_precision": (lambda v: 0.5 <= v <= 1.0, "must be between 0.5 and 1"),
    "review.propagate_min_verdicts": (lambda v: v >= 1, "must be at least 1"),
    "review.propagate_audit": (lambda v: 0.0 <= v <= 1.0, "must be between 0 and 1"),
    "review.timeout_seconds": (lambda v: v > 0, "must be positive"),
    "review.explore_share": (lambda v: 0 <= v <= 1, "must be between 0 and 1"),
    "review.refill_below": (lambda v: 0 < v <= 1, "must be a share of the budget, above 0 and at most 1"),
    "ingest.max_quarantine_share": (lambda v: 0 <= v <= 1, "must be a share of a batch's rows, between 0 and 1"),
    "drift.alpha": (lambda v: 0 < v < 0.5, "must be between 0 and 0.5 (a significance level, e.g. 0.05)"),
    "drift.auc": (lambda v: 0.5 < v <= 1, "must be above 0.5 (a classifier that guesses) and at most 1"),
    "drift.max_rows": (lambda v: v >= 20, "must be at least 20"),
    "retrain.min_new_labels": (lambda v: v >= 1, "must be at least 1"),
    "gate.tolerance": (lambda v: v is None or 0 <= v <= 1, "must be between 0 and 1"),
    "gate.min_gold": (lambda v: v >= 1, "must be at least 1 (no gold: the gate refuses anyway)"),
    "gate.alpha": (lambda v: 0 < v < 0.5, "must be between 0 and 0.5 (a significance level, e.g. 0.05)"),
    "gate.min_class_recall": (lambda v: 0 <= v <= 1, "must be between 0 and 1"),
    "gate.min_class_gold": (lambda v: v is None or v >= 1, "must be at least 1"),
    "gate.tie_tolerance": (lambda v: 0 <= v <= 1, "must be between 0 and 1 (a share of the champion's figure)"),
    "gate.unmeasured_tolerance": (lambda v: 0 <= v <= 1, "must be between 0 and 1"),
    "serve.port": (lambda v: 1 <= v <= 65535, "must be between 1 and 65535"),
    "model.timeout_s": (lambda v: v > 0, "must be > 0 seconds"),
    "model.serve_timeout_s": (lambda v: v > 0, "must be > 0 seconds"),
}


def _check_ranges(cfg: EngineConfig) -> None:
    """Numeric ranges (:data:`_RANGES`) and cross-section checks."""
    for key, (in_range, why) in _RANGES.items():
        section, name = key.split(".")
        value = getattr(getattr(cfg, section), name)
        if not in_range(value):
            raise ConfigError(f"{key} = {value!r}: {why}")
    for i, d in enumerate(cfg.mining.detectors):
        _check_name(d, f"mining.detectors[{i}]")
    check_review_url(cfg.review.url, cfg.review.api_key_env, cfg.review.allow_remote)
    if not cfg.review.api_key_env.replace("_", "").isalnum():
        raise ConfigError("review.api_key_env: must be the NAME of an environment variable, not the key itself")
    for name, w in cfg.review.weights.items():
        if w < 0:
            raise ConfigError(f"review.weights.{name} = {w!r}: must not be negative")
    try:
        check_scheduler(cfg.compute.scheduler)
    except EngineError as exc:
        raise ConfigError(str(exc)) from None
    for i, s in enumerate(cfg.gate.slices):
        if s.column not in (*cfg.dataset.input_columns, cfg.dataset.label_column):
            raise ConfigError(f"gate.slices[{i}].column = {s.column!r}: not a dataset column")
        if s.equals is None and s.min is None and s.max is None:
            raise ConfigError(f"gate.slices[{i}]: give equals, min or max")


def check_scheduler(value: str, key: str = "compute.scheduler") -> str:
    """``value`` if it is ``"local"`` or a scheduler address, else :class:`EngineError` naming ``key``."""
    if value == LOCAL_SCHEDULER:
        return value
    if not value.startswith(SCHEDULER_SCHEMES) or not value.split("://", 1)[1].strip():
        raise EngineError(f"{key} = {value!r}: must be \"local\" or a Dask scheduler address such as "
                          f"\"tcp://127.0.0.1:8786\"")
    return value


def _check_name(value: str, key: str) -> None:
    """A column or dataset name: non-empty, printable, without quotes or control characters."""
    if not value or not value.strip():
        raise ConfigError(f"{key}: must not be empty")
    if len(value) > 128:
        raise ConfigError(f"{key}: longer than 128 characters")
    if any(ord(ch) < 32 or ch in "\"`" for ch in value):
        raise ConfigError(f"{key} = {value!r}: must not contain quotes or control characters")
