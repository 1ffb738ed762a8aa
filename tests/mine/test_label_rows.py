"""The label check's rows and the issues table built with fewer copies hold the same values as before:
cleanlab's split copy dropped inside its call, the details serialised a block at a time, the
example versions looked up by pyarrow."""

from __future__ import annotations

import types

import cleanlab.filter
import numpy as np
import pandas as pd
import pytest

from data_engine.mine.detectors import DetectorResult, LabelDetector
from data_engine.mine.detectors import base as detector_base
from data_engine.mine.detectors.base import issues_frame
from data_engine.mine.runs import issues_table
from data_engine.tasks.classification import Classification
from data_engine.tasks.label_issues import cleanlab_copies_released
from tests.mine.test_detectors import make_data


def _noisy(n=300, k=4, seed=0):
    rng = np.random.default_rng(seed)
    true = rng.integers(0, k, n)
    logits = rng.normal(size=(n, k))
    logits[np.arange(n), true] += 2.5
    probs = np.exp(logits) / np.exp(logits).sum(axis=1, keepdims=True)
    labels = np.where(rng.random(n) < 0.25, rng.integers(0, k, n), true)
    return labels, probs


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_cleanlab_s_split_copy_is_gone_before_its_last_copy_and_the_flags_are_its_own(seed):
    labels, probs = _noisy(seed=seed)
    seen = []
    original = cleanlab.filter._reduce_issues

    def spy(*args, **kwargs):  # what the globals hold when cleanlab makes its last copy
        seen.append((len(cleanlab.filter.pred_probs_by_class), len(cleanlab.filter.prune_count_matrix_cols)))
        return original(*args, **kwargs)

    cleanlab.filter._reduce_issues = spy
    try:
        direct = cleanlab.filter.find_label_issues(labels, probs, filter_by="prune_by_noise_rate", n_jobs=1,
                                                   min_examples_per_class=1)
        assert seen == [(4, 4)]  # cleanlab alone: both copies at once
        seen.clear()
        with cleanlab_copies_released():
            released = cleanlab.filter.find_label_issues(labels, probs, filter_by="prune_by_noise_rate", n_jobs=1,
                                                         min_examples_per_class=1)
        assert seen == [(0, 0)]
        assert cleanlab.filter._reduce_issues is spy  # put back as it was
    finally:
        cleanlab.filter._reduce_issues = original
    np.testing.assert_array_equal(released, direct)
    assert 20 < direct.sum() < 150
    assert cleanlab.filter.pred_probs_by_class == {} and cleanlab.filter.prune_count_matrix_cols == {}


def test_cleanlab_s_name_is_put_back_when_the_call_fails():
    original = cleanlab.filter._reduce_issues
    with pytest.raises(ValueError, match="boom"), cleanlab_copies_released():
        assert cleanlab.filter._reduce_issues is not original
        raise ValueError("boom")
    assert cleanlab.filter._reduce_issues is original


def test_details_built_a_block_at_a_time_are_the_whole_frame_s(monkeypatch):
    monkeypatch.setattr(detector_base, "DETAIL_BLOCK_ROWS", 7)
    n = 30
    detail = pd.DataFrame({"given": [f"c{i % 3}" for i in range(n)], "suggested": [f"c{i % 4}" for i in range(n)],
                           "suggested_score": np.round(np.linspace(0, 1, n), 4)})
    args = (np.array([f"e{i}" for i in range(n)], object), np.arange(n) % 2 == 0, np.linspace(0, 1, n),
            np.array(["r"] * n, object))
    whole = issues_frame(*args, detail)
    blocks = issues_frame(*args, lambda part: detail.iloc[part])
    pd.testing.assert_frame_equal(whole, blocks)
    assert whole["detail"].iloc[29] == '{"given":"c2","suggested":"c1","suggested_score":1.0}'


def _old_label_frame(data):
    # The label detector's rows as built before (a whole frame of details, then issues_frame).
    found = data.task.label_issues(data.labels, data.probs, data.classes, None)
    detail = pd.DataFrame({"given": data.task.decode(data.labels, data.classes), "suggested": found.suggested,
                           "suggested_score": np.round(found.suggested_score, 4)})
    return issues_frame(data.example_ids, found.is_issue, found.scores, np.asarray(found.detail, object), detail)


@pytest.mark.parametrize("seed", [0, 3])
def test_the_label_detector_s_rows_are_those_of_the_whole_frame(monkeypatch, seed):
    monkeypatch.setattr(detector_base, "DETAIL_BLOCK_ROWS", 40)
    labels, probs = _noisy(seed=seed)
    data = make_data(labels, probs, classes=("a", "b", "c", "d"))
    found = LabelDetector().find_issues(data)
    pd.testing.assert_frame_equal(found.issues, _old_label_frame(data))
    assert found.summary["flagged"] == int(found.issues["is_issue"].sum()) > 20
    assert found.issues["detail"].iloc[0].startswith('{"given":"')
    # A row without predictions: the check reads a copy of the others, the same rows.
    more = make_data(np.r_[labels, 0], np.vstack([probs, np.full((1, 4), np.nan)]), classes=("a", "b", "c", "d"))
    pd.testing.assert_frame_equal(LabelDetector().find_issues(more).issues, found.issues)


def test_issues_table_versions_are_those_of_the_map_of_ids():
    train = pd.DataFrame({"example_id": pd.array(["e0", "e1", "e2", "e3"], dtype="str"), "version": [3, 1, 2, 5]})
    unlabeled = pd.DataFrame({"example_id": ["u0", "u1"], "version": [7, 9]})
    state = types.SimpleNamespace(train=train, unlabeled=unlabeled)
    label = issues_frame(np.array(["e0", "e1", "e2", "e3"], object), [True, False, False, True], [0.1, 0.9, 0.8, 0.2],
                         np.array(["x", "y", "y", "x"], object))
    outlier = issues_frame(np.array(["u1", "e2", "gone"], object), [True] * 3, [0.0, 0.1, 0.2],
                           np.array(["far"] * 3, object))
    results = {"label": DetectorResult("label", label), "outlier": DetectorResult("outlier", outlier),
               "uncertain": DetectorResult("uncertain", label.iloc[:0])}
    table = issues_table(results, state)
    # Before: each part with its type, concatenated, the versions mapped from the frames' ids.
    old = pd.concat([label.assign(issue_type="label"), outlier.assign(issue_type="outlier")], ignore_index=True)
    both = pd.concat([train[["example_id", "version"]], unlabeled[["example_id", "version"]]])
    old["example_version"] = old["example_id"].map(both.set_index("example_id")["version"]).astype("Int64")
    pd.testing.assert_frame_equal(table, old)
    assert table["example_version"].tolist() == [3, 1, 2, 5, 9, 2, pd.NA]


def test_example_info_reads_the_predictions_themselves_with_the_same_values():
    from data_engine.mine.runs import example_info

    labels, probs = _noisy(n=40, k=3)
    train = pd.DataFrame({"example_id": pd.array([f"e{i}" for i in range(40)], dtype="str"), "version": 1})
    state = types.SimpleNamespace(task=Classification(), classes=("a", "b", "c"), labels=labels, oof_probs=probs,
                                  train=train, unlabeled=train.iloc[:0], unlabeled_probs=np.empty((0, 3)))
    info = example_info(state)
    assert info["suggested_label"].tolist() == [("a", "b", "c")[i] for i in probs.argmax(axis=1)]
    np.testing.assert_array_equal(info["suggested_score"].to_numpy(), probs.max(axis=1))
    assert info["given_label"].tolist() == [("a", "b", "c")[i] for i in labels]
    # One row without predictions: its suggestion is None, the others' are unchanged.
    gap = probs.copy()
    gap[5] = np.nan
    other = example_info(types.SimpleNamespace(**{**vars(state), "oof_probs": gap}))
    assert pd.isna(other["suggested_label"].iloc[5]) and np.isnan(other["suggested_score"].iloc[5])
    keep = np.arange(40) != 5
    pd.testing.assert_frame_equal(other[keep], info[keep])


def test_example_info_of_some_ids_is_their_rows_of_the_whole_table():
    from data_engine.mine.runs import example_info

    labels, probs = _noisy(n=40, k=3)
    probs[7] = np.nan  # a labeled row without predictions
    train = pd.DataFrame({"example_id": pd.array([f"e{i}" for i in range(40)], dtype="str"), "version": 1})
    unlabeled = pd.DataFrame({"example_id": pd.array(["u0", "u1", "u2"], dtype="str"), "version": [4, 5, 6]})
    state = types.SimpleNamespace(task=Classification(), classes=("a", "b", "c"), labels=labels, oof_probs=probs,
                                  train=train, unlabeled=unlabeled, unlabeled_probs=np.array([[0.1, 0.2, 0.7]] * 3))
    whole = example_info(state)
    some = example_info(state, ["u1", "e7", "e3", "nobody", "e3"])
    # The rows in the table's order (training rows first), each once, with the whole table's values.
    assert some["example_id"].tolist() == ["e3", "e7", "u1"]
    pd.testing.assert_frame_equal(some, whole.iloc[[3, 7, 41]].reset_index(drop=True))
    assert pd.isna(some["given_label"].iloc[2]) and some["suggested_label"].iloc[2] == "c"
    assert pd.isna(some["suggested_label"].iloc[1]) and some["example_version"].tolist() == [1, 1, 5]
    assert example_info(state, []).empty
