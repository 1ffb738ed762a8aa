"""Reading a landed file into a DuckDB temp relation of text columns, one row per data row.

Every reader produces the temp relation ``raw_rows`` (a table, or a view over the CSV as read)
with all columns as VARCHAR plus ``__row`` (the 1-based data row number in the file: the header
is not a row; for JSONL, the line number) and the temp table
``raw_rejects(__row, raw, reason)`` of rows that could not even be split into columns.
Reading everything as text first lets the validator name the exact value that is wrong, instead
of a reader failing the whole file on the first bad cell. Loads stay inside DuckDB's own readers.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import json
import re
import shutil
import tempfile

import duckdb

from data_engine.ingest.quotes import find_broken_quotes
from data_engine.ingest.textscan import open_bytes, scan_text, write_lf
from data_engine.ingest.unreadable import UnreadableFile
from data_engine.store.config import DatasetConfig
from data_engine.store.warehouse import json_path, quote_ident

FORMATS = {".csv": "csv", ".tsv": "csv", ".txt": "csv", ".csv.gz": "csv", ".tsv.gz": "csv",
           ".parquet": "parquet", ".pq": "parquet", ".jsonl": "jsonl", ".ndjson": "jsonl",
           ".jsonl.gz": "jsonl", ".ndjson.gz": "jsonl", ".json": "json",
           # CoNLL / BIO token files: one row per sentence (text, spans, sentence), data_engine.ingest.conll.
           ".conll": "conll", ".bio": "conll", ".iob": "conll", ".conll.gz": "conll", ".bio.gz": "conll",
           ".iob.gz": "conll"}
# A line DuckDB's CSV reader cannot hold (default 2 MB) fails the whole read; a file with such a
# line is read again with this limit and the over-long field quarantined by validation instead.
MAX_LINE_BYTES = 1 << 28


# The engine's own column in raw_rows: the file's row number.
ROW_COLUMN = "__row"


@dataclass(frozen=True)
class RawTable:
    """What was read: the file's columns (in order) and the row counts."""

    columns: tuple[str, ...]
    rows: int
    rejects: int
    # Names the file's header gives twice (as the file spells them), for the validator to refuse.
    duplicates: tuple[str, ...] = ()
    # What the reader did that a person should know (line endings made one kind, JSON keys merged).
    notes: tuple[str, ...] = ()
    # True when no value can hold a NUL character: a CSV file, whose bytes were scanned for NUL
    # (scan_text refuses one anywhere) and whose reader has no escape that makes one. JSON's \u0000
    # and Parquet strings can, so their values are checked row by row (validate).
    nul_free: bool = False


def file_format(path: Path) -> str:
    """The reader for ``path``, by its suffix (``.csv.gz`` counts as one); raise :class:`UnreadableFile` for others."""
    fmt = format_or_none(path)
    if fmt is None:
        raise UnreadableFile(
            f"unsupported file type {''.join(path.suffixes[-2:]) or '(none)'!r}; "
            f"expected one of {', '.join(sorted(FORMATS))}"
        )
    return fmt


def format_or_none(path: Path) -> str | None:
    """The reader name for ``path``, or None if unsupported."""
    name = path.name.lower()
    matches = [suffix for suffix in FORMATS if name.endswith(suffix) and len(name) > len(suffix)]
    return FORMATS[max(matches, key=len)] if matches else None


def read_raw(con: duckdb.DuckDBPyConnection, path: Path, fmt: str, ds: DatasetConfig | None = None) -> RawTable:
    """Load ``path`` into the temp relations ``raw_rows`` and ``raw_rejects``. For a detection dataset
    ``ds``, a ``.json`` file that is a COCO file or a Label Studio export is read as one row per image
    (:mod:`data_engine.ingest.box_annotations`).

    Call this outside an open transaction: a DuckDB error while reading aborts a transaction, and
    rows read inside one get transaction-local row ids (so ``__row`` would be wrong).
    """
    drop_scratch(con)
    duplicates: tuple[str, ...] = ()
    notes: list[str] = []
    if path.stat().st_size == 0:
        raise UnreadableFile("the file is empty")
    with tempfile.TemporaryDirectory(prefix="data-engine-") as tmp:
        source, quotes = path, True
        if fmt != "parquet":
            scan = scan_text(path, UnreadableFile)
            quotes = scan.quotes
            if scan.mixed and fmt == "csv":
                # DuckDB's sniffer refuses a CSV whose rows end in different ways: read a copy with one
                # kind. (JSON lines are split on any line ending, and a raw CR cannot be inside a JSON value.)
                source = Path(tmp) / "landed.csv"
                write_lf(path, source)
                notes.append(f"mixed line endings ({' and '.join(scan.kinds)}): every line ending read as a line end "
                             "(a CR or CRLF inside a quoted value reads as LF)")
        try:
            if fmt == "csv":
                duplicates = _read_csv(con, source, quotes)
            elif fmt == "parquet":
                _read_parquet(con, source)
            elif fmt == "conll":
                from data_engine.ingest.conll import write_jsonl

                rows = Path(tmp) / "sentences.jsonl"
                write_jsonl(source, rows)
                if rows.stat().st_size == 0:
                    raise UnreadableFile("no sentence in the CoNLL file (one token and its tag a line)")
                notes += _read_json(con, rows, "jsonl")
                notes.append("CoNLL tokens read as one row per sentence: text (tokens joined by a space), spans, sentence")
            elif fmt == "json" and ds is not None and ds.task == "detection" and (
                    converted := _box_annotations(source, ds)) is not None:
                rows_path, note = Path(tmp) / "images.jsonl", converted[1]
                rows_path.write_text("".join(json.dumps(r) + "\n" for r in converted[0]), encoding="utf-8")
                if not converted[0]:
                    raise UnreadableFile(f"no image in the file ({note})")
                notes += _read_json(con, rows_path, "jsonl")
                notes.append(note)
            else:
                notes += _read_json(con, source, fmt)
        except duckdb.Error as exc:
            raise UnreadableFile(_explain(exc)) from None
    columns = tuple(
        r[0] for r in con.execute(
            "SELECT column_name FROM information_schema.columns WHERE table_name = 'raw_rows' "
            "AND column_name <> '__row' ORDER BY ordinal_position"
        ).fetchall()
    )
    rows = con.execute("SELECT count(*) FROM raw_rows").fetchone()[0]
    rejects = con.execute("SELECT count(*) FROM raw_rejects").fetchone()[0]
    return RawTable(columns, rows, rejects, duplicates, tuple(notes), nul_free=fmt == "csv")


def _box_annotations(path: Path, ds: DatasetConfig) -> tuple[list[dict], str] | None:
    from data_engine.ingest.box_annotations import annotation_rows

    return annotation_rows(path, ds)


# Scratch relations of one read/validate cycle (temp tables or views), dropped before and after.
SCRATCH = ("raw_rows", "raw_read", "raw_rejects", "rej_adj", "raw_lines", "reject_errors", "reject_scans",
           "dup_ids", "rejected", "good", "staged", "kept_verdicts", "raw_keyed", "raw_rows_images", "image_checks",
           "image_rejects", "label_values")


def drop_scratch(con: duckdb.DuckDBPyConnection) -> None:
    """Drop the temp relations of a previous read (views before the tables they read)."""
    kinds = dict(con.execute(
        "SELECT view_name, 'VIEW' FROM duckdb_views() WHERE temporary UNION ALL "
        "SELECT table_name, 'TABLE' FROM duckdb_tables() WHERE temporary"
    ).fetchall())
    for name in sorted(SCRATCH, key=lambda n: kinds.get(n) != "VIEW"):
        if name in kinds:
            con.execute(f"DROP {kinds[name]} IF EXISTS {quote_ident(name)}")


def _read_csv(con: duckdb.DuckDBPyConnection, path: Path, quotes: bool) -> tuple[str, ...]:
    """Read the CSV at ``path`` into ``raw_rows``/``raw_rejects``; return the header's names given
    twice. ``quotes``: whether the file holds a double quote at all (``TextScan.quotes``, from the
    scan that already read every byte); only then is the sniffer's quoting checked."""
    _read_csv_table(con, str(path), "auto_detect = true")
    broken = None
    rejects = con.execute("SELECT count(*) FROM reject_errors").fetchone()[0]
    unquoted = quotes and _sniffed_without_quoting(con, path)
    if rejects or unquoted:
        broken = find_broken_quotes(path)
    if broken is None and unquoted:
        # The sniffer's sample had no quoted field, but the file has them (further down): quote as RFC 4180.
        con.execute("DROP TABLE raw_read")
        _read_csv_table(con, str(path), "auto_detect = true, quote = '\"', escape = '\"'")
    elif broken is not None:
        # Read the file again with the broken rows replaced by unparseable placeholders (see quotes.py).
        delim, broken_rows, lines = broken
        with tempfile.TemporaryDirectory(prefix="data-engine-") as tmp:
            fixed = Path(tmp) / "repaired.csv"
            fixed.write_text("\n".join(lines) + "\n", encoding="utf-8")
            con.execute("DROP TABLE raw_read")
            _read_csv_table(con, str(fixed), f"delim = {_sql_text(delim)}, quote = '\"', escape = '\"'")
    duplicates = _duplicate_header_names(con, path)
    _name_unnamed_columns(con, path)
    # A file column named like the engine's row number column is dropped (it cannot be a dataset
    # column: the config reserves the name).
    for (name,) in con.execute(
        "SELECT column_name FROM information_schema.columns WHERE table_name = 'raw_read' AND lower(column_name) = ?",
        [ROW_COLUMN],
    ).fetchall():
        con.execute(f"ALTER TABLE raw_read DROP COLUMN {quote_ident(name)}")
    bad_encoding = con.execute(
        "SELECT line - 1, column_name FROM reject_errors WHERE error_type = 'INVALID ENCODING' ORDER BY line LIMIT 1"
    ).fetchone()
    if bad_encoding:
        # One row in another encoding means the whole file is (Latin-1, Windows-1252, ...): storing
        # the other rows would split one file into an ingested part and a part to re-send.
        where = f" (first on data row {bad_encoding[0]}" + (f", column {bad_encoding[1]!r})" if bad_encoding[1] else ")")
        raise UnreadableFile(f"the file is not UTF-8 encoded{where}; save it as UTF-8")
    # DuckDB counts records in `line` with the header as 1: data row = line - 1.
    con.execute(
        "CREATE TEMP TABLE raw_rejects AS SELECT line - 1 AS __row, first(csv_line) AS raw, "
        "string_agg(DISTINCT error_type || coalesce(' (' || column_name || ')', '') || ': ' || error_message, '; ') AS reason "
        "FROM reject_errors GROUP BY line"
    )
    if broken is not None:
        # The placeholders' rejects get the row as the file wrote it and the actual reason.
        con.executemany(
            "UPDATE raw_rejects SET raw = ?, reason = ? WHERE __row = ?",
            [[b.text, f"unterminated quote (line {b.line} of the file): the quoted field never closes", b.row]
             for b in broken_rows],
        )
    # raw_read keeps file order (insertion order is preserved) and, read outside a transaction,
    # row ids 0..n-1; the base is subtracted anyway so the numbering never depends on that.
    base = con.execute("SELECT coalesce(min(rowid), 0) FROM raw_read").fetchone()[0]
    if con.execute("SELECT count(*) FROM raw_rejects").fetchone()[0] == 0:
        # A view, not a copy: the common case pays nothing for the row numbers.
        con.execute(f"CREATE TEMP VIEW raw_rows AS SELECT *, rowid - {int(base)} + 1 AS __row FROM raw_read")
        return duplicates
    # The k-th parsed row is data row k + (number of rejected records before it). With the rejects
    # at rows R_1 < R_2 < ..., reject j lies before parsed row k exactly when R_j - (j - 1) <= k:
    # an ASOF join on that non-decreasing key finds the count (the largest j) for every row at once.
    con.execute(
        "CREATE TEMP TABLE rej_adj AS SELECT adj, max(j) AS j FROM ("
        "  SELECT __row - (row_number() OVER (ORDER BY __row) - 1) AS adj, row_number() OVER (ORDER BY __row) AS j"
        "  FROM raw_rejects) GROUP BY adj"
    )
    con.execute(
        "CREATE TEMP TABLE raw_rows AS SELECT r.* EXCLUDE (__row), r.__row + coalesce(a.j, 0) AS __row "
        f"FROM (SELECT *, rowid - {int(base)} + 1 AS __row FROM raw_read) r "
        "ASOF LEFT JOIN rej_adj a ON r.__row >= a.adj ORDER BY r.__row"
    )
    con.execute("DROP TABLE raw_read")
    con.execute("DROP TABLE rej_adj")
    return duplicates


def _sniffed_without_quoting(con: duckdb.DuckDBPyConnection, path: Path) -> bool:
    """True when the sniffer reads the CSV at ``path`` without ``"`` as its quote. Asked only of a file
    that holds a ``"`` (``TextScan.quotes``): a lone unterminated quote makes the sniffer give up
    quoting, and the row then reads as valid text with a stray ``"`` in it."""
    try:
        quote = con.execute("SELECT Quote FROM sniff_csv(?)", [str(path)]).fetchone()[0]
    except duckdb.Error:
        return False
    return quote != '"'


def _compression(path: str) -> str:
    """The compression of the CSV at ``path``, by its name, for ``read_csv``: DuckDB's own guess cuts
    a name at ``?`` as if it were a URL's query, so ``?.csv.gz`` was read as plain text."""
    return "gzip" if path.lower().endswith(".gz") else "none"


def _read_csv_table(con: duckdb.DuckDBPyConnection, path: str, dialect: str) -> None:
    """``raw_read``: the CSV at ``path`` as text columns, bad rows to ``reject_errors``; a line too
    long for the reader's default buffer is retried with :data:`MAX_LINE_BYTES`."""
    for name in ("reject_errors", "reject_scans"):
        con.execute(f"DROP TABLE IF EXISTS {name}")
    # header=true always: a file without a header then shows up as "missing required columns"
    # instead of silently becoming column0, column1, ...
    sql = ("CREATE TEMP TABLE raw_read AS SELECT * FROM read_csv(?, header = true, all_varchar = true, "
           f"store_rejects = true, compression = '{_compression(path)}', {dialect}{{}})")
    try:
        con.execute(sql.format(""), [path])
    except duckdb.InvalidInputException as exc:
        if "max_line_size" not in str(exc) and "Maximum line size" not in str(exc):
            raise
        for name in ("reject_errors", "reject_scans"):
            con.execute(f"DROP TABLE IF EXISTS {name}")
        con.execute(sql.format(f", max_line_size = {MAX_LINE_BYTES}, buffer_size = {MAX_LINE_BYTES}"), [path])


def _duplicate_header_names(con: duckdb.DuckDBPyConnection, path: Path) -> tuple[str, ...]:
    """Names the header gives twice, ignoring case and surrounding spaces (DuckDB quietly reads the
    second as ``name_1``); the header row is only read again when such a name is there."""
    names = [r[0] for r in con.execute(
        "SELECT column_name FROM information_schema.columns WHERE table_name = 'raw_read' ORDER BY ordinal_position"
    ).fetchall()]
    lowered = {n.lower() for n in names}
    suspects = [n for n in names if "_" in n and n.rsplit("_", 1)[1].isdigit() and n.rsplit("_", 1)[0].lower() in lowered]
    if not suspects:
        return ()
    header = con.execute(
        "SELECT * FROM read_csv(?, header = false, all_varchar = true, auto_detect = true, ignore_errors = true, "
        f"compression = '{_compression(str(path))}') LIMIT 1",
        [str(path)],
    ).fetchone() or ()
    seen: dict[str, str] = {}
    twice: list[str] = []
    for name in header:
        key = (name or "").strip().lower()
        if key in seen:
            twice += [seen[key], name]
        seen[key] = name
    return tuple(dict.fromkeys(twice))


def _name_unnamed_columns(con: duckdb.DuckDBPyConnection, path: Path) -> None:
    """A header cell left empty gets DuckDB's made-up name ``column<i>``, which the file never says;
    such a column is renamed ``(no name, column N)`` (N counted from 1) so messages point at it.
    The header row is only read again when such a name is there."""
    names = [r[0] for r in con.execute(
        "SELECT column_name FROM information_schema.columns WHERE table_name = 'raw_read' ORDER BY ordinal_position"
    ).fetchall()]
    if not any(re.fullmatch(r"column\d+", n) for n in names):
        return
    header = con.execute(
        "SELECT * FROM read_csv(?, header = false, all_varchar = true, auto_detect = true, ignore_errors = true, "
        f"compression = '{_compression(str(path))}') LIMIT 1",
        [str(path)],
    ).fetchone() or ()
    if len(header) != len(names):
        return
    for i, (name, cell) in enumerate(zip(names, header)):
        if re.fullmatch(r"column\d+", name) and not (cell or "").strip():
            con.execute(f"ALTER TABLE raw_read RENAME COLUMN {quote_ident(name)} TO {quote_ident(f'(no name, column {i + 1})')}")


def _read_parquet(con: duckdb.DuckDBPyConnection, path: Path) -> None:
    """Nested parquet values become their text form, so the validator can show and name them.

    A list of text (tags) becomes its JSON array, ["a","b"], as JSONL writes it: DuckDB's own text
    form, [a, b], cannot tell the tag "a, b" from two tags. Lists of numbers keep that form, which is
    valid JSON already (vector columns are cast back from it). A timestamp with a time zone is written
    as text in the session's time zone, which DuckDB takes from the process (TZ): read under UTC, so
    the same file gives the same text on every machine.
    """
    described = con.execute("DESCRIBE SELECT * FROM read_parquet(?)", [str(path)]).fetchall()
    cols = [(name, kind) for name, kind, *_ in described if name.lower() not in ("file_row_number", "__row")]
    picks = [f"to_json({quote_ident(name)})::VARCHAR AS {quote_ident(name)}" if kind == "VARCHAR[]"
             else f"{quote_ident(name)}::VARCHAR AS {quote_ident(name)}" for name, kind in cols]
    zone = con.execute("SELECT current_setting('TimeZone')").fetchone()[0]
    con.execute("SET TimeZone = 'UTC'")
    try:
        con.execute(
            f"CREATE TEMP TABLE raw_rows AS SELECT {', '.join(picks + ['file_row_number + 1 AS __row'])} "
            "FROM read_parquet(?, file_row_number = true)",
            [str(path)],
        )
    finally:
        con.execute("SET TimeZone = ?", [zone])
    con.execute("CREATE TEMP TABLE raw_rejects (__row BIGINT, raw VARCHAR, reason VARCHAR)")


def _read_json(con: duckdb.DuckDBPyConnection, path: Path, fmt: str) -> list[str]:
    """JSON Lines (``__row`` = line number) or a JSON array of objects (``__row`` = element number);
    returns notes for the batch (key spellings merged)."""
    if path.name.lower().endswith(".gz"):
        # read_text does not decompress: gunzip to a scratch file first (a stream copy, no rows in Python).
        with tempfile.TemporaryDirectory(prefix="data-engine-") as tmp:
            plain = Path(tmp) / "landed.jsonl"
            with open_bytes(path) as src, plain.open("wb") as dst:
                shutil.copyfileobj(src, dst, 1 << 20)
            return _read_json(con, plain, fmt)
    # A byte-order mark (U+FEFF) some editors write before the first line is not part of the data.
    if fmt == "json":
        content = "ltrim(replace(content, chr(13), ''), chr(65279))"
        if not con.execute(f"SELECT json_valid({content}) FROM read_text(?)", [str(path)]).fetchone()[0]:
            raise UnreadableFile("not valid JSON; a .json file must hold one array of objects (or use .jsonl, one object a line)")
        if con.execute(f"SELECT json_type({content}) FROM read_text(?)", [str(path)]).fetchone()[0] != "ARRAY":
            raise UnreadableFile("a .json file must hold an array of objects, [{...}, {...}]")
        lines = f"(SELECT json_extract({content}, '$[*]')::VARCHAR[] AS lines FROM read_text(?))"
    else:
        # Lines end in LF, CRLF or CR alone (a raw CR cannot be inside a JSON value: it is escaped there).
        lines = "(SELECT regexp_split_to_array(ltrim(content, chr(65279)), '\\r\\n|\\r|\\n') AS lines FROM read_text(?))"
    # read_json would fail the whole file on one malformed line, or (ignore_errors) drop it
    # silently; reading lines as text keeps every line accountable.
    con.execute(
        "CREATE TEMP TABLE raw_lines AS SELECT * FROM ("
        "  SELECT unnest(lines) AS line, generate_subscripts(lines, 1) AS __row"
        f"  FROM {lines}"
        ") WHERE trim(line) <> ''",
        [str(path)],
    )
    # A key twice in one object ({"label": "a", ..., "label": "b"}, or "Label" beside "label": keys
    # match as file columns do, ignoring case and surrounding spaces) has no one value: JSON parsers
    # disagree on which wins, so the row is rejected naming the key rather than one silently kept.
    folded = "list_transform(json_keys(line), lambda k: lower(trim(k)))"
    twice = f"list_filter({folded}, lambda k, i: list_position({folded}, k) < i)[1]"
    con.execute(
        "CREATE TEMP TABLE raw_rejects AS SELECT __row, line AS raw, "
        "CASE WHEN NOT json_valid(line) THEN 'not valid JSON' WHEN json_type(line) <> 'OBJECT' "
        f"THEN 'not a JSON object' ELSE 'key ' || to_json({twice}) || ' appears twice in one object "
        "(keys match ignoring case and surrounding spaces)' END AS reason "
        f"FROM raw_lines WHERE NOT json_valid(line) OR json_type(line) <> 'OBJECT' OR {twice} IS NOT NULL"
    )
    con.execute("DELETE FROM raw_lines WHERE __row IN (SELECT __row FROM raw_rejects)")
    spelled = con.execute(
        "SELECT k, count(*) FROM (SELECT unnest(json_keys(line)) AS k, __row FROM raw_lines) "
        "WHERE lower(trim(k)) <> ? GROUP BY k ORDER BY min(__row), k",
        [ROW_COLUMN],
    ).fetchall()
    if not spelled:
        con.execute("CREATE TEMP TABLE raw_rows (__row BIGINT)")
        con.execute("DROP TABLE raw_lines")
        return []
    # One column per key as file columns are matched: spellings that differ only in case or
    # surrounding spaces are one column, named as most rows spell it (ties: the first seen).
    groups: dict[str, list[tuple[str, int]]] = {}
    for key, n in spelled:
        groups.setdefault(key.strip().lower(), []).append((key, int(n)))
    selects, notes = [], []
    for spellings in groups.values():
        name = max(spellings, key=lambda kn: kn[1])[0]
        values = [f"json_extract_string(line, {json_path(k)})" for k, _ in spellings]
        selects.append(f"{values[0] if len(values) == 1 else 'coalesce(' + ', '.join(values) + ')'} AS {quote_ident(name)}")
        if len(spellings) > 1:
            shown = ", ".join(f"{k!r} ({n} row{'s' if n > 1 else ''})" for k, n in spellings)
            notes.append(f"JSON keys {shown} differ only in case or surrounding spaces: read as one column {name!r}")
    con.execute(
        f"CREATE TEMP TABLE raw_rows AS SELECT {', '.join(selects)}, __row FROM raw_lines ORDER BY __row"
    )
    con.execute("DROP TABLE raw_lines")
    return notes


def _sql_text(text: str) -> str:
    return "'" + text.replace("'", "''") + "'"


def _explain(exc: BaseException) -> str:
    """A DuckDB error as one line: its first line without the error-class prefix, plus the lines
    that explain it and say what to do (DuckDB puts those after the first), without the option dump."""
    lines = [ln.strip() for ln in str(exc).strip().splitlines() if ln.strip()]
    if not lines:
        return type(exc).__name__
    text = lines[0]
    for prefix in ("Invalid Input Error: ", "Conversion Error: ", "IO Error: ", "Binder Error: "):
        text = text.removeprefix(prefix)
    # A heading whose list is left out ("Possible fixes:", then DuckDB's own options) would end the
    # message on a colon: only whole sentences are kept.
    extra = [ln for ln in lines[1:] if ln.lower().startswith(("possible", "consider", "hint", "try", "this error"))
             and not ln.endswith(":")]
    return " ".join([text, *extra[:3]])[:500]
