"""Row validation of one batch: set-based SQL over ``raw_rows`` that picks the rows to quarantine
(with a reason a person understands) and defines the typed values of all the others.

Labels and ids are compared in their normalised spelling (:mod:`data_engine.store.values`); the
quarantine keeps each bad row as the file wrote it. A numeric column reads the configured missing-
value markers (``[dataset] na_values``) as missing; other columns keep them as text.
"""

from __future__ import annotations

from typing import NamedTuple

import duckdb

from data_engine.store.config import DatasetConfig
from data_engine.store.values import (MAX_NUMBER, all_plain, blank_sql, canonical_sql, label_markers, missing_number_sql,
                                      normalized_sql)
from data_engine.store.warehouse import quote_ident
from data_engine.tasks import task_for

MAX_ID_LENGTH = 256
# A cell longer than this (characters) is an over-long field: the row is quarantined, not stored.
MAX_FIELD_CHARS = 1_000_000
# Ids of gold examples live in their own id space: a gold row never replaces a training example
# that happens to carry the same id (files numbered from 0 or 1 collide all the time).
GOLD_ID_PREFIX = "gold:"
# The temp table of a batch's distinct label cells and their row counts (``cell``, ``n``), for a task
# whose labels take a few values (``Task.few_label_values``): whether they are all in normal form and
# which are missing-value markers is read from it, not from every row (on `bench ingest`'s 2,000,000
# rows of 4 label values the two scans of the label column, 0.09 and 0.05 s of CPU, become one
# grouping of about 0.04 s; a column of nearly unique cells would cost more to group: not for those).
LABEL_VALUES = "label_values"


class Validation(NamedTuple):
    """What :func:`validate` found: the rows rejected, which of the id and label columns hold
    only values already in normal form (:func:`~data_engine.store.values.all_plain`), and the rows
    whose label cell is a missing-value marker with the markers seen (:func:`missing_labels`; 0 and
    none without a label column)."""

    rejected: int
    plain: frozenset[str]
    missing_labels: tuple[int, list[str]] = (0, [])


def validate(
    con: duckdb.DuckDBPyConnection, ds: DatasetConfig, id_column: str, types: dict[str, str],
    columns: tuple[str, ...], label_present: bool, classes_known: bool, gold: bool, *, nul_free: bool = False,
) -> Validation:
    """Find the rows to quarantine and define the rows to store; return the number rejected (and
    the plain columns). ``nul_free``: no value can hold a NUL character (``RawTable.nul_free``), so
    the per-value NUL check is skipped.

    Builds the temp table ``rejected(__row, reason, raw)`` (small: only the bad rows; ``raw`` is the
    row as read, ``columns``, as JSON) and the temp view
    ``good``: the typed values of every other row and their feature hash ``__fh``. The good rows
    are never copied: the inserts read them through the view, straight from ``raw_rows``.
    """
    task = task_for(ds)
    # Labels of a task with a few label values are tested once per distinct cell (LABEL_VALUES).
    by_value = label_present and task.few_label_values
    plain = all_plain(con, "raw_rows", [id_column] + ([ds.label_column] if label_present and not by_value else []))
    if by_value:
        con.execute(f"CREATE OR REPLACE TEMP TABLE {LABEL_VALUES} AS SELECT {quote_ident(ds.label_column)} AS cell, "
                    "count(*) AS n FROM raw_rows GROUP BY ALL")
        if all_plain(con, LABEL_VALUES, ["cell"]):
            plain |= {ds.label_column}

    def norm(expr: str, col: str) -> str:
        return expr if col in plain else normalized_sql(expr)

    id_expr = norm(quote_ident(id_column), id_column)
    # Repeated ids by a hash aggregate (far cheaper than a window over every row); the rows of
    # each repeated id are named in the reason so a person can find them. Empty ids are dropped
    # after grouping (HAVING): a WHERE would compute the normalised id twice per row.
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
    # Two levels, so every cell is normalised and cast once: (values) the cleaned and typed values,
    # (outer) the reasons from them. The same value expressions feed ``good``.
    values = [f"{id_expr} AS example_id", "r.__row AS __row"]
    checks = []
    # (condition, reason) pairs; the conditions pick the bad rows, the reasons are only built for them.
    reasons = [
        ("nullif(example_id, '') IS NULL", f"'missing id (column {_lit(id_column)[1:-1]})'"),
        (f"length(example_id) > {MAX_ID_LENGTH}", f"'id longer than {MAX_ID_LENGTH} characters'"),
    ]
    if not gold:  # else this training row would become a version of the gold example with that id
        reasons.append((
            f"starts_with(example_id, {_lit(GOLD_ID_PREFIX)})",
            f"'id ' || left(example_id, 60) || ' starts with {GOLD_ID_PREFIX}, the prefix reserved for gold "
            "examples: rename the id (or land the row as gold data in landing/gold/)'",
        ))
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
        # A categorical cell is hashed in its canonical spelling (True/true, +00/+00:00, list syntax:
        # data_engine.store.values.canonical_sql), so a re-export by another tool is the same content.
        hashed.append(canonical_sql(q) if kind == "categorical" else q)
        name = _lit(col)[1:-1]
        if kind == "numeric":
            # The cast itself skips surrounding whitespace and gives NULL for an empty cell or a
            # marker like N/A; NaN is a missing value too when listed (checked on the text below).
            values.append(f"nullif(TRY_CAST(r.{q} AS DOUBLE), 'NaN'::DOUBLE) AS {q}")
            text = f"__s{i}"
            checks.append(f"r.{q} AS {text}")
            reasons.append((
                f"({q} IS NULL AND trim({text}) <> '' AND NOT {missing_number_sql(text, ds.na_values)}) "
                f"OR NOT isfinite({q})",
                f"'column {name}: ' || left(trim({text}), 40) || ' is not a finite number' || "
                f"CASE WHEN contains({text}, ',') THEN ' (a thousands separator or decimal comma? write it as 1234.5)' "
                "ELSE '' END",
            ))
            reasons.append((
                f"abs({q}) > {MAX_NUMBER!r}",
                f"'column {name}: ' || left(trim({text}), 40) || ' is beyond ±{MAX_NUMBER:g}, the largest "
                "magnitude the models read (float32): rescale the column'",
            ))
        elif kind == "vector":
            values.append(f"TRY_CAST(r.{q} AS FLOAT[]) AS {q}")
            text = f"__s{i}"
            checks += [f"r.{q} AS {text}", f"{_vector_dimension(q)} AS __dim{i}"]
            reasons.append((
                f"{q} IS NULL OR len({q}) = 0 OR len(list_filter({q}, lambda x: x IS NULL OR NOT isfinite(x))) > 0",
                f"'column {name}: ' || coalesce(left(trim({text}), 40), 'empty') || "
                "' is not a list of finite numbers'",
            ))
            reasons.append((
                f"len({q}) <> __dim{i}",
                f"'column {name}: ' || len({q}) || ' numbers, expected ' || __dim{i}",
            ))
        elif kind == "text":
            values.append(f"r.{q} AS {q}")
            reasons.append((blank_sql(q), f"'empty text (column {name})'"))
        else:
            values.append(f"nullif({_trim('r.' + q)}, '') AS {q}")
        if kind not in ("numeric", "vector"):
            # strlen (bytes) is free in DuckDB; the reason, built for bad rows only, counts characters.
            # A trimmed cell is tested from the cell as read, the trim only where the cell itself is
            # too long: a reference to the trimmed value made this pass trim every cell of the
            # column (the pass 0.53 -> 0.42 s of CPU on `bench ingest`'s two categorical columns).
            cell = q if kind == "text" else f"__c{i}"
            value = q if kind == "text" else f"nullif({_trim(cell)}, '')"
            if kind != "text":
                checks.append(f"r.{q} AS {cell}")
            reasons.append((f"strlen({cell}) > {MAX_FIELD_CHARS} AND strlen({value}) > {MAX_FIELD_CHARS}",
                            f"'column {name}: over-long field (' || length({value}) || ' characters, at most {MAX_FIELD_CHARS} bytes)'"))
    for i, col in enumerate(columns if not nul_free else ()):
        if col in types or col == id_column:
            # A NUL character inside a value (JSON's \u0000, a Parquet string): no text holds one, and
            # PostgreSQL (the database Label Studio documents for production) refuses it in JSON, so
            # a review push would fail on it for good. A raw NUL byte refuses a CSV or JSON file
            # whole (data_engine.ingest.textscan); inside a well-formed value it is the row's fault.
            reasons.append((f"contains(__raw{i}, chr(0))",
                            f"'column {_lit(col)[1:-1]}: a NUL character (U+0000) at character ' || "
                            f"strpos(__raw{i}, chr(0)) || ', which no text holds (remove it from the value)'"))
    lq = quote_ident(ds.label_column)
    missing = (0, [])
    params: dict[str, list[str]] = {}
    if label_present:
        # A missing-value marker (R's NA) is a missing label unless the classes name it. Only the
        # markers the file holds are tested row by row (usually none: no test at all); the scan that
        # finds them is the one the batch's note on missing labels reads (0.07 s of CPU less over the
        # two passes of `bench ingest`'s 2,000,000 rows, where the list became a hash join).
        missing = missing_labels(con, ds, plain=ds.label_column in plain, by_value=by_value)
        markers = missing[1]

        def stored_label(cell: str) -> str:
            label = task.label_sql(cell, ds.label_column in plain)
            if markers:
                # Compared on the cell (normalised), not on the task's stored label: a tag-set task
                # stores the cell NA as ["NA"], and the cell is what says "missing".
                label = (f"CASE WHEN {norm(cell, ds.label_column)} IN ({', '.join(map(_lit, markers))}) "
                         f"THEN NULL ELSE {label} END")
            return label

        values.append(f"{stored_label('r.' + lq)} AS {lq}")
        # The task words a label's reason ("tag refund is not one of the classes"); the column it
        # came from is named before it, as for the input columns ("column price: label ...").
        named = [(cond, f"{_lit('column ' + ds.label_column + ': ')} || {text}")
                 for cond, text in task.label_reasons(lq, classes_known)]
        if by_value:
            label_reasons, params = _label_reasons_by_value(con, named, lq, stored_label(quote_ident("cell")))
            reasons += label_reasons
        else:
            reasons += named
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
        f"WHERE {' OR '.join(f'__bad{i}' for i in range(len(reasons)))}",
        params or None,
    )
    # The feature hash from the typed values (so "1" and "1.0" are the same content; categorical
    # cells in their canonical spelling, so "True" and "true" are too): DuckDB's
    # 64-bit hash() of the column values, several times cheaper than md5 of a text form. It is for
    # equality between examples; versions are decided on the values themselves.
    gold_id = f"REPLACE ({_lit(GOLD_ID_PREFIX)} || example_id AS example_id)" if gold else ""
    con.execute(
        f"CREATE TEMP VIEW good AS SELECT * {gold_id}, hash({', '.join(hashed)}) AS __fh "
        f"FROM (SELECT {', '.join(values)} FROM raw_rows r) ANTI JOIN rejected USING (__row)"
    )
    return Validation(con.execute("SELECT count(*) FROM rejected").fetchone()[0], frozenset(plain), missing)


def _missing_label_markers(con: duckdb.DuckDBPyConnection, ds: DatasetConfig) -> list[str]:
    """The missing-value markers (``[dataset] na_values``) that are not one of the stored classes."""
    classes = {r[0] for r in con.execute("SELECT class_label FROM dataset_classes").fetchall()}
    return [m for m in label_markers(ds.na_values) if m not in classes]


def missing_labels(con: duckdb.DuckDBPyConnection, ds: DatasetConfig, *, plain: bool = False,
                   by_value: bool = False) -> tuple[int, list[str]]:
    """Rows of ``raw_rows`` whose label cell is a missing-value marker (stored unlabeled), and the
    markers seen. ``plain``: every label cell is in normal form already (``Validation.plain``), so
    the cells are compared as they are (0.17 -> 0.05 s of CPU on 2,000,000 rows). ``by_value``: read
    from the distinct label cells and their row counts (:data:`LABEL_VALUES`), not from every row."""
    markers = _missing_label_markers(con, ds)
    if not markers:
        return 0, []
    label, rows, source = ((quote_ident("cell"), "n", LABEL_VALUES) if by_value
                           else (quote_ident(ds.label_column), "1", "raw_rows"))
    n, seen = con.execute(
        f"SELECT coalesce(sum(n), 0), list(DISTINCT label ORDER BY label) FROM (SELECT {label if plain else normalized_sql(label)} "
        f"AS label, {rows} AS n FROM {source}) WHERE list_contains(?::VARCHAR[], label)", [markers]).fetchone()
    return int(n), list(seen or [])


def _label_reasons_by_value(con: duckdb.DuckDBPyConnection, reasons: list[tuple[str, str]], lq: str,
                            label: str) -> tuple[list[tuple[str, str]], dict[str, list[str]]]:
    """The task's label ``reasons`` (conditions on the stored label ``lq`` alone) judged on the batch's
    distinct label cells (:data:`LABEL_VALUES`, ``label``: the stored label of its ``cell``): a
    condition that holds for none of them is left out, one that holds for some becomes membership in
    those stored labels (a parameter list, returned by name); one that holds for an unlabeled row is
    kept as it is. Exact: the condition holds on a row exactly when it holds on the row's label.
    On `bench ingest`'s file the classes test was a hash join of every row with the classes."""
    if not reasons:
        return reasons, {}
    row = con.execute(
        "SELECT " + ", ".join(f"list(DISTINCT {lq}) FILTER ({lq} IS NOT NULL AND ({cond})), "
                              f"coalesce(bool_or({cond}) FILTER ({lq} IS NULL), false)" for cond, _ in reasons)
        + f" FROM (SELECT {label} AS {lq} FROM {LABEL_VALUES})").fetchone()
    kept, params = [], {}
    for i, (cond, text) in enumerate(reasons):
        held, on_unlabeled = row[2 * i], row[2 * i + 1]
        if on_unlabeled:
            kept.append((cond, text))
        elif held:
            params[f"labels{i}"] = sorted(held)
            kept.append((f"list_contains($labels{i}::VARCHAR[], {lq})", text))
    return kept, params


def _vector_dimension(q: str) -> str:
    """SQL for the dimension every vector in column ``q`` must have: the stored vectors' (fixed by
    the first batch), else this batch's most common length (ties: the earliest row's). Not the first
    row's: one malformed first vector would otherwise quarantine every good row after it and fix the
    wrong dimension for good."""
    cast = f"TRY_CAST({q} AS FLOAT[])"
    return (f"coalesce((SELECT len({q}) FROM examples WHERE {q} IS NOT NULL LIMIT 1), "
            f"(SELECT len({cast}) FROM raw_rows WHERE len({cast}) > 0 "
            f"GROUP BY len({cast}) ORDER BY count(*) DESC, min(__row) LIMIT 1))")


def quarantine(con: duckdb.DuckDBPyConnection, batch_id: str) -> int:
    """Copy every rejected row (validation failures and unreadable rows) to ``quarantine``; return the count."""
    return con.execute(
        "INSERT INTO quarantine (batch_id, row_number, raw, reason) SELECT ?, __row, raw, reason FROM rejected "
        "UNION ALL SELECT ?, __row, raw, 'unreadable row: ' || reason FROM raw_rejects",
        [batch_id, batch_id],
    ).fetchone()[0]


def _trim(expr: str) -> str:
    """SQL for ``trim(expr)`` that only calls trim() on values with a space at either end: a
    trimmed copy of every cell was the most expensive part of validation, and almost no cell needs it."""
    return f"CASE WHEN starts_with({expr}, ' ') OR ends_with({expr}, ' ') THEN trim({expr}) ELSE {expr} END"


def _lit(text: str) -> str:
    """A SQL string literal (for names used inside generated SQL; values always go as parameters)."""
    return "'" + text.replace("'", "''") + "'"
