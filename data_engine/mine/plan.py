"""One run's review queue: label fixes and new examples to label, within the budget split.

The split comes from :func:`data_engine.mine.budget.split_budget`; fixes are the flagged labeled
examples (``label``, ``near_duplicate``, ``outlier``) ranked by :func:`data_engine.mine.queue.build_queue`;
new examples are chosen among the unlabeled ones by the ``[review] strategy``
(:mod:`data_engine.mine.selection`) on the served model's calibrated probabilities, with the
``[review] explore_share`` drawn at random, after a small share (:data:`WEAK_SLICE_SHARE`) of the
least sure unlabeled examples inside discovered weak slices (:mod:`data_engine.mine.slices`). Each
queue row records how it was chosen (``selection``: the strategy's name, ``explore``, ``weak_slice``,
``fix``, or ``ranked``: for a task whose flag rule is a fixed cut-off, reviews left over go to the
next unflagged labels by label quality score).
"""

from __future__ import annotations

import json
from collections.abc import Callable, Iterable, Mapping
from dataclasses import replace

import duckdb
import numpy as np
import pandas as pd

from data_engine.mine.budget import BudgetSplit, flags_before_ranking, learning_curve, split_budget
from data_engine.mine.predictions import PredictionState
from data_engine.mine.queue import QUEUE_COLUMNS, build_queue
from data_engine.store.config import EngineConfig

# The issue type of a new example to label.
GROW_TYPE = "uncertain"
# The ``selection`` of an unflagged label queued by its score because the budget had room
# (:attr:`data_engine.tasks.base.Task.reviews_past_flags`).
RANKED = "ranked"
# The columns of an issue row the queue's ranking reads (build_queue).
FLAG_COLUMNS = ("example_id", "issue_type", "score", "is_issue")


# Selection reads at most this many candidates (the most uncertain) and labeled rows (a random
# sample that tells which regions are covered): the default strategy's weighted k-means (budget
# clusters over the candidates, each weighted by its distance to the nearest of these labeled rows)
# stays in seconds on two cores at this size.
MAX_CANDIDATES = 10_000


MAX_LABELED_CONTEXT = 1_000


# Share of the new examples (rounded up) asked for inside discovered weak slices: a small boost to
# where the model is weak, leaving the strategy most of the picks (and the budget split unchanged).
WEAK_SLICE_SHARE = 0.2


def plan_queue(con: duckdb.DuckDBPyConnection, cfg: EngineConfig, state: PredictionState, issues: pd.DataFrame, *,
               weights: Mapping[str, float], budget: int, exclude: Iterable[str],
               examples: Callable[[list[str]], pd.DataFrame], second_opinions: Iterable[str] = (),
               weak_slice: np.ndarray | None = None) -> tuple[pd.DataFrame, BudgetSplit]:
    """The queue (:data:`QUEUE_COLUMNS` plus ``selection``) and the split it followed.

    ``examples``: a function giving the per-example details of a list of example ids
    (:func:`data_engine.mine.runs.example_info` of those ids): only the queued fixes' are made.

    ``second_opinions``: reviewed examples sent back for another opinion
    (:func:`data_engine.mine.second_opinions.worth_second_opinion`); they are fixes like the others,
    marked ``selection = 'second_opinion'``. Reviews that the split's parts leave unused (flags of
    several types on one example, fewer new examples than slots) go to the best remaining flags; the
    split returned counts what was queued, and says why when the queue is shorter than ``budget``.

    ``weak_slice``: (N_unlabeled,) bool, the unlabeled examples in a discovered weak slice
    (:mod:`data_engine.mine.slices`); up to :data:`WEAK_SLICE_SHARE` of the new examples are the
    least sure of them (``selection = 'weak_slice'``), the rest the strategy's picks.
    """
    from data_engine.mine.second_opinions import SECOND_OPINION
    from data_engine.mine.weights import confirmation_rates
    from data_engine.tasks import task_for

    excluded = set(exclude)
    fixable = _fixable_flags(issues, excluded, weights)
    flagged = fixable.groupby("issue_type")["example_id"].nunique().to_dict()
    # A zero weight for `uncertain` (or the detector turned off) means: fixes only, no new examples.
    growing = GROW_TYPE in cfg.mining.detectors and float(weights.get(GROW_TYPE, 0.0)) > 0
    candidates = _grow_candidates(state, excluded) if growing else np.empty(0, np.int64)
    curve = learning_curve(con, state.task.share_metric)
    accuracy = curve[-1][1] if curve else _oof_accuracy(state)
    rates = confirmation_rates(con, {*flagged, "label"})
    # The ranking past the label flags continues the label type: its yield is that type's rate.
    ranking_rate = rates["label"] if task_for(cfg.dataset).reviews_past_flags else None
    split = split_budget(budget, flagged, {t: rates[t] for t in flagged}, accuracy=accuracy,
                         n_labeled=len(state.train), curve=curve, n_candidates=len(candidates),
                         ranking_rate=ranking_rate, figure=state.task.share_points)
    chosen: dict[str, list[str]] = {}
    for issue_type, n in split.fix.items():
        taken = [e for ids in chosen.values() for e in ids]
        rows = fixable[(fixable["issue_type"] == issue_type) & ~fixable["example_id"].isin(taken)]
        chosen[issue_type] = rows.sort_values(["score", "example_id"])["example_id"].head(n).tolist()
    unlabeled_ids = state.unlabeled["example_id"].astype(str).to_numpy()
    parts = []
    grow = split.grow
    if grow:
        # An unlabeled example a detector flagged (e.g. an outlier) is queued once, as a fix: the
        # strategy picks among the others, else one example would take two of the budget's slots.
        candidates = candidates[~np.isin(unlabeled_ids[candidates], [e for ids in chosen.values() for e in ids])]
    # ActiveLab weighs votes for one class per example (tags: new examples only).
    if grow and cfg.review.annotators_per_task >= 2 and state.labels.ndim == 1:
        relabels = _activelab_relabels(con, cfg, state, candidates, grow, weights)
        grow -= len(relabels)
        parts.append(relabels)
    if grow and len(candidates) and weak_slice is not None and weak_slice.any():
        # The share is of the new examples that can be asked for (fewer candidates than slots: of those).
        near = _weak_slice_rows(state, candidates[weak_slice[candidates]], min(grow, len(candidates)), weights)
        grow -= len(near)
        candidates = candidates[~np.isin(candidates, near.attrs["rows"])]
        parts.append(near)
    if grow and len(candidates):
        parts.append(_grow_rows(cfg, state, candidates, grow, weights))
    n_grow = sum(len(p) for p in parts)
    # What the parts left unused goes to the best remaining flags (build_queue's evidence order): of
    # the types the label ranking past the flags does not out-confirm, then the ranking, then the rest.
    taken = {e for ids in chosen.values() for e in ids} | {e for p in parts for e in p["example_id"]}
    first = flags_before_ranking(sorted(flagged), rates, ranking_rate)
    _fill_with_flags(chosen, fixable[fixable["issue_type"].isin(first)], taken, weights, budget)
    fix_ids = [e for ids in chosen.values() for e in ids]
    ranked = _ranked_past_flags(cfg, issues, excluded | set(fix_ids) | taken, budget - len(fix_ids) - n_grow)
    chosen.setdefault("label", []).extend(ranked)
    _fill_with_flags(chosen, fixable, taken | set(ranked), weights, budget)
    fix_ids = [e for ids in chosen.values() for e in ids]
    if fix_ids:
        # Ranked rows enter build_queue as flags of their type: its evidence order is the score's. The
        # rows of the queued ids only, in the same order (not a concat of every flag, then a copy of it),
        # and their examples' details only (build_queue's lookup of a million rows copied them all).
        ranked_rows = issues.loc[issues["example_id"].isin(ranked) & (issues["issue_type"] == "label"), FLAG_COLUMNS]
        pool = pd.concat([fixable[fixable["example_id"].isin(fix_ids)],
                          ranked_rows[ranked_rows["example_id"].isin(fix_ids)].assign(is_issue=True)], ignore_index=True)
        del ranked_rows
        fixes = build_queue(pool, weights=weights, budget=len(fix_ids), examples=examples(fix_ids))
        del pool
        second = set(second_opinions)
        parts.insert(0, fixes.assign(selection=np.select(
            [fixes["example_id"].isin(second), fixes["example_id"].isin(ranked)], [SECOND_OPINION, RANKED], "fix")))
        fix_ids = fixes["example_id"].tolist()
    fix_counts = {t: n for t, ids in chosen.items() if (n := int(np.isin(ids, fix_ids).sum()))}
    queued = len(fix_ids) + n_grow
    split = replace(split, fix=fix_counts, grow=n_grow, unused=budget - queued,
                    short_reason=_short_reason(budget, queued, issues, excluded, weights, growing, len(candidates)))
    if not parts:
        return pd.DataFrame({c: pd.Series(dtype=object) for c in (*QUEUE_COLUMNS, "selection")}), split
    queue = pd.concat(parts, ignore_index=True)
    queue = queue.sort_values(["priority", "example_id"], ascending=[False, True], kind="stable").reset_index(drop=True)
    queue["rank"] = np.arange(1, len(queue) + 1, dtype=np.int32)
    return queue[[*QUEUE_COLUMNS, "selection"]], split


def _fixable_flags(issues: pd.DataFrame, excluded: set[str], weights: Mapping[str, float]) -> pd.DataFrame:
    """The open flags that may be queued as fixes: :data:`FLAG_COLUMNS` of the flagged rows not of
    :data:`GROW_TYPE` whose example is not ``excluded`` and whose evidence ``weight * (1 - score)`` is
    positive (build_queue's rule: others take no slot), in the order of ``issues``.

    The four columns build_queue reads, taken once: the rows' ``reason`` and ``detail`` strings (and a
    first copy of all flagged rows) were copies of about 130 MB at a million rows (docs/mining.md)."""
    keep = issues["is_issue"].astype(bool).to_numpy() & (issues["issue_type"] != GROW_TYPE).to_numpy()
    keep &= (_evidence(issues, weights) > 0) & ~issues["example_id"].isin(excluded).to_numpy()
    return issues.loc[keep, list(FLAG_COLUMNS)]


def _evidence(issues: pd.DataFrame, weights: Mapping[str, float]) -> np.ndarray:
    """``weight[issue_type] * (1 - score)`` of every row of ``issues``, shape (N,); 0 for a type without
    a weight. One comparison of the type column per weighted type, not a Python string per row (the
    column as objects was about 60 MB at a million rows)."""
    weight = np.zeros(len(issues))
    types = issues["issue_type"]
    for issue_type, w in weights.items():
        weight[(types == issue_type).to_numpy(dtype=bool)] = float(w)
    return weight * (1.0 - issues["score"].astype(float).to_numpy())


def _fill_with_flags(chosen: dict[str, list[str]], flags: pd.DataFrame, taken: set[str],
                     weights: Mapping[str, float], budget: int) -> None:
    """Add to ``chosen`` (issue type -> example ids, updated in place, as is ``taken``) the best of
    ``flags`` not taken (build_queue's evidence order) until ``budget`` examples are taken."""
    short = budget - len(taken)
    if short <= 0:
        return
    rest = build_queue(flags[~flags["example_id"].isin(taken)], weights=weights, budget=short)
    for eid, types in zip(rest["example_id"], rest["issue_types"], strict=True):
        chosen.setdefault(types[0], []).append(eid)
        taken.add(eid)


def _ranked_past_flags(cfg: EngineConfig, issues: pd.DataFrame, taken: set[str], room: int) -> list[str]:
    """Up to ``room`` unflagged labeled examples, lowest ``label`` score first (ties by id), not in
    ``taken``, for a task whose flag rule is a fixed cut-off (:attr:`Task.reviews_past_flags`);
    ``[]`` otherwise or when the queue is full."""
    from data_engine.tasks import task_for

    if room <= 0 or not task_for(cfg.dataset).reviews_past_flags:
        return []
    # The two columns read, not every column of the rows (the unflagged label rows' details were a copy
    # of about 100 MB at a million rows); the same rows.
    score = issues["score"].astype(float).to_numpy()
    keep = (issues["issue_type"] == "label").to_numpy() & ~issues["is_issue"].astype(bool).to_numpy() \
        & ~issues["example_id"].isin(taken).to_numpy() & (score < 1.0)
    if room < keep.sum():
        # Only rows scored at most the room-th lowest score can be among the first ``room`` of the order
        # (score first): those sorted, not all unflagged labels (about 817k rows at a million, each id a
        # string to compare). The same ids in the same order, ties included; when an id repeats among
        # them (fewer than ``room`` distinct), every row is sorted as before.
        cut = np.partition(score[keep], room - 1)[room - 1]
        near = issues.loc[keep & (score <= cut), ["score", "example_id"]]
        found = near.sort_values(["score", "example_id"])["example_id"].drop_duplicates().head(room).tolist()
        if len(found) == room:
            return found
    rows = issues.loc[keep, ["score", "example_id"]]
    return rows.sort_values(["score", "example_id"])["example_id"].drop_duplicates().head(room).tolist()


def _short_reason(budget: int, queued: int, issues: pd.DataFrame, excluded: set[str], weights: Mapping[str, float],
                  growing: bool, n_candidates: int) -> str:
    """Why the queue holds fewer than ``budget`` rows ('' when it is full): what is left to ask about."""
    if queued >= budget:
        return ""
    # Masks over the rows and counts of their ids, not a copy of the flagged rows (whose detail strings
    # were about 120 MB at a million rows) nor sets of their ids as Python strings.
    ids = issues["example_id"]
    flags = issues["is_issue"].astype(bool).to_numpy() & (issues["issue_type"] != GROW_TYPE).to_numpy()
    done = ids.isin(excluded).to_numpy()
    waiting = ids[flags & done].nunique()
    # A flag carries no evidence when its issue type is weighted 0 or its score is 1 (build_queue's rule).
    # An example is counted as without evidence only when none of its open flags carries any: one whose
    # other row has evidence (an outlier weighted 0 that is also a label issue) is queued for that row.
    open_flags = flags & ~done
    carries_evidence = _evidence(issues, weights) > 0
    n_without_evidence = 0
    if (open_flags & ~carries_evidence).any():  # else the count is 0: no pass over every row's id
        ids_with_evidence = ids[open_flags & carries_evidence]
        open_without_evidence = open_flags & ~ids.isin(ids_with_evidence).to_numpy()
        n_without_evidence = ids[open_without_evidence].nunique()
    without = f"; {n_without_evidence} without evidence: weight 0 or score 1" if n_without_evidence else ""
    parts = [f"every open flag with evidence is queued ({waiting} more flagged examples wait for review or were "
             f"reviewed{without})"]
    if not growing:
        parts.append("new examples are off (the uncertain detector or its weight)")
    else:
        parts.append(f"{n_candidates} unlabeled examples are left to label" if n_candidates
                     else "no unlabeled example is left to label")
    return f"{queued} of {budget} reviews queued: " + "; ".join(parts)


def _activelab_relabels(con: duckdb.DuckDBPyConnection, cfg: EngineConfig, state: PredictionState,
                        candidates: np.ndarray, n: int, weights: Mapping[str, float]) -> pd.DataFrame:
    """Queue rows for labeled examples that ActiveLab says gain more from another vote than a new
    example would (:mod:`data_engine.mine.activelab`); at most ``n``."""
    from data_engine.mine.activelab import activelab_choice, vote_matrix
    from data_engine.mine.runs import second_opinion_candidates

    reopenable = second_opinion_candidates(con, cfg.review.max_opinions, sources=("review", "vote", "consensus"))
    ids = state.train["example_id"].astype(str).to_numpy()
    votes, rows = vote_matrix(con, ids, list(state.classes))
    keep = np.isin(ids[rows], list(reopenable)) & np.isfinite(state.oof_probs[rows]).all(axis=1)
    probs_unl = state.unlabeled_probs[candidates]
    probs_unl = probs_unl[np.isfinite(probs_unl).all(axis=1)]
    choice = activelab_choice(votes[keep], state.oof_probs[rows[keep]], probs_unl, n)
    picked = rows[keep][choice.relabel]
    suggested, suggested_score = state.task.best(state.oof_probs[picked], state.classes)
    score = choice.scores[choice.relabel]
    return pd.DataFrame({
        "rank": 0, "example_id": ids[picked], "example_version": state.train["version"].to_numpy()[picked],
        "issue_types": [[GROW_TYPE] for _ in picked],
        "priority": float(weights.get(GROW_TYPE, 0.0)) * (1.0 - score),
        "suggested_label": np.asarray(suggested, dtype=object),
        "suggested_score": np.asarray(suggested_score, dtype=float),
        "given_label": np.asarray(state.task.decode(state.labels[picked], state.classes), dtype=object),
        "scores": [json.dumps({GROW_TYPE: round(float(s), 6)}) for s in score],
        "selection": "relabel",
    })


def _oof_accuracy(state: PredictionState) -> float:
    """The task's share of labeled rows its out-of-fold prediction gets right (:meth:`Task.oof_share`: accuracy
    for classes, exact match for sets, labels inside the interval for numbers), 0.5 when none."""
    return state.task.oof_share(state.labels, state.oof_probs, state.classes)


def _grow_candidates(state: PredictionState, excluded: set[str]) -> np.ndarray:
    """Row indices of unlabeled examples that may be queued (not waiting for or done with review)."""
    ids = state.unlabeled["example_id"].astype(str)
    return np.flatnonzero(~ids.isin(excluded).to_numpy())


def _stored_vectors(state: PredictionState, context: np.ndarray, candidates: np.ndarray) -> np.ndarray | None:
    """The pretrained embedding mining attached (``[mining] embedding``, e.g. e5-small for text) of
    the labeled ``context`` rows then the ``candidates``, shape (len(context) + len(candidates), D);
    None when the home has none (the strategies then use the model's own feature space)."""
    from data_engine.mine.embedders.base import EMBEDDING_COLUMN

    if EMBEDDING_COLUMN not in state.train.columns or EMBEDDING_COLUMN not in state.unlabeled.columns:
        return None
    rows = [*state.train[EMBEDDING_COLUMN].to_numpy()[context], *state.unlabeled[EMBEDDING_COLUMN].to_numpy()[candidates]]
    return np.stack(rows) if rows else None


def _grow_rows(cfg: EngineConfig, state: PredictionState, candidates: np.ndarray, n: int,
               weights: Mapping[str, float]) -> pd.DataFrame:
    """Queue rows of the ``n`` unlabeled examples the selection strategy picks among ``candidates``."""
    from data_engine.mine.selection import SelectionPool, select_examples, uncertainty
    from data_engine.mine.selection.features import selection_embedding

    seed = cfg.mining.seed + state.label_snapshot
    probs = state.unlabeled_probs[candidates]
    scored = bool(len(probs)) and bool(np.isfinite(probs).all())
    if len(candidates) > MAX_CANDIDATES:
        keep = (np.argsort(-uncertainty(probs, task=state.task), kind="stable") if scored
                else np.random.default_rng(seed).permutation(len(candidates)))[:MAX_CANDIDATES]
        candidates, probs = candidates[np.sort(keep)], probs[np.sort(keep)]
    rng = np.random.default_rng(seed)
    context = rng.permutation(len(state.train))[:MAX_LABELED_CONTEXT]
    cols = list(state.schema)
    frame = pd.concat([state.train[cols].iloc[context], state.unlabeled[cols].iloc[candidates]], ignore_index=True)
    embedding = selection_embedding(frame, state.schema, cfg.dataset.modality,
                                    _stored_vectors(state, context, candidates))
    pool = SelectionPool(embedding[len(context):], probs if scored else None, embedding[:len(context)], seed=seed,
                         task=state.task)
    picked = select_examples(pool, n, strategy=cfg.review.strategy, explore_share=cfg.review.explore_share)
    rows = candidates[picked.indices]
    return _new_example_rows(state, rows, weights, np.where(picked.explore, "explore", picked.strategy), scored)


def _weak_slice_rows(state: PredictionState, inside: np.ndarray, grow: int,
                     weights: Mapping[str, float]) -> pd.DataFrame:
    """Queue rows of the least sure unlabeled examples among ``inside`` (row indices of candidates in a
    weak slice), at most ``ceil(WEAK_SLICE_SHARE * grow)``; ``attrs["rows"]`` holds their row indices."""
    n = min(len(inside), int(np.ceil(WEAK_SLICE_SHARE * grow)))
    probs = state.unlabeled_probs[inside]
    scored = bool(len(probs)) and bool(np.isfinite(probs).all())
    order = np.argsort(-state.task.uncertainty(probs), kind="stable") if scored else \
        np.random.default_rng(state.label_snapshot).permutation(len(inside))
    rows = inside[order[:n]]
    frame = _new_example_rows(state, rows, weights, np.full(len(rows), "weak_slice", dtype=object), scored)
    frame.attrs["rows"] = rows
    return frame


def _new_example_rows(state: PredictionState, rows: np.ndarray, weights: Mapping[str, float],
                      selection: np.ndarray, scored: bool) -> pd.DataFrame:
    """Queue rows asking for labels of the unlabeled examples at ``rows`` (indices into
    ``state.unlabeled``), each marked with how it was chosen (``selection``, shape (len(rows),))."""
    p = state.unlabeled_probs[rows]
    if scored:
        margin = state.task.certainty(p)
        found, best = state.task.best(p, state.classes)
        suggested = np.asarray(found, dtype=object)
    else:
        margin, suggested, best = np.ones(len(rows)), np.full(len(rows), None, object), np.full(len(rows), np.nan)
    return pd.DataFrame({
        "rank": 0, "example_id": state.unlabeled["example_id"].astype(str).to_numpy()[rows],
        "example_version": state.unlabeled["version"].to_numpy()[rows],
        "issue_types": [[GROW_TYPE] for _ in rows],
        "priority": float(weights.get(GROW_TYPE, 0.0)) * (1.0 - margin),
        "suggested_label": suggested, "suggested_score": best, "given_label": None,
        "scores": [json.dumps({GROW_TYPE: round(float(m), 6)}) for m in margin],
        "selection": selection,
    })
