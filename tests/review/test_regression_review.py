"""A regression set through mining and review (in-memory Label Studio): the task shows the given
value, the prediction and its interval with the prediction pre-filled in a ``<Number>``, the
simulated reviewer answers from ``oracle.jsonl``, and the pull puts the true numbers in force."""

from __future__ import annotations

from pathlib import Path

import pytest

from data_engine.review.labelstudio.fake import FakeReviewClient
from data_engine.review.labelstudio.labeling import FROM_NAME
from data_engine.review.pull import pull_verdicts
from data_engine.review.push import push_queue
from data_engine.steps import mine_step
from data_engine.store.warehouse import open_warehouse
from data_engine.tasks import Regression, task_for
from tests.review_support import WRONG_READINGS as WRONG
from tests.review_support import readings_home, simulated_round


@pytest.fixture(scope="module")
def reviewed(tmp_path_factory: pytest.TempPathFactory):
    root: Path = tmp_path_factory.mktemp("regression-review")
    home, frame, truth = readings_home(root)
    mined, client, pushed, simulated, pulled = simulated_round(home, [])
    with open_warehouse(home) as con:
        labels = dict(con.execute("SELECT example_id, label FROM current_labels").fetchall())
        flags = con.execute("SELECT example_id, is_issue FROM issues WHERE run_id = ? AND issue_type = 'label' "
                            "ORDER BY score, example_id", [mined.summary.run_id]).fetchall()
    return home, frame, truth, (mined, flags), client, pushed, simulated, pulled, labels


def test_the_wrong_values_are_flagged_and_queued(reviewed) -> None:
    _, _, _, (mined, flags), *_ = reviewed
    wrong = {f"r{i:03d}" for i in WRONG}
    # The five gross errors have the lowest label quality scores, and all are flagged and queued.
    assert {ex for ex, _ in flags[:len(WRONG)]} == wrong and all(flag for _, flag in flags[:len(WRONG)])
    assert wrong <= set(mined.summary.queue_top["example_id"])


def test_the_task_shows_value_prediction_and_interval(reviewed) -> None:
    _, frame, _, _, client, pushed, *_ = reviewed
    config = client.projects[pushed.project_id]["label_config"]
    assert f'<Number name="{FROM_NAME}" toName="item" step="any" min="-1000.0" max="1000.0"/>' in config
    assert "$label_note" in config and "not a valid example" in config
    task = next(t for t in client.tasks.values() if t["data"]["example_id"] == "r003")
    given = float(frame.loc[3, "value"])
    assert task["data"]["given_label"] == repr(given)
    note = task["data"]["label_note"]
    assert note.startswith(f"given {given:g}, predicted ") and "[" in note
    filled = task["predictions"][0]["result"]
    assert filled[0]["type"] == "number" and filled[0]["from_name"] == FROM_NAME
    assert filled[0]["value"]["number"] == float(task["data"]["suggested_label"])


def test_the_reviewers_numbers_are_the_labels_in_force(reviewed) -> None:
    _, frame, truth, _, _, pushed, simulated, pulled, labels = reviewed
    assert simulated.answered == pushed.sent and simulated.correct == simulated.answered
    for i in WRONG:
        assert labels[f"r{i:03d}"] == repr(float(truth[i]))
    assert Regression().consensus([labels["r003"]]) == repr(float(truth[3]))


def test_two_reviewers_numbers_make_one_verdict(tmp_path: Path) -> None:
    """Consensus of numbers: 120 and 121 (within 5 % of their median) -> the median; 120 and 12 -> pending."""
    home, _, _ = readings_home(tmp_path, {"annotators_per_task": 2})
    mine_step(home)
    client = FakeReviewClient()
    with open_warehouse(home) as con:
        pushed = push_queue(con, client, home.config)
    task = task_for(home.config.dataset)
    tasks = {t["data"]["example_id"]: t for t in client.tasks.values()}
    second = client.ensure_user("second@example.com")
    answers = {"r003": ("120", "121"), "r017": ("120", "12")}
    for ex, (a, b) in answers.items():
        client.create_annotation(tasks[ex]["id"], task.prediction_result(a, from_name=FROM_NAME, to_name="item"))
        client.create_annotation(tasks[ex]["id"], task.prediction_result(b, from_name=FROM_NAME, to_name="item"),
                                 completed_by=second)
    with open_warehouse(home) as con:
        result = pull_verdicts(con, client, home.config)
        labels = dict(con.execute("SELECT example_id, label || '/' || source FROM current_labels").fetchall())
    assert pushed.sent >= 2 and result.consensus == 1
    assert labels["r003"] == "120.5/consensus"
    assert labels["r017"].endswith("/ingest")  # disagreement: the given value stays, the task pending


def test_a_bulk_relabel_to_a_number(tmp_path: Path) -> None:
    from data_engine.errors import EngineError
    from data_engine.review.rules import apply_rule

    home, _, _ = readings_home(tmp_path)
    result = apply_rule(home, "example_id IN ('r003', 'r017')", label="12")
    with open_warehouse(home) as con:
        labels = dict(con.execute("SELECT example_id, label FROM current_labels WHERE source = 'rule'").fetchall())
    assert result.changed == 2 and labels == {"r003": "12.0", "r017": "12.0"}
    with pytest.raises(EngineError, match="--label 'twelve': 'twelve' is not a number"):
        apply_rule(home, "example_id = 'r003'", label="twelve")
    with pytest.raises(EngineError, match=r"--label: 5000.0 is outside \[dataset\] label_range \[-1000, 1000\]"):
        apply_rule(home, "example_id = 'r003'", label="5000")


def test_review_status_names_the_budget_figure_of_numbers(reviewed, capsys) -> None:
    # A number has no accuracy: the split's gains are points of labels inside the out-of-fold interval.
    from data_engine.cli import main

    home, _, _, (mined, _), *_ = reviewed
    assert mined.summary.budget_split["gain_figure"] == "points of labels within the interval"
    capsys.readouterr()
    assert main(["--home", str(home.root), "review", "status"]) == 0
    out = capsys.readouterr().out
    assert "expected points of labels within the interval per review: new label " in out
    assert "accuracy points" not in out
