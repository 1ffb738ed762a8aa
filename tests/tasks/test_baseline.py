"""Each task's trivial baseline (data_engine.tasks.baseline): the one label a model that learnt nothing
from the inputs answers, read off the training labels, and its figure of the gate's metric on gold."""

from __future__ import annotations

import numpy as np
import pytest

from data_engine.tasks import NER, Classification, Detection, Multilabel, Regression
from data_engine.tasks.baseline import TrivialBaseline, trivial_baseline


def test_one_class_per_example_predicts_the_training_majority():
    base = Classification().trivial_baseline(["b", "a", "b", "c", "b"])
    assert base == TrivialBaseline("majority", "majority-class baseline", "b")
    # A tie goes to the first label in sorted order, whatever order the labels came in.
    assert Classification().trivial_baseline(["c", "a", "c", "a"]).label == "a"
    gold = np.array(["a", "b", "b", "c", "a", "a", "b", "b"], dtype=object)
    figures = Classification().metrics(gold, base.predictions(len(gold)), ["a", "b", "c"])
    assert figures["accuracy"] == pytest.approx(4 / 8)


def test_tags_predict_each_tags_training_majority():
    train = ['["x"]', '["x","y"]', '[]', '["x","z"]']
    base = Multilabel().trivial_baseline(train)
    assert base.kind == "tag_majority" and base.name == "per-tag majority baseline"
    assert base.label == '["x"]'  # x on 3 of 4; y and z on 1 of 4
    assert Multilabel().trivial_baseline(['["x"]', '["y"]', '[]', '["x","y"]']).label == "[]"  # 2 of 4: no majority
    gold = np.array(['["x"]', '["y"]', '["x","y"]', '[]'], dtype=object)
    figures = Multilabel().metrics(gold, base.predictions(4), ["x", "y", "z"])
    # Predicted x 4 times: 2 right (tp), 2 wrong (fp); gold y twice missed (fn). Micro-F1 = 2*2 / (2*2 + 2 + 2).
    assert figures["micro_f1"] == pytest.approx(0.5) and figures["accuracy"] == pytest.approx(1 / 4)


def test_numbers_predict_the_training_mean():
    base = Regression().trivial_baseline(["1.0", "2.0", "4.5"])
    assert base == TrivialBaseline("mean", "training-mean baseline", "2.5")
    figures = Regression().metrics(np.array(["2.0", "3.5", "0.5"], dtype=object), base.predictions(3), [])
    assert figures["mae"] == pytest.approx((0.5 + 1.0 + 2.0) / 3)


def test_boxes_and_spans_predict_nothing():
    for task in (NER(), Detection()):
        base = task.trivial_baseline(['[{"start":0,"end":3,"label":"PER"}]'])
        assert base == TrivialBaseline("empty", "empty-prediction baseline", "[]")
    gold = np.array(['[{"start":0,"end":3,"label":"PER"}]', '[]'], dtype=object)
    assert NER().metrics(gold, TrivialBaseline("empty", "", "[]").predictions(2), ["PER"])["f1"] == 0.0


def test_a_baseline_needs_a_known_kind_and_training_labels():
    with pytest.raises(ValueError, match="unknown trivial baseline 'median'"):
        trivial_baseline("median", ["1"])
    with pytest.raises(ValueError, match="needs training labels"):
        trivial_baseline("majority", [])


def test_the_baselines_are_scikit_learns_dummy_estimators():
    from sklearn.dummy import DummyClassifier, DummyRegressor

    # The mean is DummyRegressor's (np.average, pairwise sums): 1.4 / 6 comes out one unit in the last
    # place above math.fsum's correctly rounded 0.2333333333333333.
    numbers = ["0.1"] * 4 + ["0.7", "0.3"]
    fitted = DummyRegressor(strategy="mean").fit(np.zeros((6, 1)), np.array([float(v) for v in numbers]))
    assert Regression().trivial_baseline(numbers).label == "0.23333333333333336" == repr(float(fitted.constant_[0][0]))
    labels = ["b", "c", "a", "c", "b"]
    majority = DummyClassifier(strategy="most_frequent").fit(np.zeros((5, 1)), np.array(labels, dtype=object))
    assert Classification().trivial_baseline(labels).label == "b" == majority.predict(np.zeros((1, 1)))[0]
    # One tag only (a single output) and no tag at all (no output) still give a tag set.
    assert Multilabel().trivial_baseline(['["x"]', '["x"]', '[]']).label == '["x"]'
    assert Multilabel().trivial_baseline(['[]', '[]']).label == "[]"
