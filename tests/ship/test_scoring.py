"""Scoring new data: champion predictions, unsure and disagreement flags, the uncertain detector's input."""

from __future__ import annotations

import numpy as np
import pytest

from data_engine.ship import deploy, registry, scoring
from data_engine.ship.training import train_candidate
from data_engine.store.warehouse import open_warehouse
from tests.loop_support import insert_examples, make_home, review, seed_digits


def test_flag_rows_exact():
    probs = np.array([[0.9, 0.1, 0.0], [0.45, 0.4, 0.15], [0.2, 0.7, 0.1], [0.5, 0.45, 0.05]])
    flags = scoring.flag_rows(probs, ["a", "b", "c"], np.array(["a", "a", "a", "b"]), unsure_margin=0.2)
    assert flags["champion_label"].tolist() == ["a", "a", "b", "a"]
    assert flags["margin"].to_numpy() == pytest.approx([0.8, 0.05, 0.5, 0.05])
    assert flags["is_unsure"].tolist() == [False, True, False, True]
    assert flags["is_disagreement"].tolist() == [False, False, True, True]
    assert flags["is_flagged"].tolist() == [False, True, True, True]
    assert flags["score"].to_numpy() == pytest.approx([0.8, 0.05, 0.25, 0.025])
    assert flags["reason"].iloc[3] == "champion unsure and newest candidate disagrees"


def test_aligned_probabilities_fills_classes_the_model_never_saw():
    class Model:
        classes_ = np.array(["b", "a"])

        def predict_proba(self, X):
            return np.array([[0.3, 0.7]] * len(X))

    out = scoring.aligned_probabilities(Model(), [1, 2], ["a", "b", "c"])
    assert out.tolist() == [[0.7, 0.3, 0.0], [0.7, 0.3, 0.0]]


@pytest.fixture()
def env(tmp_path):
    home = make_home(tmp_path)
    info = seed_digits(home, n_train=300, n_gold=100, n_unlabeled=80)
    return home, info


def test_without_champion_nothing_is_scored(env):
    home, _ = env
    with open_warehouse(home) as con:
        r = scoring.score_unlabeled(con, home)
        assert r.scored == 0 and "no champion" in r.reason
        assert scoring.uncertain_candidates(con).empty


def test_champion_scores_new_unlabeled_rows_once(env):
    home, info = env
    with open_warehouse(home) as con:
        rec = train_candidate(con, home).record
        deploy.promote(con, home, rec.version, reason="t")
        first = scoring.score_unlabeled(con, home, unsure_margin=0.5)
        assert first.scored == 80 and first.candidate_version is None and first.disagreements == 0
        preds = con.execute(
            "SELECT example_id, probs, predicted_label, model_spec, label_snapshot FROM predictions "
            "WHERE kind = 'champion' ORDER BY example_id").fetchall()
        assert len(preds) == 80 and preds[0][3] == f"{rec.model_spec}@model-v{rec.version}"
        assert all(abs(sum(p[1]) - 1) < 1e-6 for p in preds) and preds[0][4] == rec.label_snapshot
        # The stored probabilities are the champion's own.
        model = registry.load_model(home, rec)
        unl = info["parts"]["unlabeled"]
        import pandas as pd

        X = pd.DataFrame(info["X"][unl], columns=list(rec.input_schema))
        order = np.argsort(info["ids"][unl])
        expected = model.predict(X)[order]
        assert [p[2] for p in preds] == list(expected)
        again = scoring.score_unlabeled(con, home)
        assert again.scored == 0 and again.already_scored == 80
        # A new batch: only its rows are scored.
        b2 = insert_examples(con, home, ["new1", "new2"], info["X"][:2], [None, None], batch="b2")
        third = scoring.score_unlabeled(con, home, batch_id=b2)
        assert third.scored == 2
        flagged = scoring.uncertain_candidates(con)
        assert len(flagged) == 82 and flagged["score"].is_monotonic_increasing
        assert int(flagged["is_flagged"].sum()) == first.flagged + int(
            con.execute("SELECT count(*) FILTER (is_flagged) FROM champion_flags WHERE example_id LIKE 'new%'").fetchall()[0][0])


def test_disagreement_with_the_newest_candidate_is_flagged(env):
    home, info = env
    with open_warehouse(home) as con:
        rec = train_candidate(con, home).record
        deploy.promote(con, home, rec.version, reason="t")
        # The newer candidate learned that every digit is a "3": it disagrees wherever the champion does not say 3.
        ids = info["ids"][info["parts"]["train"]]
        review(con, {e: ("3" if i % 10 else "4") for i, e in enumerate(ids)})
        cand = train_candidate(con, home).record
        r = scoring.score_unlabeled(con, home)
        assert r.candidate_version == cand.version and r.disagreements > 40
        rows = con.execute(
            "SELECT count(*) FILTER (is_disagreement), count(*) FILTER (champion_label <> candidate_label) "
            "FROM champion_flags WHERE candidate_version = ?", [cand.version]).fetchall()[0]
        assert rows[0] == rows[1] == r.disagreements
        # Labeled examples leave the uncertain detector's input.
        some = scoring.uncertain_candidates(con)["example_id"].iloc[0]
        review(con, {some: "1"})
        assert some not in set(scoring.uncertain_candidates(con)["example_id"])
