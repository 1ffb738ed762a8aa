"""The same data spelled differently is the same content: a re-export by another tool (booleans,
timestamp offsets, list syntax, number spellings) or a Parquet file read under another process
time zone stores no new version; a changed version counts its columns and never undoes a person's
verdict silently."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path

import duckdb
import pandas as pd
import pytest

from data_engine.ingest.batch import IngestResult, ingest_file
from data_engine.store.home import Home
from data_engine.store.ledger import append_events
from data_engine.store.warehouse import open_warehouse

ROOT = Path(__file__).resolve().parents[2]
N = 40
CONFIG = """\
[dataset]
name = "exports"
modality = "tabular"
id_column = "id"
label_column = "label"
feature_columns = ["x", "flag", "seen", "tags", "code"]
classes = ["a", "b"]
column_types = { x = "numeric", flag = "categorical", seen = "categorical", tags = "categorical", code = "categorical" }
"""


def _frame() -> pd.DataFrame:
    """40 rows of typed values: a number, a boolean, a UTC timestamp, a tag list and a code."""
    return pd.DataFrame({
        "id": [f"r{i}" for i in range(N)],
        "label": ["a" if i % 3 else "b" for i in range(N)],
        "x": [i / 4 for i in range(N)],
        "flag": [i % 2 == 0 for i in range(N)],
        "seen": pd.date_range("2024-03-01 09:30:00", periods=N, freq="37min", tz="UTC"),
        "tags": [["red", "big"] if i % 2 else ["small"] for i in range(N)],
        "code": [f"0{i % 7}" for i in range(N)],
    })


def _write(home: Home, name: str, text: str) -> Path:
    path = home.landing / name
    path.write_text(text, encoding="utf-8")
    return path


def _versions(con: duckdb.DuckDBPyConnection) -> int:
    return con.execute("SELECT count(*) FROM examples").fetchone()[0]


@pytest.fixture()
def exports(make_home: Callable[..., Home]) -> Home:
    return make_home(CONFIG)


def _ingest(home: Home, path: Path) -> IngestResult:
    with open_warehouse(home) as con:
        return ingest_file(con, home.config.dataset, path)


def test_reexports_by_other_tools_are_unchanged(exports: Home) -> None:
    df = _frame()
    # pandas' CSV: True, 2024-03-01 09:30:00+00:00, ['red', 'big']
    first = _ingest(exports, _write(exports, "pandas.csv", df.to_csv(index=False)))
    assert (first.status, first.rows_new) == ("ingested", N)
    # The same rows as another tool writes them: true, +00 with a T, JSON lists, numbers as 2.50.
    other = df.assign(
        flag=df.flag.map({True: "true", False: "false"}),
        seen=df.seen.dt.strftime("%Y-%m-%dT%H:%M:%S+00"),
        tags=df.tags.map(lambda t: json.dumps(t, separators=(",", ":"))),
        x=df.x.map(lambda v: f"{v:.2f}"),
    ).iloc[::-1]
    reexports = {
        "other.csv": other.to_csv(index=False),
        "lines.jsonl": df.assign(seen=df.seen.dt.strftime("%Y-%m-%d %H:%M:%SZ")).to_json(orient="records", lines=True,
                                                                                          date_format="iso"),
        # R writes TRUE/FALSE, another offset spelling (+0000) and DuckDB's own list syntax.
        "r.csv": df.assign(flag=df.flag.map({True: "TRUE", False: "FALSE"}),
                           seen=df.seen.dt.strftime("%Y-%m-%d %H:%M:%S+0000"),
                           tags=df.tags.map(lambda t: "[" + ", ".join(t) + "]")).to_csv(index=False),
        # A spreadsheet's Yes/No (Access and SPSS write them; DuckDB reads them as booleans too).
        "sheet.csv": df.assign(flag=df.flag.map({True: "Yes", False: "No"})).to_csv(index=False),
    }
    for name, text in reexports.items():
        r = _ingest(exports, _write(exports, name, text))
        assert (name, r.status, r.rows_ok, r.rows_new, r.rows_changed, r.rows_unchanged) == (
            name, "ingested", N, 0, 0, N)
    parquet = exports.landing / "arrow.parquet"
    df.to_parquet(parquet)   # booleans as BOOLEAN, timestamps as TIMESTAMP WITH TIME ZONE, lists as LIST
    r = _ingest(exports, parquet)
    assert (r.rows_new, r.rows_changed, r.rows_unchanged) == (0, 0, N)
    with open_warehouse(exports, read_only=True) as con:
        assert _versions(con) == N


def test_a_value_that_differs_is_a_change_named_by_column(exports: Home) -> None:
    """Only the spelling is forgiven: another instant, list or code is new content, counted per column.
    A categorical code keeps its leading zero ('01' is not '1': only numeric columns compare numbers)."""
    df = _frame()
    _ingest(exports, _write(exports, "one.csv", df.to_csv(index=False)))
    changed = df.copy()
    changed.loc[0, "seen"] = changed.loc[0, "seen"] + pd.Timedelta(seconds=1)
    changed.loc[1, "tags"] = ["big", "red"]                       # another order is another list
    changed.loc[2, "code"] = changed.loc[2, "code"].lstrip("0")   # "00" -> "": removed; "0k" -> "k"
    changed.loc[3, "code"] = "3"                                  # "03" -> "3"
    changed.loc[4, "x"] = 99.0
    changed["flag"] = changed.flag.map({True: "yes", False: "no"})   # the same booleans, spelled yes/no
    changed.loc[5, "flag"] = "no" if df.loc[5, "flag"] else "yes"   # ... but one flipped
    r = _ingest(exports, _write(exports, "two.csv", changed.to_csv(index=False)))
    assert (r.rows_changed, r.rows_unchanged, r.rows_new) == (6, N - 6, 0)
    assert r.changed_columns == {"flag": 1, "seen": 1, "tags": 1, "code": 2, "x": 1}
    from data_engine.ingest.summary import summarize
    assert "changed: 6 example(s) got a new version; by column: x=1, flag=1, seen=1, tags=1, code=2" in summarize([r])


def _ingest_under_tz(home: Home, path: Path, tz: str) -> dict:
    env = {**os.environ, "TZ": tz, "PYTHONPATH": str(ROOT)}
    proc = subprocess.run([sys.executable, "-m", "data_engine.cli", "--home", str(home.root), "ingest", "--json",
                           str(path)], env=env, capture_output=True, text=True, timeout=120, check=False)
    assert proc.returncode == 0, proc.stderr
    return json.loads(proc.stdout)[0]


def test_parquet_timestamps_read_the_same_in_any_process_time_zone(exports: Home) -> None:
    df = _frame()
    first, second = exports.landing / "first.parquet", exports.landing / "second.parquet"
    df.to_parquet(first)
    df.iloc[::-1].to_parquet(second)   # other bytes, the same rows
    r1 = _ingest_under_tz(exports, first, "America/New_York")
    r2 = _ingest_under_tz(exports, second, "UTC")
    assert (r1["rows_new"], r2["rows_new"], r2["rows_changed"], r2["rows_unchanged"]) == (N, 0, 0, N)
    with open_warehouse(exports, read_only=True) as con:
        assert _versions(con) == N
        # The stored text is the instant in UTC whatever the process's zone was.
        assert con.execute("SELECT seen FROM examples WHERE example_id = 'r0'").fetchone()[0] == "2024-03-01 09:30:00+00"


def test_a_relabel_is_kept_over_a_relanded_ingest_label(exports: Home) -> None:
    df = _frame()
    _ingest(exports, _write(exports, "one.csv", df.to_csv(index=False)))
    with open_warehouse(exports) as con:
        con.execute("BEGIN TRANSACTION")
        append_events(con, [{"example_id": "r1", "example_version": 1, "label": "b", "source": "review",
                             "actor": "alice", "detail": "{}"}])
        con.execute("COMMIT")
    # A re-export (other spellings) changes nothing: the relabel stays, no version, nothing to say.
    same = _ingest(exports, _write(exports, "same.csv", df.assign(flag=df.flag.astype(str).str.lower())
                                   .to_csv(index=False)))
    assert (same.rows_changed, same.verdicts_kept, same.verdict_conflicts, same.warnings) == (0, 0, 0, [])
    # The upstream file changes r1's features and still says 'a': a new version, the verdict kept.
    edited = df.copy()
    edited.loc[1, "x"] = 7.5
    edited.loc[2, "x"] = 8.5   # r2 has no person's verdict: its new version takes the file's label
    r = _ingest(exports, _write(exports, "edited.csv", edited.to_csv(index=False)))
    assert (r.rows_changed, r.verdicts_kept, r.verdict_conflicts) == (2, 1, 1)
    assert any("r1: file says 'a', review by alice says 'b'" in w for w in r.warnings), r.warnings
    with open_warehouse(exports, read_only=True) as con:
        assert con.execute("SELECT example_id, label, source FROM current_labels WHERE example_id IN ('r1', 'r2') "
                           "ORDER BY example_id").fetchall() == [("r1", "b", "review"), ("r2", "a", "ingest")]
        # The old events stay as they were; one event was appended for the new version.
        assert con.execute("SELECT example_version, label, source FROM label_events WHERE example_id = 'r1' "
                           "ORDER BY event_id").fetchall() == [(1, "a", "ingest"), (1, "b", "review"),
                                                                (2, "a", "ingest"), (2, "b", "review")]


def _spell(value: object, kind: str, rng) -> str:
    """One of the spellings tools write for ``value`` (a generated re-export: the kind, not a case)."""
    if kind == "flag":
        yes = "yes" if value else "no"
        return str(rng.choice([str(value), str(value).upper(), str(value).lower(), yes, yes.title(), yes.upper()]))
    if kind == "seen":
        zone = str(rng.choice(["UTC", "Europe/Berlin", "America/New_York", "Asia/Kolkata"]))
        local = value.tz_convert(zone)
        offset = local.strftime("%z")                       # +0530
        form = int(rng.integers(4))
        if form == 0:
            return local.isoformat()                        # 2024-03-01T15:00:00+05:30
        if form == 1:
            return local.strftime("%Y-%m-%d %H:%M:%S") + offset
        if form == 2 and zone == "UTC":
            return local.strftime("%Y-%m-%dT%H:%M:%SZ")
        return local.strftime("%Y-%m-%d %H:%M:%S") + offset[:3] + (":" + offset[3:] if offset[3:] != "00" else "")
    if kind == "tags":
        form = int(rng.integers(4))
        return [repr(list(value)), json.dumps(list(value)), json.dumps(list(value), separators=(",", ":")),
                "[" + ", ".join(value) + "]"][form]
    return str(rng.choice([repr(float(value)), f"{value:.3f}", f"{value:e}"]))


@pytest.mark.parametrize("seed", range(4))
def test_generated_respellings_are_unchanged(seed: int, exports: Home) -> None:
    """Every cell spelled at random in two exports (booleans, offsets of any zone, list syntaxes,
    number forms): the second stores nothing new."""
    import numpy as np

    rng = np.random.default_rng(seed)
    df = _frame()

    def export() -> str:
        out = df.copy().astype(object)
        for col in ("flag", "seen", "tags", "x"):
            out[col] = [_spell(v, col, rng) for v in df[col]]
        return out.sample(frac=1, random_state=int(rng.integers(1000))).to_csv(index=False)

    assert _ingest(exports, _write(exports, "a.csv", export())).rows_new == N
    r = _ingest(exports, _write(exports, "b.csv", export()))
    assert (r.rows_new, r.rows_changed, r.rows_unchanged) == (0, 0, N), r.changed_columns
