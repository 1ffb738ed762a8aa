"""Ingesting one landed file as a batch: every row is stored or quarantined with a reason.

The whole batch is one transaction: a process killed mid-load leaves no trace, and the retry
starts clean. Validation is set-based SQL over the file as read by DuckDB (no Python row loops).
Invariant: ``rows_in == rows_ok + rows_quarantined`` for every batch.
"""

from __future__ import annotations

import hashlib
import json
import re
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import duckdb

from data_engine.config import DatasetConfig
from data_engine.home import Home
from data_engine.readers import UnreadableFile, file_format, read_raw
from data_engine.schema import fix_classes, fix_columns
from data_engine.warehouse import open_warehouse, quote_ident

MAX_ID_LENGTH = 256
PREVIEW_ROWS = 10
_UNSAFE = re.compile(r"[^A-Za-z0-9_.-]+")


@dataclass
class IngestResult:
    """What happened to one file."""

    batch_id: str
    path: str
    sha256: str
    status: str
    reason: str | None = None
    is_gold: bool = False
    rows_in: int = 0
    rows_ok: int = 0
    rows_quarantined: int = 0
    rows_new: int = 0
    rows_changed: int = 0
    rows_unchanged: int = 0
    rows_labeled: int = 0
    already_known: bool = False
    ignored_columns: list[str] = field(default_factory=list)
    quarantine_preview: list[dict[str, Any]] = field(default_factory=list)

    def to_dict(self) -> dict[str, Any]:
        """A JSON-ready dict."""
        return asdict(self)


def sha256_file(path: Path) -> str:
    """The hex sha256 of a file's bytes, read in chunks."""
    digest = hashlib.sha256()
    with path.open("rb") as fh:
        for chunk in iter(lambda: fh.read(1 << 20), b""):
            digest.update(chunk)
    return digest.hexdigest()


def batch_id_for(path: Path, sha256: str) -> str:
    """A readable, unique batch id: the file's stem and the start of its sha256."""
    stem = _UNSAFE.sub("_", path.stem).strip("_")[:60] or "batch"
    return f"{stem}-{sha256[:12]}"


def is_gold_path(home: Home, path: Path) -> bool:
    """True for files under ``landing/gold/`` (trusted evaluation data)."""
    try:
        path.resolve().relative_to(home.gold_landing.resolve())
        return True
    except ValueError:
        return False


def ingest_path(home: Home, path: Path, *, gold: bool | None = None) -> IngestResult:
    """Ingest one file into the home's warehouse (opening it); see :func:`ingest_file`."""
    ds = home.config.dataset
    with open_warehouse(home) as con:
        return ingest_file(con, ds, path, gold=is_gold_path(home, path) if gold is None else gold)


def ingest_file(con: duckdb.DuckDBPyConnection, ds: DatasetConfig, path: Path, *, gold: bool = False) -> IngestResult:
    """Ingest ``path`` as one batch through an open warehouse connection.

    The same bytes are never ingested twice: a file whose batch is already recorded is a no-op,
    and the same bytes under another name are recorded as a ``duplicate`` batch.
    """
    path = Path(path)
    if not path.is_file():
        from data_engine.errors import EngineError

        raise EngineError(f"{path}: no such file")
    sha = sha256_file(path)
    batch_id = batch_id_for(path, sha)
    known = con.execute("SELECT * FROM batches WHERE batch_id = ?", [batch_id]).fetchdf()
    if len(known):
        return _result_from_row(known.iloc[0].to_dict(), already_known=True)
    result = IngestResult(batch_id=batch_id, path=str(path), sha256=sha, status="ingested", is_gold=gold)
    con.execute("BEGIN TRANSACTION")
    try:
        same = con.execute(
            "SELECT batch_id, path FROM batches WHERE sha256 = ? ORDER BY received_at LIMIT 1", [sha]
        ).fetchone()
        if same:
            result.status, result.reason = "duplicate", f"same bytes as batch {same[0]} ({same[1]})"
        else:
            try:
                _load(con, ds, path, result)
            except UnreadableFile as exc:
                result.status, result.reason = "rejected", str(exc)
                result.rows_in = result.rows_ok = result.rows_quarantined = 0
                result.quarantine_preview = []
        _record_batch(con, result, file_format_or_none(path))
        con.execute("COMMIT")
    except BaseException:
        con.execute("ROLLBACK")
        raise
    finally:
        for table in ("raw_rows", "raw_rejects", "checked", "reject_errors", "reject_scans"):
            try:
                con.execute(f"DROP TABLE IF EXISTS {table}")
            except duckdb.Error:
                pass
    return result


def file_format_or_none(path: Path) -> str | None:
    """The reader name for ``path``, or None if unsupported."""
    try:
        return file_format(path)
    except UnreadableFile:
        return None


def _load(con: duckdb.DuckDBPyConnection, ds: DatasetConfig, path: Path, result: IngestResult) -> None:
    """Read, validate and store the rows of one file; fill ``result``'s counts."""
    raw = read_raw(con, path, file_format(path))
    present = set(raw.columns)
    required = [ds.id_column, *ds.input_columns]
    missing = [c for c in required if c not in present]
    if missing:
        shown = ", ".join(repr(c) for c in raw.columns[:20]) or "none"
        raise UnreadableFile(
            f"missing required column(s) {', '.join(repr(c) for c in missing)} (the file has: {shown})"
        )
    label_present = ds.label_column in present
    if result.is_gold and not label_present:
        raise UnreadableFile(f"a gold file must have the label column {ds.label_column!r}")
    if raw.rows == 0 and raw.rejects == 0:
        raise UnreadableFile("no data rows (header only)")
    result.ignored_columns = sorted(present - set(required) - {ds.label_column})
    types = fix_columns(con, ds, present)
    classes = fix_classes(con, ds, result.batch_id, label_present)
    _validate(con, ds, types, label_present, bool(classes), result.is_gold)
    _quarantine(con, result.batch_id)
    _store(con, ds, types, result)
    counts = con.execute(
        "SELECT (SELECT count(*) FROM raw_rows) + (SELECT count(*) FROM raw_rejects), "
        "(SELECT count(*) FROM checked WHERE reason IS NULL), "
        "(SELECT count(*) FROM quarantine WHERE batch_id = ?)",
        [result.batch_id],
    ).fetchone()
    result.rows_in, result.rows_ok, result.rows_quarantined = counts
    result.quarantine_preview = [
        {"row_number": r[0], "reason": r[1], "raw": r[2][:200] if r[2] else r[2]}
        for r in con.execute(
            "SELECT row_number, reason, raw FROM quarantine WHERE batch_id = ? ORDER BY row_number LIMIT ?",
            [result.batch_id, PREVIEW_ROWS],
        ).fetchall()
    ]
    if result.rows_quarantined:
        result.reason = f"{result.rows_quarantined} of {result.rows_in} rows quarantined"


def _validate(
    con: duckdb.DuckDBPyConnection, ds: DatasetConfig, types: dict[str, str], label_present: bool,
    classes_known: bool, gold: bool,
) -> None:
    """Build the temp table ``checked``: typed values and a reason (NULL when the row is fine)."""
    idq = quote_ident(ds.id_column)
    id_expr = f"trim({idq})"
    reasons = [
        f"CASE WHEN nullif({id_expr}, '') IS NULL THEN 'missing id (column {_lit(ds.id_column)[1:-1]})' END",
        f"CASE WHEN length({id_expr}) > {MAX_ID_LENGTH} THEN 'id longer than {MAX_ID_LENGTH} characters' END",
        f"CASE WHEN nullif({id_expr}, '') IS NOT NULL AND count(*) OVER (PARTITION BY {id_expr}) > 1 "
        f"THEN 'id ' || {id_expr} || ' repeated within the batch' END",
    ]
    selects = [f"{id_expr} AS example_id", "__row"]
    for col, kind in types.items():
        q = quote_ident(col)
        if kind == "label":
            continue
        if col not in {*ds.input_columns}:
            continue
        value = f"nullif(trim({q}), '')"
        if kind == "numeric":
            num = f"TRY_CAST({value} AS DOUBLE)"
            reasons.append(
                f"CASE WHEN {value} IS NOT NULL AND ({num} IS NULL OR NOT isfinite({num})) "
                f"THEN 'column {_lit(col)[1:-1]}: ' || left({value}, 40) || ' is not a finite number' END"
            )
            selects.append(f"{num} AS {q}")
        elif kind == "text":
            reasons.append(f"CASE WHEN {value} IS NULL THEN 'empty text (column {_lit(col)[1:-1]})' END")
            selects.append(f"{q} AS {q}")
        else:
            selects.append(f"{value} AS {q}")
    lq = quote_ident(ds.label_column)
    if label_present:
        label = f"nullif(trim({lq}), '')"
        selects.append(f"{label} AS {lq}")
        if classes_known:
            reasons.append(
                f"CASE WHEN {label} IS NOT NULL AND {label} NOT IN (SELECT class_label FROM dataset_classes) "
                f"THEN 'label ' || left({label}, 40) || ' is not one of the classes' END"
            )
        if gold:
            reasons.append(f"CASE WHEN {label} IS NULL THEN 'gold row without a label' END")
    else:
        selects.append(f"NULL::VARCHAR AS {lq}")
    raw_cols = ", ".join(f"{_lit(c)}: {quote_ident(c)}" for c in _raw_columns(con))
    selects.append(f"to_json({{{raw_cols}}})::VARCHAR AS raw")
    con.execute(
        f"CREATE TEMP TABLE checked AS SELECT {', '.join(selects)}, "
        f"nullif(concat_ws('; ', {', '.join(reasons)}), '') AS reason FROM raw_rows"
    )


def _quarantine(con: duckdb.DuckDBPyConnection, batch_id: str) -> None:
    con.execute(
        "INSERT INTO quarantine (batch_id, row_number, raw, reason) "
        "SELECT ?, __row, raw, reason FROM checked WHERE reason IS NOT NULL "
        "UNION ALL SELECT ?, __row, raw, 'unreadable row: ' || reason FROM raw_rejects",
        [batch_id, batch_id],
    )


def _store(con: duckdb.DuckDBPyConnection, ds: DatasetConfig, types: dict[str, str], result: IngestResult) -> None:
    """Store new and changed examples (a new version each) and ledger their labels."""
    inputs = [c for c in types if c != ds.label_column]
    lq = quote_ident(ds.label_column)
    feat = ", ".join(f"{_lit(c)}: {quote_ident(c)}" for c in inputs)
    con.execute(
        f"CREATE TEMP TABLE staged AS SELECT c.*, md5(to_json({{{feat}}})::VARCHAR) AS feature_hash "
        "FROM checked c WHERE c.reason IS NULL"
    )
    con.execute(
        f"CREATE TEMP TABLE staged_v AS SELECT s.*, md5(s.feature_hash || coalesce(s.{lq}, chr(0))) AS content_hash, "
        "ce.version AS prev_version, ce.content_hash AS prev_hash "
        "FROM staged s LEFT JOIN current_examples ce USING (example_id)"
    )
    con.execute("DROP TABLE staged")
    new, changed, unchanged = con.execute(
        "SELECT count(*) FILTER (prev_version IS NULL), count(*) FILTER (prev_version IS NOT NULL AND prev_hash <> content_hash), "
        "count(*) FILTER (prev_hash = content_hash) FROM staged_v"
    ).fetchone()
    cols = ", ".join(quote_ident(c) for c in types)
    con.execute(
        f"INSERT INTO examples (example_id, version, batch_id, row_number, content_hash, feature_hash, is_gold, {cols}) "
        f"SELECT example_id, coalesce(prev_version, 0) + 1, ?, __row, content_hash, feature_hash, ?, {cols} "
        "FROM staged_v WHERE prev_hash IS DISTINCT FROM content_hash ORDER BY __row",
        [result.batch_id, result.is_gold],
    )
    labeled = con.execute(
        f"INSERT INTO label_events (example_id, example_version, label, source, actor, detail) "
        f"SELECT example_id, coalesce(prev_version, 0) + 1, {lq}, 'ingest', ?, "
        "json_object('batch_id', ?, 'row_number', __row, 'gold', ?) "
        f"FROM staged_v WHERE prev_hash IS DISTINCT FROM content_hash AND {lq} IS NOT NULL ORDER BY __row",
        [f"batch:{result.batch_id}", result.batch_id, result.is_gold],
    ).fetchone()[0]
    con.execute("DROP TABLE staged_v")
    result.rows_new, result.rows_changed, result.rows_unchanged, result.rows_labeled = new, changed, unchanged, labeled


def _record_batch(con: duckdb.DuckDBPyConnection, r: IngestResult, fmt: str | None) -> None:
    con.execute(
        "INSERT INTO batches (batch_id, path, sha256, format, is_gold, rows_in, rows_ok, rows_quarantined, "
        "rows_new, rows_changed, rows_unchanged, rows_labeled, status, reason) "
        "VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
        [r.batch_id, r.path, r.sha256, fmt, r.is_gold, r.rows_in, r.rows_ok, r.rows_quarantined,
         r.rows_new, r.rows_changed, r.rows_unchanged, r.rows_labeled, r.status, r.reason],
    )


def _raw_columns(con: duckdb.DuckDBPyConnection) -> list[str]:
    return [
        r[0] for r in con.execute(
            "SELECT column_name FROM information_schema.columns WHERE table_name = 'raw_rows' "
            "AND column_name <> '__row' ORDER BY ordinal_position"
        ).fetchall()
    ]


def _lit(text: str) -> str:
    """A SQL string literal (for names used inside generated SQL; values always go as parameters)."""
    return "'" + text.replace("'", "''") + "'"


def _result_from_row(row: dict[str, Any], *, already_known: bool) -> IngestResult:
    names = IngestResult.__dataclass_fields__
    kwargs = {k: (None if _isnan(v) else v) for k, v in row.items() if k in names}
    for k in ("rows_in", "rows_ok", "rows_quarantined", "rows_new", "rows_changed", "rows_unchanged", "rows_labeled"):
        kwargs[k] = int(kwargs.get(k) or 0)
    kwargs["is_gold"] = bool(kwargs.get("is_gold"))
    return IngestResult(**kwargs, already_known=already_known)


def _isnan(v: Any) -> bool:
    return isinstance(v, float) and v != v


def summarize(results: list[IngestResult]) -> str:
    """One line per batch, for people."""
    lines = []
    for r in results:
        note = " (already ingested)" if r.already_known else ""
        counts = f"rows_in={r.rows_in} ok={r.rows_ok} quarantined={r.rows_quarantined}"
        lines.append(f"{r.batch_id}: {r.status}{note} {counts}" + (f" - {r.reason}" if r.reason else ""))
    return "\n".join(lines)


def to_json(results: list[IngestResult]) -> str:
    """The results as a JSON array."""
    return json.dumps([r.to_dict() for r in results], default=str)
