"""A task's label-error check of labeled examples (:meth:`data_engine.tasks.base.Task.label_issues`)."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    import numpy as np


@dataclass(frozen=True)
class LabelIssues:
    """A task's label-error check of ``n`` labeled examples (:meth:`Task.label_issues`).

    scores : np.ndarray of shape (n,)
        Label quality score in [0, 1]; low = the given label is suspect.
    is_issue : np.ndarray of shape (n,), bool
        Flagged as a likely label error.
    suggested : list of str, length n
        The model's label for each example, in the stored spelling.
    suggested_score : np.ndarray of shape (n,)
        How sure the model is of ``suggested`` (a probability for classes).
    detail : list of str, length n
        Per-example words a reviewer reads (e.g. "given 'cat' (p=0.02), model suggests 'dog' (p=0.91)").
    summary : dict
        Dataset-level figures of the check (stored in the mining run's detector summary).
    skipped : str
        Non-empty when the check could not run at all (why); the other fields are then empty.
    """

    scores: np.ndarray
    is_issue: np.ndarray
    suggested: list[str]
    suggested_score: np.ndarray
    detail: list[str]
    summary: dict[str, Any] = field(default_factory=dict)
    skipped: str = ""

    @classmethod
    def none(cls, why: str) -> LabelIssues:
        """An empty result: the check was skipped for reason ``why``."""
        import numpy as np

        return cls(np.array([]), np.array([], dtype=bool), [], np.array([]), [], {}, why)


# The module globals of ``cleanlab.filter`` (cleanlab 2.x) that keep a copy of the predictions after
# ``find_label_issues``; what they hold is pinned by tests/tasks/test_cleanlab_copies.py.
CLEANLAB_COPY_GLOBALS = ("pred_probs_by_class", "prune_count_matrix_cols")


def release_cleanlab_copies() -> None:
    """Drop the copy of the predictions cleanlab keeps after ``cleanlab.filter.find_label_issues``.

    With ``n_jobs=1`` (and on Linux before Python 3.14) cleanlab 2.x shares its per-class work through
    two module globals, ``pred_probs_by_class`` (every row of ``pred_probs``, split by given label) and
    ``prune_count_matrix_cols``, and leaves them set when it returns: a full copy of the (n, K)
    predictions (80 MB at a million rows and ten classes) held until the next call. Nothing reads them
    between calls (each call sets them afresh before its workers read them), so they are emptied here.
    cleanlab has no documented call for this, so it is done by hand, and only when both globals are
    there and hold dicts, as in the cleanlab this was written against (2.9); otherwise nothing is
    touched (see the comment in the body).
    """
    import cleanlab.filter

    held = [getattr(cleanlab.filter, name, None) for name in CLEANLAB_COPY_GLOBALS]
    if not all(isinstance(value, dict) for value in held):
        # Absent: no call with shared globals yet (cleanlab 2.9 only declares them until a call sets
        # them), or a cleanlab that shares its work another way and keeps no such copy. Of another
        # kind: a cleanlab whose globals mean something else, which emptying could break. Either way
        # there is nothing this knows to be safe to drop; the test of the installed cleanlab fails
        # instead, naming this function, if an upgrade moves the copy elsewhere.
        return
    for name in CLEANLAB_COPY_GLOBALS:
        setattr(cleanlab.filter, name, {})


@contextmanager
def cleanlab_copies_released() -> Iterator[None]:
    """Run ``cleanlab.filter.find_label_issues`` inside this block: its split copy of the predictions
    is dropped as soon as cleanlab has read it, and again when the block ends (:func:`release_cleanlab_copies`).

    With ``prune_by_noise_rate`` cleanlab 2.x prunes each class from the module globals (see
    :func:`release_cleanlab_copies`) and only then calls ``_reduce_issues``, which copies the whole
    (n, K) predictions once more: both copies existed at once (160 MB at a million rows and ten
    classes). Nothing reads the globals after the pruning, so while the block runs cleanlab's
    ``_reduce_issues`` (the name ``cleanlab.filter`` calls) first empties them, then runs unchanged:
    the same mask, one copy fewer at the call's peak. Written here because cleanlab has no call or
    option for it; a cleanlab without that name is left alone (then only the release at the end).
    """
    import cleanlab.filter

    original = getattr(cleanlab.filter, "_reduce_issues", None)
    if original is None:
        try:
            yield
        finally:
            release_cleanlab_copies()
        return

    def reduce_after_release(*args: Any, **kwargs: Any) -> Any:
        release_cleanlab_copies()
        return original(*args, **kwargs)

    cleanlab.filter._reduce_issues = reduce_after_release
    try:
        yield
    finally:
        cleanlab.filter._reduce_issues = original
        release_cleanlab_copies()
