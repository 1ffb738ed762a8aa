"""The detectors' memory savings change no value: the label check on the arrays themselves, cleanlab's
kept copy dropped, the copy check's flagged rows built alone, a fresh index's neighbours not copied."""

from __future__ import annotations

import dataclasses

import cleanlab.filter
import numpy as np
import pandas as pd

from data_engine.mine.detectors import LabelDetector, NearDuplicateDetector, Neighbours, run_detectors
from data_engine.mine.detectors import neighbours as nb
from data_engine.tasks.classification import Classification
from tests.mine.test_detectors import confident, frame_of, make_data


def _noisy(n=60, k=3, seed=0):
    rng = np.random.default_rng(seed)
    labels = rng.integers(0, k, n)
    probs = rng.dirichlet(np.ones(k), n)
    return labels, probs


def test_the_label_check_reads_the_arrays_themselves_and_leaves_them_unchanged():
    labels, probs = _noisy()
    data = make_data(labels, probs, classes=("a", "b", "c"))
    before = data.probs.copy()
    whole = LabelDetector().find_issues(data).issues
    np.testing.assert_array_equal(data.probs, before)
    assert data.probs.flags.writeable and data.labels.flags.writeable
    # One more row without predictions: the check reads copies of the 60 rows, as before.
    more = make_data(np.r_[labels, 0], np.vstack([probs, np.full((1, 3), np.nan)]), classes=("a", "b", "c"))
    part = LabelDetector().find_issues(more).issues
    pd.testing.assert_frame_equal(whole, part)
    assert whole["is_issue"].sum() == 37


def test_cleanlab_keeps_no_copy_of_the_predictions_after_the_label_check():
    labels, probs = _noisy()
    found = Classification().label_issues(labels, probs, ("a", "b", "c"))
    assert cleanlab.filter.pred_probs_by_class == {} and cleanlab.filter.prune_count_matrix_cols == {}
    # The same flags as cleanlab's own call (prune_by_noise_rate; no label here is contradicted only).
    direct = cleanlab.filter.find_label_issues(labels, probs, filter_by="prune_by_noise_rate", n_jobs=1,
                                               min_examples_per_class=1)
    np.testing.assert_array_equal(found.is_issue, direct)
    assert found.is_issue.sum() == 37 and found.summary["flagged_as_contradicted_only"] == 0


def _copies(copies_pay=False, low_dimensional=False):
    # e0-e2 identical (two 'a', one 'b'); e3/e4 identical and agreeing; e5 a near copy of e6 with another
    # label; e7-e11 alone.
    labels = np.array([0, 0, 1, 1, 1, 0, 1, 0, 1, 0, 1, 0])
    probs = confident(labels, p=0.6)
    probs[5] = [0.3, 0.7]
    hashes = ["h0", "h0", "h0", "h3", "h3"] + [f"h{i}" for i in range(5, 12)]
    dist = np.array([[0.0, 1.0]] * 5 + [[0.001, 1.0]] * 2 + [[1.0, 2.0]] * 5)
    idx = np.array([[1, 2], [0, 2], [0, 1], [4, 0], [3, 0], [6, 0], [5, 0]] + [[0, 1]] * 5)
    data = make_data(labels, probs, hashes=hashes, neighbours=Neighbours(dist, idx))
    if low_dimensional:  # agreeing copies are a fact there, queued only when they pay
        data = dataclasses.replace(data, schema={"pclass": "categorical"}, modality="tabular")
    return data, NearDuplicateDetector(copies_pay=copies_pay)


def test_the_copy_check_builds_its_flagged_rows_alone_with_the_same_values():
    for pay, low in ((False, False), (False, True), (True, True)):
        data, detector = _copies(pay, low)
        full = detector.find_issues(data)
        flagged = detector.find_flagged(data)
        expected = full.flagged_only()
        pd.testing.assert_frame_equal(flagged.issues, expected.issues.reset_index(drop=True))
        assert flagged.summary == full.summary and flagged.n_issues == expected.n_issues
        assert flagged.issues["example_id"].tolist() == (["e2", "e5"] if low and not pay else ["e2", "e3", "e4", "e5"])
    # Exact values: e2 is one of three copies and the model gives its label 0.6: (0.6 + 1/3) / 2, below
    # one half; e5 and e6 disagree as a near pair (share 0.5; the model gives their labels 0.3 and 0.6).
    issues = full.issues.set_index("example_id")
    assert issues.loc["e2", "score"] == (0.6 + 1 / 3) / 2 and issues.loc["e0", "score"] == (0.6 + 2 / 3) / 2
    assert issues.loc["e5", "score"] == (0.3 + 0.5) / 2 and issues.loc["e6", "score"] == (0.6 + 0.5) / 2
    assert issues.loc["e5", "reason"] == "near duplicate of e6 with a different label ('a' vs 'b')"
    assert full.summary["exact"] == 5 and full.summary["near"] == 2 and full.summary["labels_disagree"] == 5


def test_run_detectors_with_flagged_only_keeps_every_type_s_flagged_rows():
    data, _ = _copies()
    names = ["near_duplicate", "outlier", "uncertain"]
    full = run_detectors(data, names)
    flagged = run_detectors(data, names, flagged_only=True)
    for name in names:
        pd.testing.assert_frame_equal(flagged[name].issues.reset_index(drop=True),
                                      full[name].flagged_only().issues.reset_index(drop=True))
        assert flagged[name].n_issues == full[name].n_issues


def test_a_fresh_index_s_neighbours_are_its_own_arrays_not_copies():
    rng = np.random.default_rng(3)
    X = rng.normal(0, 1, (200, 2))
    keys = np.array([f"k{i}" for i in range(200)], dtype=object)
    index = nb.build_index(keys, frame_of(X), {"u": "numeric", "v": "numeric"}, "image", k=4)
    same = nb.align_index(index, keys)
    assert same.indices is index.neighbours.indices and same.distances is index.neighbours.distances
    # The lookup the copy skips gives the same values: the index's rows in another order and back.
    order = rng.permutation(200)
    moved = dataclasses.replace(index, keys=keys[order], embedding=index.embedding[order],
                                neighbours=nb.align_index(index, keys[order]))
    back = nb.align_index(moved, keys)
    np.testing.assert_array_equal(back.indices, same.indices)
    np.testing.assert_array_equal(back.distances, same.distances)
    assert back.indices is not moved.neighbours.indices


def test_the_outlier_check_builds_its_flagged_rows_alone_with_the_same_values():
    from data_engine.mine.detectors import OutlierDetector
    from tests.mine.test_detectors import points_with_neighbours

    rng = np.random.default_rng(3)
    # Three far points among 60 on a jittered grid; then an even grid that flags none; then no neighbours (skipped).
    grid60 = np.array([[i, j] for i in range(10) for j in range(6)], dtype=float) + rng.normal(0, 0.05, (60, 2))
    points = np.vstack([grid60, [[40.0, 0.0], [0.0, -35.0], [30.0, 30.0]]])
    labels = np.zeros(len(points), int)
    grid = np.c_[np.arange(20, dtype=float) * 0.1, np.zeros(20)]
    cases = [make_data(labels, confident(labels), neighbours=points_with_neighbours(points)),
             make_data(labels[:20], confident(labels[:20]), neighbours=points_with_neighbours(grid)),
             make_data(labels[:5], confident(labels[:5]))]
    for data, far in zip(cases, (["e60", "e61", "e62"], [], [])):
        full = OutlierDetector().find_issues(data)
        flagged = OutlierDetector().find_flagged(data)
        expected = full.flagged_only()
        pd.testing.assert_frame_equal(flagged.issues, expected.issues.reset_index(drop=True))
        assert flagged.summary == full.summary and flagged.n_issues == expected.n_issues == len(far)
        assert flagged.issues["example_id"].tolist() == far
    reason = OutlierDetector().find_flagged(cases[0]).issues["reason"].iloc[0]
    assert reason.startswith("far from other examples: mean neighbour distance ") and reason.endswith("x the typical")


def test_the_lookalike_check_without_verdicts_or_unreviewed_rows_waits_as_before():
    from data_engine.mine.detectors import LookalikeDetector

    labels = np.zeros(4, int)
    inputs = pd.DataFrame({"x": [0.0, 1.0, 2.0, 3.0]})
    base = dataclasses.replace(make_data(labels, confident(labels)), inputs=inputs, schema={"x": "numeric"})
    verdicts = pd.DataFrame({"example_id": [f"e{i}" for i in range(4)], "feature_hash": ["h"] * 4,
                             "is_discarded": [True, False, False, True], "label": [None, "a", "a", None],
                             "given_label": ["a"] * 4, "x": inputs["x"]})
    # No verdicts (none given, or an empty frame); verdicts on every row: nothing left to judge.
    for given, kept, discarded in ((None, 0, 0), (verdicts.iloc[:0], 0, 0), (verdicts, 2, 2)):
        found = LookalikeDetector().find_issues(dataclasses.replace(base, verdicts=given))
        assert found.issues.empty and list(found.issues.columns) == ["example_id", "is_issue", "score", "reason", "detail"]
        assert found.summary["status"] == "waiting for verdicts" and found.n_issues == 0
        assert (found.summary["verdicts"], found.summary["kept"], found.summary["discarded"]) == (kept + discarded, kept,
                                                                                                   discarded)


def test_the_lookalike_check_without_verdicts_matches_no_id(monkeypatch):
    """The early return's saving itself: no verdicts, no matching of every id (``Series.isin``)."""
    from data_engine.mine.detectors import LookalikeDetector

    labels = np.zeros(4, int)
    inputs = pd.DataFrame({"x": [0.0, 1.0, 2.0, 3.0]})
    base = dataclasses.replace(make_data(labels, confident(labels)), inputs=inputs, schema={"x": "numeric"})
    matched = []
    isin = pd.Series.isin

    def counted(self, values):
        matched.append(len(self))
        return isin(self, values)
    monkeypatch.setattr(pd.Series, "isin", counted)
    for given in (None, pd.DataFrame({"example_id": [], "is_discarded": []})):
        found = LookalikeDetector().find_issues(dataclasses.replace(base, verdicts=given))
        assert found.summary["status"] == "waiting for verdicts"
    assert matched == []
    # With verdicts (here on every row) the ids are matched: the count above can see a match.
    verdicts = pd.DataFrame({"example_id": [f"e{i}" for i in range(4)], "feature_hash": ["h"] * 4,
                             "is_discarded": [True, False, False, True], "label": [None, "a", "a", None],
                             "given_label": ["a"] * 4, "x": inputs["x"]})
    LookalikeDetector().find_issues(dataclasses.replace(base, verdicts=verdicts))
    assert matched == [4]
