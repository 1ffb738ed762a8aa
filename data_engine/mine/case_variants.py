"""The ``case_variants`` column finding: a categorical column holding one value in spellings that
differ only in letter case or surrounding spaces (``True`` / ``true``, ``Paris`` / ``paris ``).

The stored value keeps the file's spelling (the project never rewrites a user's value; the store
compares booleans and timestamps in one spelling, :func:`data_engine.store.values.canonical_sql`,
but not letter case), and the models' one-hot and target encoders read each spelling as a category
of its own: the rows of one value are split, the rarer spelling learnt from a few rows. The finding
says so once per column, with examples, and leaves the fix (one spelling in the source file) to the
user. Ingest trims ASCII spaces at either end of a categorical cell, so a mining run finds letter
case and other surrounding whitespace (a spreadsheet's no-break space, a tab). Read by :func:`data_engine.mine.columns.column_issues` on every labeled row, not its sample.
"""

from __future__ import annotations

import unicodedata
from collections.abc import Sequence
from typing import Any

import pandas as pd

# Groups of spellings named in the reason, and spellings named per group (the commonest first).
EXAMPLES = 3


def spelling_key(value: str) -> str:
    """The form two spellings of one value share: Unicode NFC, surrounding whitespace removed
    (``str.strip``: Unicode spaces), letter case folded (``str.casefold``: ``Straße`` = ``STRASSE``).
    Hand-written: scikit-learn's encoders and pandas compare categories exactly, and no library
    groups a column's spellings."""
    return unicodedata.normalize("NFC", value).strip().casefold()


def case_variant_issues(frame: pd.DataFrame, categorical_columns: Sequence[str]) -> list[dict[str, Any]]:
    """A ``case_variants`` finding per column of ``categorical_columns`` of ``frame`` (N rows) in which
    two or more distinct values share a :func:`spelling_key`: figure the number of such groups;
    the reason names up to :data:`EXAMPLES` groups (those with the most rows off their commonest
    spelling first), each with up to :data:`EXAMPLES` spellings and their row counts. Missing cells
    are not a spelling. Values are counted, never changed. Dicts ``type``, ``column``, ``figure``,
    ``reason`` as :func:`data_engine.mine.columns.column_issues` gives them."""
    issues = []
    for c in categorical_columns:
        counts = frame[c].dropna().astype(str).value_counts()
        groups: dict[str, list[tuple[str, int]]] = {}
        for value, n in counts.items():
            groups.setdefault(spelling_key(value), []).append((value, int(n)))
        # Commonest spelling first, ties by the text, so the reason is the same on every run.
        variants = [sorted(g, key=lambda s: (-s[1], s[0])) for g in groups.values() if len(g) > 1]
        if not variants:
            continue
        variants.sort(key=lambda g: (-sum(n for _, n in g[1:]), g[0][0]))
        shown = "; ".join(" / ".join(f"{v!r} ({n} row{'s' if n != 1 else ''})" for v, n in g[:EXAMPLES])
                          + (f" / {len(g) - EXAMPLES} more" if len(g) > EXAMPLES else "") for g in variants[:EXAMPLES])
        more = f"; {len(variants) - EXAMPLES} more" if len(variants) > EXAMPLES else ""
        k = len(variants)
        issues.append({"type": "case_variants", "column": c, "figure": float(k), "reason": (
            f"{k} value{'s' if k != 1 else ''} written in more than one way, differing only in letter case or "
            f"surrounding spaces: {shown}{more}; the engine keeps every spelling as a category of its own "
            "(it does not rewrite values), so the models learn them apart; if they are one value, write "
            "it one way in the source file")})
    return issues
