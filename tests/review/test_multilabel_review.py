"""A multi-label review task: check boxes with the model's tag set pre-filled and the suspect tags
named; the answer read back as a stored tag set."""

from __future__ import annotations

from data_engine.review.labelstudio.labeling import FROM_NAME, build_task, label_config
from data_engine.store.config import DatasetConfig
from data_engine.tasks import task_for

TICKETS = DatasetConfig(name="tickets", modality="text", label_column="tags", text_column="text", task="multilabel")


def test_the_task_pre_fills_the_suggested_tags_and_names_the_suspect_ones() -> None:
    row = {"example_id": "t7", "example_version": 1, "run_id": "3", "issue_types": ["label"], "priority": 0.9,
           "suggested_label": '["billing","urgent"]', "suggested_score": 0.81, "given_label": '["billing"]',
           "label_note": "tag 'urgent' likely missing (p=0.93)", "scores": '{"label": 0.12}'}
    task = build_task(TICKETS, row, {"text": "charged twice, production is down"}, model_version="linear v1")
    assert task["data"]["label_note"] == "tag 'urgent' likely missing (p=0.93)"
    assert task["data"]["given_label"] == '["billing"]'
    (prediction,) = task["predictions"]
    assert prediction["result"] == [{"from_name": FROM_NAME, "to_name": "item", "type": "choices",
                                     "value": {"choices": ["billing", "urgent"]}}]
    answer = task_for(TICKETS).answer_label(prediction["result"], from_name=FROM_NAME)
    assert answer == '["billing","urgent"]'
    xml = label_config(TICKETS, ["billing", "bug", "urgent"])
    assert 'choice="multiple"' in xml and '<Text name="item" value="$text"/>' in xml
    # Every field the config names is in the task's data (Label Studio refuses a task missing one).
    import re

    assert set(re.findall(r"\$(\w+)", xml)) <= set(task["data"])


def test_a_task_without_a_flagged_label_says_none() -> None:
    row = {"example_id": "t8", "example_version": 1, "issue_types": ["outlier"], "suggested_label": "[]"}
    task = build_task(TICKETS, row, {"text": "hello"}, model_version="m")
    assert task["data"]["label_note"] == ""
    assert task["predictions"][0]["result"] == []  # the empty set: nothing ticked
    assert task_for(TICKETS).answer_label(task["predictions"][0]["result"], from_name=FROM_NAME) == "[]"
