"""Near duplicates that mean something: in low-dimensional tabular data identical rows are a data-set
fact, not review items; a copy with a different label is flagged by the evidence that its label is
wrong."""

from __future__ import annotations

import dataclasses

import numpy as np

from data_engine.mine.detectors import NearDuplicateDetector
from tests.mine.test_detectors import make_data

# Two passenger-like columns: many rows are identical and legitimately differ in outcome.
PASSENGERS = {"pclass": "categorical", "sex": "categorical"}


def _passengers():
    # e0-e5 identical (third-class men): four 'died', two 'survived'; e6/e7 identical, both 'died'.
    labels = np.array([0, 0, 0, 0, 1, 1, 0, 0, 1])
    probs = np.tile([0.7, 0.3], (9, 1))
    probs[6:8] = [0.9, 0.1]
    probs[8] = [0.2, 0.8]
    hashes = ["m3"] * 6 + ["w1", "w1", "x"]
    data = make_data(labels, probs, hashes=hashes, classes=("died", "survived"))
    return dataclasses.replace(data, schema=PASSENGERS, modality="tabular")


def test_identical_rows_of_low_dimensional_tabular_data_are_a_fact_not_review_items():
    result = NearDuplicateDetector().find_issues(_passengers())
    flagged = result.issues.set_index("example_id")["is_issue"]
    # The agreeing pair e6/e7 is not queued; of the six identical men the two survivors are (a third of
    # the copies and 0.3 from the model: their label is the likelier wrong one), the four others not.
    assert flagged[flagged].index.tolist() == ["e4", "e5"]
    fact = result.summary["copies_fact"]
    assert fact["rows_with_copies"] == 8 and fact["exact_groups"] == 2 and fact["largest_group"] == 6
    assert fact["agreeing_rows"] == 2 and not fact["queued_for_review"]


def test_agreeing_copies_are_queued_when_verdicts_show_they_pay_or_the_data_is_not_low_dimensional():
    paying = NearDuplicateDetector(copies_pay=True).find_issues(_passengers())
    assert paying.issues.set_index("example_id")["is_issue"][["e6", "e7"]].all()
    wide = dataclasses.replace(_passengers(), schema={f"px{i}": "numeric" for i in range(64)})
    result = NearDuplicateDetector().find_issues(wide)
    assert result.issues.set_index("example_id")["is_issue"][["e6", "e7"]].all()
    assert "copies_fact" not in result.summary
