"""The queue's reads of the issues table: the open flags with evidence (their four ranked columns, in
the table's order), why a queue is short (counts over masks), and the out-of-fold accuracy without a
copy of the probabilities: the same rows, order and values as the copies of every flagged row they
replace (docs/mining.md, the queue stage at a million rows)."""

from __future__ import annotations

import numpy as np
import pandas as pd

from data_engine.mine.plan import FLAG_COLUMNS, _evidence, _fixable_flags, _oof_accuracy, _short_reason
from data_engine.tasks import Classification

ISSUES = pd.DataFrame({
    "example_id": ["d", "a", "c", "b", "e", "a", "f", "g", "h", "c"],
    "issue_type": ["label", "label", "label", "label", "label", "outlier", "uncertain", "outlier", "label", "drift"],
    "score": [0.3, 0.3, 0.1, 0.3, 1.0, 0.5, 0.2, 0.4, 0.6, 0.2],
    "is_issue": [True, True, True, True, True, True, True, True, False, True],
    "reason": ["r"] * 10,
    "detail": ["{}"] * 10,
}).astype({"example_id": "string", "issue_type": "string", "reason": "string", "detail": "string"})
WEIGHTS = {"label": 1.0, "outlier": 0.5, "uncertain": 1.0, "drift": 0.0}


def test_evidence_is_weight_times_one_minus_score_and_zero_without_a_weight() -> None:
    np.testing.assert_allclose(_evidence(ISSUES, {"label": 1.0, "outlier": 0.5}),
                               [0.7, 0.7, 0.9, 0.7, 0.0, 0.25, 0.0, 0.3, 0.4, 0.0])


def test_fixable_flags_are_the_open_flags_with_evidence_in_the_tables_order() -> None:
    got = _fixable_flags(ISSUES, {"b"}, WEIGHTS)
    # Not: b (excluded), e (score 1), f (a new example to label), h (not flagged), c's drift (weight 0).
    # Ties of score (d, a) keep the table's order; the ranking sorts them later.
    assert list(got.columns) == list(FLAG_COLUMNS)
    assert got["example_id"].tolist() == ["d", "a", "c", "a", "g"]
    assert got["issue_type"].tolist() == ["label", "label", "label", "outlier", "outlier"]
    assert got["score"].tolist() == [0.3, 0.3, 0.1, 0.5, 0.4]
    assert got.index.tolist() == [0, 1, 2, 5, 7]


def test_fixable_flags_without_weights_are_none() -> None:
    assert _fixable_flags(ISSUES, set(), {}).empty


def test_a_short_queue_says_how_many_flags_wait_and_how_many_carry_no_evidence() -> None:
    # Waiting: b, c (flagged, excluded). Without evidence among the open ones: e (score 1); not a
    # (it has evidence from its label row), not f (a new example, not a flag).
    reason = _short_reason(10, 4, ISSUES, {"b", "c"}, WEIGHTS, growing=True, n_candidates=3)
    assert reason == ("4 of 10 reviews queued: every open flag with evidence is queued (2 more flagged examples wait "
                      "for review or were reviewed; 1 without evidence: weight 0 or score 1); "
                      "3 unlabeled examples are left to label")
    # Outliers weighted 0 too: g (an outlier only) has none either; c keeps its label row's evidence.
    assert "(0 more flagged examples wait for review or were reviewed; 2 without evidence" in \
        _short_reason(10, 4, ISSUES, set(), {**WEIGHTS, "outlier": 0.0}, growing=False, n_candidates=0)
    full = {"label": 1.0, "outlier": 1.0, "drift": 1.0}
    assert "without evidence" not in _short_reason(10, 4, ISSUES[ISSUES["score"] < 1], set(), full, growing=False,
                                                   n_candidates=0)
    assert _short_reason(4, 4, ISSUES, set(), WEIGHTS, growing=False, n_candidates=0) == ""


class _State:
    def __init__(self, probs: np.ndarray, labels: np.ndarray) -> None:
        self.oof_probs, self.labels = probs, labels
        # What a PredictionState holds by default: the classes task (its figure is accuracy).
        self.task, self.classes = Classification(), ["a", "b"]


def test_oof_accuracy_counts_the_rows_with_predictions() -> None:
    probs = np.array([[0.9, 0.1], [0.2, 0.8], [0.6, 0.4], [0.3, 0.7]])
    labels = np.array([0, 1, 1, 0])
    assert _oof_accuracy(_State(probs, labels)) == 0.5
    probs[2] = np.nan  # a row without predictions does not count
    assert _oof_accuracy(_State(probs, labels)) == 2 / 3
    assert _oof_accuracy(_State(np.full((2, 2), np.nan), labels[:2])) == 0.5
