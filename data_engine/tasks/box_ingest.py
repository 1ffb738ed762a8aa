"""Ingest of box sets: the SQL checks of a label cell, and the checks against each image's size once
the images are read.

A label cell must be a JSON array of ``{"label", "x", "y", "w", "h"}`` objects (else the row is
quarantined: the label cannot be read). Each box must then lie in its image, have a positive size,
name a known class and not repeat another box; a box that fails is quarantined alone with its reason
(table ``quarantine``: the row number, ``{"<image column>": stored path, "box": {...}}`` and the
reason) and the image is stored with its other boxes, as the label (:func:`data_engine.tasks.boxes.split_valid`).
The image's width and height come from Pillow at ingest (``images`` table), so a label's pixels are
checked against the image itself, not a size the annotation file claims. Every stored label is the
canonical spelling of its kept boxes (:func:`data_engine.tasks.boxes.canonical`).
"""

from __future__ import annotations

import json
from typing import TYPE_CHECKING

import pandas as pd

from data_engine.store.values import normalized_sql
from data_engine.wording import counted
from data_engine.tasks.boxes import NotABoxSet, canonical, parse, split_valid

if TYPE_CHECKING:
    import duckdb

    from data_engine.store.config import DatasetConfig

# The fields of a box as DuckDB reads them (a field of another type reads as NULL: checked below).
BOX_STRUCT = '[{"label": "VARCHAR", "x": "DOUBLE", "y": "DOUBLE", "w": "DOUBLE", "h": "DOUBLE"}]'


def is_array_sql(cell: str) -> str:
    """SQL: whether the text ``cell`` is a JSON array."""
    # CASE, not AND: DuckDB may evaluate both sides of AND, and json_type raises on text that is not JSON.
    return f"(CASE WHEN json_valid({cell}) THEN json_type({cell}) = 'ARRAY' ELSE false END)"


def classes_sql(cell: str) -> str:
    """SQL: the ``VARCHAR[]`` of the (normalised) classes a raw box-set cell names; NULL when the cell is no array."""
    return (f"CASE WHEN {is_array_sql(cell)} THEN list_filter(list_transform(from_json({cell}, '{BOX_STRUCT}'), "
            f"lambda b: {normalized_sql('b.label')}), lambda t: t IS NOT NULL) END")


def label_reasons(label: str) -> list[tuple[str, str]]:
    """``(condition, reason)`` SQL pairs quarantining a row whose label cell is not a list of boxes."""
    boxes = f"from_json({label}, '{BOX_STRUCT}')"
    bad = (f"list_filter({boxes}, lambda b: b IS NULL OR nullif(trim(b.label), '') IS NULL OR b.x IS NULL OR b.y IS NULL "
           "OR b.w IS NULL OR b.h IS NULL OR NOT (isfinite(b.x) AND isfinite(b.y) AND isfinite(b.w) AND isfinite(b.h)))")
    return [
        (f"{label} IS NOT NULL AND NOT {is_array_sql(label)}",
         f"'label ' || left({label}, 60) || ' is not a list of boxes (a JSON array of "
         "{\"label\": class, \"x\", \"y\", \"w\", \"h\": pixels}, or [] for an image with no objects)'"),
        # CASE again: from_json raises on a cell that is not a JSON array (trial 22: "boxes": "oops").
        (f"{label} IS NOT NULL AND (CASE WHEN {is_array_sql(label)} THEN len({bad}) > 0 ELSE false END)",
         f"'label ' || left({label}, 60) || ': each box needs a class label and numbers x, y, w, h (pixels)'"),
    ]


def check_image_boxes(con: duckdb.DuckDBPyConnection, ds: DatasetConfig, batch_id: str) -> tuple[int, list[str]]:
    """Check each labeled good row's boxes against its image (module docstring): quarantine the bad
    boxes, store the others in canonical spelling; a row whose label cannot be read as boxes at all is
    rejected. Runs inside the batch's transaction after the image check (``good``, ``rejected`` and the
    ``raw_rows`` view of stored paths exist). Returns (rows newly rejected, notes)."""
    from data_engine.store.warehouse import quote_ident

    img, lab = quote_ident(ds.image_column or ""), quote_ident(ds.label_column)
    classes = [r[0] for r in con.execute("SELECT class_label FROM dataset_classes ORDER BY position").fetchall()]
    rows = con.execute(f"SELECT g.__row, g.{lab}, g.{img}, i.width, i.height FROM good g "
                       f"JOIN images i ON i.path = g.{img} WHERE g.{lab} IS NOT NULL ORDER BY g.__row").fetchall()
    fixed, dropped, unreadable = [], [], []
    for row, label, path, width, height in rows:
        try:
            boxes = parse(label)
        except NotABoxSet as exc:
            unreadable.append((row, f"label: {exc}"))
            continue
        kept, bad = split_valid(boxes, int(width), int(height), classes or None)
        fixed.append((row, canonical(kept)))
        dropped += [(row, json.dumps({ds.image_column: path, "box": b._asdict()}), f"{why} (the image is kept "
                     "with its other boxes)") for b, why in bad]
    if unreadable:
        con.executemany("INSERT INTO rejected SELECT ?, ?, (SELECT to_json(t)::VARCHAR FROM (SELECT * EXCLUDE (__row) "
                        "FROM raw_rows WHERE __row = ?) t)", [(r, why, r) for r, why in unreadable])
    if dropped:
        con.executemany("INSERT INTO quarantine (batch_id, row_number, raw, reason) VALUES (?, ?, ?, ?)",
                        [(batch_id, r, raw, why) for r, raw, why in dropped])
    _correct_labels(con, ds, fixed)
    notes = []
    if dropped:
        images = len({r for r, _, _ in dropped})
        notes.append(f"{counted(len(dropped), 'box', 'boxes')} on {counted(images, 'image')} quarantined, each image kept "
                     "with its other boxes "
                     f"(first: row {dropped[0][0]}: {dropped[0][2]}); they are in table quarantine, batch_id = "
                     f"'{batch_id}'")
    return len(unreadable), notes


def _correct_labels(con: duckdb.DuckDBPyConnection, ds: DatasetConfig, fixed: list[tuple[int, str]]) -> None:
    """Put a view in front of ``raw_rows`` whose label cell is the kept boxes' canonical spelling."""
    from data_engine.store.warehouse import quote_ident

    if not fixed:
        return
    lab = quote_ident(ds.label_column)
    con.register("_box_labels", pd.DataFrame(fixed, columns=["__row", "label"]))
    try:
        con.execute("CREATE TEMP TABLE box_labels AS SELECT __row::BIGINT AS __row, label::VARCHAR AS label FROM _box_labels")
    finally:
        con.unregister("_box_labels")
    kind = "VIEW" if con.execute("SELECT count(*) FROM duckdb_views() WHERE temporary AND view_name = "
                                 "'raw_rows'").fetchone()[0] else "TABLE"
    con.execute(f"ALTER {kind} raw_rows RENAME TO raw_rows_boxes")
    con.execute(f"CREATE TEMP VIEW raw_rows AS SELECT r.* REPLACE (coalesce(b.label, r.{lab}) AS {lab}) "
                "FROM raw_rows_boxes r LEFT JOIN box_labels b ON b.__row = r.__row")
