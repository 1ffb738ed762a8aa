"""Merging detector findings into one ranked queue within a budget."""

from __future__ import annotations

import json
import math

import pandas as pd
import pytest

from data_engine.errors import EngineError
from data_engine.mine.queue import QUEUE_COLUMNS, build_queue, queue_precision_at_k

WEIGHTS = {"label": 1.0, "near_duplicate": 0.6, "uncertain": 0.5, "outlier": 0.3}


def issues(*rows):
    return pd.DataFrame(rows, columns=["example_id", "issue_type", "score", "is_issue"])


def _scaled(evidence: float) -> float:
    return 1.0 - math.exp(-evidence)


def test_each_example_once_with_all_its_issue_types_and_summed_priority():
    found = issues(
        ("a", "label", 0.1, True), ("a", "outlier", 0.0, True),
        ("b", "label", 0.05, True),
        ("c", "outlier", 0.2, True),
        ("d", "label", 0.9, False),  # not flagged: never queued
    )
    q = build_queue(found, weights=WEIGHTS, budget=10)
    assert list(q.columns) == list(QUEUE_COLUMNS)
    assert q["example_id"].tolist() == ["a", "b", "c"]
    assert q["rank"].tolist() == [1, 2, 3]
    assert q.loc[0, "issue_types"] == ["label", "outlier"]  # largest contribution first
    assert q.loc[0, "priority"] == pytest.approx(_scaled(1.0 * 0.9 + 0.3 * 1.0))
    assert q.loc[1, "priority"] == pytest.approx(_scaled(0.95))
    assert q.loc[2, "priority"] == pytest.approx(_scaled(0.3 * 0.8))
    assert json.loads(q.loc[0, "scores"]) == {"label": 0.1, "outlier": 0.0}
    assert json.loads(q.loc[1, "scores"]) == {"label": 0.05}


def test_priority_is_on_a_fixed_zero_one_scale_whatever_the_run():
    """The same findings give the same priority in a run of 3 and a run of 300 examples, and even
    the strongest evidence (every detector certain, weights at twice their base) stays below 1."""
    small = build_queue(issues(("a", "label", 0.2, True), ("b", "label", 0.6, True),
                               ("c", "outlier", 0.5, True)), weights=WEIGHTS, budget=10)
    many = [("a", "label", 0.2, True)] + [(f"x{i}", "label", i / 300, True) for i in range(300)]
    large = build_queue(issues(*many), weights=WEIGHTS, budget=400)
    assert small.set_index("example_id").loc["a", "priority"] == large.set_index("example_id").loc["a", "priority"]
    strongest = build_queue(issues(*[("z", t, 0.0, True) for t in WEIGHTS]),
                            weights={t: 2 * w for t, w in WEIGHTS.items()}, budget=1)
    assert 0.99 < strongest.loc[0, "priority"] < 1.0
    assert ((large["priority"] >= 0) & (large["priority"] <= 1)).all()


def test_weights_change_the_order():
    found = issues(("a", "label", 0.5, True), ("b", "outlier", 0.0, True))
    assert build_queue(found, weights=WEIGHTS, budget=5)["example_id"].tolist() == ["a", "b"]
    flipped = build_queue(found, weights={"label": 0.1, "outlier": 1.0}, budget=5)
    assert flipped["example_id"].tolist() == ["b", "a"]


def test_zero_weight_and_unknown_types_are_not_queued():
    found = issues(("a", "label", 0.1, True), ("b", "class_imbalance", 0.0, True), ("c", "outlier", 0.0, True))
    q = build_queue(found, weights={"label": 1.0, "outlier": 0.0}, budget=5)
    assert q["example_id"].tolist() == ["a"]


def test_budget_keeps_the_highest_priorities_and_ties_break_by_id():
    found = issues(*[(f"e{i}", "label", 0.5, True) for i in (3, 1, 2)], ("e0", "label", 0.0, True))
    q = build_queue(found, weights=WEIGHTS, budget=3)
    assert q["example_id"].tolist() == ["e0", "e1", "e2"]


def test_excluded_examples_are_left_out():
    found = issues(("a", "label", 0.1, True), ("b", "label", 0.2, True))
    assert build_queue(found, weights=WEIGHTS, budget=5, exclude=["a"])["example_id"].tolist() == ["b"]


def test_example_info_is_carried_over():
    found = issues(("a", "label", 0.1, True))
    info = pd.DataFrame({"example_id": ["a"], "example_version": [3], "given_label": ["x"],
                         "suggested_label": ["y"], "suggested_score": [0.8]})
    row = build_queue(found, weights=WEIGHTS, budget=5, examples=info).iloc[0]
    assert (row["example_version"], row["given_label"], row["suggested_label"]) == (3, "x", "y")
    assert row["suggested_score"] == pytest.approx(0.8)


def test_empty_queue_has_the_columns():
    q = build_queue(issues(("a", "label", 0.9, False)), weights=WEIGHTS, budget=5)
    assert q.empty and list(q.columns) == list(QUEUE_COLUMNS)


@pytest.mark.parametrize("budget, weights, message", [
    (0, WEIGHTS, "budget"),
    (5, {"label": -1.0}, "review.weights.label"),
])
def test_bad_settings_raise_engine_errors(budget, weights, message):
    with pytest.raises(EngineError, match=message):
        build_queue(issues(("a", "label", 0.1, True)), weights=weights, budget=budget)


def test_precision_at_k():
    q = pd.DataFrame({"rank": [1, 2, 3], "example_id": ["a", "b", "c"]})
    assert queue_precision_at_k(q, {"a", "c"}, 2) == 0.5
    assert queue_precision_at_k(q, {"a", "c"}, 0) == 0.0
