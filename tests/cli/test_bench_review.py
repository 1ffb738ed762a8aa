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
