"""Ingesting one landed file as a batch: every row is stored or quarantined with a reason.

The file is read into temp tables first (outside any transaction: a reader error must not abort
one); every write of the batch is then one transaction: a process killed mid-load leaves no trace,
and the retry starts clean. Validation is set-based SQL over the file as read by DuckDB (no Python
row loops). Invariant: ``rows_in == rows_ok + rows_quarantined`` for every batch, and the
quarantine holds exactly ``rows_quarantined`` rows of it, under the file's row numbers.
"""

from __future__ import annotations

import hashlib
import json
import re
from pathlib import Path
from typing import Any

import duckdb

from data_engine.errors import EngineError
from data_engine.ingest.columns import CONTENT_ID, add_content_ids, match_columns
from data_engine.ingest.rejected import keep_only_quarantine, rejecting_columns
from data_engine.ingest.readers import RawTable, UnreadableFile, drop_scratch, file_format, format_or_none, read_raw
from data_engine.ingest.redact import redact_text
from data_engine.ingest.result import IngestResult
from data_engine.ingest.validate import GOLD_ID_PREFIX, quarantine, validate
from data_engine.ingest.versions import store_versions
from data_engine.ingest.unknown_labels import unknown_labels
from data_engine.store.classes import config_drift, spelling_key, unknown_labels_warning
from data_engine.store.config import DatasetConfig
from data_engine.store.home import Home
from data_engine.store.schema import (MANY_CLASSES, AmbiguousNumbers, NotClasses, define_label_events,
                                      fix_columns, load_classes, stored_columns)
from data_engine.store.warehouse import quote_ident, rollback_quietly
from data_engine.tasks import task_for
from data_engine.wording import counted, verb

# IngestResult is defined in ingest.result (the version store fills it too) and read from here by callers.
__all__ = ["IngestResult", "batch_id_for", "ingest_file", "is_gold_path", "load_rows", "record_batch",
           "sha256_file", "to_json"]

PREVIEW_ROWS = 10
_UNSAFE = re.compile(r"[^A-Za-z0-9_.-]+")


def sha256_file(path: Path) -> str:
    """The hex sha256 of a file's bytes, read in chunks."""
    digest = hashlib.sha256()
    with path.open("rb") as fh:
        for chunk in iter(lambda: fh.read(1 << 20), b""):
            digest.update(chunk)
    return digest.hexdigest()


def _size_and_time(path: Path) -> tuple[int, int]:
    st = path.stat()
    return st.st_size, st.st_mtime_ns


def batch_id_for(path: Path, sha256: str) -> str:
    """A readable, unique batch id: the file's stem and the start of its sha256."""
    stem = _UNSAFE.sub("_", path.stem).strip("_")[:60] or "batch"
    return f"{stem}-{sha256[:12]}"


def is_gold_path(home: Home, path: Path) -> bool:
    """True for files under ``landing/gold/`` (trusted evaluation data)."""
    return path.resolve().is_relative_to(home.gold_landing.resolve())


def ingest_file(con: duckdb.DuckDBPyConnection, ds: DatasetConfig, path: Path, *, gold: bool = False,
                regold: bool = False, max_quarantine_share: float = 0.5) -> IngestResult:
    """Ingest ``path`` as one batch through an open warehouse connection (not inside a transaction).

    The same bytes are never ingested twice: a file whose batch is already recorded is a no-op,
    and the same bytes under another name are recorded as a ``duplicate`` batch. Bytes already
    ingested as training data are not taken as gold (a ``rejected`` result that names the ids and
    is not recorded) unless ``regold``: then they are stored again as gold examples, in the gold id space.
    A file with rows but no good one is ``rejected`` naming the columns that rejected them, its rows
    kept in ``quarantine`` (see :func:`_fail_without_good_rows`); a batch whose quarantined share of
    rows (0..1) is above ``max_quarantine_share`` is ingested with a warning in ``warnings``.
    """
    path = Path(path)
    if not path.is_file():
        raise EngineError(f"{path}: no such file")
    before = _size_and_time(path)
    sha = sha256_file(path)
    batch_id = batch_id_for(path, sha)
    if gold:
        trained = con.execute(
            "SELECT batch_id, path FROM batches WHERE sha256 = ? AND status = 'ingested' AND NOT is_gold "
            "ORDER BY received_at LIMIT 1", [sha]
        ).fetchone()
        if trained and not regold:
            return _training_not_gold(con, path, sha, batch_id, trained[0])
        batch_id = f"{batch_id}-gold" if trained else batch_id
    cur = con.execute("SELECT * FROM batches WHERE batch_id = ?", [batch_id])
    known = cur.fetchone()
    if known is not None:
        return _result_from_row(dict(zip([d[0] for d in cur.description], known)), already_known=True)
    result = IngestResult(batch_id=batch_id, path=str(path), sha256=sha, status="ingested", is_gold=gold)
    # Row numbers come from the order rows are read in: insertion order must be kept while reading
    # (whatever the caller set on this connection; restored at the end).
    keep_order = con.execute("SELECT current_setting('preserve_insertion_order')").fetchone()[0]
    con.execute("SET preserve_insertion_order = true")
    try:
        same = con.execute(
            # Only ingested bytes count: a rejection may depend on where the file was (gold/) or on
            # the config, so the same bytes may be tried again under another name.
            "SELECT batch_id, path FROM batches WHERE sha256 = ? AND status = 'ingested' AND is_gold = ? "
            "ORDER BY received_at LIMIT 1", [sha, gold]
        ).fetchone()
        raw = None
        if same:
            result.status, result.reason = "duplicate", f"same bytes as batch {same[0]} ({same[1]})"
        else:
            # Read before the transaction: a reader error must not abort it (see read_raw).
            try:
                raw = read_raw(con, path, file_format(path), ds)
            except UnreadableFile as exc:
                _reject(result, exc)
            if _size_and_time(path) != before:
                # Bytes read while a writer was still at it are a truncated file: record nothing.
                raise EngineError(f"{path}: changed while it was read (still being written?); nothing stored, "
                                  "it is read again once it stops changing")
        con.execute("BEGIN TRANSACTION")
        try:
            if raw is not None:
                try:
                    load_rows(con, ds, result, raw)
                except UnreadableFile as exc:
                    # Nothing of a rejected file may stay (e.g. column types fixed from it).
                    con.execute("ROLLBACK")
                    con.execute("BEGIN TRANSACTION")
                    _reject(result, exc)
                else:
                    _judge_quarantined_share(con, result, max_quarantine_share)
            redact_result(result)
            record_batch(con, result, format_or_none(path))
            con.execute("COMMIT")
        except BaseException:
            rollback_quietly(con)
            raise
    finally:
        try:
            drop_scratch(con)
            con.execute(f"SET preserve_insertion_order = {'true' if keep_order else 'false'}")
        except duckdb.Error:
            pass
    return result


def _training_not_gold(con: duckdb.DuckDBPyConnection, path: Path, sha: str, batch_id: str,
                       training_batch: str) -> IngestResult:
    """The answer to ``--gold`` for bytes already ingested as training data: which ids, and what to do."""
    n, shown = con.execute(
        "SELECT count(*), string_agg(example_id, ', ' ORDER BY row_number) FILTER (rn <= 5) FROM ("
        "  SELECT example_id, row_number, row_number() OVER (ORDER BY row_number) AS rn FROM examples WHERE batch_id = ?)",
        [training_batch],
    ).fetchone()
    reason = (
        f"already ingested as training data (batch {training_batch}; {n} ids: {shown or '-'}{', ...' if n > 5 else ''}); "
        "gold data must be examples the model never trains on: land separate gold data in landing/gold/, "
        "or pass --regold to store these rows as gold examples too (their training copies stay training data)"
    )
    return redact_result(IngestResult(batch_id=batch_id, path=str(path), sha256=sha, status="rejected",
                                      reason=reason, is_gold=True))


def redact_result(result: IngestResult) -> IngestResult:
    """``result`` (changed in place) with every text it records or shows about the file through
    :func:`~data_engine.ingest.redact.redact_text`: the reason, notes, warnings, ignored column names,
    labels that are not classes and the quarantine preview (stored in ``batches``, printed, put in the Dagster metadata)."""
    result.reason = redact_text(result.reason) if result.reason else result.reason
    result.notes = [redact_text(n) for n in result.notes]
    result.warnings = [redact_text(w) for w in result.warnings]
    result.ignored_columns = [redact_text(c) for c in result.ignored_columns]
    result.unknown_labels = {redact_text(k): n for k, n in result.unknown_labels.items()}
    result.quarantine_preview = [{**q, "reason": redact_text(q["reason"] or ""),
                                  "raw": redact_text(q["raw"])[:200] if q["raw"] else q["raw"]}
                                 for q in result.quarantine_preview]
    return result


def _reject(result: IngestResult, exc: UnreadableFile) -> None:
    """Mark the whole file rejected with ``exc`` as the reason; no rows are counted."""
    result.status, result.reason = "rejected", str(exc)
    result.rows_in = result.rows_ok = result.rows_quarantined = 0
    result.rows_new = result.rows_changed = result.rows_unchanged = result.rows_labeled = 0
    result.quarantine_preview = []
    result.changed_columns, result.unknown_labels = {}, {}
    result.verdicts_kept = result.verdict_conflicts = 0


def _judge_quarantined_share(con: duckdb.DuckDBPyConnection, result: IngestResult, max_share: float) -> None:
    """Fail a loaded batch without a good row; warn when its quarantined share is above ``max_share``."""
    if not result.rows_in:
        return
    if not result.rows_ok:
        _fail_without_good_rows(con, result)
        return
    share = result.rows_quarantined / result.rows_in
    if share > max_share:
        result.warnings.append(
            f"{result.rows_quarantined} of {counted(result.rows_in, 'row')} ({share:.0%}) quarantined, above [ingest] "
            f"max_quarantine_share = {max_share:g}: {rejecting_columns(con, result.batch_id)}")


def _fail_without_good_rows(con: duckdb.DuckDBPyConnection, result: IngestResult) -> None:
    """Mark a batch whose every row was quarantined ``rejected``, naming what rejected the rows.

    Its quarantined rows are kept (nothing lost: a person reads why each row failed), but nothing
    else of it stays: the transaction is rolled back, so a first batch that fails fixes no column
    types or classes, and the quarantine is written again. The counts stay as loaded.
    """
    why = rejecting_columns(con, result.batch_id)
    keep_only_quarantine(con, result.batch_id)
    result.status = "rejected"
    result.reason = (f"no good row: {'the one row' if result.rows_in == 1 else f'all {result.rows_in} rows'} quarantined, {why}; "
                     "the rows and their reasons are "
                     f"in table quarantine, batch_id = '{result.batch_id}'")
    result.rows_new = result.rows_changed = result.rows_unchanged = result.rows_labeled = 0
    result.column_types, result.changed_columns = {}, {}
    result.verdicts_kept = result.verdict_conflicts = 0
    # Only the column mapping still holds: notes on classes or stored labels were about rows not kept.
    result.notes = [n for n in result.notes if n.startswith("column ")]


def load_rows(con: duckdb.DuckDBPyConnection, ds: DatasetConfig, result: IngestResult, raw: RawTable) -> None:
    """Validate and store the rows read into ``raw_rows``; fill ``result``'s counts."""
    match = match_columns(con, ds, raw)
    result.notes += list(raw.notes)
    result.notes += [f"column {old!r} read as {new!r} (the config's name)" for old, new in match.renamed.items()]
    label_present = ds.label_column in match.present
    if result.is_gold and not label_present:
        raise UnreadableFile(f"a gold file must have the label column {ds.label_column!r}")
    if raw.rows == 0 and raw.rejects == 0:
        raise UnreadableFile("no data rows (header only)")
    result.ignored_columns = list(match.ignored)
    if not label_present:
        # A file without the label column is the unlabeled stream, a valid batch; but a misspelt or
        # renamed label column reads the same way, so say it, and where the labels might be.
        candidates = _label_candidates(con, list(match.ignored))
        hint = (f"; if the labels are in {', '.join(map(repr, candidates))}, set [dataset] label_column"
                if candidates else "")
        result.notes.append(f"no label column {ds.label_column!r} in this file: its rows are stored unlabeled "
                            f"(examples already stored with the same inputs keep their labels){hint}")
    first = not stored_columns(con)
    try:
        types = fix_columns(con, ds, set(match.present))
    except AmbiguousNumbers as exc:
        raise UnreadableFile(str(exc)) from None
    if first:
        result.column_types = {c: t for c, t in types.items() if t != "label"}
    define_label_events(con, next(c for c, kind in types.items() if kind == "label"))
    had_classes = bool(load_classes(con))
    try:
        classes = task_for(ds).record_classes(con, ds, result.batch_id, label_present)
    except NotClasses as exc:
        raise UnreadableFile(str(exc)) from None
    if classes and not had_classes:
        result.notes.append(f"classes ({'from the config' if ds.classes else 'inferred from this batch'}): "
                            + ", ".join(map(repr, classes)) + _case_variants(classes))
        if not ds.classes and len(classes) > MANY_CLASSES:
            result.notes.append(f"{len(classes)} classes: every distinct value of {ds.label_column!r} is a class; "
                                "if that is not what it holds, set [dataset] classes before more data lands")
    elif drift := config_drift(con, ds):
        # Editing [dataset] classes after the first labeled batch changes nothing by itself.
        result.notes.append(drift)
    id_column = ds.id_column or CONTENT_ID
    if ds.id_column is None:
        add_content_ids(con, ds, types)
    columns = tuple(match.renamed.get(c, c) for c in raw.columns)
    checked = validate(con, ds, id_column, types, columns, label_present, bool(classes), result.is_gold,
                       nul_free=raw.nul_free)
    rejected = checked.rejected
    result.unknown_labels = unknown_labels(con, ds) if label_present else {}
    if result.unknown_labels:
        result.warnings.append(unknown_labels_warning(con, result.unknown_labels))
    if label_present and not result.is_gold:
        n, markers = checked.missing_labels
        if n:
            result.notes.append(f"{counted(n, 'row')} {verb(n, 'has', 'have')} a missing-value marker ({', '.join(map(repr, markers))}) as "
                                f"{verb(n, 'its', 'their')} label in column {ds.label_column!r}: stored unlabeled")
    if ds.image_column:
        rejected += _check_images(con, ds, result, columns)
        if label_present:  # boxes against their images' sizes (the detection task), once the images are read
            more, notes = task_for(ds).check_image_labels(con, ds, result.batch_id)
            rejected += more
            result.notes += notes
    result.rows_quarantined = quarantine(con, result.batch_id)
    result.rows_in = raw.rows + raw.rejects
    result.rows_ok = raw.rows - rejected
    store_versions(con, ds, types, result, label_present=label_present)
    if result.is_gold:
        _note_gold_ids_equal_to_training(con, result)
        _note_gold_copies_of_training(con, result)
    result.quarantine_preview = [
        {"row_number": r[0], "reason": r[1], "raw": r[2]}
        for r in con.execute(
            "SELECT row_number, reason, raw FROM quarantine WHERE batch_id = ? ORDER BY row_number LIMIT ?",
            [result.batch_id, PREVIEW_ROWS],
        ).fetchall()
    ]
    if result.rows_quarantined:
        result.reason = f"{result.rows_quarantined} of {counted(result.rows_in, 'row')} quarantined"


# A column whose every value differs (a timestamp, a free id) in a file of at least this many rows
# is no label column: labels repeat their classes. Below it, a few rows say too little to judge.
UNIQUE_ROWS = 20


def _label_candidates(con: duckdb.DuckDBPyConnection, ignored: list[str]) -> list[str]:
    """The ignored file columns that could hold the labels: all but those with a distinct value on
    every row of a file of :data:`UNIQUE_ROWS` rows or more (read from ``raw_rows``)."""
    if not ignored:
        return []
    counts = con.execute("SELECT count(*), " + ", ".join(f"count(DISTINCT {quote_ident(c)})" for c in ignored)
                         + " FROM raw_rows").fetchone()
    rows = counts[0]
    return [c for c, distinct in zip(ignored, counts[1:]) if rows < UNIQUE_ROWS or distinct < rows]


def _case_variants(classes: list[str]) -> str:
    """A warning when classes differ only in case or spaces ('Yes' and 'yes' are two classes unless the
    config said which): the same key as the quarantine of a later label's spellings (:func:`spelling_key`)."""
    groups: dict[str, list[str]] = {}
    for c in classes:
        groups.setdefault(spelling_key(c), []).append(c)
    twins = [g for g in groups.values() if len(g) > 1]
    if not twins:
        return ""
    shown = "; ".join(" and ".join(map(repr, g)) for g in twins)
    # [dataset] classes set now would change nothing (the classes are fixed and never removed), so the
    # way to merge is the mining run's finding, which counts each spelling's rows.
    return (f"; {shown} differ only in case or spaces and are separate classes (labels are never rewritten); "
            "if they are one, the next mining run's case_variants finding names their rows and how to make them one")


def _note_gold_ids_equal_to_training(con: duckdb.DuckDBPyConnection, result: IngestResult) -> None:
    """Say so when gold rows carry ids that training examples also have (nothing is replaced)."""
    n, shown = con.execute(
        "SELECT count(*), string_agg(id, ', ' ORDER BY id) FILTER (rn <= 5) FROM ("
        "  SELECT substr(g.example_id, ?) AS id, row_number() OVER (ORDER BY g.example_id) AS rn FROM good g"
        "  SEMI JOIN current_examples ce ON ce.example_id = substr(g.example_id, ?) AND NOT ce.is_gold)",
        [len(GOLD_ID_PREFIX) + 1, len(GOLD_ID_PREFIX) + 1],
    ).fetchone()
    if n:
        result.notes.append(
            f"{n} gold ids equal training ids ({shown}{', ...' if n > 5 else ''}); gold examples have their "
            f"own id space (stored as {GOLD_ID_PREFIX}<id>), so no training example was replaced"
        )


def _note_gold_copies_of_training(con: duckdb.DuckDBPyConnection, result: IngestResult) -> None:
    """Say how many gold rows have an exact copy (the same input hash) among the training examples:
    the gate leaves them out of its gold figures (:mod:`data_engine.ship.leakage`), so the gold it
    measures on is smaller than the file; said here, where the rows land, not first at the gate."""
    n, shown = con.execute(
        "SELECT count(*), string_agg(id, ', ' ORDER BY id) FILTER (rn <= 5) FROM ("
        "  SELECT substr(g.example_id, ?) AS id, row_number() OVER (ORDER BY g.example_id) AS rn FROM good g"
        "  SEMI JOIN current_examples ce ON ce.feature_hash = g.__fh AND NOT ce.is_gold)",
        [len(GOLD_ID_PREFIX) + 1],
    ).fetchone()
    if n:
        result.notes.append(
            f"{n} of {counted(result.rows_ok, 'gold row')} have an exact copy among the training examples "
            f"({shown}{', ...' if n > 5 else ''}): the gate leaves them out of its gold figures (a model trained "
            "on a copy measures memory), as it does near copies it finds"
        )


def _check_images(con: duckdb.DuckDBPyConnection, ds: DatasetConfig, result: IngestResult,
                  columns: tuple[str, ...]) -> int:
    """Image files: each row's image found, decoded and stored, or the row rejected (see ingest.images)."""
    from data_engine.ingest.images import check_batch_images
    from data_engine.store.images import warehouse_home

    home = warehouse_home(con)
    if home is None:
        raise EngineError("image files need a warehouse file in an engine home (they are stored beside it)")
    return check_batch_images(con, ds, home, Path(result.path).resolve(), result.batch_id, columns)


def record_batch(con: duckdb.DuckDBPyConnection, r: IngestResult, fmt: str | None) -> None:
    """Insert the row of ``batches`` for ``r`` (``fmt``: the reader, or how the rows came)."""
    con.execute(
        "INSERT INTO batches (batch_id, path, sha256, format, is_gold, rows_in, rows_ok, rows_quarantined, "
        "rows_new, rows_changed, rows_unchanged, rows_labeled, status, reason) "
        "VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
        [r.batch_id, r.path, r.sha256, fmt, r.is_gold, r.rows_in, r.rows_ok, r.rows_quarantined,
         r.rows_new, r.rows_changed, r.rows_unchanged, r.rows_labeled, r.status, r.reason],
    )


def _result_from_row(row: dict[str, Any], *, already_known: bool) -> IngestResult:
    names = IngestResult.__dataclass_fields__
    kwargs = {k: (None if _isnan(v) else v) for k, v in row.items() if k in names}
    for k in ("rows_in", "rows_ok", "rows_quarantined", "rows_new", "rows_changed", "rows_unchanged", "rows_labeled"):
        kwargs[k] = int(kwargs.get(k) or 0)
    kwargs["is_gold"] = bool(kwargs.get("is_gold"))
    return IngestResult(**kwargs, already_known=already_known)


def _isnan(v: Any) -> bool:
    return isinstance(v, float) and v != v


def to_json(results: list[IngestResult]) -> str:
    """The results as a JSON array."""
    return json.dumps([r.to_dict() for r in results], default=str)
