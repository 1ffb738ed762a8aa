"""Typed, rounded asset metadata: what a person reads on an asset's page in the Dagster UI.

Numbers are ``MetadataValue.int``/``float`` (rounded: a UI cell never shows 0.0013908205841446364),
tables are ``MetadataValue.table`` with a ``TableSchema`` (Dagster renders them as tables, sortable
and typed), row counts go under Dagster's own ``dagster/row_count`` key, and figures are inline
images in Markdown (the only way Dagster shows a picture on the page) plus their file path.
"""

from __future__ import annotations

import base64
import math
import numbers as numbers_
from collections.abc import Iterable, Mapping, Sequence
from pathlib import Path
from typing import Any

import dagster as dg

from data_engine.ship.registry import GateRecord

ROW_COUNT = "dagster/row_count"
FLOAT_DIGITS = 4


def number(value: float | int | None, digits: int = FLOAT_DIGITS) -> dg.MetadataValue:
    """An int stays an int; a float is rounded to ``digits``; None or NaN is Dagster's null."""
    if value is None or (isinstance(value, float) and not math.isfinite(value)):
        return dg.MetadataValue.null()
    if isinstance(value, bool):
        return dg.MetadataValue.bool(value)
    if isinstance(value, numbers_.Integral):
        return dg.MetadataValue.int(int(value))
    return dg.MetadataValue.float(round(float(value), digits))


def numbers(values: Mapping[str, float | int | None], digits: int = FLOAT_DIGITS) -> dict[str, dg.MetadataValue]:
    """:func:`number` for each entry."""
    return {k: number(v, digits) for k, v in values.items()}


_TYPES = {int: "int", float: "float", bool: "bool", str: "string"}


def table(rows: Iterable[Mapping[str, Any]], columns: Sequence[tuple[str, type]],
          digits: int = FLOAT_DIGITS) -> dg.MetadataValue:
    """A typed table: ``columns`` as (name, python type); floats rounded, None kept as missing."""
    schema = dg.TableSchema(columns=[dg.TableColumn(name, _TYPES[kind]) for name, kind in columns])
    records = []
    for row in rows:
        cells = {}
        for name, kind in columns:
            v = row.get(name)
            # Missing stays a null cell: Dagster wants every record to have the same fields (a queue
            # mixing labeled and unlabeled examples has no given label for the new ones).
            if v is None or (isinstance(v, float) and not math.isfinite(v)):
                cells[name] = None
                continue
            cells[name] = round(float(v), digits) if kind is float else (int(v) if kind is int else kind(v))
        records.append(dg.TableRecord(cells))
    return dg.MetadataValue.table(records=records, schema=schema)


def figure(png: bytes, caption: str, path: Path | None = None) -> dict[str, dg.MetadataValue]:
    """A PNG figure as an inline Markdown image (and the file it was saved to, if any)."""
    uri = base64.b64encode(png).decode("ascii")
    out = {"figure": dg.MetadataValue.md(f"{caption}\n\n![{caption}](data:image/png;base64,{uri})")}
    if path is not None:
        out["figure_path"] = dg.MetadataValue.path(str(path))
    return out


def gate_metadata(gate: GateRecord) -> dict[str, dg.MetadataValue]:
    """The gate's verdict (a ``gate_verdicts`` row): for the check in a run and for the recorded history."""
    return {
        "verdict": dg.MetadataValue.text("promoted" if gate.passed else "refused"),
        "outcome": dg.MetadataValue.text(gate.outcome or "-"),
        "test": dg.MetadataValue.text(f"{gate.test} (alpha {gate.alpha:g})" if gate.test == "paired" and gate.alpha
                                      is not None else gate.test),
        "metric": dg.MetadataValue.text(gate.metric),
        **numbers({"n_gold": gate.n_gold, "champion_version": gate.champion_version, "difference": gate.difference,
                   "ci_low": gate.ci_low, "ci_high": gate.ci_high, "p_worse": gate.p_worse, "p_better": gate.p_better}),
        "reason": dg.MetadataValue.text(gate.reason),
    }
