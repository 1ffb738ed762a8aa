"""One ranked review queue from all detectors' findings, within a budget.

The evidence against an example is the sum over its flagged issue types of
``weight[type] * (1 - score)``: a detector's confidence that something is wrong, scaled by how much
a review of that issue type is worth; examples flagged by several detectors add up and come first.
Weights come from ``[review] weights``, scaled by reviewers' verdicts
(:func:`data_engine.mine.weights.effective_weights`).

The **priority** a reviewer sees is that evidence on a fixed [0, 1] scale,
``priority = 1 - exp(-evidence)``: the same findings give the same priority in every mining run
(no per-run normalisation), and the order is the evidence's. One label issue with score 0.1 at
weight 1 is 0.59; two strong findings (evidence 2) are 0.86; 0.95 needs evidence 3.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping

import numpy as np
import pandas as pd

from data_engine.errors import EngineError

QUEUE_COLUMNS = ("rank", "example_id", "example_version", "issue_types", "priority", "suggested_label",
                 "suggested_score", "given_label", "scores")


def build_queue(issues: pd.DataFrame, *, weights: Mapping[str, float], budget: int,
                exclude: Iterable[str] = (), examples: pd.DataFrame | None = None) -> pd.DataFrame:
    """Rank flagged examples into one queue of at most ``budget`` rows.

    Parameters
    ----------
    issues : pd.DataFrame
        Columns ``example_id``, ``issue_type``, ``score`` (in [0, 1], low = problem), ``is_issue``;
        one row per (example, issue type). Only flagged rows enter the queue.
    weights : mapping of issue type to a non-negative weight; types without a weight count 0.
    budget : int
        The most rows to return.
    exclude : example ids never to queue (waiting for review, or already reviewed).
    examples : pd.DataFrame, optional
        Per-example columns ``example_id``, ``example_version``, ``given_label``,
        ``suggested_label``, ``suggested_score`` to carry into the queue.

    Returns
    -------
    pd.DataFrame with :data:`QUEUE_COLUMNS`, ``rank`` from 1, highest priority first (ties by
    example id, so the order is reproducible). ``issue_types`` lists the example's flagged types,
    largest contribution first; ``scores`` is a JSON object of their scores.
    """
    if budget < 1:
        raise EngineError("review.budget: must be at least 1")
    bad = {k: w for k, w in weights.items() if not np.isfinite(w) or w < 0}
    if bad:
        raise EngineError(f"review.weights.{next(iter(bad))}: must be a non-negative number")
    flagged = issues.loc[issues["is_issue"].astype(bool), ["example_id", "issue_type", "score"]].copy()
    flagged = flagged[~flagged["example_id"].isin(list(exclude))]
    weight = flagged["issue_type"].astype(object).map(dict(weights)).astype(float).fillna(0.0)
    flagged["contribution"] = weight * (1.0 - flagged["score"].astype(float))
    flagged = flagged[flagged["contribution"] > 0]
    if flagged.empty:
        return pd.DataFrame({c: pd.Series(dtype=object) for c in QUEUE_COLUMNS})
    flagged = flagged.sort_values(["example_id", "contribution"], ascending=[True, False], kind="stable")
    grouped = flagged.groupby("example_id", sort=False)
    queue = pd.DataFrame({
        "evidence": grouped["contribution"].sum(),
        "issue_types": grouped["issue_type"].agg(list),
    }).reset_index()
    queue = queue.sort_values(["evidence", "example_id"], ascending=[False, True], kind="stable").head(budget)
    queue["priority"] = priority_scale(queue["evidence"].to_numpy())
    chosen = flagged[flagged["example_id"].isin(queue["example_id"])]
    wide = chosen.pivot(index="example_id", columns="issue_type", values="score").round(6)
    # One JSON object per example (missing types dropped), serialised by pandas in C.
    scores_json = pd.Series(
        wide.to_json(orient="records", lines=True).splitlines(), index=wide.index
    ).str.replace(r'"[^"]+":null,?', "", regex=True).str.replace(",}", "}", regex=False)
    queue["scores"] = queue["example_id"].map(scores_json)
    info_cols = ["example_version", "given_label", "suggested_label", "suggested_score"]
    if examples is not None:
        info = examples.drop_duplicates("example_id").set_index("example_id")
        for col in info_cols:
            queue[col] = queue["example_id"].map(info[col]) if col in info else None
    else:
        for col in info_cols:
            queue[col] = None
    queue.insert(0, "rank", np.arange(1, len(queue) + 1, dtype=np.int32))
    return queue[list(QUEUE_COLUMNS)].reset_index(drop=True)


def priority_scale(evidence: np.ndarray) -> np.ndarray:
    """Evidence (shape (N,), >= 0, a sum of weighted detector confidences) on the [0, 1] priority
    scale, ``1 - exp(-evidence)``: monotone, so ranks are unchanged, and fixed across runs."""
    return -np.expm1(-np.asarray(evidence, dtype=float))


def queue_precision_at_k(queue: pd.DataFrame, truly_wrong: Iterable[str], k: int) -> float:
    """Share of the queue's top ``k`` examples that are in ``truly_wrong`` (0 when k = 0)."""
    if k <= 0:
        return 0.0
    top = queue.sort_values("rank").head(k)["example_id"]
    return float(top.isin(set(truly_wrong)).sum() / k)
