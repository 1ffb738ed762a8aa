"""Single-label label issues: confident learning plus the labels the model plainly contradicts.

* Flags: :func:`cleanlab.filter.find_label_issues` (``prune_by_noise_rate``) on the classes that
  have labeled examples, the probabilities renormalised over them; plus every label the model
  prefers another class to and gives less than :data:`CONTRADICTED_BELOW`.
* Scores: :func:`cleanlab.rank.get_label_quality_scores` (self-confidence; low = suspect).
* Suggestion: the most probable class and its probability.
"""

from __future__ import annotations

import warnings
from collections.abc import Callable, Sequence
from typing import TYPE_CHECKING

from data_engine.tasks.base import LabelIssues
from data_engine.tasks.label_issues import cleanlab_copies_released

if TYPE_CHECKING:  # numpy loads when a check runs: ingest's start-up stays light
    import numpy as np

# cleanlab's default pruning; on digits with 20 % flips it gave the best F1 of the three
# filters for the default ensemble (see docs/mining.md).
FILTER_BY = "prune_by_noise_rate"
# cleanlab.filter.find_label_issues' default: a class with this many labeled examples or fewer is not judged.
MIN_EXAMPLES_PER_CLASS = 1
# Confident learning counts an example as mislabeled only if the model's probability of another
# class clears that class's threshold (its mean self-confidence). Once most errors are corrected the
# thresholds rise towards 1 and it stops flagging plain contradictions: on digits with 27 errors
# left after a simulated loop, it flagged 10 of them with the default ensemble's probabilities,
# while 21 had p(given) < 0.05 and another class preferred (25 such labels in all). So a label the
# model prefers another class to, and gives less than this probability, is flagged too. Measured over the
# demo's loop (3 seeds, 20 % noise): errors left after the loop 18-22 -> 5-10, reviews per true
# error 0.95-0.97 -> 1.01-1.03 (0.2 here left 4-6 for 1.09-1.12).
CONTRADICTED_BELOW = 0.05


def _fmt(values: np.ndarray) -> np.ndarray:
    """Two decimals, element-wise, as an object array of strings."""
    import numpy as np

    return np.char.mod("%.2f", np.asarray(values, dtype=np.float64)).astype(object)


def find_class_issues(y: np.ndarray, pred: np.ndarray, classes: Sequence[str],
                      decode: Callable[[np.ndarray, Sequence[str]], list[str]]) -> LabelIssues:
    """The label-error check of n class indices ``y`` (n,) against out-of-fold probabilities ``pred``
    (n, K): confident learning (:func:`cleanlab.filter.find_label_issues`, ``prune_by_noise_rate``) plus
    labels the model plainly contradicts (:data:`CONTRADICTED_BELOW`); the score is
    :func:`cleanlab.rank.get_label_quality_scores` (self-confidence). ``decode`` turns class indices
    into names (the task's :meth:`~data_engine.tasks.base.Task.decode`). ``n_jobs=1``: cleanlab's
    multiprocessing path fails inside Dagster's spawned step processes."""
    import numpy as np
    from cleanlab.filter import find_label_issues
    from cleanlab.rank import get_label_quality_scores

    y = np.asarray(y, dtype=np.int64)
    present = np.unique(y)
    if len(present) < 2:
        return LabelIssues.none("needs labeled examples of two classes")
    # cleanlab wants every class of pred_probs to occur among the labels: keep the classes
    # present and renormalise (a class with no labeled example cannot be a label error).
    remap = np.full(len(classes), -1)
    remap[present] = np.arange(len(present))
    probs = pred[:, present]
    totals = probs.sum(axis=1, keepdims=True)
    # In place on the one copy (the same values as dividing into new arrays: 80 MB less per array
    # at a million rows and ten classes).
    np.divide(probs, np.where(totals > 0, totals, 1.0), out=probs)
    probs[~(totals[:, 0] > 0)] = 1.0 / len(present)
    given = remap[y]
    with warnings.catch_warnings():
        # cleanlab warns "May not flag all label issues in class: k" for a class with at most
        # one labeled example (its min_examples_per_class, 1): said in the summary instead.
        warnings.filterwarnings("ignore", message="May not flag all label issues", category=UserWarning)
        with cleanlab_copies_released():  # its split copy gone before its last copy is made
            learned = find_label_issues(given, probs, filter_by=FILTER_BY, n_jobs=1,
                                        min_examples_per_class=MIN_EXAMPLES_PER_CLASS)
    too_few = [classes[c] for c in present[np.bincount(given, minlength=len(present)) <= MIN_EXAMPLES_PER_CLASS]]
    quality = get_label_quality_scores(given, probs, method="self_confidence")
    top = probs.argmax(axis=1)
    contradicted = (top != given) & (quality < CONTRADICTED_BELOW)
    flags = learned | contradicted
    suggested = decode(present[top], classes)
    suggested_p = probs.max(axis=1)
    del probs, top  # the (n, K) copy is read by nothing past here: not held while the rows are worded
    # Worded for the flagged rows only (the rest share one string): at a million rows the wording
    # of every row made several arrays of a million new strings.
    at = np.flatnonzero(flags)
    detail = np.full(len(y), "label agrees with the model", dtype=object)
    detail[at] = ("given '" + np.asarray(decode(y[at], classes), dtype=object) + "' (p=" + _fmt(quality[at])
                  + "), model suggests '" + np.asarray(suggested, dtype=object)[at] + "' (p="
                  + _fmt(suggested_p[at]) + ")")
    summary = {"examples": int(len(y)), "flagged": int(flags.sum()), "filter_by": FILTER_BY,
               "flagged_by_confident_learning": int(learned.sum()),
               "flagged_as_contradicted_only": int((contradicted & ~learned).sum())}
    if too_few:  # confident learning leaves these classes' labels alone (the contradicted rule still reads them)
        summary["too_few_to_judge"] = too_few
    return LabelIssues(quality, flags, suggested, suggested_p, detail.tolist(), summary)
