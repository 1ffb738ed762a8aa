"""Span sets: the stored spelling of a named-entity label, and the checks a span set must pass.

An NER label is the *set* of entity spans of one text, each ``{"start", "end", "label"}`` with
``start``/``end`` character offsets into the text (``end`` exclusive, as Python slices and Label
Studio's text regions count) and ``label`` the entity type. It is stored (``examples``, the label
ledger) as one VARCHAR: a JSON array of the spans sorted by (start, end, label), each object with
its keys in that order, the type in its normalised spelling (:func:`data_engine.store.values.normalize_text`),
no spaces: ``[{"start":0,"end":5,"label":"PER"}]``. ``[]`` is "labeled: no entities", distinct from
an unlabeled text (NULL). Re-landing a file with its spans reordered makes no new version.

:func:`canonical_sql` (ingest, set-based) and :func:`canonical` (verdicts, the oracle, answers)
give byte-identical text (DuckDB's ``to_json`` of a struct list writes keys in struct order with
compact separators, as ``json.dumps(..., separators=(",", ":"))``; a test keeps the two equal).
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Mapping, Sequence
from typing import TYPE_CHECKING, NamedTuple

if TYPE_CHECKING:
    import numpy as np

from data_engine.errors import EngineError
from data_engine.store.values import normalize_text, normalized_sql
from data_engine.tasks.setlabels import json_items


class Span(NamedTuple):
    """One entity: characters ``[start, end)`` of the text, of type ``label``."""

    start: int
    end: int
    label: str


class NotASpanSet(EngineError):
    """A value that is not a JSON array of ``{"start", "end", "label"}`` objects."""


# DuckDB's JSON structure of a stored span set (from_json): struct fields in the stored key order.
SQL_STRUCT = '[{"start":"BIGINT","end":"BIGINT","label":"VARCHAR"}]'


def canonical(spans: Iterable[Span | Sequence | Mapping]) -> str:
    """The stored spelling of ``spans`` (Span tuples, ``(start, end, label)`` or ``{"start", "end",
    "label"}`` mappings): unique, sorted by (start, end, label), compact JSON."""
    out = sorted({_as_span(s) for s in spans})
    return json.dumps([{"start": s.start, "end": s.end, "label": s.label} for s in out],
                      ensure_ascii=False, separators=(",", ":"))


def canonical_sql(cell: str) -> str:
    """SQL twin of :func:`canonical` over a cell that is a JSON array of span objects (extra keys
    dropped, the type normalised, duplicates merged, sorted)."""
    spans = f"from_json({cell}, '{SQL_STRUCT}')"
    norm = normalized_sql("s.label")
    return (f"to_json(list_sort(list_distinct(list_transform({spans}, "
            f"lambda s: {{'start': s.start, 'end': s.end, 'label': {norm}}}))))::VARCHAR")


def is_span_array_sql(cell: str) -> str:
    """SQL: ``cell`` is a JSON array whose every element is an object with integer ``start`` and
    ``end`` and a text ``label``. Nested CASE: DuckDB may evaluate both sides of AND."""
    bad = ("len(list_filter(json_extract({c}, '$[*]'), lambda x: json_type(x) <> 'OBJECT' "
           "OR coalesce(json_type(x, '$.start'), '') NOT IN ('BIGINT', 'UBIGINT') "
           "OR coalesce(json_type(x, '$.end'), '') NOT IN ('BIGINT', 'UBIGINT') "
           "OR coalesce(json_type(x, '$.label'), '') <> 'VARCHAR')) = 0").format(c=cell)
    return (f"CASE WHEN NOT json_valid({cell}) THEN false WHEN json_type({cell}) <> 'ARRAY' THEN false "
            f"ELSE {bad} END")


def parse(value: object) -> list[Span]:
    """The spans of one label value: a list of span objects / triples, or its JSON text.

    Returns them sorted (see :func:`canonical`). Raises :class:`NotASpanSet` naming what is wrong
    (not JSON, not an array, a span without integer ``start``/``end`` or text ``label``). Bounds,
    overlaps and types are checked by :func:`problems`, which needs the text and the types.
    """
    items = json_items(value, NotASpanSet, empty="an empty value is unlabeled, not a span set (write [] for no entities)",
                       noun="spans")
    return sorted({_as_span(item) for item in items})


def _as_span(item: object) -> Span:
    if isinstance(item, Mapping):
        start, end, label = item.get("start"), item.get("end"), item.get("label")
    elif isinstance(item, (list, tuple)) and len(item) == 3:
        start, end, label = item
    else:
        raise NotASpanSet(f"span {json.dumps(item, default=str)[:60]} is not an object with start, end and label")
    if isinstance(start, bool) or isinstance(end, bool) or not isinstance(start, int) or not isinstance(end, int):
        raise NotASpanSet(f"span {json.dumps(item, default=str)[:60]}: start and end must be integer character offsets")
    if not isinstance(label, str) or not normalize_text(label):
        raise NotASpanSet(f"span {json.dumps(item, default=str)[:60]}: label must be a non-empty entity type")
    return Span(int(start), int(end), normalize_text(label))


def problems(spans: Sequence[Span], text_length: int, types: Sequence[str] | None) -> list[str]:
    """Why the sorted ``spans`` cannot be a label of a text of ``text_length`` characters with entity
    ``types`` (None: any type): empty or reversed, outside the text, overlapping another, of an
    unknown type. ``[]`` when valid. The same rules as :func:`span_reasons_sql`."""
    out = []
    prev: Span | None = None
    for s in spans:
        if s.start < 0 or s.end > text_length or s.start >= s.end:
            out.append(f"span [{s.start}, {s.end}) {s.label} is outside the text (0-{text_length}) or empty")
        if prev is not None and s.start < prev.end:
            out.append(f"span [{s.start}, {s.end}) {s.label} overlaps [{prev.start}, {prev.end}) {prev.label}")
        if types is not None and s.label not in types:
            out.append(f"entity type {s.label!r} is not one of the types ({', '.join(types)})")
        prev = s if prev is None or s.end > prev.end else prev
    return out


def spans_of(label: str) -> list[Span]:
    """The spans of a stored label (its canonical JSON)."""
    return [Span(int(d["start"]), int(d["end"]), str(d["label"])) for d in json.loads(label)]


# Spans one encoded label row holds (:func:`encode`): as many as the token slots of a prediction.
MAX_SPANS = 128


def encode(labels: Sequence[str], types: Sequence[str]) -> np.ndarray:
    """Stored span sets (n,) as an int64 matrix (n, 1 + 3 * MAX_SPANS): column 0 the number of spans,
    then ``start, end, type index`` per span in stored order, zero-padded. Every entry of a labeled
    row is >= 0 (the stages mark an unlabeled row with -1 everywhere). Raises ``ValueError`` naming
    the first label that is not a span set, has a type outside ``types`` or more than MAX_SPANS spans."""
    import numpy as np

    index = {t: k for k, t in enumerate(types)}
    out = np.zeros((len(labels), 1 + 3 * MAX_SPANS), dtype=np.int64)
    for i, label in enumerate(labels):
        try:
            spans = parse(label)
        except NotASpanSet as exc:
            raise ValueError(f"label {i}: {exc}") from None
        if len(spans) > MAX_SPANS:
            raise ValueError(f"label {i}: {len(spans)} entities, more than the {MAX_SPANS} one text may hold")
        out[i, 0] = len(spans)
        for j, s in enumerate(spans):
            if s.label not in index:
                raise ValueError(f"label {i}: entity type {s.label!r} is not one of the types ({', '.join(types)})")
            if s.start < 0:
                raise ValueError(f"label {i}: span [{s.start}, {s.end}) starts before the text")
            out[i, 1 + 3 * j:4 + 3 * j] = (s.start, s.end, index[s.label])
    return out


def decode(y: np.ndarray, types: Sequence[str]) -> list[str]:
    """The inverse of :func:`encode`: the rows of ``y`` (n, 1 + 3 * MAX_SPANS) as stored span sets."""
    out = []
    for row in y:
        m = int(row[0])
        out.append(canonical(Span(int(row[1 + 3 * j]), int(row[2 + 3 * j]), str(types[int(row[3 + 3 * j])]))
                             for j in range(m)))
    return out


def carried_types(y: np.ndarray, n_types: int, counts: bool = False) -> np.ndarray:
    """Which of ``n_types`` entity types the spans of each row of ``y`` (n, 1 + 3 * MAX_SPANS, as
    :func:`encode` makes it) hold: a 0/1 int matrix (n, n_types); ``counts``: how many spans of each."""
    import numpy as np

    y = np.asarray(y, dtype=np.int64)
    out = np.zeros((len(y), n_types), dtype=int)
    for i, row in enumerate(y):
        types = row[3:3 + 3 * int(row[0]):3]
        if counts:
            np.add.at(out[i], types, 1)
        else:
            out[i, types] = 1
    return out
