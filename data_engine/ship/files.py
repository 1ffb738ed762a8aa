"""Any model on any file: figures on a labeled file, predictions for a file (``evaluate --file``, ``predict``).

The file is read and validated by the ingest code (:mod:`data_engine.ingest.checked`) and never
stored; the model is the champion or a given version, loaded sha256-checked from the registry.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pandas as pd

from data_engine.errors import EngineError
from data_engine.ingest.checked import CheckedFile, read_checked
from data_engine.ship.evaluation import Evaluation, evaluate_predictions, model_input, predict_gold
from data_engine.ship.registry import ModelRecord, current_champion, get_model, load_model
from data_engine.store.home import Home
from data_engine.tasks import Classification, Task, task_for
from data_engine.wording import counted, verb

OUTPUT_FORMATS = (".csv", ".parquet", ".jsonl")


@dataclass(frozen=True)
class FileEvaluation:
    """A model's figures on a labeled file, and the rows it could not use."""

    model_version: int
    path: str
    evaluation: Evaluation
    rejected: list[tuple[int, str]] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)   # labels read under a class's new name, or not classes
    said_rows: list[int] = field(default_factory=list)  # rows of ``rejected`` a note names (listed once, there)

    def to_json(self, task: Task | None = None) -> dict[str, Any]:
        """The task's figures (:meth:`~data_engine.tasks.Task.evaluate_output`; classification, the
        default: ``accuracy``, ``macro_f1``, ``per_class_recall``, ``n``, ``per_class_support``) and
        context (what ``--json`` prints)."""
        ev = self.evaluation
        return {**(task or Classification()).evaluate_output(ev.to_dict(), ev.n_gold), "model_version": self.model_version,
                "file": self.path, "rejected_rows": [{"row": r, "reason": why} for r, why in self.rejected],
                "notes": self.notes}


def chosen_model(home: Home, version: int | None) -> ModelRecord:
    """Model ``version``, or the champion; :class:`EngineError` when there is neither."""
    from data_engine.store.warehouse import open_warehouse

    with open_warehouse(home, read_only=True) as con:
        if version is not None:
            return get_model(con, version)
        champ = current_champion(con)
    if champ is None:
        raise EngineError("no champion yet; pass --version N (see `data-engine deploy status`) "
                          "or promote one with `data-engine deploy promote`")
    return champ


def _read(home: Home, record: ModelRecord, path: Path, *, need_label: bool) -> CheckedFile:
    from data_engine.store.schema import load_classes
    from data_engine.store.warehouse import open_warehouse

    from data_engine.ship.renamed import renamed_away

    with open_warehouse(home, read_only=True) as con:
        classes = load_classes(con) or list(record.classes)
        renamed = renamed_away(con) if need_label else {}
    checked = read_checked(path, home.config.dataset, dict(record.input_schema), classes, need_label=need_label,
                           renamed=renamed)
    return _with_image_files(home, checked, dict(record.input_schema))


def _with_image_files(home: Home, checked: CheckedFile, schema: dict[str, str]) -> CheckedFile:
    """``checked`` with each image reference resolved as ingest resolves it (relative to
    ``image_root``, else to the file's folder; only inside the allowed folders; decodable), as an
    absolute path. A row whose image fails is moved to ``rejected`` with the reason."""
    from dataclasses import replace

    from data_engine.ingest.images import ImageRejected, allowed_roots, check_image, resolve_reference

    image_columns = [c for c, kind in schema.items() if kind == "image"]
    if not image_columns:
        return checked
    image_root = home.config.dataset.image_root
    folder = Path(checked.path).resolve().parent
    roots = allowed_roots(home.root, image_root, folder)
    base = Path(image_root).expanduser() if image_root else folder
    frame, rejected, bad = checked.frame.copy(), list(checked.rejected), set()
    for col in image_columns:
        for i, (row, value) in enumerate(zip(frame["row_number"].tolist(), frame[col].tolist())):
            try:
                if value is None:
                    raise ImageRejected(f"empty image path (column {col})")
                image = resolve_reference(str(value), base=base, roots=roots)
                check_image(image)
                frame.iat[i, frame.columns.get_loc(col)] = str(image)
            except ImageRejected as exc:
                rejected.append((int(row), f"image: {exc}"))
                bad.add(i)
    if len(bad) == len(frame):
        raise EngineError(f"{checked.path}: no usable rows ({len(rejected)} rejected; {rejected[-1][1]})")
    keep = [i for i in range(len(frame)) if i not in bad]
    return replace(checked, frame=frame.iloc[keep].reset_index(drop=True), rejected=sorted(rejected))


def with_stored_vectors(home: Home, model: Any, frame: pd.DataFrame) -> pd.DataFrame:
    """``frame`` (rows of a checked file, with ``feature_hash``) plus the vectors of the embedding
    ``model`` reads, from the warehouse's ``embeddings`` (keyed by content hash, as mining stores
    them); rows not stored yet are embedded once and stored, so the next call on the same content
    embeds nothing. Unchanged when the model embeds nothing, with a corpus-fitted embedder (tfidf),
    or from image files (their references are not content: the file behind one can change).
    """
    from data_engine.mine.embedders.base import EMBEDDING_COLUMN, get_embedder
    from data_engine.mine.embedders.features import EmbeddingFeatures, attach_embedding
    from data_engine.store.warehouse import open_warehouse

    params = model.get_params(deep=True).values() if hasattr(model, "get_params") else ()
    found = [p for p in [model, *params] if isinstance(p, EmbeddingFeatures)]
    if not found or frame.empty or EMBEDDING_COLUMN in frame.columns or "feature_hash" not in frame.columns:
        return frame
    feats = found[0]
    image = home.config.dataset.image_column
    if not get_embedder(feats.embedding).per_row or (image is not None and image in feats.columns):
        return frame
    with open_warehouse(home) as con:
        out, _ = attach_embedding(con, frame, feats.embedding, tuple(feats.columns))
    return out


def evaluate_file(home: Home, path: Path, version: int | None = None) -> FileEvaluation:
    """The task's figures (accuracy, macro-F1 and per-class recall for classes) of the champion (or
    ``version``) on the labeled file ``path``.

    Predictions are the model's ``predict`` (as the gate scores gold); rows the ingest validation
    rejects are left out and listed, with their file row numbers.
    """
    record = chosen_model(home, version)
    checked = _read(home, record, path, need_label=True)
    model = load_model(home, record)
    frame = with_stored_vectors(home, model, checked.frame)
    y_pred = predict_gold(home, record, frame, what=str(path), model=model)
    ev = evaluate_predictions(frame["label"].astype(str).to_numpy(), y_pred, version=record.version,
                              task=task_for(home.config.dataset), classes=list(record.classes))
    notes, said = label_notes(checked)
    return FileEvaluation(record.version, str(path), ev, checked.rejected, notes, said)


def label_notes(checked: CheckedFile, limit: int = 10) -> tuple[list[str], list[int]]:
    """One line for the labels of ``checked`` read under a class's new name (``classes rename``),
    and one for the rows left out because their label is not a class (which labels, how many rows,
    the first ``limit`` row numbers, the fix); and the row numbers the second line covers."""
    from data_engine.store.classes import NOT_A_CLASS, SHOWN_LABELS, add_command

    notes = []
    if checked.renamed_labels:
        read = ", ".join(f"{old!r} as {new!r} ({counted(n, 'row')})" for old, (new, n) in checked.renamed_labels.items())
        notes.append(f"{checked.path}: labels read under the class's new name (`data-engine classes rename`): {read}")
    unknown = checked.unknown_labels
    # A row rejected for its label alone; one with other reasons too is listed with them.
    said = [r for r, why in checked.rejected if NOT_A_CLASS in why and "; " not in why]
    if unknown and said:
        shown = ", ".join(f"{k!r} ({counted(n, 'row')})" for k, n in list(unknown.items())[:SHOWN_LABELS])
        more = ", ..." if len(unknown) > SHOWN_LABELS else ""
        rows = ", ".join(map(str, said[:limit])) + (", ..." if len(said) > limit else "")
        notes.append(f"{checked.path}: {counted(len(said), 'row')} left out ({verb(len(said), 'row', 'rows')} {rows}): "
                     "their label is not one of the "
                     f"classes: {shown}{more}; relabel them in the file (`data-engine classes` lists the classes), "
                     f"or if new, add it with `{add_command(list(unknown))}`")
    return notes, said if unknown else []


def predict_file(home: Home, path: Path, version: int | None = None) -> tuple[pd.DataFrame, list[tuple[int, str]], int]:
    """Predictions of the champion (or ``version``) for every good row of ``path``.

    Returns ``(frame, rejected, model_version)``; ``frame`` has the dataset's id column, then the
    task's columns (:meth:`~data_engine.tasks.Task.predict_table`; classification: ``predicted_label``,
    the most probable class as the model server answers, ``predicted_score`` and one ``p_<class>``
    column of class probabilities per class, in the model's class order).
    """
    from data_engine.ship.fitting import limited_threads

    record = chosen_model(home, version)
    checked = _read(home, record, path, need_label=False)
    classes = list(record.classes)
    model = load_model(home, record)
    X = model_input(record, with_stored_vectors(home, model, checked.frame), str(path))
    task = task_for(home.config.dataset)
    with limited_threads():
        pred = task.predict(model, X, classes)  # (N, width)
    # Without an id column the ids are the engine's content ids, named as `export` names them.
    out = pd.DataFrame({home.config.dataset.id_column or "example_id": checked.frame["example_id"].to_numpy(),
                        **task.predict_table(pred, classes)})
    return out, checked.rejected, record.version


def write_frame(frame: pd.DataFrame, out: Path) -> None:
    """Write ``frame`` as CSV, Parquet or JSONL by the suffix of ``out``."""
    suffix = out.suffix.lower()
    if suffix not in OUTPUT_FORMATS:
        raise EngineError(f"--out {out}: unsupported suffix {suffix or '(none)'!r}; use {', '.join(OUTPUT_FORMATS)}")
    out.parent.mkdir(parents=True, exist_ok=True)
    if suffix == ".csv":
        frame.to_csv(out, index=False)
    elif suffix == ".parquet":
        frame.to_parquet(out, index=False)
    else:
        frame.to_json(out, orient="records", lines=True)
