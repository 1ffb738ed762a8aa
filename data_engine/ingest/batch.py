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
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import duckdb

from data_engine.errors import EngineError
from data_engine.ingest.readers import RawTable, UnreadableFile, drop_scratch, file_format, read_raw
from data_engine.store.config import DatasetConfig
from data_engine.store.home import Home
from data_engine.store.schema import define_label_events, fix_classes, fix_columns
from data_engine.store.warehouse import last_event_id, open_warehouse, quote_ident, rollback_quietly

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
    """Ingest ``path`` as one batch through an open warehouse connection (not inside a transaction).

    The same bytes are never ingested twice: a file whose batch is already recorded is a no-op,
    and the same bytes under another name are recorded as a ``duplicate`` batch.
    """
    path = Path(path)
    if not path.is_file():
        raise EngineError(f"{path}: no such file")
    sha = sha256_file(path)
    batch_id = batch_id_for(path, sha)
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
            "SELECT batch_id, path FROM batches WHERE sha256 = ? AND status = 'ingested' "
            "ORDER BY received_at LIMIT 1", [sha]
        ).fetchone()
        raw = None
        if same:
            result.status, result.reason = "duplicate", f"same bytes as batch {same[0]} ({same[1]})"
        else:
            # Read before the transaction: a reader error must not abort it (see read_raw).
            try:
                raw = read_raw(con, path, file_format(path))
            except UnreadableFile as exc:
                _reject(result, exc)
        con.execute("BEGIN TRANSACTION")
        try:
            if raw is not None:
                try:
                    _load(con, ds, result, raw)
                except UnreadableFile as exc:
                    # Nothing of a rejected file may stay (e.g. column types fixed from it).
                    con.execute("ROLLBACK")
                    con.execute("BEGIN TRANSACTION")
                    _reject(result, exc)
            _record_batch(con, result, file_format_or_none(path))
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


def _reject(result: IngestResult, exc: UnreadableFile) -> None:
    """Mark the whole file rejected with ``exc`` as the reason; no rows are counted."""
    result.status, result.reason = "rejected", str(exc)
    result.rows_in = result.rows_ok = result.rows_quarantined = 0
    result.rows_new = result.rows_changed = result.rows_unchanged = result.rows_labeled = 0
    result.quarantine_preview = []


def file_format_or_none(path: Path) -> str | None:
    """The reader name for ``path``, or None if unsupported."""
    try:
        return file_format(path)
    except UnreadableFile:
        return None


def _load(con: duckdb.DuckDBPyConnection, ds: DatasetConfig, result: IngestResult, raw: RawTable) -> None:
    """Validate and store the rows read into ``raw_rows``; fill ``result``'s counts."""
    present = set(raw.columns)
    required = [ds.id_column, *ds.input_columns]
    missing = [c for c in required if c not in present]
    if missing:
        shown = ", ".join(repr(c) for c in raw.columns[:20]) or "none"
        # None of them at all usually means no header row or another delimiter: say so.
        hint = "; is the header row missing, or the delimiter not a comma?" if len(missing) == len(required) else ""
        raise UnreadableFile(
            f"missing required column(s) {', '.join(repr(c) for c in missing)} (the file has: {shown}){hint}"
        )
    label_present = ds.label_column in present
    if result.is_gold and not label_present:
        raise UnreadableFile(f"a gold file must have the label column {ds.label_column!r}")
    if raw.rows == 0 and raw.rejects == 0:
        raise UnreadableFile("no data rows (header only)")
    result.ignored_columns = sorted(present - set(required) - {ds.label_column})
    types = fix_columns(con, ds, present)
    define_label_events(con, next(c for c, kind in types.items() if kind == "label"))
    classes = fix_classes(con, ds, result.batch_id, label_present)
    rejected = _validate(con, ds, types, raw.columns, label_present, bool(classes), result.is_gold)
    if ds.image_column:
        rejected += _check_images(con, ds, result, raw)
    result.rows_quarantined = _quarantine(con, result.batch_id)
    result.rows_in = raw.rows + raw.rejects
    result.rows_ok = raw.rows - rejected
    _store(con, ds, types, result)
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
    con: duckdb.DuckDBPyConnection, ds: DatasetConfig, types: dict[str, str], columns: tuple[str, ...],
    label_present: bool, classes_known: bool, gold: bool,
) -> int:
    """Find the rows to quarantine and define the rows to store; return the number rejected.

    Builds the temp table ``rejected(__row, reason, raw)`` (small: only the bad rows; ``raw`` is the
    row as read, ``columns``, as JSON) and the temp view
    ``good``: the typed values of every other row and their feature hash ``__fh``. The good rows
    are never copied: the inserts read them through the view, straight from ``raw_rows``.
    """
    id_expr = _trim(quote_ident(ds.id_column))
    # Repeated ids by a hash aggregate (far cheaper than a window over every row); the rows of
    # each repeated id are named in the reason so a person can find them. Empty ids are dropped
    # after grouping (HAVING): a WHERE would compute the trimmed id twice per row.
    con.execute(
        f"CREATE TEMP TABLE dup_ids AS SELECT {id_expr} AS example_id FROM raw_rows "
        "GROUP BY ALL HAVING count(*) > 1 AND example_id <> ''"
    )
    has_dups = con.execute("SELECT count(*) FROM dup_ids").fetchone()[0] > 0
    if has_dups:
        con.execute(
            "CREATE OR REPLACE TEMP TABLE dup_ids AS SELECT example_id, count(*) AS n, "
            "string_agg(__row::VARCHAR, ', ' ORDER BY __row) FILTER (rn <= 5) AS rows_shown FROM ("
            f"  SELECT {id_expr} AS example_id, __row, row_number() OVER (PARTITION BY {id_expr} ORDER BY __row) AS rn"
            f"  FROM raw_rows SEMI JOIN dup_ids ON {id_expr} = dup_ids.example_id"
            ") GROUP BY example_id"
        )
    # Two levels, so every cell is trimmed and cast once: (values) the cleaned and typed values,
    # (outer) the reasons from them. The same value expressions feed ``good``.
    values = [f"{id_expr} AS example_id", "r.__row AS __row"]
    checks = []
    # (condition, reason) pairs; the conditions pick the bad rows, the reasons are only built for them.
    reasons = [
        ("nullif(example_id, '') IS NULL", f"'missing id (column {_lit(ds.id_column)[1:-1]})'"),
        (f"length(example_id) > {MAX_ID_LENGTH}", f"'id longer than {MAX_ID_LENGTH} characters'"),
    ]
    if has_dups:
        checks += ["d.n AS __dup_n", "d.rows_shown AS __dup_rows"]
        reasons.append((
            "__dup_n IS NOT NULL",
            "'id ' || left(example_id, 60) || ' appears ' || __dup_n || "
            "' times in this file (rows ' || __dup_rows || CASE WHEN __dup_n > 5 THEN ', ...' ELSE '' END || ')'",
        ))
    hashed = []
    for i, (col, kind) in enumerate(types.items()):
        q = quote_ident(col)
        if kind == "label" or col not in ds.input_columns:
            continue
        hashed.append(q)
        if kind == "numeric":
            # The cast itself skips surrounding whitespace and gives NULL for an empty cell.
            values.append(f"TRY_CAST(r.{q} AS DOUBLE) AS {q}")
            text = f"__s{i}"
            checks.append(f"r.{q} AS {text}")
            reasons.append((
                f"({q} IS NULL AND trim({text}) <> '') OR NOT isfinite({q})",
                f"'column {_lit(col)[1:-1]}: ' || left(trim({text}), 40) || ' is not a finite number'",
            ))
        elif kind == "vector":
            values.append(f"TRY_CAST(r.{q} AS FLOAT[]) AS {q}")
            text = f"__s{i}"
            checks += [f"r.{q} AS {text}", f"{_vector_dimension(q)} AS __dim{i}"]
            reasons.append((
                f"{q} IS NULL OR len({q}) = 0 OR len(list_filter({q}, lambda x: x IS NULL OR NOT isfinite(x))) > 0",
                f"'column {_lit(col)[1:-1]}: ' || coalesce(left(trim({text}), 40), 'empty') || "
                "' is not a list of finite numbers'",
            ))
            reasons.append((
                f"len({q}) <> __dim{i}",
                f"'column {_lit(col)[1:-1]}: ' || len({q}) || ' numbers, expected ' || __dim{i}",
            ))
        elif kind == "text":
            values.append(f"r.{q} AS {q}")
            reasons.append((f"nullif({_trim(q)}, '') IS NULL", f"'empty text (column {_lit(col)[1:-1]})'"))
        else:
            values.append(f"nullif({_trim('r.' + q)}, '') AS {q}")
    lq = quote_ident(ds.label_column)
    if label_present:
        values.append(f"nullif({_trim('r.' + lq)}, '') AS {lq}")
        if classes_known:
            reasons.append((
                f"{lq} IS NOT NULL AND {lq} NOT IN (SELECT class_label FROM dataset_classes)",
                f"'label ' || left({lq}, 40) || ' is not one of the classes'",
            ))
        if gold:
            reasons.append((f"{lq} IS NULL", "'gold row without a label'"))
    else:
        values.append(f"NULL::VARCHAR AS {lq}")
    join = f"LEFT JOIN dup_ids d ON d.example_id = {id_expr}" if has_dups else ""
    # The raw cells ride along under plain aliases (no cost per row) so the quarantine's JSON of
    # the row as read is built here, for the bad rows only, without joining raw_rows again.
    raw = [f"r.{quote_ident(c)} AS __raw{i}" for i, c in enumerate(columns)]
    raw_json = ", ".join(f"{_lit(c)}: __raw{i}" for i, c in enumerate(columns))
    # Conditions are flagged first (a boolean each): the reason text is built for the bad rows only.
    flags = [f"({cond}) AS __bad{i}" for i, (cond, _) in enumerate(reasons)]
    texts = ", ".join(f"CASE WHEN __bad{i} THEN {text} END" for i, (_, text) in enumerate(reasons))
    con.execute(
        f"CREATE TEMP TABLE rejected AS SELECT __row, concat_ws('; ', {texts}) AS reason, "
        f"to_json({{{raw_json}}})::VARCHAR AS raw "
        f"FROM (SELECT *, {', '.join(flags)} "
        f"      FROM (SELECT {', '.join(values + checks + raw)} FROM raw_rows r {join})) "
        f"WHERE {' OR '.join(f'__bad{i}' for i in range(len(reasons)))}"
    )
    # The feature hash from the typed values (so "1" and "1.0" are the same content): DuckDB's
    # 64-bit hash() of the column values, several times cheaper than md5 of a text form. It is for
    # equality between examples; versions are decided on the values themselves.
    con.execute(
        f"CREATE TEMP VIEW good AS SELECT *, hash({', '.join(hashed)}) AS __fh "
        f"FROM (SELECT {', '.join(values)} FROM raw_rows r) ANTI JOIN rejected USING (__row)"
    )
    return con.execute("SELECT count(*) FROM rejected").fetchone()[0]


def _check_images(con: duckdb.DuckDBPyConnection, ds: DatasetConfig, result: IngestResult, raw: RawTable) -> int:
    """Image files: each row's image found, decoded and stored, or the row rejected (see ingest.images)."""
    from data_engine.ingest.images import check_batch_images
    from data_engine.store.images import warehouse_home

    home = warehouse_home(con)
    if home is None:
        raise EngineError("image files need a warehouse file in an engine home (they are stored beside it)")
    return check_batch_images(con, ds, home, Path(result.path).resolve(), result.batch_id, raw.columns)


def _vector_dimension(q: str) -> str:
    """SQL for the dimension every vector in column ``q`` must have: the stored vectors' (fixed by
    the first batch), else this batch's first parseable one."""
    return (f"coalesce((SELECT len({q}) FROM examples WHERE {q} IS NOT NULL LIMIT 1), "
            f"(SELECT len(TRY_CAST({q} AS FLOAT[])) FROM raw_rows WHERE TRY_CAST({q} AS FLOAT[]) IS NOT NULL "
            "ORDER BY __row LIMIT 1))")


def _quarantine(con: duckdb.DuckDBPyConnection, batch_id: str) -> int:
    """Copy every rejected row (validation failures and unreadable rows) to ``quarantine``; return the count."""
    return con.execute(
        "INSERT INTO quarantine (batch_id, row_number, raw, reason) SELECT ?, __row, raw, reason FROM rejected "
        "UNION ALL SELECT ?, __row, raw, 'unreadable row: ' || reason FROM raw_rejects",
        [batch_id, batch_id],
    ).fetchone()[0]


def _store(con: duckdb.DuckDBPyConnection, ds: DatasetConfig, types: dict[str, str], result: IngestResult) -> None:
    """Store new and changed examples of the view ``good`` (a new version each); a labeled one gets
    the id of its ingest event (the event itself is derived from ``examples``: see the view ``label_events``)."""
    lq = quote_ident(ds.label_column)
    cols = ", ".join(quote_ident(c) for c in types)
    fresh = con.execute("SELECT count(*) FROM examples").fetchone()[0] == 0
    if fresh:
        # The first batch of a warehouse has nothing to compare with: every good row is version 1.
        source = "(SELECT *, 1 AS version FROM good)"
    else:
        # New content = any stored value differs from the current version (compared as values, so
        # the decision never depends on a hash function). Staged once, read by the insert and the count.
        same = " AND ".join(f"ce.{quote_ident(c)} IS NOT DISTINCT FROM g.{quote_ident(c)}" for c in types)
        con.execute(
            "CREATE TEMP TABLE staged AS SELECT g.*, coalesce(ce.version, 0) + 1 AS version "
            "FROM good g LEFT JOIN current_examples ce USING (example_id) "
            f"WHERE ce.version IS NULL OR NOT ({same})"
        )
        source = "staged"
    # Event ids in file order: the highest so far plus the file's row number (unique within the
    # batch; see last_event_id for why that is safe). No per-row nextval(), which serialised the insert.
    inserted = con.execute(
        "INSERT INTO examples (example_id, version, batch_id, row_number, content_hash, feature_hash, is_gold, "
        f"label_event_id, {cols}) "
        f"SELECT example_id, version, ?, __row, hash(__fh, {lq}), __fh, ?, "
        f"CASE WHEN {lq} IS NOT NULL THEN ? + __row END, {cols} "
        f"FROM {source}",
        [result.batch_id, result.is_gold, last_event_id(con)],
    ).fetchone()[0]
    changed = 0 if fresh else con.execute("SELECT count(*) FROM staged WHERE version > 1").fetchone()[0]
    # Counted from the stored rows of this batch (a narrow scan), not by another pass over the file.
    labeled = con.execute(
        "SELECT count(label_event_id) FROM examples WHERE batch_id = ?", [result.batch_id]
    ).fetchall()[0][0]
    result.rows_new, result.rows_changed = inserted - changed, changed
    result.rows_unchanged, result.rows_labeled = result.rows_ok - inserted, labeled


def _record_batch(con: duckdb.DuckDBPyConnection, r: IngestResult, fmt: str | None) -> None:
    con.execute(
        "INSERT INTO batches (batch_id, path, sha256, format, is_gold, rows_in, rows_ok, rows_quarantined, "
        "rows_new, rows_changed, rows_unchanged, rows_labeled, status, reason) "
        "VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
        [r.batch_id, r.path, r.sha256, fmt, r.is_gold, r.rows_in, r.rows_ok, r.rows_quarantined,
         r.rows_new, r.rows_changed, r.rows_unchanged, r.rows_labeled, r.status, r.reason],
    )


def _trim(expr: str) -> str:
    """SQL for ``trim(expr)`` that only calls trim() on values with a space at either end: a
    trimmed copy of every cell was the most expensive part of validation, and almost no cell needs it."""
    return f"CASE WHEN starts_with({expr}, ' ') OR ends_with({expr}, ' ') THEN trim({expr}) ELSE {expr} END"


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
