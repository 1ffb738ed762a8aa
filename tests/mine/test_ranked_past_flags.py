"""Spare reviews go down the label quality ranking past the flags, for a task whose flag rule is a
fixed cut-off (regression) and not where cleanlab estimates the number of errors (classes)."""

from __future__ import annotations

from pathlib import Path

import pandas as pd

from data_engine.mine.plan import _ranked_past_flags
from tests.homes import make_home

ISSUES = pd.DataFrame({
    "example_id": ["a", "b", "c", "d", "e", "e"],
    "issue_type": ["label", "label", "label", "label", "label", "outlier"],
    "score": [0.01, 0.40, 0.20, 1.0, 0.30, 0.0],
    "is_issue": [True, False, False, False, False, True],
})


def _cfg(tmp_path: Path, task: str):
    return make_home(tmp_path, f"""[dataset]
name = "t"
modality = "tabular"
id_column = "id"
label_column = "y"
feature_columns = ["x"]
task = "{task}"
""").config


def test_regression_ranks_unflagged_labels_by_score(tmp_path: Path) -> None:
    cfg = _cfg(tmp_path, "regression")
    # 'a' is flagged (queued as a fix), 'e' already taken, 'd' scores 1 (no evidence): c, then b.
    assert _ranked_past_flags(cfg, ISSUES, {"a", "e"}, 5) == ["c", "b"]
    assert _ranked_past_flags(cfg, ISSUES, {"a", "e"}, 1) == ["c"]
    assert _ranked_past_flags(cfg, ISSUES, {"a"}, 0) == []


def test_classes_keep_to_the_flags(tmp_path: Path) -> None:
    assert _ranked_past_flags(_cfg(tmp_path, "classification"), ISSUES, {"a"}, 5) == []
