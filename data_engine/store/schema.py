"""The dataset's schema in the warehouse: typed columns of ``examples`` and the class list.

Feature types come from ``[dataset] column_types`` or, failing that, from the first batch that is
ingested; they are then fixed (recorded in ``dataset_columns``) so every later batch is validated
against the same types. Classes come from ``[dataset] classes`` or the first labeled batch.
"""

from __future__ import annotations

import math
import re
from collections.abc import Callable

import duckdb

from data_engine.errors import EngineError
from data_engine.store.config import DatasetConfig
from data_engine.store.values import label_markers, missing_number_sql, normalize_text, normalized_sql
from data_engine.store.warehouse import quote_ident


class AmbiguousNumbers(EngineError):
    """A column's numbers are written with thousands separators or decimal commas."""


class NotClasses(EngineError):
    """The label column holds numbers to predict or tag lists, not one class per row."""


# Inferred classes beyond this many are looked at twice: a column of numbers to predict (prices,
# ratings with decimals) or of tag lists would otherwise become hundreds of classes without a word.
MANY_CLASSES = 30
# ... and refused as numbers to predict when nearly all labels are numbers (the share of numeric
# columns) and either some are fractional, most labeled rows have a value of their own, or the
# values leave fewer than MIN_ROWS_PER_CLASS labeled rows per class on average (a whole-number
# target such as a disease score: 214 values among 442 rows, no class learnable from two rows).
DISTINCT_SHARE = 0.5
MIN_ROWS_PER_CLASS = 5
# ... and refused as tag lists when at least this share of the distinct labels is a JSON array or
# holds the tag separator ("a|b", the form issue-tracker and photo-tag exports use).
TAG_LIST_SHARE = 0.2
TAG_SEPARATOR = "|"

# A column is numeric when at least this share of its non-empty values in the first batch parse as
# numbers: a few typos must not turn a numeric column into a categorical one (they get quarantined).
NUMERIC_SHARE = 0.95
# Types are inferred from the first rows of the first batch: enough to see the column's nature,
# and a large first file does not pay a full extra scan (later rows that do not fit are quarantined).
INFER_ROWS = 100_000
# Columns whose types one query infers: a query's memory grows with its aggregates (one query over
# 400 columns took 2.5 GB, over 2,000 it was killed), so wide files are inferred a slice at a time,
# each slice over the same sampled rows: the cost per column is bounded, whatever the width.
INFER_COLUMNS_PER_QUERY = 32


def stored_columns(con: duckdb.DuckDBPyConnection) -> dict[str, str]:
    """``{column: type}`` of the dataset columns already in ``examples`` (empty before the first batch)."""
    return dict(con.execute("SELECT column_name, column_type FROM dataset_columns ORDER BY position").fetchall())


def feature_types(con: duckdb.DuckDBPyConnection) -> dict[str, str]:
    """``{feature column: 'numeric' | 'categorical'}`` as fixed in the warehouse."""
    return dict(
        con.execute(
            "SELECT column_name, column_type FROM dataset_columns WHERE role = 'feature' ORDER BY position"
        ).fetchall()
    )


def load_classes(con: duckdb.DuckDBPyConnection) -> list[str]:
    """The dataset's classes in their fixed order (empty until known)."""
    return [r[0] for r in con.execute("SELECT class_label FROM dataset_classes ORDER BY position").fetchall()]


def fix_columns(con: duckdb.DuckDBPyConnection, ds: DatasetConfig, present: set[str]) -> dict[str, str]:
    """Create the dataset columns in ``examples`` on the first batch; return ``{column: type}``.

    Types are inferred from the temp table ``raw_rows`` (the batch being ingested).
    """
    existing = stored_columns(con)
    if existing:
        return existing
    types: dict[str, str] = {}
    # Feature columns of an image set without image files are pixels; beside image files (detection)
    # they are metadata, typed as a table's columns are.
    pixels = ds.modality == "image" and not ds.image_column
    to_infer = [c for c in ds.feature_columns if not pixels and c not in ds.column_types and c in present]
    inferred = _infer(con, to_infer, ds.na_values)
    for col in ds.feature_columns:
        if pixels:
            types[col] = "numeric"
        elif col in ds.column_types:
            types[col] = ds.column_types[col]
        else:
            types[col] = inferred.get(col, "categorical")
    if ds.text_column:
        types[ds.text_column] = "text"
    if ds.image_column:
        # The path of the image's copy under HOME/images (see data_engine.ingest.images).
        types[ds.image_column] = "image"
    types[ds.label_column] = "label"
    _compress_ids(con)
    _add_example_columns(con, [(col, {"numeric": "DOUBLE", "vector": "FLOAT[]"}.get(kind, "VARCHAR"))
                               for col, kind in types.items()])
    con.executemany("INSERT INTO dataset_columns VALUES (?, ?, ?, ?)",
                    [[col, {"text": "text", "label": "label", "image": "image"}.get(kind, "feature"), kind, pos]
                     for pos, (col, kind) in enumerate(types.items())])
    return types


# Above this many new columns, ``examples`` is created again instead of altered column by column.
ALTER_COLUMNS_AT_MOST = 16


def _add_example_columns(con: duckdb.DuckDBPyConnection, columns: list[tuple[str, str]]) -> None:
    """Append ``columns`` (``[(name, SQL type)]``) to the table ``examples``.

    DuckDB takes one ADD COLUMN per ALTER statement and keeps a version of the table's catalog entry
    for each inside the transaction, so the cost is quadratic in the width: 3,000 columns took
    2.5 GB and 7 s (a 3,000-column first batch peaked at 2.9 GB here). A wide set of columns is
    added by creating the table again from its own DDL (``duckdb_tables().sql``, so its defaults
    and NOT NULLs are kept) with the columns appended, copying its rows (none on a first batch).
    """
    if len(columns) <= ALTER_COLUMNS_AT_MOST:
        for name, sql_type in columns:
            con.execute(f"ALTER TABLE examples ADD COLUMN {quote_ident(name)} {sql_type}")
        return
    added = ", ".join(f"{quote_ident(name)} {sql_type}" for name, sql_type in columns)
    _recreate_examples(con, lambda body: f"{body[:-1]}, {added})")


# DuckDB's storage format from which a column may be compressed with ZSTD (``USING COMPRESSION``).
ZSTD_STORAGE = (1, 2, 0)
# The columns of ``examples`` whose compression the first batch fixes: (DDL as the migrations make
# it, DDL with the compression). The id as ZSTD; the two 64-bit hashes uncompressed, which is what
# DuckDB ends up choosing for them anyway (random bits compress by no method), after trying each;
# the three columns one batch writes with one value (its version 1 on a new warehouse, its time and
# whether it is gold) as RLE, whose analysis is the cheapest: DuckDB still stores a constant row
# group as a Constant segment, as it chose before (0.02-0.03 s of CPU less for 2,000,000 rows).
_COMPRESSED_DDL = (
    ("example_id VARCHAR NOT NULL", "example_id VARCHAR USING COMPRESSION ZSTD NOT NULL"),
    ('"version" INTEGER NOT NULL', '"version" INTEGER USING COMPRESSION RLE NOT NULL'),
    ("ingested_at TIMESTAMP WITH TIME ZONE DEFAULT(now()) NOT NULL",
     "ingested_at TIMESTAMP WITH TIME ZONE USING COMPRESSION RLE DEFAULT(now()) NOT NULL"),
    ("content_hash UBIGINT NOT NULL", "content_hash UBIGINT USING COMPRESSION UNCOMPRESSED NOT NULL"),
    ("feature_hash UBIGINT NOT NULL", "feature_hash UBIGINT USING COMPRESSION UNCOMPRESSED NOT NULL"),
    ("is_gold BOOLEAN DEFAULT(false) NOT NULL", "is_gold BOOLEAN USING COMPRESSION RLE DEFAULT(false) NOT NULL"),
)


def _compress_ids(con: duckdb.DuckDBPyConnection) -> None:
    """Store ``examples.example_id`` compressed with ZSTD, its two hash columns uncompressed and
    ``version``, ``ingested_at`` and ``is_gold`` as RLE (set on the first batch, while the table is
    empty; a warehouse file in a storage format older than :data:`ZSTD_STORAGE` keeps DuckDB's choice).

    Why: DuckDB's own choice for a column of (nearly) unique strings is DICT_FSST, whose analysis
    made the id column the costliest of a load: 2,000,000 ids written in 0.55-0.62 s of CPU against
    0.14-0.19 s with ZSTD, and scanned as fast (0.26 against 0.34 s for a ``count(DISTINCT)``); the
    warehouse of ``bench ingest``'s 2,000,000 rows is 64.8 MB against 61.9 MB. For the hashes DuckDB
    tries every integer method and then stores them uncompressed: said up front, 2,000,000 hashes are
    written in 0.022 s of CPU against 0.039 s, a column, in the same bytes. Other columns keep
    DuckDB's choice: labels and categories repeat a few values, where its dictionary is cheaper than
    ZSTD (0.17 against 0.25 s per column).
    """
    storage = con.execute(
        "SELECT tags['storage_version'] FROM duckdb_databases() WHERE database_name = current_database()"
    ).fetchone()
    version = re.match(r"v(\d+)\.(\d+)\.(\d+)", (storage[0] if storage else None) or "")
    # No storage version: an in-memory database, which compresses nothing and accepts the clause.
    if version and tuple(map(int, version.groups())) < ZSTD_STORAGE:
        return

    def compressed(body: str) -> str:
        for plain, chosen in _COMPRESSED_DDL:
            if plain not in body:
                raise RuntimeError(f"unexpected DDL of table examples (no {plain!r}): {body[:200]!r}")
            body = body.replace(plain, chosen, 1)
        return body

    _recreate_examples(con, compressed)


def _recreate_examples(con: duckdb.DuckDBPyConnection, edit: Callable[[str], str]) -> None:
    """Create ``examples`` again from its own DDL (``duckdb_tables().sql``, so its defaults, NOT NULLs
    and column compressions are kept) with ``edit`` applied to the column list (``"(...)"``), and
    copy its rows. Raises RuntimeError when the DDL is not the table's as the migrations made it."""
    ddl = con.execute("SELECT sql FROM duckdb_tables() WHERE table_name = 'examples' AND NOT temporary "
                      "AND database_name = current_database() AND schema_name = current_schema()").fetchone()[0]
    head, body = ddl.split("(", 1)
    body = "(" + body.rstrip().removesuffix(";").rstrip()
    if not head.strip().endswith("examples") or not body.endswith(")"):
        raise RuntimeError(f"unexpected DDL of table examples: {ddl[:200]!r}")
    con.execute(f"CREATE TABLE examples__wide {edit(body)}")
    con.execute("INSERT INTO examples__wide BY NAME SELECT * FROM examples")
    con.execute("DROP TABLE examples")
    con.execute("ALTER TABLE examples__wide RENAME TO examples")


def define_label_events(con: duckdb.DuckDBPyConnection, label_column: str) -> None:
    """(Re)define the view ``label_events``: the written rows of ``label_ledger`` plus one ingest
    event per example version that has a ``label_event_id``, its label read from ``label_column``.

    Python, not a migration, defines it because the label column's name comes from the config (the
    migration 0600 creates the same view with a NULL label, which derives no rows). Ingest calls it
    in the batch's transaction, before it sets any ``label_event_id``; replacing a view is a catalog
    change of a few milliseconds, so it is simply done on every batch rather than compared first.
    Dependent views (``current_labels``) are bound when queried, so they follow the new definition.
    """
    con.execute(
        "CREATE OR REPLACE VIEW label_events AS "
        "SELECT event_id, example_id, example_version, label, source, actor, created_at, detail FROM label_ledger "
        "UNION ALL "
        # Matches what ingest wrote as rows before 0600 (detail: the batch and whether it is gold).
        "SELECT label_event_id, example_id, version, label, 'ingest', 'batch:' || batch_id, ingested_at, "
        "json_object('batch_id', batch_id, 'gold', is_gold) "
        "FROM (SELECT label_event_id, example_id, version, batch_id, ingested_at, is_gold, "
        f"{quote_ident(label_column)}::VARCHAR AS label FROM examples) "
        "WHERE label_event_id IS NOT NULL AND label IS NOT NULL"
    )


# Numbers a spreadsheet wrote for people: 9,914.91 (thousands separators) or 12,5 (decimal comma).
_GROUPED = r"^[+-]?([0-9]{1,3}([,. ][0-9]{3})+([.,][0-9]+)?|[0-9]+,[0-9]+)$"


def _infer(con: duckdb.DuckDBPyConnection, cols: list[str], na_values: tuple[str, ...]) -> dict[str, str]:
    """``{column: 'numeric' | 'categorical'}`` for ``cols`` of ``raw_rows``, in one scan.

    Missing-value markers (``na_values``) are not counted. Raise :class:`AmbiguousNumbers` for a
    column that would be numeric but for thousands separators or decimal commas: reading ``1,234``
    depends on the writer's locale, so the person who knows it says (the message gives the fix).
    """
    if not cols:
        return {}
    counts: list = []
    for lo in range(0, len(cols), INFER_COLUMNS_PER_QUERY):
        parts = []
        for col in cols[lo:lo + INFER_COLUMNS_PER_QUERY]:
            value = f"nullif(trim({quote_ident(col)}), '')"
            filled = f"{value} IS NOT NULL AND NOT {missing_number_sql(quote_ident(col), na_values)}"
            parts.append(f"count(*) FILTER ({filled}), count(TRY_CAST({value} AS DOUBLE)) FILTER ({filled} "
                         "AND NOT isnan(TRY_CAST(" + value + " AS DOUBLE))), "
                         f"count(*) FILTER (regexp_matches({value}, '{_GROUPED}')), "
                         f"min({value}) FILTER (regexp_matches({value}, '{_GROUPED}'))")
        counts += con.execute(f"SELECT {', '.join(parts)} FROM (FROM raw_rows LIMIT {INFER_ROWS})").fetchone()
    result = {}
    for i, col in enumerate(cols):
        filled, numeric, grouped, example = counts[4 * i: 4 * i + 4]
        if filled and numeric < NUMERIC_SHARE * filled <= numeric + grouped:
            raise AmbiguousNumbers(
                f"column {col!r}: numbers written with thousands separators or a decimal comma (e.g. {example!r}); "
                f"export them as plain numbers (1234.5), or set [dataset] column_types.{col} = \"categorical\" "
                "to keep them as text"
            )
        result[col] = "numeric" if filled and numeric >= NUMERIC_SHARE * filled else "categorical"
    return result


def fix_classes(con: duckdb.DuckDBPyConnection, ds: DatasetConfig, batch_id: str, label_present: bool,
                tags_sql: Callable[[str], str] | None = None) -> list[str]:
    """Record the classes (from the config, or inferred from this batch's labels) if not yet known.

    ``tags_sql``: for labels that are tag sets (multi-label), the SQL turning a raw label cell into
    its ``VARCHAR[]`` of tags; the classes are then the distinct tags (and a label column of tag
    lists is what is expected, so :func:`check_label_kind` does not look at it).
    """
    known = load_classes(con)
    if known:
        return known
    if ds.classes:
        # The config's classes in the spelling labels are compared in (so "1.0" there matches 1).
        labels, source = list(dict.fromkeys(normalize_text(c) for c in ds.classes)), "config"
    elif label_present:
        q = quote_ident(ds.label_column)
        # This batch's labels and those stored before (by batches that had fewer than two); a
        # missing-value marker (R's NA) is an unlabeled row, not a class.
        stored = f"UNION ALL SELECT {q}, NULL FROM examples" if ds.label_column in stored_columns(con) else ""
        cells = (f"(SELECT label, cell FROM (SELECT {normalized_sql(q)} AS label, {q} AS cell FROM raw_rows {stored}) "
                 "WHERE nullif(label, '') IS NOT NULL AND NOT list_contains(?::VARCHAR[], label))")
        markers = [label_markers(ds.na_values)]
        if tags_sql is None:
            found = [r[0] for r in con.execute(f"SELECT DISTINCT label FROM {cells}", markers).fetchall()]
            # This batch's labeled rows (the stored ones have no raw cell).
            n_labeled = con.execute(f"SELECT count(*) FROM {cells} WHERE cell IS NOT NULL", markers).fetchone()[0]
            check_label_kind(ds.label_column, found, int(n_labeled))
        else:
            found = [r[0] for r in con.execute(
                f"SELECT DISTINCT tag FROM (SELECT unnest({tags_sql('label')}) AS tag FROM {cells}) "
                "WHERE nullif(tag, '') IS NOT NULL", markers).fetchall()]
        labels, source = _natural_sorted(found), f"inferred from batch {batch_id}"
    else:
        return []
    if len(labels) < 2:
        # No label, or one: a class list of one would quarantine every other label that arrives later.
        return []
    con.executemany(
        "INSERT INTO dataset_classes VALUES (?, ?, ?)", [[c, i, source] for i, c in enumerate(labels)]
    )
    return labels


def check_label_kind(column: str, distinct: list[str], n_labeled: int) -> None:
    """Refuse a label column that is not one class per row, before its values become classes.

    ``distinct``: its distinct labels (normalised); ``n_labeled``: the labeled rows of the batch.
    The engine classifies: every distinct value is a class. With more than :data:`MANY_CLASSES`
    values, numbers (nearly all labels, with fractions, mostly one value per row or fewer than
    :data:`MIN_ROWS_PER_CLASS` rows per value on average) are a quantity
    to predict, and JSON arrays or ``a|b`` values are tag lists; both are refused with
    :class:`NotClasses`, naming the column, the count and the way out (``[dataset] classes`` when they
    really are classes; ``[dataset] task = "regression"`` for numbers, ``"multilabel"`` for tag lists).
    Only classification asks: a regression task records no classes, a multi-label one its tags.
    """
    k = len(distinct)
    if k <= MANY_CLASSES:
        return
    numbers = [v for v in distinct if _number(v) is not None]
    fractional = sum(1 for v in numbers if not float(_number(v)).is_integer())
    sparse = k >= DISTINCT_SHARE * n_labeled or n_labeled < MIN_ROWS_PER_CLASS * k
    if len(numbers) >= NUMERIC_SHARE * k and (fractional or sparse):
        example = ", ".join(sorted(numbers, key=lambda v: float(v))[:: max(1, len(numbers) // 4)][:4])
        raise NotClasses(
            f"label column {column!r}: {k} distinct numbers among {n_labeled} labeled rows (e.g. {example}) look like "
            f"a quantity to predict, and the engine would make each value a class ({k} classes). If they are "
            "numbers to predict, set [dataset] task = \"regression\" (optionally [dataset] label_range = [lo, hi]); "
            "if they are classes, list them in [dataset] classes")
    tags = [v for v in distinct if (v.startswith("[") and v.endswith("]")) or TAG_SEPARATOR in v]
    if len(tags) >= TAG_LIST_SHARE * k:
        raise NotClasses(
            f"label column {column!r}: {len(tags)} of its {k} distinct values are tag lists (e.g. {tags[0]!r}); "
            f"the engine gives each row one class and would make every combination a class ({k} classes). "
            "Keep one tag per row, or list the classes in [dataset] classes if these values really are classes "
            "(or, for a set of tags per example, set [dataset] task = \"multilabel\")")


def _number(text: str) -> float | None:
    try:
        value = float(text)
    except ValueError:
        return None
    return value if math.isfinite(value) else None


def _natural_sorted(labels: list[str]) -> list[str]:
    """Numeric-looking labels in numeric order ("2" before "10"), others alphabetically."""
    def key(s: str) -> tuple[int, float, str]:
        try:
            return (0, float(s), s)
        except ValueError:
            return (1, 0.0, s)
    return sorted(labels, key=key)
