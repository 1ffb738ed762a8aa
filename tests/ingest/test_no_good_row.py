"""A batch with no good row fails (nothing of it stored but its quarantined rows, which keep their
reasons); a batch with a large quarantined share is ingested with a warning ([ingest] max_quarantine_share)."""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path

import duckdb
import pytest

from data_engine.ingest.batch import IngestResult, ingest_file
from data_engine.ingest.summary import summarize
from data_engine.store.home import Home
from data_engine.store.warehouse import open_warehouse
from tests.cli.test_cli_core import cli
from tests.conftest import TOY_CONFIG

Ingest = Callable[..., IngestResult]
HEADER = "id,label,x,color\n"
GOOD = HEADER + "1,a,1.5,red\n2,b,2,blue\n"
# The numeric column x turned to text upstream: every row fails on it.
TEXT_X = HEADER + "3,a,56 months,red\n4,b,12 months,blue\n5,a,7 months,red\n"


def test_a_batch_whose_every_row_fails_is_rejected_naming_the_column(
        ingest_toy: Ingest, toy_con: duckdb.DuckDBPyConnection) -> None:
    assert ingest_toy("good.csv", GOOD).status == "ingested"
    r = ingest_toy("text_x.csv", TEXT_X)
    assert (r.status, r.rows_in, r.rows_ok, r.rows_quarantined) == ("rejected", 3, 0, 3)
    assert (r.rows_new, r.rows_changed, r.rows_unchanged, r.rows_labeled) == (0, 0, 0, 0)
    assert r.reason is not None and r.reason.startswith("no good row: all 3 rows quarantined, rejected by column 'x' (3 rows")
    assert "56 months" in r.reason or "12 months" in r.reason or "7 months" in r.reason
    # Nothing lost: the three rows are in the quarantine with their reasons, under the file's row numbers.
    rows = toy_con.execute("SELECT row_number, reason FROM quarantine WHERE batch_id = ? ORDER BY row_number",
                           [r.batch_id]).fetchall()
    assert [n for n, _ in rows] == [1, 2, 3] and all("column x" in why for _, why in rows)
    assert toy_con.execute("SELECT count(*) FROM examples").fetchone()[0] == 2
    assert toy_con.execute("SELECT status, rows_in, rows_ok, rows_quarantined FROM batches WHERE batch_id = ?",
                           [r.batch_id]).fetchone() == ("rejected", 3, 0, 3)
    # The same bytes again: the recorded answer, still a failure.
    again = ingest_toy("text_x.csv")
    assert again.already_known and again.status == "rejected" and again.reason == r.reason
    line = summarize([r])
    assert f"{r.batch_id}: rejected rows_in=3 ok=0 quarantined=3 - no good row" in line


def test_a_first_batch_without_a_good_row_fixes_no_column_types(make_home: Callable[..., Home]) -> None:
    home = make_home("[dataset]\nname = 't'\nmodality = 'tabular'\nid_column = 'id'\nlabel_column = 'label'\n"
                     "feature_columns = ['x', 'color']\n")
    (home.landing / "no_ids.csv").write_text(HEADER + ",a,56 months,red\n,b,12 months,blue\n")
    (home.landing / "good.csv").write_text(GOOD)
    with open_warehouse(home) as con:
        bad = ingest_file(con, home.config.dataset, home.landing / "no_ids.csv")
        assert (bad.status, bad.rows_quarantined, bad.column_types) == ("rejected", 2, {})
        assert "rejected by column 'id' (2 rows" in (bad.reason or "")
        assert con.execute("SELECT count(*) FROM dataset_columns").fetchone()[0] == 0
        assert con.execute("SELECT count(*) FROM quarantine").fetchone()[0] == 2
        good = ingest_file(con, home.config.dataset, home.landing / "good.csv")
        # Had the failed batch fixed the types, x would be text ("56 months") and the classes unset.
        assert good.status == "ingested" and good.column_types["x"] == "numeric"


@pytest.mark.parametrize("max_share, bad_rows, warned", [
    (0.5, 3, True),    # 3 of 4 = 75% > 50%
    (0.5, 2, False),   # 50% is not above 50%
    (0.8, 3, False),   # 75% <= 80%
    (0.0, 1, True),    # 0: any quarantined row warns
])
def test_a_large_quarantined_share_warns(max_share: float, bad_rows: int, warned: bool, toy_home: Home,
                                         toy_con: duckdb.DuckDBPyConnection) -> None:
    rows = [f"{i},a,{'56 months' if i < bad_rows else i},red\n" for i in range(4)]
    path = toy_home.landing / "mixed.csv"
    path.write_text(HEADER + "".join(rows))
    r = ingest_file(toy_con, toy_home.config.dataset, path, max_quarantine_share=max_share)
    assert (r.status, r.rows_ok, r.rows_quarantined) == ("ingested", 4 - bad_rows, bad_rows)
    if not warned:
        assert r.warnings == []
        return
    (warning,) = r.warnings
    assert warning.startswith(f"{bad_rows} of 4 rows ({bad_rows / 4:.0%}) quarantined, above [ingest] "
                              f"max_quarantine_share = {max_share:g}: rejected by column 'x' ({bad_rows} row{'s' * (bad_rows != 1)}")
    assert f"  warning: {warning}" in summarize([r])


def test_the_ingest_command_exits_1_with_one_line_naming_the_file_and_column(tmp_path: Path) -> None:
    config, home = tmp_path / "toy.toml", tmp_path / "home"
    config.write_text(TOY_CONFIG + "[ingest]\nmax_quarantine_share = 0.3\n")
    assert cli("init", "--config", config, home=home).returncode == 0
    (tmp_path / "good.csv").write_text(GOOD)
    (tmp_path / "text_x.csv").write_text(TEXT_X)
    (tmp_path / "mixed.csv").write_text(HEADER + "6,a,1,red\n7,b,2,blue\n8,a,3 months,red\n")
    ok = cli("ingest", tmp_path / "good.csv", home=home)
    assert ok.returncode == 0 and ok.stderr == ""
    # A third of the rows quarantined, above 0.3: ingested (exit 0) with a warning naming the column.
    mixed = cli("ingest", tmp_path / "mixed.csv", home=home)
    assert mixed.returncode == 0, mixed.stderr
    assert "  warning: 1 of 3 rows (33%) quarantined, above [ingest] max_quarantine_share = 0.3: rejected by column 'x'" \
        in mixed.stdout
    failed = cli("ingest", tmp_path / "text_x.csv", home=home)
    assert failed.returncode == 1 and "Traceback" not in failed.stderr
    (line,) = failed.stderr.strip().splitlines()
    assert line.startswith(f"error: {tmp_path / 'text_x.csv'}: no good row: all 3 rows quarantined, "
                           "rejected by column 'x' (3 rows")
    again = cli("ingest", "--json", tmp_path / "text_x.csv", home=home)
    assert again.returncode == 1
    (result,) = json.loads(again.stdout)
    assert (result["status"], result["rows_quarantined"], result["already_known"]) == ("rejected", 3, True)


def test_every_row_failing_in_another_column_type_is_named_problem_by_problem(
        make_home: Callable[..., Home]) -> None:
    """Six rows, each failing another way (text in a number, a number beyond float32, no id, an empty
    text, a label outside the classes, a gold-prefixed id): rejected, and each problem named whole
    (a reason that held '; ' itself was cut in two: 'rescale the column' (1 rows))."""
    from data_engine.ingest.rejected import rejecting_columns

    home = make_home('[dataset]\nname = "m"\nmodality = "text"\nid_column = "id"\nlabel_column = "label"\n'
                     'text_column = "note"\nfeature_columns = ["amount"]\ncolumn_types = { amount = "numeric" }\n'
                     'classes = ["a", "b"]\n')
    path = home.landing / "all_bad.csv"
    path.write_text("id,amount,note,label\n1,56 months,hi,a\n2,1e300,hi,b\n,3,there,b\n4,3,,a\n5,4,yo,zebra\n"
                    "gold:6,5,x,b\n")
    with open_warehouse(home) as con:
        r = ingest_file(con, home.config.dataset, path)
        assert (r.status, r.rows_in, r.rows_ok, r.rows_quarantined) == ("rejected", 6, 0, 6)
        said = rejecting_columns(con, r.batch_id, shown=10)
    assert said.startswith("rejected by column 'amount' (2 rows, e.g. 'column amount: 1e300 is beyond ±3.4e+38, "
                           "the largest magnitude the models read (float32): rescale the column'")
    parts = said.removeprefix("rejected by ").split("; ")
    assert len(parts) == 5, parts
    assert sorted(parts[1:]) == [
        "'id gold:6 starts with gold:, the prefix reserved for gold examples: rename the id (or land the row as gold "
        "data in landi' (1 row)",   # examples are cut at 120 characters
        "column 'id' (1 row, e.g. 'missing id (column id)')",
        "column 'label' (1 row, e.g. 'column label: label zebra is not one of the classes (a, b)')",
        "column 'note' (1 row, e.g. 'empty text (column note)')"]
    assert r.reason.startswith("no good row: all 6 rows quarantined, rejected by column 'amount' (2 rows")
