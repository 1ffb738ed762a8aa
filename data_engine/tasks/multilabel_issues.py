"""Multi-label label issues: cleanlab's call per example, and which tags of it are suspect.

* Flags: :func:`cleanlab.multilabel_classification.filter.find_label_issues` (confident learning
  run one-vs-rest per tag; an example is flagged when any of its tags looks mis-annotated).
* Scores: :func:`cleanlab.multilabel_classification.rank.get_label_quality_scores` (per-tag
  self-confidence aggregated by cleanlab's exponential moving average; low = suspect).
* Suspect tags: :func:`cleanlab.multilabel_classification.rank.get_label_quality_scores_per_class`
  gives each (example, tag) annotation a quality score (the model's probability of the given
  presence or absence). A tag whose score is below 0.5 is one the model would set the other way:
  given but unlikely ("likely wrong"), or not given but likely ("likely missing"). A flagged
  example names those tags, lowest score first; when the model agrees on every tag yet cleanlab
  flags the example, its lowest-scoring tag is named as the doubtful one.
* Suggestion: the tags at probability >= 0.5, scored by the probability of that exact set under the
  per-tag independence the probabilities assume (the product of max(p, 1 - p)).
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from data_engine.tasks.base import LabelIssues
from data_engine.tasks.label_issues import cleanlab_copies_released
from data_engine.tasks.tagsets import decode

# A per-tag annotation quality below this is a tag the model would set the other way.
SUSPECT_BELOW = 0.5
# cleanlab's default filter; the same as the single-label check (docs/mining.md).
FILTER_BY = "prune_by_noise_rate"


def suggested_sets(probs: np.ndarray, classes: Sequence[str]) -> tuple[list[str], np.ndarray]:
    """The model's tag set per row of ``probs`` (n, K) (stored spelling) and its probability (n,)."""
    probs = np.asarray(probs, dtype=float)
    if not len(probs):
        return [], np.array([], dtype=float)
    return decode(probs >= 0.5, classes), np.prod(np.maximum(probs, 1.0 - probs), axis=1)


def find_tag_issues(Y: np.ndarray, probs: np.ndarray, classes: Sequence[str]) -> LabelIssues:
    """The label-error check of n tag sets ``Y`` (n, K) 0/1 against out-of-fold ``probs`` (n, K).

    Returns :class:`~data_engine.tasks.base.LabelIssues`; ``detail`` names the suspect tags of each
    flagged example (``tag 'refund' likely missing; tag 'bug' likely wrong``). ``n_jobs=1``:
    cleanlab's multiprocessing path fails inside Dagster's spawned step processes.
    """
    from cleanlab.multilabel_classification.filter import find_label_issues
    from cleanlab.multilabel_classification.rank import get_label_quality_scores, get_label_quality_scores_per_class

    Y = np.asarray(Y, dtype=np.int8)
    probs = np.clip(np.asarray(probs, dtype=float), 0.0, 1.0)
    n, k = Y.shape if Y.ndim == 2 else (len(Y), 0)
    if n < 2 or k == 0:
        return LabelIssues.none("needs at least two labeled examples and one tag")
    given = [list(np.flatnonzero(row)) for row in Y]
    # One-vs-rest through cleanlab.filter.find_label_issues, whose split copies go as in the single-label check.
    with cleanlab_copies_released():
        flags = np.asarray(find_label_issues(given, probs, filter_by=FILTER_BY, n_jobs=1), dtype=bool)
    scores = np.asarray(get_label_quality_scores(given, probs), dtype=float)
    per_tag = np.asarray(get_label_quality_scores_per_class(given, probs), dtype=float)  # (n, K)
    suggested, suggested_p = suggested_sets(probs, classes)
    detail = []
    for i in range(n):
        if not flags[i]:
            detail.append("tags agree with the model")
            continue
        order = np.argsort(per_tag[i], kind="stable")
        suspect = [j for j in order if per_tag[i, j] < SUSPECT_BELOW] or [int(order[0])]
        detail.append("; ".join(
            f"tag {classes[j]!r} likely {'wrong' if Y[i, j] else 'missing'} (p={probs[i, j]:.2f})" for j in suspect))
    summary = {"examples": int(n), "flagged": int(flags.sum()), "filter_by": FILTER_BY,
               "suspect_tags": int(((per_tag < SUSPECT_BELOW) & flags[:, None]).sum())}
    return LabelIssues(scores, flags, suggested, suggested_p, detail, summary)

