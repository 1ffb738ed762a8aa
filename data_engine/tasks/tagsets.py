"""Tag sets: the stored spelling of a multi-label label, and tag sets as 0/1 matrices.

A multi-label label is a *set* of tags. It is stored (``examples``, the label ledger) as one
VARCHAR: a JSON array of the tag names in their normalised spelling
(:func:`data_engine.store.values.normalize_text`), de-duplicated and sorted by code point, without
spaces (``["billing","urgent"]``). So ``b|a``, ``["a", "b", "a"]`` and ``[" a", "b"]`` are one label
and re-landing a file with its tags reordered makes no new version; ``[]`` is "labeled with no
tags", distinct from an unlabeled example (NULL).

:func:`canonical_sql` (ingest, set-based) and :func:`canonical` (single values: verdicts, the
oracle, API input) give byte-identical text: DuckDB's ``to_json`` escapes like ``json.dumps``
with ``ensure_ascii=False`` and compact separators, and ``list_sort`` orders VARCHAR by bytes,
which for UTF-8 is code-point order, as Python's ``sorted``.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Sequence
from typing import TYPE_CHECKING

from data_engine.errors import EngineError
from data_engine.store.values import normalize_text, normalized_sql

if TYPE_CHECKING:  # numpy is imported where a matrix is built: `ingest` starts without it
    import numpy as np

# How a CSV cell separates tags when it is not a JSON array (``[dataset] label_separator``).
DEFAULT_SEPARATOR = "|"
# A tag is predicted when its probability reaches this (the per-tag probabilities are calibrated).
THRESHOLD = 0.5


class NotATagSet(EngineError):
    """A value that is neither a JSON array of tags nor tags split by the separator."""


def canonical(tags: Iterable[str]) -> str:
    """The stored spelling of the tag set ``tags`` (normalised, unique, sorted; JSON, no spaces)."""
    return json.dumps(sorted({normalize_text(str(t)) for t in tags}), ensure_ascii=False, separators=(",", ":"))


def canonical_sql(list_expr: str) -> str:
    """SQL twin of :func:`canonical` over a ``VARCHAR[]`` expression (every tag normalised)."""
    return f"to_json(list_sort(list_distinct(list_transform({list_expr}, lambda t: {normalized_sql('t')}))))::VARCHAR"


def parse(value: object, separator: str = DEFAULT_SEPARATOR) -> list[str]:
    """The tags of one label value: a list of scalars, a JSON array text, or tags split by ``separator``.

    Returns the tags in canonical order (see :func:`canonical`). Raises :class:`NotATagSet` for a
    JSON text that is not an array of scalars, an empty tag, or a value of another type; the
    empty string and None are not tag sets either (they mean unlabeled, which the caller decides).
    """
    if isinstance(value, (list, tuple)):
        items = list(value)
    elif isinstance(value, str):
        text = normalize_text(value)
        if not text:
            raise NotATagSet("an empty value is unlabeled, not a tag set (write [] for no tags)")
        if text.startswith("["):
            try:
                items = json.loads(text)
            except json.JSONDecodeError as exc:
                raise NotATagSet(f"{value[:60]!r} is not valid JSON ({exc.msg})") from None
            if not isinstance(items, list):
                raise NotATagSet(f"{value[:60]!r} is not a JSON array")
        else:
            items = text.split(separator)
    else:
        raise NotATagSet(f"{value!r} is not a list of tags")
    tags = []
    for item in items:
        if isinstance(item, (list, dict)) or item is None:
            raise NotATagSet(f"tag {json.dumps(item)[:40]} is not text")
        tag = normalize_text(json.dumps(item) if isinstance(item, bool) else str(item))
        if not tag:
            raise NotATagSet("an empty tag (two separators in a row, or one at an end)")
        tags.append(tag)
    return json.loads(canonical(tags))


def tags_of(label: str) -> list[str]:
    """The tags of a stored label (its canonical JSON array)."""
    return json.loads(label)


def encode(labels: Sequence[str], classes: Sequence[str]) -> np.ndarray:
    """Stored labels as a 0/1 matrix of shape (n, K), columns in ``classes`` order.

    Raises :class:`~data_engine.errors.EngineError` naming the tag when a label holds a tag that is
    not one of ``classes`` (ingest quarantines those, so this means a stale class list).
    """
    import numpy as np

    index = {c: k for k, c in enumerate(classes)}
    y = np.zeros((len(labels), len(classes)), dtype=np.int8)
    for i, label in enumerate(labels):
        for tag in tags_of(label):
            if tag not in index:
                raise EngineError(f"label {label!r}: tag {tag!r} is not one of the classes ({', '.join(classes)})")
            y[i, index[tag]] = 1
    return y


def decode(y: np.ndarray, classes: Sequence[str]) -> list[str]:
    """The inverse of :func:`encode`: rows of a (n, K) 0/1 matrix as stored labels."""
    import numpy as np

    y = np.asarray(y)
    return [canonical(c for c, on in zip(classes, row) if on) for row in y]


def consensus(labels: Sequence[str]) -> str | None:
    """Several annotators' tag sets for one example: the per-tag majority.

    A tag is in the consensus when more than half of the annotators gave it; a tag exactly half of
    them gave (an even split) leaves the example undecided (None): no majority either way, so the
    example stays open for another opinion, as a tie does for classes. No labels: None.
    """
    if not labels:
        return None
    counts: dict[str, int] = {}
    for label in labels:
        for tag in tags_of(label):
            counts[tag] = counts.get(tag, 0) + 1
    n = len(labels)
    if any(2 * c == n for c in counts.values()):
        return None
    return canonical(t for t, c in counts.items() if 2 * c > n)
