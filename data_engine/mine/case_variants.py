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
from collections.abc import Callable, Iterable, Sequence
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
        variants = _variants(((str(v), int(n)) for v, n in counts.items()), spelling_key)
        if not variants:
            continue
        k = len(variants)
        issues.append({"type": "case_variants", "column": c, "figure": float(k), "reason": (
            f"{k} value{'s' if k != 1 else ''} written in more than one way, differing only in letter case or "
            f"surrounding spaces: {_shown(variants)}; the engine keeps every spelling as a category of its own "
            "(it does not rewrite values), so the models learn them apart; if they are one value, write "
            "it one way in the source file")})
    return issues


def label_case_variant_issues(label_column: str, classes: Sequence[str], counts: Sequence[int], *,
                              tags: bool = False, tag_noun: str = "tag") -> list[dict[str, Any]]:
    """The ``case_variants`` finding of the label column ``label_column``: classes (with ``tags``,
    the tags, entity types or box classes a label set carries, called ``tag_noun``) ``classes``
    (K,) whose names differ only in letter case or spaces (:func:`data_engine.store.classes.spelling_key`,
    the key ingest quarantines a new label's spellings by), each with ``counts`` (K,) labeled rows
    (with ``tags``: rows carrying it). A class with no labeled row is no spelling in use (what a
    merge leaves). Ingest fixes the classes from the first labeled batch when ``[dataset] classes``
    is not set, so two spellings in that batch become two classes; the finding says so and how to
    make them one, and changes nothing. Figure: the number of groups. At most one finding."""
    from data_engine.store.classes import relabel_command
    from data_engine.store.classes import spelling_key as class_key

    variants = _variants(((str(c), int(n)) for c, n in zip(classes, counts, strict=True) if n > 0), class_key)
    if not variants:
        return []
    k, noun = len(variants), tag_noun if tags else "class"
    nouns = noun + ("es" if noun.endswith("s") else "s") if k != 1 else noun
    (keep, _), (other, _) = variants[0][:2]
    how = (f"write one spelling in the source file and land it again (`data-engine relabel` gives a whole "
           f"label, not one {noun})" if tags else
           f"relabel the examples of the other spellings, e.g. `{relabel_command(other, keep)}` (one ledger event "
           "each; the stored values stay as written), or write one spelling in the source file and land it again")
    return [{"type": "case_variants", "column": label_column, "figure": float(k), "reason": (
        f"{k} {nouns} written in more than one way, differing only in letter case or spaces: {_shown(variants)}; "
        f"each spelling is a {noun} of its own (the engine does not rewrite labels), so the models learn them "
        f"apart; if they are one {noun}, {how}; the emptied {noun} stays, with no examples (classes are never "
        "removed). [dataset] classes maps no spelling: set before the first labeled batch, it quarantines a "
        f"label{f' with a {noun}' if tags else ''} spelt unlike its {noun}")}]


def _variants(counts: Iterable[tuple[str, int]], key: Callable[[str], str]) -> list[list[tuple[str, int]]]:
    """The groups of two or more of the spellings ``counts`` ((value, rows) pairs) that share ``key``;
    each commonest first (ties by the text, so the reason is the same on every run), the groups with
    the most rows off their commonest spelling first."""
    groups: dict[str, list[tuple[str, int]]] = {}
    for value, n in counts:
        groups.setdefault(key(value), []).append((value, n))
    variants = [sorted(g, key=lambda s: (-s[1], s[0])) for g in groups.values() if len(g) > 1]
    variants.sort(key=lambda g: (-sum(n for _, n in g[1:]), g[0][0]))
    return variants


def _shown(variants: list[list[tuple[str, int]]]) -> str:
    """Up to :data:`EXAMPLES` groups of :func:`_variants`, each with up to :data:`EXAMPLES` spellings and their rows."""
    shown = "; ".join(" / ".join(f"{v!r} ({n} row{'s' if n != 1 else ''})" for v, n in g[:EXAMPLES])
                      + (f" / {len(g) - EXAMPLES} more" if len(g) > EXAMPLES else "") for g in variants[:EXAMPLES])
    return shown + (f"; {len(variants) - EXAMPLES} more" if len(variants) > EXAMPLES else "")
