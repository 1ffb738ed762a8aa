"""The one builder of asset metadata: plain records (dicts of numbers, strings, lists) in, typed and
rounded Dagster metadata out. Every asset and ``assets.history`` build their metadata here.

Numbers are ``MetadataValue.int``/``float`` (rounded: a UI cell never shows 0.0013908205841446364),
tables are ``MetadataValue.table`` with a ``TableSchema`` (Dagster renders them as tables, sortable
and typed), row counts go under Dagster's own ``dagster/row_count`` key, and figures are inline
images in Markdown (the only way Dagster shows a picture on the page) plus their file path.

One null rule: a missing value (None, NaN, infinity) is Dagster's null, both as a metadata entry
and as a table cell; a table record always has every column of its schema (Dagster refuses a table
whose records have different fields).
"""

from __future__ import annotations

import base64
import math
import numbers as numbers_
from collections.abc import Iterable, Mapping, Sequence
from pathlib import Path
from typing import Any

import dagster as dg
import numpy as np

ROW_COUNT = "dagster/row_count"
FLOAT_DIGITS = 4

_TYPES = {int: "int", float: "float", bool: "bool", str: "string"}


def _missing(value: Any) -> bool:
    """The null rule: None, NaN and infinities are missing."""
    return value is None or (isinstance(value, numbers_.Real) and not isinstance(value, numbers_.Integral)
                             and not math.isfinite(float(value)))


def value(v: Any, digits: int = FLOAT_DIGITS) -> dg.MetadataValue:
    """One plain value as typed metadata.

    Missing (see the module docstring) is ``null``; a bool stays a bool, an integer an int, a real
    number a float rounded to ``digits``; a string is text, a ``Path`` a path, a dict or list JSON.
    Raises ``TypeError`` for anything else (a record must hold plain values).
    """
    if _missing(v):
        return dg.MetadataValue.null()
    if isinstance(v, (bool, np.bool_)):  # numpy's bool is not a number.Integral
        return dg.MetadataValue.bool(bool(v))
    if isinstance(v, numbers_.Integral):
        return dg.MetadataValue.int(int(v))
    if isinstance(v, numbers_.Real):
        return dg.MetadataValue.float(round(float(v), digits))
    if isinstance(v, str):
        return dg.MetadataValue.text(v)
    if isinstance(v, Path):
        return dg.MetadataValue.path(str(v))
    if isinstance(v, (Mapping, list, tuple)):
        return dg.MetadataValue.json(v)
    raise TypeError(f"no metadata type for {type(v).__name__} value {v!r}")


def values(record: Mapping[str, Any], digits: int = FLOAT_DIGITS) -> dict[str, dg.MetadataValue]:
    """:func:`value` for each entry of a plain record, keys unchanged."""
    return {k: value(v, digits) for k, v in record.items()}




def pick(record: Mapping[str, Any], keys: Sequence[str], digits: int = FLOAT_DIGITS) -> dict[str, dg.MetadataValue]:
    """:func:`value` of ``record[key]`` for each of ``keys``; a key the record lacks is null.

    So two records of one asset (one from a run, one read back from the warehouse) give the same
    metadata keys.
    """
    return {k: value(record.get(k), digits) for k in keys}


def cell(v: Any, kind: type, digits: int = FLOAT_DIGITS) -> Any:
    """One table cell of column type ``kind``: None when missing, else the value cast and rounded."""
    if _missing(v):
        return None
    if kind is float:
        return round(float(v), digits)
    return int(v) if kind is int else kind(v)


def table(rows: Iterable[Mapping[str, Any]], columns: Sequence[tuple[str, type]],
          digits: int = FLOAT_DIGITS) -> dg.MetadataValue:
    """A typed table: ``columns`` as (name, python type: int, float, bool or str); every record has
    every column (a missing value is a None cell, a key not in ``columns`` is left out)."""
    schema = dg.TableSchema(columns=[dg.TableColumn(name, _TYPES[kind]) for name, kind in columns])
    records = [dg.TableRecord({name: cell(row.get(name), kind, digits) for name, kind in columns}) for row in rows]
    return dg.MetadataValue.table(records=records, schema=schema)


def figure(png: bytes, caption: str, path: Path | None = None, key: str = "figure") -> dict[str, dg.MetadataValue]:
    """A PNG figure as an inline Markdown image under ``key`` (and the file it was saved to, if any,
    under ``key + "_path"``)."""
    uri = base64.b64encode(png).decode("ascii")
    out = {key: dg.MetadataValue.md(f"{caption}\n\n![{caption}](data:image/png;base64,{uri})")}
    if path is not None:
        out[f"{key}_path"] = dg.MetadataValue.path(str(path))
    return out

