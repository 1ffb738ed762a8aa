"""What a mining run keeps past its detectors: the training frame's columns the later stages read,
the detectors' flagged rows of types other than ``label``; the detectors still get every input column."""

from __future__ import annotations

import numpy as np
import pandas as pd

import data_engine.mine.run as run_module
from data_engine.mine.detectors.base import DetectorResult, issues_frame
from data_engine.store.warehouse import open_warehouse
from tests.mine.test_mining import blobs, home, ingest, mine  # noqa: F401 (fixtures)


def test_flagged_only_keeps_the_flagged_rows_their_count_and_summary():
    rows = issues_frame(np.array(["a", "b", "c", "d"], dtype=object), np.array([False, True, False, True]),
                        np.array([0.9, 0.1, 0.8, 0.3]), np.array(["", "x", "", "y"], dtype=object))
    lean = DetectorResult("outlier", rows, {"threshold": 0.5}).flagged_only()
    assert lean.issues["example_id"].tolist() == ["b", "d"]
    assert lean.issues["score"].tolist() == [0.1, 0.3]
    assert lean.issues["reason"].tolist() == ["x", "y"]
    assert lean.n_issues == 2 and lean.summary == {"threshold": 0.5} and lean.issue_name == "outlier"
    # a dataset-level result (no rows) keeps the count its summary gives
    assert DetectorResult("class_imbalance", rows.iloc[:0], {"is_issue": True}).flagged_only().n_issues == 1


def _spy(monkeypatch) -> dict[str, list]:
    """Record what the run hands to each detector and to the queue."""
    seen: dict[str, list] = {"inputs": [], "train": [], "issues": [], "ran": [], "neighbours": [], "flagged_only": []}
    real_detectors, real_queue = run_module.run_detectors, run_module.plan_queue

    def detectors(data, names, options=None, **kwargs):
        seen["inputs"].append(data.inputs.copy())
        seen["ran"].extend(names)
        seen["neighbours"].append(data.neighbours is not None)
        seen["flagged_only"].append(kwargs.get("flagged_only", False))
        return real_detectors(data, names, options, **kwargs)

    def queue(con, cfg, state, issues, **kwargs):
        seen["train"].append(state.train.copy())
        seen["issues"].append(issues.copy())
        return real_queue(con, cfg, state, issues, **kwargs)

    monkeypatch.setattr(run_module, "run_detectors", detectors)
    monkeypatch.setattr(run_module, "plan_queue", queue)
    return seen


def test_past_the_detectors_the_run_keeps_ids_versions_and_flagged_rows(home, ingest, monkeypatch):
    table = blobs(60, flip=(7,))
    table.loc[5, "x"] = 60.0  # far from both blobs: an outlier
    ingest("b1.csv", table)
    seen = _spy(monkeypatch)
    summary = mine(home)
    # Every detector got every input column of every row, with the ingested values.
    assert len(seen["inputs"]) == len(summary.detector_summaries)
    for inputs in seen["inputs"]:
        assert list(inputs.columns) == ["x", "y", "color"]
        assert inputs["x"].tolist() == table["x"].tolist()
        assert inputs["color"].tolist() == table["color"].tolist()
    # `label` (all of whose rows stay) runs last; the results keep the configured order.
    order = ["label", "outlier", "near_duplicate", "uncertain", "lookalike", "class_imbalance", "drift"]
    assert list(summary.counts) == order
    assert seen["ran"] == order[1:] + ["label"]
    # The neighbours go once the checks that read them (outlier, near_duplicate) are done; every type but
    # `label` and `lookalike` builds its flagged rows alone.
    assert seen["neighbours"] == [True, True, False, False, False, False, False]
    assert seen["flagged_only"] == [True, True, True, False, True, True, False]
    # The queue reads the ids and versions of the training rows, nothing else of the table.
    train = seen["train"][0]
    assert list(train.columns) == ["example_id", "version"]
    assert train["example_id"].tolist() == table["id"].tolist()
    assert set(train["version"]) == {1}
    # Every label row; of the other types the flagged rows only, and as many as the run counts.
    issues = seen["issues"][0]
    assert (issues["issue_type"] == "label").sum() == 60
    others = issues[issues["issue_type"] != "label"]
    assert others["is_issue"].astype(bool).all()
    assert others.loc[others["issue_type"] == "outlier", "example_id"].tolist() == \
        ["r0005", "r0018", "r0043", "r0048", "r0056"]
    assert summary.counts["outlier"] == 5
    assert {t: int((others["issue_type"] == t).sum()) for t in summary.counts if t != "label"} == \
        {t: n for t, n in summary.counts.items() if t != "label"}
    with open_warehouse(home) as con:
        stored = con.execute("SELECT issue_type, count(*) FROM issues WHERE run_id = ? GROUP BY ALL ORDER BY 1",
                             [summary.run_id]).fetchall()
    assert dict(stored) == {"label": 60, "outlier": 5}


def test_with_unlabeled_rows_the_queue_still_reads_the_labeled_inputs(home, ingest, monkeypatch):
    table = blobs(60)
    ingest("b1.csv", table)
    ingest("u1.csv", blobs(10, seed=5, start=100, labeled=False))
    seen = _spy(monkeypatch)
    mine(home)
    train = seen["train"][0]
    # The selection of new examples reads a sample of labeled rows beside the candidates (mine.plan).
    assert list(train.columns) == ["example_id", "version", "x", "y", "color"]
    pd.testing.assert_series_equal(train["x"], table["x"], check_names=False)
    assert train["color"].tolist() == table["color"].tolist()
