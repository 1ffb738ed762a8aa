"""The issues table stored a batch at a time: the same rows, in the same order, as one INSERT of the whole frame."""

from __future__ import annotations

import types

import duckdb
import numpy as np
import pandas as pd
import pytest

from data_engine.mine.detectors import DetectorResult
from data_engine.mine.detectors.base import issues_frame
from data_engine.mine.runs import insert_issues, issues_table
from data_engine.store.warehouse import transaction


def _issues() -> pd.DataFrame:
    """An issues table as a run builds it: every label row, other types' flagged and unflagged rows,
    an id of no known version (NA), empty and JSON details."""
    train = pd.DataFrame({"example_id": pd.array([f"e{i}" for i in range(7)], dtype="str"), "version": range(1, 8)})
    state = types.SimpleNamespace(train=train, unlabeled=pd.DataFrame({"example_id": ["u0"], "version": [4]}))
    ids = np.array([f"e{i}" for i in range(7)], object)
    label = issues_frame(ids, [True, False, False, True, False, True, False], np.linspace(0.05, 0.95, 7),
                         np.array(["disagrees", "", "", "disagrees", "", "disagrees", ""], object),
                         pd.DataFrame({"given": list("abcabca"), "p": np.linspace(0.1, 0.7, 7)}))
    outlier = issues_frame(np.array(["u0", "e2", "gone", "e5"], object), [True, False, True, False],
                           [0.9, 0.2, 1.5, -1.0], np.array(["far", "", "far", ""], object))
    results = {"label": DetectorResult("label", label), "outlier": DetectorResult("outlier", outlier)}
    return issues_table(results, state)


def _stored(con: duckdb.DuckDBPyConnection, run_id: int) -> pd.DataFrame:
    return con.execute("SELECT * EXCLUDE (run_id) FROM issues WHERE run_id = ? ORDER BY rowid", [run_id]).fetchdf()


@pytest.mark.parametrize("batch_rows", [1, 2, 4, 11, 100])
def test_issues_inserted_a_batch_at_a_time_are_those_of_one_insert(toy_con: duckdb.DuckDBPyConnection,
                                                                    batch_rows: int) -> None:
    issues = _issues()
    # Before: the whole frame registered once and its rows picked by one INSERT's WHERE.
    with transaction(toy_con, _mined_issues=issues):
        toy_con.execute(
            "INSERT INTO issues (run_id, example_id, example_version, issue_type, score, is_issue, reason, detail) "
            "SELECT 1, example_id, example_version, issue_type, score, is_issue, reason, CAST(detail AS JSON) "
            "FROM _mined_issues WHERE issue_type = 'label' OR CAST(is_issue AS BOOLEAN)")
    with transaction(toy_con):
        insert_issues(toy_con, 2, issues, batch_rows=batch_rows)
    before, after = _stored(toy_con, 1), _stored(toy_con, 2)
    pd.testing.assert_frame_equal(after, before)
    # Every label row and the two flagged outliers, in the frame's order; the unknown id's version NA.
    assert after["issue_type"].tolist() == ["label"] * 7 + ["outlier"] * 2
    assert after["example_id"].tolist()[-2:] == ["u0", "gone"] and pd.isna(after["example_version"].iloc[-1])
    assert after["detail"].iloc[0] == '{"given":"a","p":0.1}' and after["detail"].iloc[-1] == "{}"
    # No view is left behind for a later statement to read by mistake.
    with pytest.raises(duckdb.CatalogException):
        toy_con.execute("SELECT * FROM _mined_issues")


def test_an_empty_issues_table_inserts_nothing_and_a_batch_below_one_row_is_refused(
        toy_con: duckdb.DuckDBPyConnection) -> None:
    with transaction(toy_con):
        insert_issues(toy_con, 3, _issues().iloc[:0])
    assert toy_con.execute("SELECT count(*) FROM issues").fetchone()[0] == 0
    with pytest.raises(ValueError, match="batch_rows must be at least 1, got 0"):
        insert_issues(toy_con, 3, _issues(), batch_rows=0)
