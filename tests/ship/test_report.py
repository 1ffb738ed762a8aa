"""`data-engine report`: gold accuracy against reviews spent, and the two ways forward."""

from __future__ import annotations

import json

import pytest

from data_engine.cli import main
from data_engine.mine.run import run_mining
from data_engine.ship import training
from data_engine.ship.step import gate_and_promote
from data_engine.ship.report import build_report, format_report
from data_engine.store.warehouse import open_warehouse
from tests.loop_support import make_home, review, seed_digits


def test_report_rows_per_champion_and_the_two_ways_forward(tmp_path, capsys):
    home = make_home(tmp_path, {"retrain": {"min_new_labels": 5}})
    info = seed_digits(home, n_train=300, n_gold=100, n_unlabeled=0, noise=0.2)
    truth = dict(zip(info["ids"], info["y"]))
    with open_warehouse(home) as con:
        training.train_candidate(con, home)
        gate_and_promote(con, home)
        # 30 reviews: 20 fix flipped labels, 10 confirm right ones.
        flipped = list(info["flipped"][:20])
        right = [i for i in info["ids"][info["parts"]["train"]] if i not in set(info["flipped"])][:10]
        review(con, {i: truth[i] for i in flipped + right})
        second = training.train_candidate(con, home).record
        _, deployed = gate_and_promote(con, home)
        assert deployed is not None  # corrections only: at least a tie, which more reviewed labels win
        report = build_report(con)
    assert [r.version for r in report.rows] == [1, second.version]
    assert (report.rows[0].reviews, report.rows[0].corrections) == (0, 0)
    assert (report.rows[1].reviews, report.rows[1].corrections) == (30, 20)
    assert report.reviews_total == 30 and report.corrections_total == 20
    first, last = report.rows[0].gold_accuracy, report.rows[1].gold_accuracy
    assert first is not None and last is not None
    assert report.gain_per_review == pytest.approx((last - first) / 30)
    choice = second.params["served_choice"]
    assert report.served == choice["chosen"] and report.metric == "accuracy"
    assert report.best_score == max(c["accuracy"] for c in choice["candidates"])
    assert report.model_gain == pytest.approx(report.best_score - report.served_score)
    assert report.remaining_errors is None and any("mine" in n for n in report.notes)

    with open_warehouse(home) as con:
        summary = run_mining(con, home.config, home=home)
        report = build_report(con)
        n_labeled = con.execute("SELECT n_labeled FROM mining_runs WHERE run_id = ?", [summary.run_id]).fetchone()[0]
    assert report.remaining_errors == round(summary.noise_rate * n_labeled)
    text = format_report(report)
    assert "what a better model would buy" in text and "what more review would buy" in text
    assert f"estimated label errors left: {report.remaining_errors} of 300 labels" in text

    assert main(["--home", str(home.root), "report", "--json"]) == 0
    out = json.loads(capsys.readouterr().out)
    assert out["reviews_total"] == 30 and len(out["rows"]) == 2


def test_a_task_without_a_noise_estimate_is_not_told_to_mine_again(tmp_path):
    """A new user's NER home was told 'run `data-engine mine`' after every mining run: the noise
    estimate (cleanlab's joint of given and true classes) exists for one class per example only."""
    from data_engine.tasks import NER, Classification

    home = make_home(tmp_path)
    with open_warehouse(home) as con:
        ner_notes, class_notes = build_report(con, NER()).notes, build_report(con, Classification()).notes
    assert ("the errors left are not estimated for a ner dataset: mining estimates the label noise (cleanlab's "
            "joint of given and true classes) for one class per example only") in ner_notes
    assert not any("run `data-engine mine`" in n for n in ner_notes)
    assert "no mining run has estimated the label noise yet: run `data-engine mine`" in class_notes
