"""``bench review`` on the in-memory server: push in pages, answers in rounds, paged pull, figures."""

from __future__ import annotations

from data_engine.bench.review import _bench_home, _measure
from data_engine.review.labelstudio.fake import FakeReviewClient


def test_bench_review_pushes_in_pages_answers_pulls_and_reports_requests_and_peaks(tmp_path):
    home = _bench_home(tmp_path / "home", "http://127.0.0.1:9", 45)
    figures = _measure(home, FakeReviewClient(), answered=12, workers=2, batch_size=20)
    assert (figures["push_tasks"], figures["push_batches"]) == (45, 3)
    assert figures["answered"] == 12 and figures["pulled_tasks"] == 12 and figures["pulled_events"] == 12
    # A push with nothing new: the project check and the counts, nothing listed, nothing sent.
    assert figures["repush_requests"] == 2
    assert figures["push_peak_mib"] >= figures["rss_before_mib"] > 0 and figures["pull_peak_mib"] > 0
    assert figures["view_seconds"] is None  # no Data Manager in memory


def test_bench_review_stops_answering_at_its_time_budget(tmp_path):
    home = _bench_home(tmp_path / "home", "http://127.0.0.1:9", 30)
    figures = _measure(home, FakeReviewClient(), answered=25, workers=1, batch_size=None, answer_for=0.0)
    assert figures["answered"] == 0 and figures["pulled_events"] == 0 and figures["push_tasks"] == 30


def test_bench_review_accepts_suggestions_in_bulk_a_round_per_request_and_pulls_them(tmp_path):
    home = _bench_home(tmp_path / "home", "http://127.0.0.1:9", 45)
    client = FakeReviewClient()
    figures = _measure(home, client, answered=25, workers=1, batch_size=20, accept_predictions=True)
    assert figures["answered"] == 25 and figures["pulled_tasks"] == 25 and figures["pulled_events"] == 25
    # Rounds of at most 1,000 tasks: 25 answers are one request.
    assert figures["simulate_requests"] == 1
    answered = sorted(a["task"] for a in client.annotations.values())
    assert answered == list(range(1, 26))  # the first 25 open tasks by id, each once
    # The answer is the task's suggestion (the bench queue suggests the true label).
    for ann in client.annotations.values():
        task = client.tasks[ann["task"]]
        assert ann["result"] == task["predictions"][0]["result"]
        assert ann["result"][0]["value"]["choices"] == [task["data"]["suggested_label"]]


def test_fake_accepts_each_prediction_once_and_only_in_its_project():
    client = FakeReviewClient()
    pid = client.create_project("p", "<View/>")
    other = client.create_project("q", "<View/>")
    result = [{"from_name": "label", "to_name": "x", "type": "choices", "value": {"choices": ["a"]}}]
    ids = client.import_tasks(pid, [{"data": {}, "predictions": [{"result": result}]}, {"data": {}}])
    foreign = client.import_tasks(other, [{"data": {}, "predictions": [{"result": result}]}])
    before = client.request_count
    assert client.accept_predictions(pid, [*ids, *foreign]) == 1  # no prediction on the 2nd, 3rd elsewhere
    assert client.accept_predictions(pid, ids) == 0  # already accepted
    assert client.request_count - before == 2
    assert [(a["task"], a["result"]) for a in client.annotations.values()] == [(ids[0], result)]
