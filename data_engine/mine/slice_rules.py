"""Weak slices as rules on input columns (:mod:`data_engine.mine.slices`): the named columns as the
matrix scikit-learn's trees read, a tree node's path as conditions (``x3 > 2.1 and plan = "basic"``),
the rule that best describes a group of rows, and applying a stored rule to any frame (the gate's
gold rows, the unlabeled rows)."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np
import pandas as pd

# Depth of the tree that describes a cluster (slice against the rest).
DESCRIBE_DEPTH = 3
# Categories of one categorical column the trees read at most (the most frequent; the rest are "other").
MAX_CATEGORIES = 20
# A cluster's rule is kept only when it states the cluster well: at least this share of the rows the
# rule selects are in the cluster (precision) and of the cluster's rows the rule selects (coverage).
# Below, the gate would check a different group than the one found (a trial's cluster rules covered
# 33-35 % of their clusters); the cluster is then reported without a rule.
MIN_RULE_PRECISION = 0.7
MIN_RULE_COVERAGE = 0.7
# The run's column findings (data_engine.mine.columns) that keep a column out of every rule: an
# identifier selects rows that do not recur in gold, a shortcut is to be dropped from the inputs.
NOT_IN_RULES = frozenset({"identifier", "shortcut"})
# ... and out of a cluster's description only: a useless column (no association with the label) is
# chosen there merely to approximate a cluster of the embedding. The error tree may still name one,
# because it tests the column against the errors on held-out rows: where labels are noisy is often
# a column that does not predict the label (the planted slice of tests/mine/test_slices.py is on
# x3 and plan, which the same run names useless).
NOT_IN_CLUSTER_RULES = NOT_IN_RULES | {"useless"}


class Encoder:
    """The named columns as a float matrix the trees read: numbers as they are (missing as NaN, which
    scikit-learn's trees route on their own), each categorical column as 0/1 indicators of its
    :data:`MAX_CATEGORIES` most frequent values (seen on the labeled rows)."""

    def __init__(self, frame: pd.DataFrame, schema: Mapping[str, str], named: list[str]) -> None:
        """The ``named`` columns of ``frame`` (kinds in ``schema``); categories are taken from ``frame``."""
        self.features: list[tuple[str, str, str | None]] = []  # (column, kind, category)
        for c in named:
            if schema[c] == "numeric":
                self.features.append((c, "numeric", None))
            else:
                top = frame[c].dropna().astype(str).value_counts().head(MAX_CATEGORIES).index
                self.features += [(c, "categorical", v) for v in top]

    def encode(self, frame: pd.DataFrame) -> np.ndarray:
        """(N, features) float32: ``frame``'s rows as the trees read them.

        Float32 because scikit-learn's trees read float32 (they convert any other input, a copy of
        the whole matrix at each fit, ``apply`` and ``decision_path``): the same splits and rows as
        from float64, at half the memory, and the columns are written into the matrix one by one
        instead of stacked (at a million rows, float64 columns and their stack: +1 GB at once)."""
        out = np.empty((len(frame), len(self.features)), dtype=np.float32)
        text: dict[str, np.ndarray] = {}
        for j, (c, kind, v) in enumerate(self.features):
            if kind == "numeric":
                out[:, j] = pd.to_numeric(frame[c], errors="coerce").to_numpy(dtype=float)
                continue
            if c not in text:  # missing is no category at all
                text[c] = np.where(frame[c].notna().to_numpy(), frame[c].astype(str).to_numpy(dtype=object), None)
            out[:, j] = text[c] == v
        return out

    def without(self, columns: set[str]) -> tuple[Encoder, np.ndarray]:
        """This encoder less the features of ``columns``, and the indices (k,) of the features kept
        (to take from a matrix :meth:`encode` made)."""
        keep = np.array([j for j, (c, _, _) in enumerate(self.features) if c not in columns], dtype=np.intp)
        out = Encoder.__new__(Encoder)
        out.features = [self.features[j] for j in keep]
        return out, keep


def node_rules(tree: Any, coder: Encoder) -> dict[int, list[dict[str, Any]]]:
    """Each non-root node's path from the root as simplified conditions (a column's numeric bounds
    merged: ``x > 2 and x > 3`` is ``x > 3``)."""
    t = tree.tree_
    rules: dict[int, list[dict[str, Any]]] = {}
    stack: list[tuple[int, list[tuple[int, bool]]]] = [(0, [])]
    while stack:
        node, path = stack.pop()
        if node != 0:
            rules[node] = path_conditions(path, t, coder)
        if t.children_left[node] != -1:
            stack.append((t.children_left[node], path + [(node, True)]))
            stack.append((t.children_right[node], path + [(node, False)]))
    return rules


def path_conditions(path: list[tuple[int, bool]], t: Any, coder: Encoder) -> list[dict[str, Any]]:
    """The conditions of a path ``path`` (pairs of node and whether it went left) through the fitted
    ``tree_`` ``t`` whose features ``coder`` made: dicts ``column``, ``op`` (``<=``, ``>``, ``==``,
    ``!=``), ``value``."""
    low: dict[str, float] = {}
    high: dict[str, float] = {}
    out: list[dict[str, Any]] = []
    for node, left in path:
        column, kind, value = coder.features[t.feature[node]]
        threshold = float(t.threshold[node])
        if kind == "numeric":
            if left:
                high[column] = min(high.get(column, np.inf), threshold)
            else:
                low[column] = max(low.get(column, -np.inf), threshold)
        else:  # an indicator: left (<= 0.5) is "not this category", right is "this category"
            cond = {"column": column, "op": "!=" if left else "==", "value": value}
            if cond not in out:
                out.append(cond)
    for column in dict.fromkeys([*low, *high]):
        if column in low:
            out.append({"column": column, "op": ">", "value": round(low[column], 6)})
        if column in high:
            out.append({"column": column, "op": "<=", "value": round(high[column], 6)})
    # A category required equal makes its "!=" conditions on the same column redundant.
    equal = {c["column"] for c in out if c["op"] == "=="}
    return [c for c in out if not (c["op"] == "!=" and c["column"] in equal)]


def rule_of(X: np.ndarray, members: np.ndarray, coder: Encoder,
             seed: int) -> tuple[list[dict[str, Any]], float, float]:
    """The conjunction (a leaf's path of a shallow slice-against-rest tree, balanced classes) that
    best matches ``members`` (n,) by F1 on the n rows of ``X`` (n, features), with its precision (the
    share of the rows it selects that are members) and coverage (the share of members it selects);
    ``([], 0.0, 0.0)`` when no leaf holds a member. Leaves are disjoint, so a leaf meeting
    :data:`MIN_RULE_PRECISION` and :data:`MIN_RULE_COVERAGE` (both above a half) is the best by F1."""
    from sklearn.tree import DecisionTreeClassifier

    tree = DecisionTreeClassifier(max_depth=DESCRIBE_DEPTH, class_weight="balanced",
                                  min_samples_leaf=max(5, int(members.sum()) // 10), random_state=seed).fit(X, members)
    leaves = tree.apply(X)
    rules = node_rules(tree, coder)
    best, best_f1, figures = None, -1.0, (0.0, 0.0)
    for leaf in np.unique(leaves):
        sel = leaves == leaf
        tp = float((sel & members).sum())
        if not tp or leaf == 0:
            continue
        p, r = tp / sel.sum(), tp / members.sum()
        f1 = 2 * p * r / (p + r)
        if f1 > best_f1:
            best, best_f1, figures = leaf, f1, (p, r)
    if best is None:
        return [], 0.0, 0.0
    return rules[int(best)], figures[0], figures[1]


def cluster_rule(X: np.ndarray, members: np.ndarray, coder: Encoder,
                 seed: int) -> tuple[list[dict[str, Any]] | None, float | None, float | None, str]:
    """The rule that states a cluster ``members`` (n,) on the columns of ``X`` (n, features), its
    precision and coverage (:func:`rule_of`) and ``""``; or, when the best rule falls below
    :data:`MIN_RULE_PRECISION` or :data:`MIN_RULE_COVERAGE`, ``(None, None, None, why)``, ``why``
    naming the rule tried and its figures."""
    rule, p, r = rule_of(X, members, coder, seed)
    if rule and p >= MIN_RULE_PRECISION and r >= MIN_RULE_COVERAGE:
        return rule, p, r, ""
    if not rule:
        return None, None, None, "no rule on the input columns states it"
    return None, None, None, (f"no rule on the input columns states it: the best, {conditions_text(rule)}, has "
                              f"precision {p:.0%} and coverage {r:.0%} ({MIN_RULE_PRECISION:.0%} and "
                              f"{MIN_RULE_COVERAGE:.0%} needed)")


def conditions_text(conditions: Sequence[Mapping[str, Any]]) -> str:
    """A rule as a person reads it: ``x3 > 2.1 and plan = "basic"``."""
    parts = []
    for c in conditions:
        if c["op"] in ("==", "!="):
            parts.append(f'{c["column"]} {"=" if c["op"] == "==" else "!="} "{c["value"]}"')
        else:
            parts.append(f'{c["column"]} {c["op"]} {c["value"]:.4g}')
    return " and ".join(parts)


def conditions_mask(frame: pd.DataFrame, conditions: Sequence[Mapping[str, Any]]) -> np.ndarray:
    """(N,) bool: the rows of ``frame`` meeting every condition (a missing number meets none).

    Raises ``KeyError`` naming a column ``frame`` lacks."""
    mask = np.ones(len(frame), dtype=bool)
    for c in conditions:
        if c["column"] not in frame.columns:
            raise KeyError(f"column {c['column']!r} of a discovered slice is not in the data")
        col = frame[c["column"]]
        if c["op"] in ("==", "!="):
            same = (col.astype(str) == str(c["value"])).to_numpy() & col.notna().to_numpy()
            mask &= same if c["op"] == "==" else ~same
        else:
            x = pd.to_numeric(col, errors="coerce").to_numpy(dtype=float)
            with np.errstate(invalid="ignore"):
                mask &= (x <= c["value"]) if c["op"] == "<=" else (x > c["value"])
    return mask
