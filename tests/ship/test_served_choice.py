"""The served model chosen by evidence: candidates scored out of fold on the labels in force."""

from __future__ import annotations

import numpy as np
import pytest

from data_engine.mine.candidates import ServedChoice, mixture_name, score_candidates
from data_engine.ship import training
from data_engine.ship.deploy import status
from data_engine.store.warehouse import open_warehouse
from tests.loop_support import make_home, seed_digits


def _probs(pred: np.ndarray, k: int, confidence: float = 0.9) -> np.ndarray:
    out = np.full((len(pred), k), (1 - confidence) / (k - 1))
    out[np.arange(len(pred)), pred] = confidence
    return out


def test_an_unweighted_vote_loses_to_its_best_member_and_the_choice_follows_the_evidence():
    # The case in miniature: one good member, two poor ones. An equal vote of the three is
    # worse than the good member alone; the candidates are scored on the given labels and the
    # weighted mixture leans on the good member.
    rng = np.random.default_rng(0)
    labels = rng.integers(0, 3, 300)
    good = np.where(rng.random(300) < 0.9, labels, (labels + 1) % 3)
    poor1 = np.where(rng.random(300) < 0.5, labels, (labels + 1) % 3)
    poor2 = np.where(rng.random(300) < 0.5, labels, (labels + 1) % 3)
    probs = {"embedding": _probs(good, 3), "linear": _probs(poor1, 3), "nb": _probs(poor2, 3)}
    scores = score_candidates(probs, ("embedding", "linear", "nb"), labels)
    names = [c.name for c in scores]
    assert names == [mixture_name(("embedding", "linear", "nb")), "embedding", "linear", "nb"]
    by = {c.name: c for c in scores}
    assert by["embedding"].accuracy == pytest.approx(np.mean(good == labels))
    vote = np.mean(sum(probs.values()).argmax(axis=1) == labels)
    assert vote < by["embedding"].accuracy - 0.05
    mix = by[mixture_name(("embedding", "linear", "nb"))]
    assert mix.weights["embedding"] > 0.8 and mix.accuracy >= by["embedding"].accuracy - 0.01


def test_macro_f1_and_accuracy_can_choose_differently():
    # A: right on the big class only; B: right on both classes but wrong more often overall.
    labels = np.array([0] * 90 + [1] * 10)
    a = np.zeros(100, dtype=int)
    b = labels.copy()
    b[:12] = 1
    scores = {c.name: c for c in score_candidates({"a": _probs(a, 2), "b": _probs(b, 2)}, ("a",), labels)}
    assert scores["a"].accuracy == 0.9 and scores["b"].accuracy == 0.88
    assert scores["b"].macro_f1 > scores["a"].macro_f1


@pytest.fixture()
def env(tmp_path):
    home = make_home(tmp_path, {"mining": {"model": "hgb+linear"}})
    return home, seed_digits(home, n_train=300, n_gold=100, n_unlabeled=20, noise=0.2)


def test_auto_trains_the_best_candidate_by_the_gates_metric_and_records_every_score(env):
    home, _ = env
    with open_warehouse(home) as con:
        result = training.train_candidate(con, home)
        report = status(con, home)
    record = result.record
    choice = ServedChoice.from_dict(record.params["served_choice"])
    # Digits (an image set): the mining members, their weighted mixture and the SVM.
    assert [c.name for c in choice.candidates] == [mixture_name(("hgb", "linear")), "hgb", "linear", "svm"]
    assert choice.metric == "accuracy" and choice.n_scored == 300
    best = max(choice.candidates, key=lambda c: c.accuracy)
    assert choice.chosen == best.name and choice.score_of(choice.chosen) == best.accuracy
    assert record.model_spec.startswith("+".join(best.members) + "/image/")
    assert ("/weights=oof" in record.model_spec) == (len(best.members) > 1)
    assert "best out-of-fold accuracy" in choice.rule
    assert report["models"][-1]["served_choice"]["chosen"] == choice.chosen
    assert "out-of-fold accuracy on 300 labels" in training.describe(result)
    # The choice is a function of the labels in force: no second model on the same snapshot.
    with open_warehouse(home) as con, pytest.raises(training.AlreadyTrained):
        training.train_candidate(con, home)


def test_a_named_served_model_is_kept(tmp_path):
    home = make_home(tmp_path, {"retrain": {"model": "linear"}})
    seed_digits(home, n_train=200, n_gold=50, n_unlabeled=0)
    with open_warehouse(home) as con:
        record = training.train_candidate(con, home).record
    choice = ServedChoice.from_dict(record.params["served_choice"])
    assert choice.chosen == "linear" and choice.candidates == ()
    assert "named in [retrain] model" in choice.rule and record.model_spec.startswith("linear/")


def test_macro_f1_gate_metric_ranks_the_candidates(tmp_path):
    home = make_home(tmp_path, {"gate": {"metric": "macro_f1"}})
    seed_digits(home, n_train=200, n_gold=50, n_unlabeled=0, noise=0.2)
    with open_warehouse(home) as con:
        record = training.train_candidate(con, home).record
    choice = ServedChoice.from_dict(record.params["served_choice"])
    assert choice.metric == "macro_f1"
    assert choice.chosen == max(choice.candidates, key=lambda c: c.macro_f1).name


def test_mining_on_the_same_snapshot_reuses_the_candidates_fits(env, monkeypatch):
    from data_engine.tasks import oof
    from data_engine.mine.predictions import refresh_predictions

    home, _ = env
    with open_warehouse(home) as con:
        training.train_candidate(con, home)
        stored = con.execute("SELECT count(DISTINCT member_spec), count(*) FROM candidate_predictions").fetchone()
        assert stored == (4 - 1, 3 * 300)  # hgb, linear, svm (the mixture is not a fit)

        def no_fit(*args, **kwargs):
            raise AssertionError("mining fitted again what training fitted on the same label snapshot")

        monkeypatch.setattr(oof, "ensemble_out_of_fold_probabilities", no_fit)
        state = refresh_predictions(con, home.config, home=home)
    assert state.oof_probs.shape == (300, 10) and set(state.member_weights) == {"hgb", "linear"}
    assert np.allclose(state.oof_probs.sum(axis=1), 1.0)
