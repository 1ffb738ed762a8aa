"""One spelling per number: how a regression label is read from a file cell and stored.

A regression label is stored as text (the ledger and ``examples`` keep labels as VARCHAR) in one
canonical spelling, the shortest text that reads back as the same double: Python's
``repr(float)``, which DuckDB's ``CAST(DOUBLE AS VARCHAR)`` also writes (``"1"``, ``" 1.0 "`` and
``"1e0"`` are all stored as ``"1.0"``; ``-0.0`` as ``"0.0"``). Two labels are the same when their
numbers are: a file that rewrites ``3`` as ``3.00`` makes no new label version.

A cell is read as the numeric feature columns read theirs (:mod:`data_engine.ingest.validate`):
DuckDB's cast to DOUBLE (surrounding blanks skipped), the ``[dataset] na_values`` markers read as
missing (the row is unlabeled), and a number written with a thousands separator or a decimal comma
(``1,234``, ``3,5``) is not guessed at (it depends on the writer's locale): the row is quarantined
with the reason and the fix. A non-finite value (``inf``) and, with ``[dataset] label_range``, a
value outside the range are quarantined with the reason as well.
"""

from __future__ import annotations

import math
from typing import Any

from data_engine.errors import EngineError
from data_engine.store.values import MAX_NUMBER


def label_sql(cell: str) -> str:
    """SQL: the stored label of raw cell ``cell`` (VARCHAR): the canonical spelling of the number
    when the trimmed cell reads as a finite double, else the trimmed text as written (so
    :func:`label_reasons` can quarantine it with its own words); '' or NULL is unlabeled."""
    number = f"TRY_CAST(trim({cell}) AS DOUBLE)"
    # + 0.0 turns -0.0 into 0.0 (IEEE 754: -0 + +0 = +0), so the two spellings of zero are one label.
    return (f"CASE WHEN isfinite({number}) THEN CAST({number} + 0.0 AS VARCHAR) "
            f"ELSE nullif(trim({cell}), '') END")


def label_reasons(label: str, label_range: tuple[float, ...] | None) -> list[tuple[str, str]]:
    """``(condition, reason)`` SQL pairs over the stored ``label`` column (see the module docstring)."""
    number = f"TRY_CAST({label} AS DOUBLE)"
    reasons = [(
        f"{label} IS NOT NULL AND NOT coalesce(isfinite({number}), false)",
        f"'label ' || left({label}, 40) || ' is not a finite number' || CASE WHEN contains({label}, ',') "
        "THEN ' (a thousands separator or decimal comma? write it as 1234.5)' ELSE '' END",
    ), (
        f"isfinite({number}) AND abs({number}) > {MAX_NUMBER!r}",
        f"'label ' || left({label}, 40) || ' is beyond ±{MAX_NUMBER:g}, the largest magnitude the models read "
        "(float32): rescale the label'",
    )]
    if label_range is not None:
        lo, hi = (float(v) for v in label_range)
        reasons.append((
            f"isfinite({number}) AND {number} NOT BETWEEN {lo!r} AND {hi!r}",
            f"'label ' || {label} || ' is outside [dataset] label_range [{lo:g}, {hi:g}]'",
        ))
    return reasons


def canonical_number(value: Any) -> str:
    """The stored spelling of one number (a Python twin of :func:`label_sql` for values that come
    from Label Studio answers, oracles and consensus): ``repr(float(value))``, ``-0.0`` as ``"0.0"``.

    Raises :class:`~data_engine.errors.EngineError` naming the value when it is not a finite number
    (booleans are refused: ``True`` is not the number 1 to a reviewer).
    """
    if isinstance(value, bool):
        raise EngineError(f"{value!r} is not a number")
    try:
        number = float(value.strip() if isinstance(value, str) else value)
    except (TypeError, ValueError):
        raise EngineError(f"{value!r} is not a number") from None
    if not math.isfinite(number):
        raise EngineError(f"{value!r} is not a finite number")
    return repr(number + 0.0)
