"""The review budget is spent while flags remain (issue: on fully labeled data, once reviewers
confirmed fewer than half the label flags, a fix was valued below a new label, there were no
unlabeled examples, and most of the budget was dropped)."""

from __future__ import annotations

import numpy as np
import pandas as pd

from data_engine.mine.budget import split_budget
from data_engine.store.warehouse import open_warehouse
from tests.loop_support import make_home, seed_digits
from tests.mine.review_rounds import lazy_reviewer, review_round


def test_split_gives_slots_no_new_example_can_take_to_the_flags():
    # Confirmed 30 %: a fix is worth less than a new label, but there is no unlabeled example.
    split = split_budget(200, {"label": 150, "near_duplicate": 20}, {"label": 0.3, "near_duplicate": 0.3},
                         accuracy=0.8, n_labeled=1000, n_candidates=0)
    assert split.grow == 0
    assert split.fix == {"label": 150, "near_duplicate": 20}
    assert split.unused == 30
    # With candidates the same rates send the rest to new examples, as before.
    grown = split_budget(200, {"label": 150}, {"label": 0.3}, accuracy=0.8, n_labeled=1000, n_candidates=500)
    assert grown.fix == {"label": 10} and grown.grow == 190 and grown.unused == 0


def test_fully_labeled_data_with_a_reviewer_who_confirms_under_half_keeps_spending_the_budget(tmp_path, capsys):
    home = make_home(tmp_path, {"mining": {"detectors": ["label", "near_duplicate", "outlier", "uncertain"]}})
    seeded = seed_digits(home, n_train=700, n_gold=200, n_unlabeled=0, noise=0.2, seed=1)
    truth = pd.Series(seeded["y"], index=seeded["ids"])
    reviewer = lazy_reviewer(truth, keep_share=0.6)
    rng = np.random.default_rng(0)
    budget = 30
    with open_warehouse(home) as con:
        sizes, splits = [], []
        for _ in range(3):
            summary, queue = review_round(con, home, reviewer, rng, budget=budget)
            sizes.append(len(queue))
            splits.append(summary.budget_split)
        confirmed, reviewed = con.execute(
            "SELECT count(*) FILTER (WHERE outcome = 'confirmed'), count(*) FROM review_verdicts").fetchall()[0]
        open_flags = con.execute(
            "SELECT count(DISTINCT example_id) FROM issues WHERE run_id = ? AND is_issue AND issue_type <> 'uncertain' "
            "AND example_id NOT IN (SELECT example_id FROM review_verdicts)",
            [summary.run_id]).fetchall()[0][0]
        # A budget larger than what is left: the queue takes every open flag and says why it stops.
        big, queue = review_round(con, home, reviewer, rng, budget=5000)
    assert confirmed / reviewed < 0.5  # the reviewer confirms fewer than half the flags
    assert open_flags > budget  # flags were left unreviewed in the last round ...
    assert sizes == [budget, budget, budget]  # ... so every round spends the whole budget
    for split, size in zip(splits, sizes, strict=True):
        # What the split shows adds up to the budget and to the queue.
        assert sum(split["fix"].values()) + split["grow"] + split["unused"] == budget
        assert split["queued"] == size and split["unused"] == 0 and split["short_reason"] == ""
    assert big.budget_split["unused"] == 5000 - len(queue) > 0
    assert "every open flag with evidence is queued" in big.budget_split["short_reason"]
    assert "no unlabeled example is left to label" in big.budget_split["short_reason"]
    from data_engine.cli import main

    capsys.readouterr()
    assert main(["--home", str(home.root), "review", "status"]) == 0
    out = capsys.readouterr().out
    fixes = ", ".join(f"{k}={v}" for k, v in big.budget_split["fix"].items())
    assert f"last queue: 5000 reviews = fixes ({fixes}) + 0 new examples + {5000 - len(queue)} unused" in out
    assert f"fewer than the budget: {len(queue)} of 5000 reviews queued" in out


def test_spare_reviews_go_down_the_label_ranking_before_flags_it_out_confirms():
    """Fully labeled tags (breast cancer, second round): the outlier flags, confirmed 2 times in 21,
    took the reviews the ranking past the label flags would have spent at a third confirmed."""
    from data_engine.mine.budget import flags_before_ranking

    rates = {"label": 0.8, "outlier": 0.3, "near_duplicate": 0.9}
    assert flags_before_ranking(["label", "near_duplicate", "outlier"], rates, 0.8) == ["label", "near_duplicate"]
    assert flags_before_ranking(["outlier", "label"], rates, None) == ["outlier", "label"]  # no ranking: all
    # A type without verdicts counts at the prior rate, and a tie goes to the flags.
    assert flags_before_ranking(["lookalike"], {}, 0.5) == ["lookalike"]
    flags = {"label": 10, "outlier": 40}
    split = split_budget(60, flags, {"label": 0.8, "outlier": 0.3}, accuracy=0.8, n_labeled=400, n_candidates=0,
                         ranking_rate=0.8)
    # The outliers keep their measuring share (5 % of 60: 3, split over the two types), the rest is
    # left for the ranking.
    assert split.fix == {"label": 10, "outlier": 1} and split.unused == 49
    without = split_budget(60, flags, {"label": 0.8, "outlier": 0.3}, accuracy=0.8, n_labeled=400, n_candidates=0)
    assert without.fix == {"label": 10, "outlier": 40} and without.unused == 10
    # The second round on the breast-cancer tags: the outliers' fix was worth more than a new label,
    # but no example was unlabeled; they keep their measuring share and the ranking takes the rest.
    second = split_budget(71, {"label": 55, "outlier": 21}, {"label": 0.7778, "outlier": 0.5769}, accuracy=0.8,
                          n_labeled=469, n_candidates=0, ranking_rate=0.7778)
    assert second.fix == {"label": 55, "outlier": 1} and second.unused == 15
    before = split_budget(71, {"label": 55, "outlier": 21}, {"label": 0.7778, "outlier": 0.5769}, accuracy=0.8,
                          n_labeled=469, n_candidates=0)
    assert before.fix == {"label": 55, "outlier": 16}
    # Outliers confirmed as often as the ranking still come first.
    even = split_budget(60, flags, {"label": 0.8, "outlier": 0.8}, accuracy=0.8, n_labeled=400, n_candidates=0,
                        ranking_rate=0.8)
    assert even.fix == {"label": 10, "outlier": 40}
