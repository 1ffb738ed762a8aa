"""The demo's comparison: every example predicted once, by a model that did not train on it."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from data_engine.demo.comparison import HeldOut, held_out_accuracy
from data_engine.mine.models import resolve_spec


def two_blobs(n: int = 120, n_gold: int = 30, seed: int = 0) -> HeldOut:
    rng = np.random.default_rng(seed)
    cls = rng.integers(0, 2, n)
    X = pd.DataFrame({"x": rng.normal(0, 0.4, n) + 4 * cls, "y": rng.normal(0, 0.4, n)})
    ids = np.array([f"e{i:03d}" for i in range(n)])
    return HeldOut(X=X, example_ids=ids, truth=np.array(["a", "b"])[cls], is_gold=np.arange(n) < n_gold,
                   schema={"x": "numeric", "y": "numeric"})


def test_every_example_is_scored_once_against_the_truth_by_a_model_that_did_not_see_it():
    data = two_blobs()
    truth = pd.Series(data.truth, index=data.example_ids)
    swapped = truth.map({"a": "b", "b": "a"})
    # Half the training labels swapped: only the fold models see them, the gold predictions too.
    half = truth.copy()
    train_ids = data.example_ids[~data.is_gold]
    half[train_ids[::2]] = swapped[train_ids[::2]]
    spec = resolve_spec("linear", "tabular")
    acc = held_out_accuracy(data, {"true": (spec, truth), "swapped": (spec, swapped), "half": (spec, half)},
                            n_jobs=1)
    assert acc["true"] == pytest.approx(1.0)
    assert acc["swapped"] == pytest.approx(0.0)
    # Each of the 120 examples counts once in each of the repeated splits (120 is below the repeat
    # threshold): accuracies are multiples of 1/(120 * repeats).
    from data_engine.demo.comparison import EVAL_REPEATS, eval_repeats

    assert eval_repeats(int((~data.is_gold).sum())) == EVAL_REPEATS
    assert all(abs(v * 120 * EVAL_REPEATS - round(v * 120 * EVAL_REPEATS)) < 1e-9 for v in acc.values())


def test_small_sets_average_repeated_shuffles_of_the_folds_and_large_ones_keep_one_split():
    from data_engine.demo.comparison import EVAL_REPEATS, REPEAT_BELOW, eval_repeats

    assert eval_repeats(300) == EVAL_REPEATS and eval_repeats(REPEAT_BELOW - 1) == EVAL_REPEATS
    # The digits demo's 1,438 training examples keep the one split its printed figures come from.
    assert eval_repeats(REPEAT_BELOW) == 1 and eval_repeats(1438) == 1


def test_a_figure_of_repeated_splits_is_the_mean_of_each_split_s_figure(monkeypatch):
    # Half the training labels wrong on one side: each split's accuracy differs, the result is their mean.
    from data_engine.demo import comparison

    data = two_blobs(n=200, n_gold=0, seed=3)
    truth = pd.Series(data.truth, index=data.example_ids)
    noisy = truth.copy()
    noisy[data.example_ids[:60]] = noisy[data.example_ids[:60]].map({"a": "b", "b": "a"})
    spec = resolve_spec("knn", "tabular")
    repeated = comparison.held_out_accuracy(data, {"r": (spec, noisy)}, n_jobs=1)["r"]
    singles = []
    monkeypatch.setattr(comparison, "eval_repeats", lambda n: 1)
    for r in range(comparison.EVAL_REPEATS):
        singles.append(comparison.held_out_accuracy(data, {"r": (spec, noisy)}, n_jobs=1, seed=r)["r"])
    assert len(set(singles)) > 1
    assert repeated == pytest.approx(float(np.mean(singles)))


def test_examples_without_a_label_in_a_recipe_are_left_out_of_training_only():
    data = two_blobs()
    truth = pd.Series(data.truth, index=data.example_ids)
    discarded = truth.drop(data.example_ids[~data.is_gold][:10])
    acc = held_out_accuracy(data, {"some discarded": (resolve_spec("knn", "tabular"), discarded)}, n_jobs=1)
    assert acc["some discarded"] == pytest.approx(1.0)  # the 10 still count as test examples


def test_a_home_without_gold_data_is_measured_on_its_training_examples():
    # A user's own home often has no gold files: predicting the empty gold split crashed the demo.
    data = two_blobs(n_gold=0)
    truth = pd.Series(data.truth, index=data.example_ids)
    swapped = truth.map({"a": "b", "b": "a"})
    acc = held_out_accuracy(data, {"true": (resolve_spec("hgb", "tabular"), truth),
                                   "swapped": (resolve_spec("linear", "tabular"), swapped)}, n_jobs=1)
    assert acc["true"] == pytest.approx(1.0) and acc["swapped"] == pytest.approx(0.0)


def test_the_comparison_leaves_out_model_families_that_cannot_read_the_columns():
    # A text home: gradient boosting reads no text, and the demo's comparison stopped on it.
    from data_engine.demo.comparison import _reads

    assert not _reads(resolve_spec("hgb", "text"), {"sentence": "text"})
    assert _reads(resolve_spec("linear", "text"), {"sentence": "text"})
    assert _reads(resolve_spec("hgb", "tabular"), {"x": "numeric"})


def test_tags_are_scored_by_exact_match_with_the_tag_models():
    from data_engine.store.config import DatasetConfig
    from data_engine.tasks import task_for

    rng = np.random.default_rng(1)
    n = 150
    X = pd.DataFrame({"x": rng.normal(size=n), "y": rng.normal(size=n)})
    tags = [[t for t, on in (("a", x > 0), ("b", y > 0)) if on] for x, y in zip(X.x, X.y)]
    truth = np.array(["[" + ",".join(f'"{t}"' for t in ts) + "]" for ts in tags])
    ids = np.array([f"e{i:03d}" for i in range(n)])
    data = HeldOut(X=X, example_ids=ids, truth=truth, is_gold=np.arange(n) < 30, schema={"x": "numeric", "y": "numeric"})
    task = task_for(DatasetConfig(name="t", modality="tabular", label_column="tags", feature_columns=("x", "y"),
                                  task="multilabel"))
    right = pd.Series(truth, index=ids)
    none = pd.Series("[]", index=ids)  # every example labeled with no tags
    acc = held_out_accuracy(data, {"true": (resolve_spec("linear", "tabular"), right),
                                   "none": (resolve_spec("linear", "tabular"), none)},
                            n_jobs=1, task=task, classes=["a", "b"])
    assert acc["true"] > 0.9
    # A model that learnt "no tags" is right exactly on the examples without tags.
    assert acc["none"] == pytest.approx(float(np.mean(truth == "[]")))


def test_numbers_are_scored_by_mae_rmse_and_r2():
    """A regression home's comparison reports the task's figures (the equality of two numbers is no
    accuracy): MAE, RMSE and R², folds unstratified."""
    from data_engine.demo.comparison import held_out_metrics
    from data_engine.store.config import DatasetConfig
    from data_engine.tasks import task_for

    rng = np.random.default_rng(2)
    n = 150
    X = pd.DataFrame({"x": rng.normal(size=n), "y": rng.normal(size=n)})
    value = 3 * X.x - 2 * X.y + rng.normal(0, 0.1, n)
    ids = np.array([f"e{i:03d}" for i in range(n)])
    truth = np.array([repr(float(v)) for v in value])
    data = HeldOut(X=X, example_ids=ids, truth=truth, is_gold=np.arange(n) < 30, schema={"x": "numeric", "y": "numeric"})
    task = task_for(DatasetConfig(name="t", modality="tabular", label_column="v", feature_columns=("x", "y"),
                                  task="regression"))
    right = pd.Series(truth, index=ids)
    flat = pd.Series("0.0", index=ids)  # every example labeled 0
    figures = held_out_metrics(data, {"true": (resolve_spec("linear", "tabular"), right),
                                      "flat": (resolve_spec("linear", "tabular"), flat)}, n_jobs=1, task=task)
    assert set(figures["true"]) >= {"mae", "rmse", "r2"}
    assert figures["true"]["mae"] < 0.2 and figures["true"]["r2"] > 0.99
    # A model that learnt 0 everywhere is off by each value's size.
    assert figures["flat"]["mae"] == pytest.approx(float(np.mean(np.abs(value))), rel=1e-6)


def test_numbers_served_by_a_weighted_mixture_are_compared_with_the_members_regressors():
    """demo-loop on a home of prices stopped at its comparison ("none of the model members (served)
    has a regression form"): the recorded served choice is several members with weights, built as a
    soft-voting classifier, which has no regression form."""
    from data_engine.demo.comparison import held_out_metrics
    from data_engine.mine.spec import ModelSpec
    from data_engine.store.config import DatasetConfig
    from data_engine.tasks import task_for

    rng = np.random.default_rng(3)
    n = 150
    X = pd.DataFrame({"x": rng.normal(size=n), "region": rng.choice(["n", "s", "e"], n)})
    value = 3 * X.x + X.region.map({"n": 0.0, "s": 5.0, "e": -5.0}) + rng.normal(0, 0.1, n)
    ids = np.array([f"e{i:03d}" for i in range(n)])
    truth = np.array([repr(float(v)) for v in value])
    data = HeldOut(X=X, example_ids=ids, truth=truth, is_gold=np.arange(n) < 30,
                   schema={"x": "numeric", "region": "categorical"})
    task = task_for(DatasetConfig(name="t", modality="tabular", label_column="v", feature_columns=("x", "region"),
                                  task="regression"))
    served = ModelSpec(("hgb", "linear"), "tabular", 0, None)
    figures = held_out_metrics(data, {"true": (served, pd.Series(truth, index=ids), {"hgb": 0.0, "linear": 1.0})},
                               n_jobs=1, task=task)
    # The linear member alone (weight 1) fits this linear rule: the weights were used, not equal ones.
    assert figures["true"]["mae"] < 0.2 and figures["true"]["r2"] > 0.99


def test_the_comparison_serves_the_users_trainer_with_its_command(tmp_path) -> None:
    """demo-loop with [model] trainer = "command" stopped at its comparison: the served model was
    rebuilt from the recorded member name alone ("command", without the command), and failed."""
    from data_engine.demo.comparison import served_model
    from tests.homes import make_home

    home = make_home(tmp_path, {"model": {"trainer": "command", "command": ["python", "train.py"],
                                          "timeout_s": 30}}, seed=0, n_train=40, n_gold=20, n_unlabeled=0)
    name, spec, weights = served_model(home, 100)
    assert (name, spec.members, spec.command, spec.timeout_s, weights) == (
        "command", ("command",), ("python", "train.py"), 30, None)


def test_the_noisy_cleaned_and_true_labels_are_scored_with_one_model_the_champion_now_s(tmp_path, monkeypatch) -> None:
    """The labels as landed were scored with the first champion's spec and mixture weights, the
    cleaned and true ones with the champion now's: the gap mixed a weights effect into the labels'
    (wine tags, seed 0: gone with equal weights). All three now get the champion now's, exactly."""
    from data_engine.demo import comparison
    from data_engine.mine.spec import ModelSpec
    from tests.homes import digits_split, make_home

    home = make_home(tmp_path, {}, seed=0, n_train=40, n_gold=20, n_unlabeled=0)
    info = digits_split(n_train=40, n_gold=20, n_unlabeled=0)
    oracle = pd.DataFrame({"example_id": info["ids"], "label": info["y"]})
    now = ("linear+knn", ModelSpec(("linear", "knn"), "tabular", 0), {"linear": 0.7, "knn": 0.3})
    monkeypatch.setattr(comparison, "served_model", lambda home, n_train: now)
    seen: dict = {}

    def fake_metrics(data, recipes, **kw):
        seen.update(recipes)
        return {name: {"accuracy": 0.5, "macro_f1": 0.5} for name in recipes}

    monkeypatch.setattr(comparison, "held_out_metrics", fake_metrics)
    cleaned = pd.Series(info["y"], index=info["ids"]).astype(str)
    noisy = cleaned.copy()
    noisy.iloc[:5] = "x"  # labels as landed differ from the cleaned ones
    out = comparison.compare(home, oracle, cleaned, noisy)
    for name, labels in (("noisy", noisy), ("final", cleaned), ("clean", cleaned)):
        spec, given, weights = seen[name]
        assert (spec, weights) == (ModelSpec(("linear", "knn"), "tabular", 0), {"linear": 0.7, "knn": 0.3}), name
        assert given.astype(str).reindex(info["ids"]).tolist() == labels.tolist(), name
    # The alternatives leave out the served family only: hgb is one of them.
    assert "hgb" in out["model_centric"] and "linear+knn" not in out["model_centric"]
    assert "served_model_first" not in out and out["served_model"] == "linear+knn"


def test_gold_examples_the_oracle_does_not_list_are_scored_against_their_gold_labels(tmp_path) -> None:
    """An oracle listing only the training examples (the tags loop's measurement writes one) left
    every gold example out of the held-out figures: 40 examples scored instead of 60. The gold rows
    now count, against their gold labels in force; an oracle entry still wins where it exists."""
    from data_engine.demo import comparison
    from tests.homes import digits_split, make_home

    home = make_home(tmp_path, {}, seed=0, n_train=40, n_gold=20, n_unlabeled=0)
    info = digits_split(n_train=40, n_gold=20, n_unlabeled=0)
    train, gold = info["parts"]["train"], info["parts"]["gold"]
    oracle = pd.DataFrame({"example_id": info["ids"][train], "label": info["y"][train]})
    data = comparison.load_held_out(home, oracle)
    got = pd.Series(data.truth, index=data.example_ids)
    gold_ids = ["gold:" + i for i in info["ids"][gold]]
    assert len(data.truth) == 60 and int(data.is_gold.sum()) == 20
    assert got.reindex(gold_ids).tolist() == list(info["y"][gold])
    assert got.reindex(info["ids"][train]).tolist() == list(info["y"][train])
    # An oracle that lists a gold example keeps its own answer for it.
    listed = pd.concat([oracle, pd.DataFrame({"example_id": gold_ids[:1], "label": ["x"]})])
    again = comparison.load_held_out(home, listed)
    assert pd.Series(again.truth, index=again.example_ids)[gold_ids[0]] == "x"


def test_a_round_says_why_queued_examples_got_no_review_label():
    """A user saw "queued 60, reviewed 59" and no word on the sixtieth."""
    from data_engine.demo.loop import _without_label

    line = _without_label(3, unknown=1, refused=1)
    assert line.startswith("3 queued example(s) without a review label: ")
    assert "1 not in the oracle" in line and "1 left open, the answer refused" in line
    assert "1 not answered by the simulated reviewer" in line
    assert "not answered" not in _without_label(2, unknown=2, refused=0)
