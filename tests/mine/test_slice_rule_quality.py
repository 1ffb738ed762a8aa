"""A weak slice's rule states its cluster well or is not kept (data_engine.mine.slices,
data_engine.mine.slice_rules): each rule with its precision and coverage against the cluster, no
rule read from a column the run named identifier or shortcut, no cluster stated by a useless
column, and a cluster whose best rule is poor reported (and gated) without one."""

from __future__ import annotations

import numpy as np
import pandas as pd

from data_engine.mine.embedders.base import EMBEDDING_COLUMN
from data_engine.mine.slices import find_weak_slices, stored_slice_masks


def home_rows(n: int = 1200):
    """A generated home: a planted slice (``x3 > 2.5 and plan = "basic"``, half its predictions
    right), a weak cluster of the stored embedding (group 2, 60 % right) that only ``u`` (which the
    run names useless) follows, two noise columns and a row number (an identifier); 93 % right
    elsewhere."""
    rng = np.random.default_rng(21)
    group = rng.integers(0, 6, n)
    vectors = rng.normal(0, 8, (6, 5))[group] + rng.normal(0, 1, (n, 5))
    df = pd.DataFrame({"x3": rng.uniform(0, 4, n), "plan": rng.choice(["basic", "pro", "team"], n),
                       "noise1": rng.normal(0, 1, n), "noise2": rng.normal(0, 1, n),
                       "u": (group == 2) + rng.normal(0, 0.3, n), "row": np.arange(n, dtype=float)})
    schema = {c: "categorical" if c == "plan" else "numeric" for c in df.columns}
    planted = ((df["x3"] > 2.5) & (df["plan"] == "basic")).to_numpy()
    correct = rng.random(n) < np.where(planted, 0.5, np.where(group == 2, 0.6, 0.93))
    return df, schema, vectors, group, planted, correct


def search(findings: dict[str, str]):
    df, schema, vectors, *_, correct = home_rows()
    return find_weak_slices(df, schema, correct, vectors, embedding="e5-small", seed=0, findings=findings,
                            given=np.where(correct, "a", "b"), ids=[f"e{i}" for i in range(len(df))])


def test_a_cluster_is_not_stated_by_a_useless_column_and_a_poor_rule_is_not_kept():
    df, _, vectors, group, planted, _ = home_rows()
    # Left to read every column, the weak cluster is stated by u (97 % of its rows in the cluster, 77 % of
    # the cluster) ...
    free = search({})
    assert [(s.definition.split(" (")[0], s.rule_precision, s.rule_coverage) for s in free.slices] == [
        ("u > 0.7673", 0.9673202614379085, 0.7708333333333334),
        ('plan = "basic" and x3 > 2.497 and u <= 0.7116', 1.0, 1.0)]
    # ... which the run names useless: then the best rule on the other columns is poor (21 % and 46 %),
    # so the cluster is reported without a rule, by its given labels and a few ids, and kept by its centre.
    report = search({"u": "useless", "row": "identifier"})
    cluster, tree = report.slices
    assert cluster.record() == {
        "name": "discovered-1",
        "definition": "a cluster of the embedding; no rule on the input columns states it: the best, noise1 > 0.1509 "
                      "and noise1 <= 1.949 and x3 <= 3.481, has precision 21% and coverage 46% (70% and 70% needed); "
                      "given labels 59% 'a', 41% 'b'; e.g. e2, e4, e6",
        "n": 192, "accuracy": 0.5885, "rest_accuracy": 0.8879, "p_value": 2.932e-19,
        "rule_precision": None, "rule_coverage": None}
    assert cluster.conditions is None and cluster.embedding == "e5-small" and cluster.cluster == 3
    members = np.zeros(len(df), bool)
    members[cluster.members] = True
    assert (members == (group == 2)).all()
    # The error tree's node is its own slice (precision and coverage 1); it may read u, tested against the
    # errors on held-out rows, but never the identifier.
    assert tree.record() == {"name": "discovered-2", "definition": 'plan = "basic" and x3 > 2.497 and u <= 0.7116',
                             "n": 115, "accuracy": 0.5043, "rest_accuracy": 0.8756, "p_value": 3.758e-07,
                             "rule_precision": 1.0, "rule_coverage": 1.0}
    assert planted[tree.members].sum() == 115 and planted.sum() == 130
    assert report.summary["named_columns"] == 5
    assert report.summary["not_in_cluster_rules"] == {"u": "useless", "row": "identifier"}
    # The gate checks the cluster by its centre on gold rows of the same embedding (the rows found), and says
    # it cannot where gold carries another.
    gold = pd.DataFrame({EMBEDDING_COLUMN: list(vectors[:300]), **df.iloc[:300].to_dict("series")})
    rows = pd.DataFrame([s.row() for s in report.slices])
    masks, notes = stored_slice_masks(rows, gold, "e5-small")
    assert notes == [] and (masks["discovered-1"] == (group[:300] == 2)).all()
    assert (masks["discovered-2"] == np.isin(np.arange(300), tree.members)).all()
    masks, notes = stored_slice_masks(rows, gold, "tfidf")
    assert list(masks) == ["discovered-2"] and notes == [
        "discovered slice 'discovered-1' not checked: it has no rule and the data carry no vectors of the embedding "
        "it was found in (e5-small)"]


def test_an_identifier_or_shortcut_column_is_in_no_rule():
    """Errors ordered by row number: the error tree would cut on ``row``; named an identifier (or a
    shortcut) it reads the other columns only, and the cluster's rule too."""
    df, schema, vectors, group, planted, correct = home_rows()
    order = np.argsort(~correct, kind="stable")  # the rows re-ordered so that the wrong ones come last
    df = df.iloc[order].reset_index(drop=True).assign(row=np.arange(len(df), dtype=float))
    correct, vectors = correct[order], vectors[order]
    for finding in ("identifier", "shortcut"):
        free = find_weak_slices(df, schema, correct, vectors, seed=0)
        used = {c["column"] for s in free.slices for c in s.conditions or []}
        kept = find_weak_slices(df, schema, correct, vectors, seed=0, findings={"row": finding})
        assert "row" in used and all(c["column"] != "row" for s in kept.slices for c in s.conditions or [])
