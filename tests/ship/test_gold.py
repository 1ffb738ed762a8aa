"""Issue 26, gold with holes: classes gold cannot measure are named in every verdict and never called
fine ([gate] unmeasured decides what they do to promotion); gold versions are recorded and the
champion is re-scored when gold changes, a relabel in place said in one line."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from data_engine.ship import gate, registry
from data_engine.ship.deploy import promote_gated
from data_engine.ship.evaluation import predict_gold
from data_engine.ship.gate import Evaluation, decide_promotion
from data_engine.ship.gold import (
    assess_unmeasured,
    current_gold_version,
    min_class_gold,
)
from data_engine.ship.scoring import rescore_champion
from data_engine.ship.training import train_candidate
from data_engine.store.config import GateConfig
from data_engine.store.warehouse import open_warehouse
from data_engine.triggers import gold_trigger
from tests.homes import PIXELS, digits_split
from tests.loop_support import insert_examples, make_home, review

CLASSES = ["a", "b", "c"]


def test_the_minimum_follows_alpha_unless_set():
    # 0.5^n < alpha: n = 5 at 0.05 (0.5^4 = 0.0625), 7 at 0.01 (0.5^6 = 0.0156), 5 at exactly 0.0625.
    assert min_class_gold(GateConfig()) == 5
    assert min_class_gold(GateConfig(alpha=0.01)) == 7
    assert min_class_gold(GateConfig(alpha=0.0625)) == 5
    assert min_class_gold(GateConfig(min_class_gold=2)) == 2


def _eval(version, recalls, support):
    n = sum(support.values())
    return Evaluation(version, n, 0.9, 0.9, recalls, {}, support)


def _decide(cand_oof, champ_oof, gate_cfg=GateConfig(min_gold=20), *, champion_classes=("a", "b", "c"),
            support=None):
    """Class 'c' has 3 gold examples (fewer than 5): unmeasured. The gold figures are a tie."""
    support = support or {"a": 40, "b": 40, "c": 3}
    recalls = {"a": 1.0, "b": 1.0, "c": 2 / 3}
    cand, champ = _eval(2, recalls, support), _eval(1, recalls, support)
    holes = assess_unmeasured(CLASSES, support, recalls, gate_cfg, candidate_oof=cand_oof, champion_oof=champ_oof,
                              champion_classes=champion_classes)
    y = np.array(["a"] * 40 + ["b"] * 40 + ["c"] * 3)
    pred = y.copy()
    pred[-1] = "a"
    return decide_promotion(cand, champ, gate_cfg, pairs=(y, pred, pred), unmeasured=holes)


def test_an_unmeasured_class_is_named_and_never_called_fine():
    v = _decide({"c": (0.95, 60)}, {"c": (0.97, 60)})
    assert v.promote and [u.name for u in v.unmeasured] == ["c"]
    assert "no class has gold recall below" not in v.reason
    assert "no measured class has gold recall below 0.5" in v.reason
    assert ("unmeasured on gold (fewer than 5 gold examples, [gate] unmeasured = 'out_of_fold'): class 'c' "
            "(3 gold examples, 2 right; out-of-fold recall 0.95 of 60 against the champion's 0.97 of 60: within "
            "[gate] unmeasured_tolerance = 0.1)") in v.reason
    assert v.metadata()["unmeasured_classes"] == {"c": {"gold_support": 3, "candidate_out_of_fold_recall": 0.95,
                                                        "champion_out_of_fold_recall": 0.97, "passed": True}}
    # Measured classes are still named when low; a class with enough gold is not unmeasured.
    full = _decide({"c": (0.95, 60)}, {"c": (0.97, 60)}, support={"a": 40, "b": 40, "c": 5})
    assert full.unmeasured == () and "no class has gold recall below 0.5" in full.reason


@pytest.mark.parametrize("cand_oof, champ_oof, champion_classes, promote, words", [
    # Much worse out of fold than the champion: refused although gold ties.
    ({"c": (0.50, 60)}, {"c": (0.97, 60)}, ("a", "b", "c"), False, "more than [gate] unmeasured_tolerance"),
    # The candidate saw no label of the class the champion predicts (relabelled away).
    ({"c": (None, 0)}, {"c": (0.97, 60)}, ("a", "b", "c"), False, "no training label of the class for the candidate"),
    # Neither model was trained on the class: nothing is lost.
    ({"c": (None, 0)}, {"c": (None, 0)}, ("a", "b"), True, "no training label of the class for either model"),
    # No out-of-fold figures for the candidate (a named [retrain] model): it cannot show the class.
    (None, {"c": (0.97, 60)}, ("a", "b", "c"), False, "no out-of-fold figures recorded for the candidate"),
    # No champion figure (a champion from before figures were recorded): at least min_class_recall.
    ({"c": (0.60, 60)}, None, ("a", "b", "c"), True, "at least [gate] min_class_recall = 0.5"),
    ({"c": (0.40, 60)}, None, ("a", "b", "c"), False, "below [gate] min_class_recall = 0.5"),
])
def test_the_out_of_fold_rule(cand_oof, champ_oof, champion_classes, promote, words):
    v = _decide(cand_oof, champ_oof, champion_classes=champion_classes)
    assert v.promote is promote and words in v.reason
    assert v.outcome == "tied"  # the gold figures alone would promote every one of them
    if not promote:
        assert v.reason.startswith("gold cannot measure class(es) 'c'")
        # A trial read "so the candidate is promoted" inside this refusal.
        assert "candidate is promoted" not in v.reason and "gold figures alone would promote" in v.reason
        assert [c.name for c in v.failed_checks] == ["unmeasured c"]


def test_refuse_and_allow_settings_and_the_first_model():
    assert not _decide({"c": (1.0, 60)}, {"c": (0.9, 60)}, GateConfig(min_gold=20, unmeasured="refuse")).promote
    allowed = _decide({"c": (0.0, 60)}, {"c": (1.0, 60)}, GateConfig(min_gold=20, unmeasured="allow"))
    assert allowed.promote and "class 'c' (3 gold examples, 2 right; [gate] unmeasured = 'allow')" in allowed.reason
    support, recalls = {"a": 40, "b": 40}, {"a": 1.0, "b": 1.0}
    holes = assess_unmeasured(CLASSES, support, recalls, GateConfig(), candidate_oof={"c": (0.0, 60)})
    first = decide_promotion(_eval(1, recalls, support), None, GateConfig(min_gold=20), unmeasured=holes)
    assert first.promote and "class 'c' (0 gold examples; out-of-fold recall 0.00 of 60; first model" in first.reason


def _champion_home(tmp_path, *, n_train=600, n_gold=300, without=None):
    """Digits (gold ``without`` one class, if given); the first model, trained on clean labels, is
    the champion. Returns the home, the split, the first model's record and the gate's verdict."""
    home = make_home(tmp_path)
    info = digits_split(n_train=n_train, n_gold=n_gold, n_unlabeled=0)
    ids, X, y = info["ids"], info["X"], info["y"]
    train, gold = info["parts"]["train"], info["parts"]["gold"]
    gold = gold[y[gold] != without]
    with open_warehouse(home) as con:
        insert_examples(con, home, list(ids[train]), X[train], list(y[train]), batch="train-1")
        insert_examples(con, home, list(ids[gold]), X[gold], list(y[gold]), batch="gold-1", gold=True)
        first = train_candidate(con, home).record
        verdict = gate.run_gate(con, home)
        promote_gated(con, home, first.version)
    return home, info, first, verdict


@pytest.mark.parametrize("share, promoted", [(1.0, False), (0.7, False), (0.05, True)])
def test_a_class_missing_from_gold_cannot_hide_a_broken_candidate(tmp_path, share, promoted):
    """The issue's case: gold lacks class '7'; a reviewer gone wrong moves `share` of the training 7s
    to '1'. Gold alone ties (the candidate would be promoted: more reviewed labels) while the
    candidate misses most 7s; the out-of-fold recall from the training labels refuses it."""
    home, info, first, first_verdict = _champion_home(tmp_path, without="7")
    assert first_verdict.promote and [u.name for u in first_verdict.unmeasured] == ["7"]
    assert first.params["out_of_fold_recall"]["7"]["recall"] > 0.95
    ids, X, y = info["ids"], info["X"], info["y"]
    train = info["parts"]["train"]
    sevens = ids[train][y[train] == "7"]
    moved = np.random.default_rng(0).choice(sevens, size=int(round(share * len(sevens))), replace=False)
    with open_warehouse(home) as con:
        review(con, {e: "1" for e in moved})
        cand = train_candidate(con, home).record
        verdict = gate.run_gate(con, home)
        stored = registry.gate_record(con, cand.version)
        held_out = np.setdiff1d(np.arange(len(y)), np.concatenate([train, info["parts"]["gold"]]))
        pred = predict_gold(home, registry.get_model(con, cand.version), pd.DataFrame(X[held_out], columns=PIXELS))
    recall_7 = float(np.mean(pred[y[held_out] == "7"] == "7"))
    assert verdict.outcome == "tied"  # what gold alone says
    assert verdict.promote is promoted and stored.passed is promoted
    assert stored.unmeasured == ("7",) and stored.gold_version == verdict.gold_version
    assert "no class has gold recall below" not in verdict.reason
    if promoted:
        assert recall_7 > 0.9  # 3 of 59 sevens moved: the candidate still finds 7s
    else:
        assert recall_7 < 0.5 and "gold cannot measure class(es) '7'" in verdict.reason
        oof = cand.params["out_of_fold_recall"]["7"]
        assert (oof["recall"] is None) if share == 1.0 else oof["recall"] < 0.5


def test_gold_versions_and_the_champion_rescored_when_gold_is_relabelled_in_place(tmp_path):
    home, info, first, verdict = _champion_home(tmp_path, n_train=300, n_gold=100)
    ids, X, y = info["ids"], info["X"], info["y"]
    train, gold = info["parts"]["train"], info["parts"]["gold"]
    with open_warehouse(home) as con:
        v1, _ = current_gold_version(con)
        assert verdict.gold_version == v1.version and v1.n_gold == 100
        assert registry.gate_record(con, first.version).gold_version == v1.version
        # The gate scored the champion on this gold: nothing to re-score.
        assert not gold_trigger(con).run and rescore_champion(con, home) is None
        before = predict_gold(home, first, pd.DataFrame(X[gold], columns=PIXELS))
        # Gold relabelled in place: the same ids, 10 labels moved to the next digit.
        labels = y[gold].copy()
        labels[:10] = ((labels[:10].astype(int) + 1) % 10).astype(str)
        insert_examples(con, home, list(ids[gold]), X[gold], list(labels), batch="gold-2", gold=True)
        trigger = gold_trigger(con)
        assert trigger.run and f"champion v{first.version} was last scored on gold {v1.version}" in trigger.reason
        assert not gold_trigger(con, retrain_in_flight=["r1"]).run
        result = rescore_champion(con, home)
        v2, _ = current_gold_version(con)
        assert v2.version != v1.version
        acc_before, acc_after = float(np.mean(before == y[gold])), float(np.mean(before == labels))
        assert result.line == (
            f"gold changed since gold {v1.version} (now gold {v2.version}): 10 label(s) changed in place, 0 added, "
            f"0 removed; champion v{first.version} re-scored on 100 gold examples: accuracy {acc_before:.4f} -> "
            f"{acc_after:.4f}, macro-F1 {result.before[1]:.4f} -> {result.macro_f1:.4f}")
        assert result.accuracy == pytest.approx(acc_after)
        assert registry.get_model(con, first.version).metrics["gold_version"] == v2.version
        assert not gold_trigger(con).run and rescore_champion(con, home) is None  # once per gold version
        # The next verdict says the gold it was decided on changed since the previous verdict.
        review(con, {ids[train][0]: y[train][0]})
        train_candidate(con, home)
        nxt = gate.run_gate(con, home)
    assert nxt.gold_version == v2.version
    assert nxt.reason.endswith(f"gold changed since gold {v1.version} (now gold {v2.version}): 10 label(s) changed "
                               "in place, 0 added, 0 removed")
