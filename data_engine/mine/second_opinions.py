"""Second opinions: send a reviewed label back to review only where a slip is the likelier story.

A reviewer's label the model contradicts is either the reviewer's slip or the model's error. With
the reviewers' measured accuracy ``a`` (:func:`reviewer_accuracy`) and the model's out-of-fold
probability ``p`` of the reviewed label, Bayes' rule with the model as the prior over the true class
and a reviewer who errs uniformly over the other ``K - 1`` classes gives

    P(slip) = (1 - a) (1 - p) / (K - 1) / ((1 - a) (1 - p) / (K - 1) + a p)

(the two-coder form of Dawid & Skene 1979, with one rater). A second opinion goes out only where
``P(slip) > 1/2``: the evidence that the reviewer slipped outweighs the evidence that the model
erred. Written by hand: cleanlab's multi-annotator functions score examples that already have
several votes; none decides whether one vote deserves another.

What they bought is :func:`second_opinion_report`: second-opinion verdicts, the slips they caught
(the label changed) and reviews per caught slip. Their verdicts are left out of the confirmation
rates that drive the budget split (:func:`data_engine.mine.weights.confirmation_rates`): a
second opinion asks whether a *reviewer* erred, not whether the detector found an error in the data.
"""

from __future__ import annotations

from typing import Any

import duckdb
import numpy as np
from numpy.typing import ArrayLike


# The queue's ``selection`` of a second opinion.
SECOND_OPINION = "second_opinion"


# Reviewer accuracy before it is measured, worth this many votes (a Beta prior): reviewers of a
# labelling project are typically right 90-98 % of the time; 0.95 sits in the middle.
PRIOR_ACCURACY = 0.95


PRIOR_VOTES = 20.0


def reviewer_accuracy(con: duckdb.DuckDBPyConnection) -> float:
    """Reviewers' accuracy in [0, 1]: their votes' agreement with the consensus over all annotators
    (``review_annotator_quality``, from :mod:`data_engine.review.annotators`), smoothed towards
    :data:`PRIOR_ACCURACY` with :data:`PRIOR_VOTES`."""
    row = con.execute("SELECT sum(n_votes * agreement), sum(n_votes) FROM review_annotator_quality "
                      "WHERE agreement IS NOT NULL").fetchall()[0]
    agreed, votes = float(row[0] or 0.0), float(row[1] or 0.0)
    return (agreed + PRIOR_ACCURACY * PRIOR_VOTES) / (votes + PRIOR_VOTES)


def slip_probability(accuracy: float, p_label: np.ndarray, n_classes: int) -> np.ndarray:
    """P(the reviewer's label is wrong), shape (N,), from the reviewers' ``accuracy`` in [0, 1] and the
    model's out-of-fold probability of each reviewed label ``p_label`` (shape (N,)); see the module
    docstring. NaN where ``p_label`` is NaN."""
    p = np.clip(np.asarray(p_label, dtype=float), 0.0, 1.0)
    wrong = (1.0 - accuracy) * (1.0 - p) / max(n_classes - 1, 1)
    right = accuracy * p
    with np.errstate(invalid="ignore", divide="ignore"):
        return np.where(wrong + right > 0, wrong / (wrong + right), 0.5)


def worth_second_opinion(con: duckdb.DuckDBPyConnection, candidates: set[str], example_ids: ArrayLike,
                         labels: np.ndarray, probs: np.ndarray) -> set[str]:
    """The ``candidates`` (reviewed examples eligible for another opinion) whose slip probability
    exceeds 1/2. ``example_ids`` (N,), ``labels`` (N,) class index of the label in force and
    ``probs`` (N, K) out-of-fold probabilities of the labeled rows; rows without finite
    probabilities never qualify. ``example_ids`` may be an array or a column: it is read only when
    there are candidates (a million ids as Python strings are about 65 MB). Number labels
    (regression, float ``labels``) have no probability of the given value to weigh a slip against:
    none goes back (the reviewer's number stays in force)."""
    if not candidates or np.asarray(labels).dtype.kind == "f":
        return set()
    ids = np.asarray(example_ids).astype(str)
    rows = np.flatnonzero(np.isin(ids, list(candidates)) & np.isfinite(probs).all(axis=1))
    if not len(rows):
        return set()
    slip = slip_probability(reviewer_accuracy(con), probs[rows, labels[rows]], probs.shape[1])
    return set(ids[rows[slip > 0.5]])


def second_opinion_report(con: duckdb.DuckDBPyConnection) -> dict[str, Any]:
    """Verdicts of second opinions (queued with ``selection = 'second_opinion'``), the slips they
    caught (the second reviewer changed or discarded the first one's label) and reviews per caught
    slip (None before a slip is caught)."""
    reviews, caught = con.execute(
        "SELECT count(*), count(*) FILTER (WHERE v.outcome = 'confirmed') FROM review_verdicts v "
        "WHERE EXISTS (SELECT 1 FROM review_queue q WHERE q.run_id = v.run_id "
        "              AND q.example_id = v.example_id AND q.selection = ?)", [SECOND_OPINION]).fetchall()[0]
    return {"reviews": int(reviews), "slips_caught": int(caught),
            "reviews_per_slip": round(reviews / caught, 2) if caught else None}
