"""Near duplicates that mean something: in low-dimensional tabular data identical rows are a data-set
fact, not review items; a copy with a different label is flagged by the evidence that its label is
wrong."""

from __future__ import annotations

import dataclasses
import json

import numpy as np
import pytest

from data_engine.mine.detectors import NearDuplicateDetector
from data_engine.mine.detectors.base import MiningData
from data_engine.tasks.detection import Detection
from data_engine.tasks.multilabel import Multilabel
from data_engine.tasks.ner import NER
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


def _set_copies(task, labels, classes):
    """Five examples: e0/e1 identical inputs with the same set label, e2/e3 identical inputs with different
    sets, e4 alone; no model predictions."""
    y = task.encode(labels, classes)
    n = len(labels)
    return MiningData(
        example_ids=np.array([f"e{i}" for i in range(n)], dtype=object), labels=y, classes=tuple(classes),
        probs=np.full((n, task.prediction_width(classes)), np.nan), out_of_sample=np.ones(n, bool),
        feature_hash=np.array(["a", "a", "b", "b", "c"], dtype=object), modality="text", task=task)


PER, ORG = '[{"start":0,"end":3,"label":"PER"}]', '[{"start":0,"end":3,"label":"ORG"}]'
CAT, DOG = '[{"label":"cat","x":1,"y":2,"w":3,"h":4}]', '[{"label":"dog","x":1,"y":2,"w":3,"h":4}]'
SET_CASES = {
    "spans": (NER(), [PER, PER, PER, ORG, PER], ["ORG", "PER"]),
    "tags": (Multilabel(), ['["a","b"]', '["b","a"]', '["a"]', '["a","b"]', '["a"]'], ["a", "b"]),
    "boxes": (Detection(), [CAT, CAT, CAT, DOG, CAT], ["cat", "dog"]),
}


@pytest.mark.parametrize("kind", sorted(SET_CASES))
def test_copies_of_a_set_label_take_review_budget_only_when_their_sets_differ(kind):
    task, labels, classes = SET_CASES[kind]
    result = NearDuplicateDetector().find_issues(_set_copies(task, labels, classes))
    issues = result.issues.set_index("example_id")
    # e0/e1 agree: reported as copies, not queued. e2/e3 disagree: one of them is wrong; with no model
    # probability each set's evidence is its share of the pair, 0.5, so both are reviewed.
    assert issues["is_issue"].tolist() == [False, False, True, True, False]
    assert issues["score"].tolist()[2:4] == [0.5, 0.5]
    assert issues["reason"]["e0"] == "exact duplicate of e1" and issues["reason"]["e1"] == "exact duplicate of e0"
    assert issues["reason"]["e3"].startswith("exact duplicate of e2 with a different label")
    detail = issues["detail"]
    assert [json.loads(d)["labels_disagree"] for d in detail] == [False, False, True, True, False]
    assert result.summary["labels_disagree"] == 2
    fact = result.summary["copies_fact"]
    assert fact["rows_with_copies"] == 4 and fact["exact_groups"] == 2 and fact["agreeing_rows"] == 2
    assert not fact["queued_for_review"]
    assert fact["note"].startswith(f"copies with the same {task.name} label are the same example twice")
    # Reviewers' verdicts showing such copies pay queue them again.
    paying = NearDuplicateDetector(copies_pay=True).find_issues(_set_copies(task, labels, classes))
    assert paying.issues["is_issue"].tolist() == [True, True, True, True, False]
