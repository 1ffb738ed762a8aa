"""Second opinions go out only where a reviewer's slip is likelier than the model's error, and their
verdicts do not move the confirmation rates that split the budget."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from data_engine.mine.second_opinions import (
    PRIOR_ACCURACY,
    reviewer_accuracy,
    second_opinion_report,
    slip_probability,
    worth_second_opinion,
)
from data_engine.review.pull import record_verdicts
from data_engine.mine.weights import confirmation_rates
from data_engine.store.warehouse import open_warehouse
from tests.loop_support import make_home, seed_digits


def test_slip_probability_weighs_reviewer_accuracy_against_the_model():
    # Reviewer right 95 %, model gives the reviewed label 0.2 of 2 classes: 0.05*0.8 / (0.04 + 0.19).
    assert slip_probability(0.95, np.array([0.2]), 2)[0] == pytest.approx(0.04 / 0.23)
    # A reviewer right 70 % against the same model: a slip is the likelier story.
    assert slip_probability(0.7, np.array([0.2]), 2)[0] == pytest.approx(0.24 / (0.24 + 0.14))
    # With ten classes a reviewer's error is spread over nine of them.
    assert slip_probability(0.9, np.array([0.01]), 10)[0] == pytest.approx(0.1 * 0.99 / 9 / (0.1 * 0.99 / 9 + 0.009))


def test_only_the_likely_slips_go_back_and_their_verdicts_stay_out_of_the_rates(tmp_path):
    home = make_home(tmp_path)
    seed_digits(home, n_train=40, n_gold=0, n_unlabeled=0)
    with open_warehouse(home) as con:
        assert reviewer_accuracy(con) == PRIOR_ACCURACY
        ids = np.array(["d1", "d2", "d3"])
        probs = np.array([[0.99, 0.01], [0.6, 0.4], [np.nan, np.nan]])
        labels = np.array([1, 1, 1])  # the reviewed label: class 1
        assert worth_second_opinion(con, {"d1", "d2", "d3"}, ids, labels, probs) == {"d1"}
        # The ids as the training frame's column (read only when there are candidates): the same answer.
        column = pd.Series(ids, dtype="str")
        assert worth_second_opinion(con, {"d1", "d2", "d3"}, column, labels, probs) == {"d1"}
        assert worth_second_opinion(con, set(), column, labels, probs) == set()
        # Verdicts of run 1: two fixes (one confirmed), two second opinions (both confirmed: slips).
        con.execute("INSERT INTO review_queue (run_id, rank, example_id, example_version, issue_types, priority, "
                    "selection) VALUES (1, 1, 'a', 1, ['label'], 1, 'fix'), (1, 2, 'b', 1, ['label'], 1, 'fix'), "
                    "(1, 3, 'c', 1, ['label'], 1, 'second_opinion'), (1, 4, 'd', 1, ['label'], 1, 'second_opinion')")
        rows = pd.DataFrame({"run_id": [1] * 4, "example_id": list("abcd"), "example_version": [1] * 4,
                             "issue_types": [["label"]] * 4, "given_label": ["0"] * 4})
        record_verdicts(con, rows, ["1", "0", "1", "1"], "tester")
        assert confirmation_rates(con, ["label"])["label"] == pytest.approx((1 + 10) / (2 + 20))
        assert second_opinion_report(con) == {"reviews": 2, "slips_caught": 2, "reviews_per_slip": 1.0}
