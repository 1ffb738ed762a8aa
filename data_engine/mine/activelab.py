"""Relabel or label new, with several annotators per task: cleanlab's ActiveLab.

When ``[review] annotators_per_task >= 2``, an example's label in force is a consensus of votes
that may disagree; one more vote on it can be worth more than a first label on a new example.
``cleanlab.multiannotator.get_active_learning_scores`` (ActiveLab, Goh & Mueller 2023) scores both
kinds on one scale (lower = more informative to label next, from the model's probabilities, the
votes and their agreement); the lowest ``n`` scores decide how many of the growth slots go to
another opinion. Which new examples fill the rest stays the selection strategy's choice
(:mod:`data_engine.mine.selection`), so the batch stays diverse.
"""

from __future__ import annotations

from dataclasses import dataclass

import duckdb
import numpy as np
import pandas as pd



@dataclass(frozen=True)
class ActiveLabChoice:
    """``relabel``: row indices (into the voted examples) to send for another opinion, lowest score
    first; ``n_new``: growth slots left for new examples; ``scores`` / ``scores_unlabeled``: ActiveLab
    scores of shape (N_voted,) and (N_unlabeled,)."""

    relabel: np.ndarray
    n_new: int
    scores: np.ndarray
    scores_unlabeled: np.ndarray


def activelab_choice(votes: np.ndarray, probs: np.ndarray, probs_unlabeled: np.ndarray, n: int) -> ActiveLabChoice:
    """Split ``n`` reviews between another opinion and new examples by ActiveLab score.

    votes : shape (N, M), float class indices with NaN where annotator m did not vote on example n
        (every row has at least one vote)
    probs : shape (N, K), out-of-fold probabilities of the voted examples
    probs_unlabeled : shape (U, K), the served model's probabilities of the unlabeled candidates
    """
    from cleanlab.multiannotator import get_active_learning_scores

    if len(votes) == 0 or n < 1:
        scores_unl = get_active_learning_scores(pred_probs_unlabeled=probs_unlabeled)[1] if len(probs_unlabeled) \
            else np.empty(0)
        return ActiveLabChoice(np.empty(0, np.int64), n, np.empty(0), scores_unl)
    frame = pd.DataFrame(votes).dropna(axis=1, how="all")  # cleanlab refuses annotators without a vote
    if len(probs_unlabeled):
        scores, scores_unl = get_active_learning_scores(frame, probs, probs_unlabeled)
    else:
        scores, scores_unl = get_active_learning_scores(frame, probs)[0], np.empty(0)
    both = np.concatenate([scores, scores_unl])
    lowest = np.argsort(both, kind="stable")[:n]
    relabel = lowest[lowest < len(scores)]
    return ActiveLabChoice(relabel, n - len(relabel), scores, scores_unl)


def vote_matrix(con: duckdb.DuckDBPyConnection, example_ids: np.ndarray, classes: list[str]) -> tuple[np.ndarray, np.ndarray]:
    """Votes on the current version of the given examples as an (N_voted, M annotators) float array
    (class index, NaN = no vote; discards count as no vote), and the positions of those examples
    in ``example_ids``."""
    if len(example_ids) == 0:
        return np.empty((0, 0)), np.empty(0, np.int64)
    keys = pd.DataFrame({"example_id": pd.Series(example_ids, dtype=object).astype(str),
                         "row_index": np.arange(len(example_ids), dtype=np.int64)})
    con.register("_al_keys", keys)
    try:
        votes = con.execute(
            "SELECT k.row_index, a.annotator, a.label FROM review_annotations a "
            "JOIN _al_keys k ON k.example_id = a.example_id "
            "JOIN current_examples ce ON ce.example_id = a.example_id AND ce.version = a.example_version "
            "WHERE NOT a.is_discard AND a.label IS NOT NULL").fetchdf()
    finally:
        con.unregister("_al_keys")
    index = {c: i for i, c in enumerate(classes)}
    votes = votes[votes["label"].isin(index)]
    if votes.empty:
        return np.empty((0, 0)), np.empty(0, np.int64)
    votes["cls"] = votes["label"].map(index).astype(float)
    wide = votes.pivot_table(index="row_index", columns="annotator", values="cls", aggfunc="last")
    return wide.to_numpy(dtype=float), wide.index.to_numpy(dtype=np.int64)
