"""What :func:`data_engine.tasks.label_issues.release_cleanlab_copies` relies on in the installed
cleanlab, pinned: an upgrade that moves the copy of the predictions cleanlab keeps fails here, naming
the function, rather than leaving the copy held without a word. And a cleanlab without those globals
(or with globals of another kind) is left alone."""

from __future__ import annotations

import cleanlab
import cleanlab.filter
import numpy as np
import pytest

from data_engine.tasks.classification_issues import FILTER_BY, MIN_EXAMPLES_PER_CLASS
from data_engine.tasks.label_issues import CLEANLAB_COPY_GLOBALS, release_cleanlab_copies

WHO = f"release_cleanlab_copies relies on cleanlab.filter's globals {CLEANLAB_COPY_GLOBALS} (cleanlab {cleanlab.__version__})"


def _flags(labels: np.ndarray, probs: np.ndarray) -> np.ndarray:
    """cleanlab's call as the classification task makes it (one process)."""
    return cleanlab.filter.find_label_issues(labels, probs, filter_by=FILTER_BY, n_jobs=1,
                                             min_examples_per_class=MIN_EXAMPLES_PER_CLASS)


def test_release_cleanlab_copies_finds_the_copy_where_the_installed_cleanlab_keeps_it() -> None:
    rng = np.random.default_rng(0)
    labels = rng.integers(0, 3, 60)
    probs = rng.dirichlet(np.ones(3), 60)
    declared = getattr(cleanlab.filter, "__annotations__", {})
    assert set(CLEANLAB_COPY_GLOBALS) <= set(declared), f"{WHO}: no longer declared ({sorted(declared)})"
    first = _flags(labels, probs)
    held = {name: getattr(cleanlab.filter, name, None) for name in CLEANLAB_COPY_GLOBALS}
    assert all(isinstance(v, dict) for v in held.values()), f"{WHO}: not dicts after a call: {held}"
    by_class = held["pred_probs_by_class"]
    assert sorted(by_class) == [0, 1, 2] and sorted(held["prune_count_matrix_cols"]) == [0, 1, 2], WHO
    for k in range(3):  # the copy: every row of the predictions, split by given label
        np.testing.assert_array_equal(by_class[k], probs[labels == k], err_msg=WHO)
    release_cleanlab_copies()
    assert all(getattr(cleanlab.filter, name) == {} for name in CLEANLAB_COPY_GLOBALS)
    # Emptied between calls, the next call is unchanged: it sets them afresh before reading them.
    np.testing.assert_array_equal(_flags(labels, probs), first)
    assert first.sum() > 0


def test_release_cleanlab_copies_leaves_globals_it_does_not_know_alone(monkeypatch: pytest.MonkeyPatch) -> None:
    """Another cleanlab: one global gone, or the two holding something else, is not emptied (emptying
    what another version means by them could break its next call)."""
    kept = {0: np.ones((2, 3))}
    monkeypatch.delattr(cleanlab.filter, "pred_probs_by_class", raising=False)
    monkeypatch.setattr(cleanlab.filter, "prune_count_matrix_cols", kept, raising=False)
    release_cleanlab_copies()
    assert cleanlab.filter.prune_count_matrix_cols is kept and list(kept) == [0]
    assert not hasattr(cleanlab.filter, "pred_probs_by_class")
    shared = [np.ones((2, 3))]
    monkeypatch.setattr(cleanlab.filter, "pred_probs_by_class", shared, raising=False)
    release_cleanlab_copies()
    assert cleanlab.filter.pred_probs_by_class is shared and cleanlab.filter.prune_count_matrix_cols is kept


class _Watch:
    """Stands in for cleanlab.filter's own ``_reduce_issues``: when cleanlab calls it, records
    whether the name cleanlab called was the engine's wrapper and the split copies already emptied."""

    def __init__(self, monkeypatch: pytest.MonkeyPatch) -> None:
        self.calls: list[tuple[bool, bool]] = []
        self.original = cleanlab.filter._reduce_issues
        monkeypatch.setattr(cleanlab.filter, "_reduce_issues", self)

    def __call__(self, *args, **kwargs):
        wrapped = cleanlab.filter._reduce_issues is not self
        emptied = all(getattr(cleanlab.filter, name, None) == {} for name in CLEANLAB_COPY_GLOBALS)
        self.calls.append((wrapped, emptied))
        return self.original(*args, **kwargs)


def _noisy(n: int, k: int, seed: int) -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(seed)
    labels = rng.integers(0, k, n)
    probs = np.full((n, k), 0.1 / (k - 1))
    probs[np.arange(n), labels] = 0.9
    flip = rng.choice(n, n // 10, replace=False)
    labels[flip] = (labels[flip] + 1) % k
    return labels, probs


def test_classification_s_cleanlab_call_runs_with_its_copies_released(monkeypatch: pytest.MonkeyPatch) -> None:
    from data_engine.tasks.classification import Classification

    watch = _Watch(monkeypatch)
    labels, probs = _noisy(60, 3, 0)
    Classification().label_issues(labels, probs, ("a", "b", "c"))
    assert watch.calls and all(w and e for w, e in watch.calls), watch.calls
    assert cleanlab.filter._reduce_issues is watch  # put back after the call


def test_multilabel_s_cleanlab_calls_run_with_their_copies_released(monkeypatch: pytest.MonkeyPatch) -> None:
    from data_engine.tasks.multilabel_issues import find_tag_issues

    watch = _Watch(monkeypatch)
    rng = np.random.default_rng(1)
    Y = (rng.random((60, 3)) < 0.4).astype(int)
    probs = np.where(Y == 1, 0.9, 0.1)
    Y[:6, 0] = 1 - Y[:6, 0]
    find_tag_issues(Y, probs, ["x", "y", "z"])
    # one-vs-rest: cleanlab.filter's check once per tag, each inside the wrapper
    assert len(watch.calls) == 3 and all(w and e for w, e in watch.calls), watch.calls
    assert cleanlab.filter._reduce_issues is watch


def test_token_cleanlab_call_runs_with_its_copies_released(monkeypatch: pytest.MonkeyPatch) -> None:
    from data_engine.tasks.ner_issues import find_span_issues
    from data_engine.tasks.spans import Span, canonical
    from tests.tasks.test_ner_boundaries import TEXT, TYPES3, _sure_predictions

    watch = _Watch(monkeypatch)
    truth = [canonical([Span(7, 16, "PER"), Span(20, 25, "LOC")])] * 6
    given = list(truth)
    given[0] = canonical([Span(7, 16, "LOC"), Span(20, 25, "LOC")])
    find_span_issues(given, _sure_predictions([TEXT] * 6, truth, TYPES3), TYPES3)
    assert watch.calls and all(w and e for w, e in watch.calls), watch.calls
    assert cleanlab.filter._reduce_issues is watch


def test_regression_and_boxes_do_not_go_through_cleanlab_filter(monkeypatch: pytest.MonkeyPatch) -> None:
    """Their cleanlab calls have no _reduce_issues to wrap (the comments at the calls say so)."""
    from data_engine.tasks.box_issues import ScoredBox, box_issues
    from data_engine.tasks.boxes import Box
    from data_engine.tasks.regression_issues import label_quality_scores

    watch = _Watch(monkeypatch)
    rng = np.random.default_rng(2)
    y = rng.normal(0, 1, 50)
    label_quality_scores(y + np.r_[3.0, np.zeros(49)], y)
    given = [[Box("cat", 10 * i, 10, 20, 20)] for i in range(6)]
    box_issues(given, [[ScoredBox(b, 0.99) for b in g] for g in given], ["cat", "dog"])
    assert watch.calls == []
