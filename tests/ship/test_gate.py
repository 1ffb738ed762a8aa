"""The promotion gate: exact figures on small arrays, the pure decision, and the gate on a warehouse."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from data_engine.errors import EngineError
from data_engine.ship import gate, registry
from data_engine.ship.gate import Evaluation, SliceResult, decide_promotion, evaluate_predictions
from data_engine.ship.training import train_candidate
from data_engine.store.config import GateConfig, SliceConfig
from data_engine.store.warehouse import open_warehouse
from tests.conftest import NEXT_EVENT_ID
from tests.loop_support import insert_examples, make_home, seed_digits


def ev(version, acc, recalls, *, n=100, f1=None, slices=None, support=None):
    return Evaluation(version, n, acc, acc if f1 is None else f1, recalls, slices or {}, support or {})


# The strict test (the engine's first rule), kept as `[gate] test = "strict"`.
GATE = GateConfig(metric="accuracy", tolerance=0.02, min_gold=20, test="strict")


def test_evaluate_predictions_exact_figures():
    y_true = np.array(["a", "a", "a", "b", "b", "c"])
    y_pred = np.array(["a", "a", "b", "b", "b", "a"])
    frame = pd.DataFrame({"size": [1, 2, 3, 4, 5, 6], "kind": ["x", "x", "y", "y", "y", "x"]})
    slices = (SliceConfig("small", "size", max=3.0), SliceConfig("kind y", "kind", equals="y"),
              SliceConfig("huge", "size", min=100.0))
    e = evaluate_predictions(y_true, y_pred, frame=frame, slices=slices, version=3)
    assert e.n_gold == 6 and e.accuracy == pytest.approx(4 / 6)
    assert e.per_class_recall == pytest.approx({"a": 2 / 3, "b": 1.0, "c": 0.0})
    assert e.per_class_support == {"a": 3, "b": 2, "c": 1}
    assert all(type(c) is str for c in e.per_class_recall)
    # F1: a = 2*(2/3*2/3)/(4/3) = 2/3; b = 2*(2/3*1)/(5/3) = 0.8; c = 0.
    assert e.macro_f1 == pytest.approx((2 / 3 + 0.8 + 0) / 3)
    assert e.slices["small"] == SliceResult(3, pytest.approx(2 / 3), e.slices["small"].macro_f1)
    assert e.slices["kind y"].n == 3 and e.slices["kind y"].accuracy == pytest.approx(2 / 3)  # a->b, b, b
    assert e.slices["huge"] == SliceResult(0, None, None)


def test_slice_on_an_unknown_column_is_a_user_error():
    with pytest.raises(EngineError, match="'nope' is not a dataset input column"):
        gate.slice_mask(pd.DataFrame({"a": [1]}), SliceConfig("s", "nope", equals="1"))


def test_no_gold_refuses_and_says_so():
    v = decide_promotion(Evaluation(2, 0, None, None), None, GATE)
    assert not v.promote and "no gold data" in v.reason


def test_too_little_gold_refuses():
    v = decide_promotion(ev(2, 0.99, {"a": 1.0}, n=5), None, GATE)
    assert not v.promote and "only 5 gold examples" in v.reason


def test_first_model_passes():
    v = decide_promotion(ev(1, 0.9, {"a": 0.9}), None, GATE)
    assert v.promote and "first model" in v.reason and v.champion_version is None


def test_a_first_model_must_beat_the_trivial_baseline():
    """The trial's case: a first model at 0.347 on gold against a majority-class share of 0.382 was promoted."""
    from data_engine.ship.baseline import BaselineFigure
    from data_engine.tasks import Regression

    majority = BaselineFigure("majority-class baseline", "b", 0.382)
    below = decide_promotion(ev(1, 0.347, {"a": 0.9}, n=400), None, GATE, baseline=majority)
    assert not below.promote and below.reason.startswith(
        "first model: accuracy 0.3470 on 400 gold examples is not above the majority-class baseline's 0.3820 "
        "(the training labels alone, scored on the same gold)")
    assert below.metadata()["baseline"] == "majority-class baseline" and below.metadata()["baseline_figure"] == 0.382
    assert below.metadata()["baseline_label"] == "b"
    equal = decide_promotion(ev(1, 0.382, {"a": 0.9}, n=400), None, GATE, baseline=majority)
    assert not equal.promote and "is not above the majority-class baseline's 0.3820" in equal.reason
    above = decide_promotion(ev(1, 0.9, {"a": 0.9}), None, GATE, baseline=majority)
    assert above.promote and above.reason.startswith(
        "first model: no champion yet; accuracy 0.9000 on 100 gold examples, above the majority-class baseline's 0.3820")
    # An error measure: better is lower.
    mean = BaselineFigure("training-mean baseline", "2.5", 1.25)
    numbers = GateConfig(metric="mae", min_gold=20)
    worse = decide_promotion(Evaluation(1, 50, None, None, figures={"mae": 1.3}), None, numbers, baseline=mean,
                             task=Regression())
    assert not worse.promote and worse.reason.startswith(
        "first model: mae 1.3000 on 50 gold examples is not below the training-mean baseline's 1.2500")
    better = decide_promotion(Evaluation(1, 50, None, None, figures={"mae": 0.4}), None, numbers, baseline=mean,
                              task=Regression())
    assert better.promote and "mae 0.4000 on 50 gold examples, below the training-mean baseline's 1.2500" in better.reason


def test_a_first_model_without_a_figure_is_worded_not_crashed():
    from data_engine.ship.baseline import BaselineFigure
    from data_engine.tasks import Regression

    numbers, no_mae = GateConfig(metric="mae", min_gold=20), Evaluation(1, 50, None, None, figures={})
    # No baseline to compare with: promoted as before, and the reason says the figure is missing.
    alone = decide_promotion(no_mae, None, numbers, task=Regression())
    assert alone.promote and alone.reason == "first model: no champion yet; mae has no figure on the 50 gold examples"
    mean = BaselineFigure("training-mean baseline", "2.5", 1.25)
    missing = decide_promotion(no_mae, None, numbers, baseline=mean, task=Regression())
    assert not missing.promote and missing.reason == (
        "first model: mae has no figure on the 50 gold examples, so it cannot be compared with the training-mean baseline")
    unscored = decide_promotion(Evaluation(1, 50, None, None, figures={"mae": 0.4}), None, numbers,
                                baseline=BaselineFigure("training-mean baseline", "2.5", None), task=Regression())
    assert not unscored.promote and unscored.reason == (
        "first model: mae 0.4000 on 50 gold examples, but the training-mean baseline has no mae there, so the two "
        "cannot be compared")


def test_a_first_model_of_labels_unrelated_to_the_inputs_is_refused(tmp_path):
    """Digits whose labels are drawn at random (55 % '0', 45 % '1'), whatever the image: the first model
    learns nothing that generalises, so on gold it is below always answering '0' (0.575 against 0.635),
    and the gate refuses it with both figures recorded."""
    from data_engine.ship.evaluation import predict_gold
    from tests.homes import PIXELS, digits_split

    home = make_home(tmp_path)
    info = digits_split(n_train=400, n_gold=200, n_unlabeled=0)
    ids, X, parts = info["ids"], info["X"], info["parts"]
    labels = np.where(np.random.default_rng(5).random(len(ids)) < 0.55, "0", "1").astype(object)
    with open_warehouse(home) as con:
        insert_examples(con, home, list(ids[parts["train"]]), X[parts["train"]], list(labels[parts["train"]]),
                        batch="train-1")
        insert_examples(con, home, list(ids[parts["gold"]]), X[parts["gold"]], list(labels[parts["gold"]]),
                        batch="gold-1", gold=True)
        record = train_candidate(con, home).record
        verdict = gate.run_gate(con, home)
        stored = registry.get_model(con, record.version)
        pred = predict_gold(home, record, pd.DataFrame(X[parts["gold"]], columns=PIXELS))
    gold, train = labels[parts["gold"]], labels[parts["train"]]
    majority = "0" if (train == "0").sum() > (train == "1").sum() else "1"
    share, accuracy = float(np.mean(gold == majority)), float(np.mean(pred == gold))
    assert majority == "0" and round(share, 4) == 0.635 and round(accuracy, 4) == 0.575
    assert not verdict.promote and stored.status == "refused"
    assert stored.params["trivial_baseline"] == {"kind": "majority", "name": "majority-class baseline", "label": "0"}
    assert verdict.reason.startswith(f"first model: accuracy {accuracy:.4f} on 200 gold examples is not above the "
                                     f"majority-class baseline's {share:.4f}")
    assert stored.metrics["gate"]["baseline_figure"] == pytest.approx(share)
    assert stored.metrics["gate"]["baseline"] == "majority-class baseline"


def test_equal_or_better_passes_worse_is_refused():
    champ = ev(1, 0.90, {"a": 0.9, "b": 0.9})
    assert decide_promotion(ev(2, 0.90, {"a": 0.9, "b": 0.9}), champ, GATE).promote
    assert decide_promotion(ev(2, 0.93, {"a": 0.95, "b": 0.91}), champ, GATE).promote
    worse = decide_promotion(ev(2, 0.89, {"a": 0.9, "b": 0.9}), champ, GATE)
    assert not worse.promote and "accuracy 0.8900 < champion's 0.9000 on 100 gold examples" in worse.reason
    assert [c.name for c in worse.failed_checks] == ["accuracy"]


def test_a_class_dropping_beyond_tolerance_is_refused_even_if_accuracy_rises():
    champ = ev(1, 0.90, {"a": 0.90, "b": 0.90})
    v = decide_promotion(ev(2, 0.95, {"a": 0.99, "b": 0.87}), champ, GATE)
    assert not v.promote and "recall of class 'b' 0.8700" in v.reason
    within = decide_promotion(ev(2, 0.95, {"a": 0.99, "b": 0.885}), champ, GATE)
    assert within.promote


def test_one_gold_example_is_below_resolution_two_are_a_drop():
    champ = ev(1, 0.90, {"a": 0.9, "b": 0.9})
    support = {"a": 10, "b": 90}
    one = decide_promotion(ev(2, 0.91, {"a": 0.8, "b": 0.92}, support=support), champ, GATE)
    assert one.promote  # one of 10 examples of class a: 0.1 allowed
    two = decide_promotion(ev(2, 0.91, {"a": 0.7, "b": 0.92}, support=support), champ, GATE)
    assert not two.promote and "recall of class 'a' 0.7000" in two.reason and "allowed 0.1000" in two.reason


def test_slices_are_unit_tests():
    cfg = GateConfig(tolerance=0.02, min_gold=20, slices=(SliceConfig("dark", "px0", min=1.0),), test="strict")
    champ = ev(1, 0.9, {"a": 0.9}, slices={"dark": SliceResult(30, 0.9, 0.9)})
    drop = decide_promotion(ev(2, 0.95, {"a": 0.95}, slices={"dark": SliceResult(30, 0.8, 0.8)}), champ, cfg)
    assert not drop.promote and "slice 'dark'" in drop.reason
    empty = decide_promotion(ev(2, 0.95, {"a": 0.95}, slices={"dark": SliceResult(0, None, None)}), champ, cfg)
    assert not empty.promote and "no gold examples" in empty.reason


def test_macro_f1_metric_is_used_when_configured():
    cfg = GateConfig(metric="macro_f1", tolerance=0.02, min_gold=20, test="strict")
    champ = ev(1, 0.90, {"a": 0.9}, f1=0.80)
    assert not decide_promotion(ev(2, 0.95, {"a": 0.9}, f1=0.79), champ, cfg).promote
    assert decide_promotion(ev(2, 0.85, {"a": 0.9}, f1=0.81), champ, cfg).promote


def test_verdict_metadata_for_an_asset_check():
    v = decide_promotion(ev(2, 0.8, {"a": 0.8}), ev(1, 0.9, {"a": 0.9}), GATE)
    meta = v.metadata()
    assert meta["promote"] is False and meta["candidate_accuracy"] == 0.8 and meta["champion_accuracy"] == 0.9
    assert meta["checks_failed"] == 2 and [r["name"] for r in v.check_rows()] == ["accuracy", "recall a"]


@pytest.fixture()
def env(tmp_path):
    home = make_home(tmp_path)
    return home, seed_digits(home, n_train=400, n_gold=200, n_unlabeled=0)


def test_a_worse_candidate_is_refused_and_the_reason_recorded(env):
    home, info = env
    with open_warehouse(home) as con:
        first = train_candidate(con, home).record
        verdict = gate.run_gate(con, home)
        assert verdict.promote
        registry.set_status(con, first.version, "champion", verdict.reason)
        # A worse candidate: trained on labels shuffled by a reviewer gone wrong.
        ids = info["ids"][info["parts"]["train"]]
        rng = np.random.default_rng(1)
        bad = rng.permutation(info["y"][info["parts"]["train"]])
        con.executemany(
            "INSERT INTO label_ledger (event_id, example_id, example_version, label, source, actor) "
            f"VALUES ({NEXT_EVENT_ID}, ?, 1, ?, 'review', 't')",
            [[e, lab] for e, lab in zip(ids, bad)],
        )
        worse = train_candidate(con, home).record
        verdict = gate.run_gate(con, home)
        stored = registry.get_model(con, worse.version)
        champ = registry.current_champion(con)
    assert not verdict.promote and verdict.candidate_version == worse.version
    assert verdict.candidate.accuracy < verdict.champion.accuracy
    n = verdict.candidate.n_gold
    assert verdict.losses - verdict.wins == round((verdict.champion.accuracy - verdict.candidate.accuracy) * n)
    assert verdict.metadata()["gold_only_champion_right"] == verdict.losses
    assert stored.status == "refused" and stored.reason == verdict.reason and "refused" in stored.reason
    assert stored.metrics["accuracy"] == pytest.approx(verdict.candidate.accuracy)
    assert champ.version == first.version


def test_without_gold_the_gate_refuses(tmp_path):
    home = make_home(tmp_path)
    info = seed_digits(home, n_train=300, n_gold=0, n_unlabeled=0)
    with open_warehouse(home) as con:
        rec = train_candidate(con, home).record
        verdict = gate.run_gate(con, home)
        stored = registry.get_model(con, rec.version)
    assert not verdict.promote and "no gold data" in verdict.reason
    assert stored.status == "refused" and "no gold data" in stored.reason
    assert len(info["ids"]) > 0


def test_gate_without_candidate_is_a_clear_error(tmp_path):
    home = make_home(tmp_path)
    with open_warehouse(home) as con:
        insert_examples(con, home, ["a"], np.zeros((1, 64)), ["1"], batch="b")
        with pytest.raises(EngineError, match="no candidate model to evaluate"):
            gate.run_gate(con, home)
