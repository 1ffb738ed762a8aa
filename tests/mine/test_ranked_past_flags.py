"""Spare reviews go down the label quality ranking past the flags, for a task whose flag rule is a
fixed cut-off (regression) or stops early (boxes, spans: trial 22), and not where cleanlab
estimates the number of errors (classes)."""

from __future__ import annotations

from pathlib import Path

import pandas as pd
import pytest

from data_engine.mine.plan import _ranked_past_flags
from tests.homes import make_home

ISSUES = pd.DataFrame({
    "example_id": ["a", "b", "c", "d", "e", "e"],
    "issue_type": ["label", "label", "label", "label", "label", "outlier"],
    "score": [0.01, 0.40, 0.20, 1.0, 0.30, 0.0],
    "is_issue": [True, False, False, False, False, True],
})


def _cfg(tmp_path: Path, task: str):
    inputs = {"detection": 'modality = "image"\nimage_column = "image"',
              "ner": 'modality = "text"\ntext_column = "text"'}.get(task, 'modality = "tabular"\nfeature_columns = ["x"]')
    return make_home(tmp_path, f"""[dataset]
name = "t"
{inputs}
id_column = "id"
label_column = "y"
task = "{task}"
""").config


@pytest.mark.parametrize("task", ["regression", "detection", "ner"])
def test_numbers_boxes_and_spans_rank_unflagged_labels_by_score(tmp_path: Path, task: str) -> None:
    cfg = _cfg(tmp_path, task)
    # 'a' is flagged (queued as a fix), 'e' already taken, 'd' scores 1 (no evidence): c, then b.
    assert _ranked_past_flags(cfg, ISSUES, {"a", "e"}, 5) == ["c", "b"]
    assert _ranked_past_flags(cfg, ISSUES, {"a", "e"}, 1) == ["c"]
    assert _ranked_past_flags(cfg, ISSUES, {"a"}, 0) == []


def test_classes_keep_to_the_flags(tmp_path: Path) -> None:
    assert _ranked_past_flags(_cfg(tmp_path, "classification"), ISSUES, {"a"}, 5) == []


TIES = pd.DataFrame({
    "example_id": ["m", "k", "z", "j", "x", "x", "q", "n"],
    "issue_type": ["label"] * 8,
    "score": [0.2, 0.2, 0.1, 0.2, 0.15, 0.05, 0.9, 0.2],
    "is_issue": [False] * 8,
}).astype({"example_id": "string", "issue_type": "string"})


@pytest.mark.parametrize(("room", "taken", "expected"), [
    # x's lowest row first, then z; at the tie of 0.2 ids decide, whichever rows the cut leaves in.
    (1, set(), ["x"]),
    (2, set(), ["x", "z"]),  # the two lowest rows are both x's: every row is ranked, as before
    (3, set(), ["x", "z", "j"]),
    (4, set(), ["x", "z", "j", "k"]),
    (5, {"x"}, ["z", "j", "k", "m", "n"]),
    (9, set(), ["x", "z", "j", "k", "m", "n", "q"]),
])
def test_ranking_past_the_flags_takes_the_lowest_scores_in_order_with_ties_by_id(
        tmp_path: Path, room: int, taken: set[str], expected: list[str]) -> None:
    assert _ranked_past_flags(_cfg(tmp_path, "regression"), TIES, taken, room) == expected
