"""The simulated reviewer (fake server): answers from the oracle, accuracy, a second annotator."""

from __future__ import annotations

import pytest

from data_engine.errors import EngineError
from data_engine.review.labelstudio.fake import FakeReviewClient
from data_engine.review.labelstudio.labeling import chosen
from data_engine.review.push import push_queue
from data_engine.review.simulate import read_oracle, simulate_reviews
from data_engine.store.warehouse import open_warehouse
from tests.review_support import digits_home, make_queue

CLASSES = [str(i) for i in range(10)]


@pytest.fixture
def pushed(tmp_path):
    home, frame = digits_home(tmp_path / "home", n=20)
    make_queue(home, frame)
    client = FakeReviewClient()
    with open_warehouse(home) as con:
        project_id = push_queue(con, client, home.config).project_id
    return home, frame, client, project_id


def _answers(client, annotator_id=1):
    return {client.tasks[a["task"]]["data"]["example_id"]: chosen(a["result"])
            for a in client.annotations.values() if a["completed_by"] == annotator_id}


def test_a_perfect_reviewer_answers_every_open_task_with_the_truth(pushed):
    home, frame, client, project_id = pushed
    result = simulate_reviews(client, project_id, read_oracle(home.oracle_path), CLASSES, accuracy=1.0)
    assert result.answered == result.correct == 20
    assert _answers(client) == dict(zip(frame["id"], frame["true_label"], strict=True))
    again = simulate_reviews(client, project_id, read_oracle(home.oracle_path), CLASSES, accuracy=1.0)
    assert again.answered == 0  # nothing open any more


def test_accuracy_zero_is_always_wrong_and_limit_is_respected(pushed):
    home, frame, client, project_id = pushed
    result = simulate_reviews(client, project_id, read_oracle(home.oracle_path), CLASSES, accuracy=0.0, limit=7)
    truth = dict(zip(frame["id"], frame["true_label"], strict=True))
    answers = _answers(client)
    assert result.answered == 7 and result.correct == 0
    assert all(answers[ex] != truth[ex] for ex in answers)


def test_a_second_annotator_answers_tasks_the_first_already_answered(pushed):
    home, _, client, project_id = pushed
    oracle = read_oracle(home.oracle_path)
    simulate_reviews(client, project_id, oracle, CLASSES, accuracy=1.0, limit=5)
    second = simulate_reviews(client, project_id, oracle, CLASSES, accuracy=1.0, annotator="b@example.com")
    assert second.answered == 20 and second.annotator == "b@example.com"
    uid = next(i for i, e in client.user_emails.items() if e == "b@example.com")
    assert len(_answers(client, uid)) == 20


def test_a_missing_oracle_is_a_clear_error(tmp_path):
    with pytest.raises(EngineError, match="seed-demo"):
        read_oracle(tmp_path / "oracle.csv")


def test_limit_zero_answers_nothing(pushed):
    home, _, client, project_id = pushed
    result = simulate_reviews(client, project_id, read_oracle(home.oracle_path), CLASSES, limit=0)
    assert result.answered == 0 and not client.annotations


def test_an_answer_a_pull_would_refuse_is_not_posted_and_is_counted_as_refused(pushed):
    """An oracle label outside the classes: the pull would skip that answer and leave the task
    open, so the simulated reviewer does not post it and says so instead of counting it answered."""
    home, frame, client, project_id = pushed
    oracle = read_oracle(home.oracle_path)
    bad = str(frame["id"].iloc[0])
    oracle[bad] = "eleven"
    result = simulate_reviews(client, project_id, oracle, CLASSES, accuracy=1.0)
    assert (result.answered, result.correct, result.refused) == (19, 19, 1)
    assert result.refusals == (f"{bad}: 'eleven' is not one of the classes",)
    assert bad not in _answers(client)
    with open_warehouse(home) as con:
        from data_engine.review.pull import pull_verdicts

        pulled = pull_verdicts(con, client, home.config)
    assert pulled.review_events == result.answered and not pulled.problems
