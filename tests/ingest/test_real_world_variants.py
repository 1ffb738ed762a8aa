"""Issue 11: generated variants of each kind of real-world file (hypothesis). For every variant:
no traceback; ``rows_in == rows_ok + rows_quarantined``; every good row stored exactly once with
the values of the source; the one malformed row (when there is one) quarantined with its reason.

Kinds: random CSV dialects, pandas exports (CSV, JSON array, JSON Lines, Parquet, gzip), spreadsheet
exports (BOM, CRLF, quote-all, headers in another case), invisible characters around labels and ids,
integers written as floats, missing-value markers, a malformed row at a random position, odd file names.
"""

from __future__ import annotations

import atexit
import csv
import gzip
import io
import shutil
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

import pandas as pd
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from data_engine.ingest.batch import ingest_file
from data_engine.ingest.landing import decide_landing, landed_path
from data_engine.store.config import NA_VALUES
from data_engine.store.home import Home
from data_engine.store.warehouse import open_warehouse
from tests.ingest.test_ingest_corpus import assert_accounted
from tests.homes import make_home

CONFIG = """\
[dataset]
name = "t"
modality = "tabular"
id_column = "id"
label_column = "label"
feature_columns = ["country", "amount"]
classes = [{classes}]
{types}
"""
TYPES = 'column_types = { country = "categorical", amount = "numeric" }'
COUNTRIES = ["DE", "FR", "NA", "US", "Bosnia, Herz.", "Côte d'Ivoire"]
INVISIBLE = ["\u00a0", "\t", "\u200b", " ", "\ufeff", "\u2009", "\u3000", "\u200d"]
MARKERS = [m for m in NA_VALUES if m]
ODD_STEMS = ["Report, Q1 2024 (copy)", "sales...final", "données été", "a b  c", "x.y.z", "new\u00a0file", "#1 & co",
             "日本語", "-leading-dash", "semi;colon"]


@dataclass
class Truth:
    """The rows as the source holds them: ids and labels as text, amounts as floats or None."""

    rows: list[dict]
    labels: tuple[str, ...]


@st.composite
def truths(draw, labels: tuple[str, ...] = ("yes", "no"), min_rows: int = 3) -> Truth:
    n = draw(st.integers(min_rows, 25))
    ids = draw(st.lists(st.integers(0, 10**6), min_size=n, max_size=n, unique=True))
    rows = []
    for i in ids:
        amount = draw(st.one_of(st.none(), st.floats(-1e5, 1e5, allow_nan=False).map(lambda v: round(v, 2))))
        rows.append({"id": str(i), "country": draw(st.sampled_from(COUNTRIES)), "amount": amount,
                     "label": draw(st.one_of(st.none(), st.sampled_from(labels)))})
    return Truth(rows, labels)


def _cell(v) -> str:
    return "" if v is None else (repr(v) if isinstance(v, float) else str(v))


def write_csv(rows: list[list[str]], *, delimiter=",", quoting=csv.QUOTE_MINIMAL, newline="\n", bom=False) -> bytes:
    buf = io.StringIO()
    w = csv.writer(buf, delimiter=delimiter, quoting=quoting, lineterminator=newline)
    w.writerows(rows)
    return (b"\xef\xbb\xbf" if bom else b"") + buf.getvalue().encode("utf-8")


def table(truth: Truth, header=("id", "country", "amount", "label"), cell=_cell) -> list[list[str]]:
    return [list(header)] + [[cell(r[k]) for k in ("id", "country", "amount", "label")] for r in truth.rows]


_TEMPLATES: dict[tuple, Path] = {}


def _template(labels: tuple[str, ...], typed: bool) -> Path:
    """A migrated, empty home for the config (made once per session; each example gets a copy)."""
    key = (labels, typed)
    if key not in _TEMPLATES:
        root = Path(tempfile.mkdtemp(prefix="variant-template-"))
        atexit.register(shutil.rmtree, root, True)  # as tests/homes.py's seed cache: kept for the session
        home = make_home(root, CONFIG.format(classes=", ".join(f'"{c}"' for c in labels),
                                             types=TYPES if typed else ""))
        with open_warehouse(home):
            pass
        _TEMPLATES[key] = home.root
    return _TEMPLATES[key]


def ingest_and_check(content: bytes, name: str, truth: Truth, *, bad_rows: int = 0, typed: bool = True,
                     via_landing: bool = False) -> None:
    root = Path(tempfile.mkdtemp(prefix="variant-"))
    try:
        home = Home(root / "home")
        shutil.copytree(_template(truth.labels, typed), home.root)
        path = home.landing / name
        path.write_bytes(content)
        if via_landing:
            first = decide_landing(home.landing, None, now=time.time() + 60)
            decision = decide_landing(home.landing, first.cursor, now=time.time() + 120)
            assert [f.relpath for f in decision.new_files] == [name], decision.ignored
            path = landed_path(home.landing, decision.new_files[0].partition_key)
            assert path is not None and path.name == name
        with open_warehouse(home) as con:
            r = ingest_file(con, home.config.dataset, path)
            assert r.status == "ingested", r.reason
            assert_accounted(con, r)
            assert r.rows_in == r.rows_ok + r.rows_quarantined
            assert (r.rows_ok, r.rows_quarantined) == (len(truth.rows), bad_rows), r.quarantine_preview
            if not typed:
                assert con.execute("SELECT column_type FROM dataset_columns WHERE column_name = 'amount'"
                                   ).fetchone() == ("numeric",)
            stored = con.execute(
                "SELECT example_id, country, amount, label FROM examples WHERE batch_id = ?", [r.batch_id]
            ).fetchall()
        expected = sorted((t["id"], t["country"], t["amount"], t["label"]) for t in truth.rows)
        assert sorted(stored, key=lambda s: s[0]) == sorted(expected, key=lambda s: s[0])
    finally:
        shutil.rmtree(root, ignore_errors=True)


FAST = settings(max_examples=12, deadline=None, suppress_health_check=[HealthCheck.too_slow])


@FAST
@given(truth=truths(), delimiter=st.sampled_from([",", ";", "\t", "|"]),
       quoting=st.sampled_from([csv.QUOTE_MINIMAL, csv.QUOTE_ALL, csv.QUOTE_NONNUMERIC]),
       newline=st.sampled_from(["\n", "\r\n"]), bom=st.booleans())
def test_csv_dialects(truth, delimiter, quoting, newline, bom) -> None:
    content = write_csv(table(truth), delimiter=delimiter, quoting=quoting, newline=newline, bom=bom)
    ingest_and_check(content, "dialect.csv", truth)


@FAST
@given(truth=truths(), fmt=st.sampled_from(["csv", "csv.gz", "json", "jsonl", "jsonl.gz", "parquet"]))
def test_pandas_exports(truth, fmt) -> None:
    frame = pd.DataFrame(truth.rows)
    frame["id"] = frame["id"].astype(int)
    frame["amount"] = frame["amount"].astype(float)
    buf = io.BytesIO()
    if fmt.startswith("csv"):
        buf.write(frame.to_csv(index=False).encode("utf-8"))
    elif fmt == "json":
        buf.write(frame.to_json(orient="records", force_ascii=False).encode("utf-8"))
    elif fmt.startswith("jsonl"):
        buf.write(frame.to_json(orient="records", lines=True, force_ascii=False).encode("utf-8"))
    else:
        frame.to_parquet(buf, index=False)
    content = gzip.compress(buf.getvalue()) if fmt.endswith(".gz") else buf.getvalue()
    ingest_and_check(content, f"export.{fmt}", truth)


@FAST
@given(truth=truths(), header=st.sampled_from([("ID", "Country", "Amount", "Label"), (" id ", "country", "AMOUNT", "label "),
                                               ("id", "country", "amount", "label")]),
       delimiter=st.sampled_from([",", ";"]))
def test_spreadsheet_exports(truth, header, delimiter) -> None:
    content = write_csv(table(truth, header), delimiter=delimiter, quoting=csv.QUOTE_ALL, newline="\r\n", bom=True)
    ingest_and_check(content, "Book1.csv", truth)


@FAST
@given(truth=truths(), data=st.data())
def test_invisible_characters_around_labels_and_ids(truth, data) -> None:
    def dress(v: str | None) -> str:
        if v is None:
            return ""
        before = data.draw(st.lists(st.sampled_from(INVISIBLE), max_size=2))
        after = data.draw(st.lists(st.sampled_from(INVISIBLE), max_size=2))
        return "".join(before) + v + "".join(after)

    rows = [["id", "country", "amount", "label"]] + [
        [dress(r["id"]), r["country"], _cell(r["amount"]), dress(r["label"])] for r in truth.rows]
    ingest_and_check(write_csv(rows, quoting=csv.QUOTE_ALL), "invisible.csv", truth)


@FAST
@given(truth=truths(labels=("0", "1", "2")), fmt=st.sampled_from(["csv", "jsonl", "parquet"]))
def test_integers_written_as_floats(truth, fmt) -> None:
    frame = pd.DataFrame(truth.rows)
    # What pandas writes for integer columns with gaps: floats (1.0), here for ids and labels alike.
    frame["id"] = frame["id"].astype(float)
    frame["label"] = pd.to_numeric(frame["label"]).astype(float)
    frame["amount"] = frame["amount"].astype(float)
    if fmt == "csv":
        content = frame.to_csv(index=False).encode("utf-8")
    elif fmt == "jsonl":
        content = frame.to_json(orient="records", lines=True, force_ascii=False).encode("utf-8")
    else:
        buf = io.BytesIO()
        frame.to_parquet(buf, index=False)
        content = buf.getvalue()
    ingest_and_check(content, f"floats.{fmt}", truth)


@FAST
@given(truth=truths(min_rows=20), data=st.data())
def test_missing_value_markers_in_a_numeric_column(truth, data) -> None:
    for r in truth.rows:
        if r["amount"] is None:
            r["amount"] = 1.0  # the column's numbers, so the markers decide nothing about the type
    marked = data.draw(st.sets(st.integers(0, len(truth.rows) - 1), max_size=len(truth.rows) // 4))
    rows = [["id", "country", "amount", "label"]]
    for i, r in enumerate(truth.rows):
        cell = data.draw(st.sampled_from(MARKERS)) if i in marked else _cell(r["amount"])
        if i in marked:
            r["amount"] = None
        rows.append([r["id"], r["country"], cell, _cell(r["label"])])
    ingest_and_check(write_csv(rows), "markers.csv", truth, typed=False)


@FAST
@given(truth=truths(), data=st.data(),
       bad=st.sampled_from(['999999999,"DE,1.5,yes', "999999999,DE,1.5,yes,extra", "999999999,DE",
                            '999999999,"unterminated, with a comma,1,no']))
def test_a_malformed_row_at_a_random_position_costs_one_row(truth, data, bad) -> None:
    lines = write_csv(table(truth)).decode("utf-8").splitlines()
    at = data.draw(st.integers(1, len(lines)))
    lines.insert(at, bad)
    ingest_and_check(("\n".join(lines) + "\n").encode("utf-8"), "malformed.csv", truth, bad_rows=1)


@FAST
@given(truth=truths(), stem=st.one_of(st.sampled_from(ODD_STEMS),
                                      st.text(st.characters(blacklist_categories=("Cs", "Cc"),
                                                            blacklist_characters="/\\"), min_size=1, max_size=20)
                                      .filter(lambda s: not s.startswith(".") and s.strip() == s)),
       suffix=st.sampled_from([".csv", ".CSV", ".csv.gz", ".tsv"]))
def test_odd_file_names_are_ingested_through_the_landing_folder(truth, stem, suffix) -> None:
    content = write_csv(table(truth), delimiter="\t" if suffix == ".tsv" else ",")
    ingest_and_check(gzip.compress(content) if suffix.endswith(".gz") else content, stem + suffix, truth,
                     via_landing=True)


pytestmark = pytest.mark.filterwarnings("ignore::UserWarning")


_CON = None


@settings(max_examples=200, deadline=None)
@given(st.text(st.characters(blacklist_categories=("Cs",), blacklist_characters="\x00"), max_size=8))
def test_one_normalisation_in_sql_and_python(text: str) -> None:
    """Config classes (Python) and file labels (SQL) are normalised the same way."""
    # Lone surrogates (category Cs) cannot come from a file: files are decoded from UTF-8 bytes.
    import duckdb

    from data_engine.store.values import normalize_text, normalized_sql

    global _CON
    _CON = _CON or duckdb.connect()
    assert _CON.execute(f"SELECT {normalized_sql('$1')}", [text]).fetchone()[0] == normalize_text(text)
