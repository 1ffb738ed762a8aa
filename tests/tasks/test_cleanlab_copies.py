"""What :func:`data_engine.tasks.label_issues.release_cleanlab_copies` relies on in the installed
cleanlab, pinned: an upgrade that moves the copy of the predictions cleanlab keeps fails here, naming
the function, rather than leaving the copy held without a word. And a cleanlab without those globals
(or with globals of another kind) is left alone."""

from __future__ import annotations

import cleanlab
import cleanlab.filter
import numpy as np
import pytest

from data_engine.tasks.classification import FILTER_BY, MIN_EXAMPLES_PER_CLASS
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
