"""The paired gate: exact McNemar figures, the bootstrap, Holm, and the decisions the issue asked for
(a better candidate is not refused for one or two gold examples of a class; a worse one is; a tie
goes to the model trained on more reviewed labels; every verdict states its figures)."""

from __future__ import annotations

from math import comb

import numpy as np
import pytest
from sklearn.metrics import f1_score

from data_engine.ship.gate import decide_promotion, evaluate_predictions
from data_engine.tasks.paired import bootstrap_macro_f1, holm, macro_f1_rows, mcnemar
from data_engine.ship.verdict import Provenance
from data_engine.store.config import GateConfig, SliceConfig

PAIRED = GateConfig(min_gold=20)  # the defaults: test = "paired", alpha = 0.05, min_class_recall = 0.5


def test_mcnemar_exact_figures():
    # 100 examples: 10 only the candidate gets right, 2 only the champion, 88 both or neither.
    cand = np.array([True] * 10 + [False] * 2 + [True] * 80 + [False] * 8)
    champ = np.array([False] * 10 + [True] * 2 + [True] * 80 + [False] * 8)
    d = mcnemar(cand, champ, alpha=0.05)
    assert (d.n, d.wins, d.losses, d.diff) == (100, 10, 2, pytest.approx(0.08))
    # Under "equally good", losses ~ Binomial(12, 1/2).
    assert d.p_better == pytest.approx(sum(comb(12, k) for k in range(10, 13)) / 2**12)
    assert d.p_worse == pytest.approx(sum(comb(12, k) for k in range(2, 13)) / 2**12)
    assert d.low < 0.08 < d.high and d.low > 0  # significantly better at 0.05: the interval excludes 0
    assert d.confidence == pytest.approx(0.9)
    assert "10 gold examples only the candidate gets right, 2 only the champion" in d.describe("accuracy")
    one = mcnemar(np.array([True, False, False]), np.array([False, True, True]), alpha=0.05)
    assert "; 1 gold example only the candidate gets right, 2 only the champion" in one.describe("accuracy")
    same = mcnemar(cand, cand, alpha=0.05)
    assert (same.diff, same.p_worse, same.p_better) == (0.0, 1.0, 1.0)


def test_holm_adjustment():
    assert holm([0.01, 0.04, 0.03, 0.5]) == pytest.approx([0.04, 0.09, 0.09, 0.5])
    assert holm([]) == []


def test_macro_f1_rows_match_scikit_learn():
    rng = np.random.default_rng(0)
    t, p = rng.integers(0, 4, size=(3, 50)), rng.integers(0, 4, size=(3, 50))
    expected = [f1_score(t[i], p[i], labels=range(4), average="macro", zero_division=0) for i in range(3)]
    assert macro_f1_rows(t, p, 4) == pytest.approx(expected)


def test_paired_bootstrap_of_macro_f1():
    rng = np.random.default_rng(1)
    y = rng.integers(0, 4, 400).astype(str)
    good = np.where(rng.random(400) < 0.9, y, "0")
    bad = np.where(rng.random(400) < 0.6, y, "0")
    d = bootstrap_macro_f1(y, good, bad, alpha=0.05)
    assert d.diff == pytest.approx(f1_score(y, good, average="macro") - f1_score(y, bad, average="macro"))
    assert d.low > 0 and d.p_better < 0.01 and d.p_worse > 0.99
    assert bootstrap_macro_f1(y, good, bad, alpha=0.05) == d  # seeded: the same verdict every time
    tie = bootstrap_macro_f1(y, good, good, alpha=0.05)
    assert (tie.diff, tie.p_worse, tie.p_better) == (0.0, 1.0, 1.0)


def scenario(n_per_class: int = 36, classes: int = 10, *, cand_wrong: dict[str, int], champ_wrong: dict[str, int]):
    """Gold labels and two models' predictions: each model gets the given number of each class wrong
    (different examples, so the discordant pairs are the sum)."""
    y = np.repeat([str(c) for c in range(classes)], n_per_class)
    cand, champ = y.copy(), y.copy()
    for c in range(classes):
        idx = np.flatnonzero(y == str(c))
        k, h = cand_wrong.get(str(c), 0), champ_wrong.get(str(c), 0)
        wrong = str((c + 1) % classes)
        cand[idx[:k]] = wrong
        champ[idx[k:k + h]] = wrong
    return y, cand, champ


def decide(y, cand, champ, gate=PAIRED, **kw):
    ce = evaluate_predictions(y, cand, version=2)
    he = evaluate_predictions(y, champ, version=1)
    return decide_promotion(ce, he, gate, pairs=(y, cand, champ), **kw)


def test_a_better_candidate_losing_two_of_36_in_one_class_is_not_refused():
    # The tabular case: better on the whole, one class lost 2 of its 36 gold examples.
    y, cand, champ = scenario(cand_wrong={"3": 2}, champ_wrong={"1": 3, "5": 3, "7": 3})
    strict = decide(y, cand, champ, GateConfig(min_gold=20, test="strict"))
    assert not strict.promote and "recall of class '3'" in strict.reason
    v = decide(y, cand, champ)
    assert v.promote and v.outcome in ("better", "tied")
    assert v.headline.n == 360 and v.headline.diff == pytest.approx(7 / 360)
    check3 = next(c for c in v.checks if c.name == "recall 3")
    assert check3.passed and check3.n == 36 and check3.diff == pytest.approx(-2 / 36)


def test_a_clearly_worse_candidate_is_refused_with_its_figures():
    y, cand, champ = scenario(cand_wrong={str(c): 3 for c in range(10)}, champ_wrong={})
    v = decide(y, cand, champ)
    assert not v.promote and v.outcome == "worse"
    assert "accuracy -0.0833" in v.reason and "CI [" in v.reason and "one-sided p-values: " in v.reason
    assert "360 gold examples" in v.reason and v.losses == 30 and v.wins == 0


def test_a_class_much_worse_refuses_even_when_the_total_is_better():
    y, cand, champ = scenario(cand_wrong={"4": 12}, champ_wrong={str(c): 2 for c in range(10) if c != 4})
    v = decide(y, cand, champ)
    assert v.headline.diff > 0
    assert not v.promote and "recall of class '4' -0.3333 on 36 gold examples" in v.reason


def test_a_tie_goes_to_the_model_trained_on_more_reviewed_labels():
    y, cand, champ = scenario(cand_wrong={"2": 2}, champ_wrong={"6": 1})
    more = decide(y, cand, champ, candidate_seen=Provenance(250, 900), champion_seen=Provenance(120, 700))
    assert more.promote and more.outcome == "tied"
    assert "trained on 250 reviewed labels, the champion on 120" in more.reason
    fewer = decide(y, cand, champ, candidate_seen=Provenance(100, 900), champion_seen=Provenance(120, 700))
    assert not fewer.promote and fewer.outcome == "tied" and "(120 against 100)" in fewer.reason
    # Same reviewed labels (a new labeled batch landed): the newer label snapshot wins.
    newer = decide(y, cand, champ, candidate_seen=Provenance(120, 900), champion_seen=Provenance(120, 700))
    assert newer.promote
    # The verdict names what decided it (was "trained on 120 reviewed labels, the champion on 120, so ...").
    assert "both were trained on 120 reviewed labels and the candidate on the newer label snapshot " \
        "(900 against 700), so the candidate is promoted" in newer.reason


def test_low_recall_classes_are_named_in_every_verdict():
    y, cand, champ = scenario(cand_wrong={"8": 20}, champ_wrong={"8": 16})
    for v in (decide(y, cand, champ),
              decide_promotion(evaluate_predictions(y, cand, version=2), None, PAIRED),
              decide(y, cand, champ, GateConfig(min_gold=20, test="strict"))):
        assert "low gold recall (< 0.5): class '8' 0.44 of 36" in v.reason
        assert v.low_recall == {"8": (pytest.approx(16 / 36), 36)}
    clean = decide(*scenario(cand_wrong={}, champ_wrong={}))
    assert "no class has gold recall below 0.5" in clean.reason


def test_tolerance_is_deprecated_under_the_paired_test():
    y, cand, champ = scenario(cand_wrong={}, champ_wrong={})
    v = decide(y, cand, champ, GateConfig(min_gold=20, tolerance=0.02))
    assert "gate.tolerance is deprecated and ignored by test = 'paired'" in v.reason


def test_macro_f1_and_slices_use_the_same_logic():
    y, cand, champ = scenario(cand_wrong={str(c): 3 for c in range(10)}, champ_wrong={})
    v = decide(y, cand, champ, GateConfig(min_gold=20, metric="macro_f1"))
    assert not v.promote and v.headline.method == "paired bootstrap"
    # A slice of 20 examples, 4 of which only the candidate misses: below what 20 examples resolve.
    y, cand, champ = scenario(cand_wrong={"0": 4}, champ_wrong={"5": 4})
    mask = np.zeros(len(y), dtype=bool)
    mask[:20] = True
    cfg = GateConfig(min_gold=20, slices=(SliceConfig("first", "px0", min=0.0),))
    v = decide(y, cand, champ, cfg, slice_masks={"first": mask})
    s = next(c for c in v.checks if c.name == "slice first")
    assert s.passed and s.n == 20 and s.diff == pytest.approx(-4 / 20)


def test_bench_reviews_correct_or_damage_exactly_the_asked_share():
    from data_engine.bench.gate import _review

    classes = ["a", "b", "c"]
    clean = np.array(list("abcabcabca" * 10), dtype=object)
    noisy = clean.copy()
    noisy[:40] = np.where(clean[:40] == "a", "b", "a")  # 40 wrong labels, 60 right
    fixed, n = _review(noisy, clean, classes, 0.5, seed=0)
    assert n == 20 and (fixed != clean).sum() == 20 and ((fixed != noisy) & (fixed == clean)).sum() == 20
    damaged, n = _review(noisy, clean, classes, -0.25, seed=0)
    assert n == 15 and (damaged != clean).sum() == 55 and (damaged[:40] == noisy[:40]).all()


def test_bench_gate_runs_end_to_end_on_a_small_set():
    from data_engine.bench.gate import GATES, run_bench, table

    rows = run_bench(model="linear", train_rows=400, pool_rows=1200, noise=0.3, draws=2, seed=0,
                     gold_sizes=(100,), reviews=(0.5, -0.3))
    assert [r.candidate for r in rows] == ["50% of flips corrected", "30% of right labels changed"]
    assert all(set(r.promoted) == {g for g, _ in GATES} and all(v in (0, 0.5, 1) for v in r.promoted.values())
               for r in rows)
    assert rows[0].true_difference > 0 > rows[1].true_difference  # the truth the bench scores against
    assert table(rows).count("\n") == 3 and "paired, alpha 0.05" in table(rows)
