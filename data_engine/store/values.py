"""One spelling per value: how labels and ids are normalised, and which cells are missing numbers.

Every comparison of labels or ids (validation, class inference, duplicate ids, the classes of the
config, review verdicts) goes through :func:`normalized_sql`, so the same value never counts as two:

* Unicode NFC (a decomposed ``é`` equals the composed one);
* leading and trailing whitespace of every kind removed: ASCII blanks and control characters,
  Unicode separators (``\\p{Z}``: no-break space, ...) and format characters (``\\p{Cf}``:
  zero-width space, BOM, ...);
* an integral number written as a float (``1.0``, JSONL ``1e2`` read as ``100.0``) becomes the
  integer (``1``): tools write it so when a column had gaps (pandas), and the same file without gaps
  says ``1``.

DuckDB has no function for the whole of it, so it is composed here from ``nfc_normalize`` and two
RE2 replacements; cells that are plain printable ASCII at both ends, without a dot, skip them.
"""

from __future__ import annotations

import re
import unicodedata
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    import duckdb

# RE2 class of the characters trimmed at either end.
_EDGE = r"[\s\x{0B}\x{1C}-\x{1F}\x{7F}-\x{9F}\p{Z}\p{Cf}]"
_INTEGRAL = re.compile(r"^([+-]?[0-9]+)\.0*$")
# The largest magnitude of a number feature, at ingest and in /predict: float32's range (3.4e38).
# Models and embedders cast features to float32 (gradient boosting, neighbour search), where a
# larger finite double becomes inf and fails the fit or the prediction with a traceback.
MAX_NUMBER = 3.4e38


def normalized_sql(expr: str) -> str:
    """SQL for the normalised text of ``expr`` (VARCHAR; NULL stays NULL)."""
    slow = (f"regexp_replace(regexp_replace(nfc_normalize({expr}), '^{_EDGE}+|{_EDGE}+$', '', 'g'), "
            r"'^([+-]?[0-9]+)\.0*$', '\1')")
    return f"CASE WHEN {plain_sql(expr)} THEN {expr} ELSE {slow} END"


def plain_sql(expr: str) -> str:
    """SQL: true when ``expr`` is already in normal form by a cheap test (empty, or printable ASCII
    at both ends, without a dot or a multi-byte character); NULL for NULL."""
    # The last character as {expr}[-1], not right(): the same for the ASCII text this test passes
    # (any other fails on strlen = length), and 0.24 -> 0.19 s of CPU for two columns of 2,000,000 cells.
    return (f"({expr} = '' OR (ord({expr}) BETWEEN 33 AND 126 AND ord({expr}[-1]) BETWEEN 33 AND 126 "
            f"AND NOT contains({expr}, '.') AND strlen({expr}) = length({expr})))")


def all_plain(con: "duckdb.DuckDBPyConnection", table: str, columns: list[str]) -> set[str]:
    """The ``columns`` of ``table`` whose every value passes :func:`plain_sql` (one scan): they need
    no normalising, so the batch's later statements read them as they are. Files from one tool are
    usually all plain; the per-value test then runs once instead of in every statement."""
    from data_engine.store.warehouse import quote_ident

    if not columns:
        return set()
    flags = con.execute(
        f"SELECT {', '.join(f'coalesce(bool_and({plain_sql(quote_ident(c))}), true)' for c in columns)} FROM {table}"
    ).fetchone()
    return {c for c, ok in zip(columns, flags) if ok}


def normalize_text(value: str) -> str:
    """The Python twin of :func:`normalized_sql`, for single values (config classes, API input)."""
    text = unicodedata.normalize("NFC", value)
    start, end = 0, len(text)
    while start < end and _is_edge(text[start]):
        start += 1
    while end > start and _is_edge(text[end - 1]):
        end -= 1
    return _INTEGRAL.sub(r"\1", text[start:end])


def blank_sql(expr: str) -> str:
    """SQL: ``expr`` is NULL or made only of edge characters (no-break or zero-width spaces, tabs,
    ...): nothing a person or a model could read. RE2 stops at the first other character."""
    return f"({expr} IS NULL OR regexp_full_match({expr}, '{_EDGE}*'))"


def is_blank(text: str) -> bool:
    """:func:`blank_sql` for one Python string."""
    return all(_is_edge(ch) for ch in text)


def _is_edge(ch: str) -> bool:
    """The characters of ``_EDGE``: ASCII blanks, C1/DEL controls, separators (Z*) and format characters (Cf)."""
    return (ch in " \t\n\v\f\r" or "\x1c" <= ch <= "\x1f" or "\x7f" <= ch <= "\x9f"
            or unicodedata.category(ch) in ("Zs", "Zl", "Zp", "Cf"))


def label_markers(na_values: tuple[str, ...]) -> list[str]:
    """The missing-value markers a label cell may hold (``[dataset] na_values`` without the empty
    cell, which is missing anyway), in the engine's normalised spelling: R writes an unknown
    label as ``NA``, pandas as ``NaN``; such a row is unlabeled, not an example of class "NA"."""
    return list(dict.fromkeys(m for m in (normalize_text(v) for v in na_values) if m))


def missing_number_sql(text_expr: str, na_values: tuple[str, ...]) -> str:
    """SQL: true when the trimmed cell ``text_expr`` is one of ``na_values`` (a missing number)."""
    if not na_values:
        return "false"
    listed = ", ".join("'" + v.replace("'", "''") + "'" for v in na_values)
    return f"(trim({text_expr}) IN ({listed}))"


# A timestamp with a time part, as tools write it: ISO 8601 with "T" or a space, optional seconds
# and fraction, and an optional offset ("Z", "+00", "+0000", "+00:00").
_TIMESTAMP = r"^[0-9]{4}-[0-9]{2}-[0-9]{2}[T ][0-9]{2}:[0-9]{2}(:[0-9]{2}(\.[0-9]+)?)?(Z|[+-][0-9]{2}(:?[0-9]{2})?)?$"
_OFFSET = r"(Z|[+-][0-9]{2}(:?[0-9]{2})?)$"
# Boolean spellings of other tools, as SQL lists (canonical_sql): each reads ``true`` or ``false``.
_TRUE_WORDS, _FALSE_WORDS = ("True", "TRUE", "yes", "Yes", "YES"), ("False", "FALSE", "no", "No", "NO")
_TRUE, _FALSE = (", ".join(f"'{w}'" for w in words) for words in (_TRUE_WORDS, _FALSE_WORDS))
_SHORT_BOOLEANS = ", ".join(f"'{w}'" for w in _TRUE_WORDS + _FALSE_WORDS if len(w) < 4)
# The code points a rewritten spelling starts with: the boolean words' first letters, '[' and '{'.
_FIRST_CHARS = ", ".join(str(c) for c in sorted({ord(w[0]) for w in _TRUE_WORDS + _FALSE_WORDS} | {ord("["), ord("{")}))


def canonical_sql(expr: str) -> str:
    """SQL for the one spelling of a categorical cell ``expr`` (VARCHAR) that the content of an
    example is compared and hashed in, so the same value re-exported by another tool is the same
    content. The stored value keeps the file's spelling; only comparisons read this form.

    * booleans: ``True``/``TRUE``/``true`` (Python, R, JSON and DuckDB spellings) and
      ``yes``/``Yes``/``YES`` (spreadsheets, Access, SPSS; DuckDB reads them as booleans too) read
      ``true`` (``False``/``FALSE``/``no``/``No``/``NO`` likewise). One-letter spellings (``t``,
      ``Y``, ``F``) are left alone: one letter is as often a code (a grade, a size) as a boolean;
    * timestamps with a time part: with an offset, the instant in UTC
      (``2024-01-01 02:00:00+02``, ``2024-01-01T00:00:00Z`` and ``2024-01-01 00:00:00+00:00`` are
      one value, ``2024-01-01T00:00:00.000000Z``); without one, the same wall time in one format
      (``T`` or a space). Never through the session's time zone: a naive value stays naive;
    * lists (``['a', 'b']``, ``["a","b"]``, DuckDB's ``[a, b]``): one JSON array of the element texts
      (``["a","b"]``); JSON objects: minified JSON (``{"x":1}``).

    Numbers are not rewritten here: a categorical column's ``01`` and ``1`` may be two codes (a
    numeric column compares typed DOUBLEs already). Everything else is returned as it is; the cheap
    tests on the first character and the length come first, so most cells cost one comparison.
    """
    utc = (f"strftime(TRY_CAST({expr} AS TIMESTAMPTZ) AT TIME ZONE 'UTC', '%Y-%m-%dT%H:%M:%S.%fZ')")
    naive = f"strftime(TRY_CAST({expr} AS TIMESTAMP), '%Y-%m-%dT%H:%M:%S.%f')"
    # One test on the first character lets most cells through unchanged: every spelling rewritten
    # below starts with one of _FIRST_CHARS, or is a timestamp (a digit, 16 characters or more). It
    # took 0.38 s -> 0.27 s of CPU for two columns of 2,000,000 cells (the bench ingest file).
    return (
        f"CASE WHEN NOT (ord({expr}) IN ({_FIRST_CHARS}) OR (strlen({expr}) >= 16 AND ord({expr}) BETWEEN 48 AND 57)) "
        f"THEN {expr} "
        f"WHEN {expr} IS NULL OR (strlen({expr}) < 4 AND {expr} NOT IN ({_SHORT_BOOLEANS})) THEN {expr} "
        # Listed, not lower(): a copy of every cell was most of this expression's cost.
        f"WHEN {expr} IN ({_TRUE}) THEN 'true' WHEN {expr} IN ({_FALSE}) THEN 'false' "
        f"WHEN starts_with({expr}, '[') THEN coalesce(to_json(TRY_CAST({expr} AS VARCHAR[]))::VARCHAR, {expr}) "
        f"WHEN starts_with({expr}, '{{') AND json_valid({expr}) THEN json({expr})::VARCHAR "
        f"WHEN strlen({expr}) >= 16 AND substr({expr}, 5, 1) = '-' AND regexp_full_match({expr}, '{_TIMESTAMP}') "
        f"THEN coalesce(CASE WHEN regexp_matches({expr}, '{_OFFSET}') THEN {utc} ELSE {naive} END, {expr}) "
        f"ELSE {expr} END"
    )
