"""Finding the CSV rows a stray quote character broke, so that one bad row costs one row.

DuckDB's CSV reader (like RFC 4180) lets a quoted field run on to the next quote character, over
line ends: one unterminated quote swallows the rows after it, or the sniffer gives up on quoting
altogether and reads every row as "too many columns". No reader option tells a legitimate
two-line quoted field from an unterminated one, so this module decides it the way a person would:
a line with an odd number of quote characters opens a multi-line field that must close at the next
such line *and* give a row of the header's width; otherwise the opening line is the broken row.

Only files that DuckDB already read with rejected rows are scanned here (a Python pass over their
lines: the slow path of broken files, never the path of a clean file).
"""

from __future__ import annotations

import csv
import gzip
import io
from dataclasses import dataclass
from pathlib import Path

# A legitimate multi-line quoted field spans at most this many lines (a longer span is a broken quote).
MAX_FIELD_LINES = 1000
DELIMITERS = (",", ";", "\t", "|")


@dataclass(frozen=True)
class BrokenQuote:
    """A row whose quote never closes: its data row number, its line in the file and its text."""

    row: int
    line: int
    text: str


def open_text(path: Path) -> io.TextIOBase:
    """``path`` as UTF-8 text, gunzipped when it ends in ``.gz``; a BOM is skipped, line ends kept."""
    raw = gzip.open(path, "rb") if path.name.lower().endswith(".gz") else path.open("rb")
    return io.TextIOWrapper(raw, encoding="utf-8-sig", newline="")


def find_broken_quotes(path: Path) -> tuple[str, list[BrokenQuote], list[str]] | None:
    """The delimiter, the rows with an unterminated quote and the file's lines with those rows
    replaced by a row that cannot parse (so the reader still counts them as one row each).

    None when no line has an odd number of quote characters (the rejects have another cause).
    """
    try:
        with open_text(path) as fh:
            lines = fh.read().splitlines()
    except UnicodeDecodeError:
        return None  # the reader reports the encoding
    if len(lines) < 2:
        return None
    odd = [i for i, line in enumerate(lines) if line.count('"') % 2 == 1]
    if not odd or odd[0] == 0:
        return None
    header = lines[0]
    delim = max(DELIMITERS, key=lambda d: len(next(csv.reader([header], delimiter=d))))
    width = len(next(csv.reader([header], delimiter=delim)))
    broken: list[BrokenQuote] = []
    pos = 0
    while pos < len(odd):
        start = odd[pos]
        end = odd[pos + 1] if pos + 1 < len(odd) else None
        if end is not None and end - start < MAX_FIELD_LINES and _width("\n".join(lines[start:end + 1]), delim) == width:
            pos += 2  # a quoted field over lines start..end: a good row
            continue
        broken.append(BrokenQuote(row=0, line=start + 1, text=lines[start]))
        pos += 1
    if not broken:
        return None
    # Data row numbers count records, not lines: subtract the continuation lines of multi-line fields.
    bad_lines = {b.line - 1 for b in broken}
    continuation = _continuation_lines(odd, bad_lines)
    numbered, row = [], 0
    marks = iter(sorted(bad_lines))
    nxt = next(marks, None)
    for i in range(1, len(lines)):
        if i not in continuation:
            row += 1
        if i == nxt:
            numbered.append(BrokenQuote(row, i + 1, lines[i]))
            nxt = next(marks, None)
    # A placeholder of width + 2 fields: DuckDB rejects it as one row, in the broken row's place
    # (a trailing empty field alone would be tolerated).
    filler = delim.join("#" * (width + 2))
    repaired = [filler if i in bad_lines else line for i, line in enumerate(lines)]
    return delim, numbered, repaired


def _width(text: str, delim: str) -> int:
    rows = list(csv.reader(io.StringIO(text), delimiter=delim))
    return len(rows[0]) if len(rows) == 1 else -1


def _continuation_lines(odd: list[int], bad: set[int]) -> set[int]:
    """Lines that continue a multi-line field (all lines after an opening one up to its close)."""
    good = [i for i in odd if i not in bad]
    out: set[int] = set()
    for start, end in zip(good[::2], good[1::2]):
        out.update(range(start + 1, end + 1))
    return out
