"""A push without a terminal says how far it got in log lines, page by page, at most every
LOG_EVERY_S seconds (data_engine.progress), between its start and end lines."""

from __future__ import annotations

import logging

import pytest

from data_engine import progress as progress_module
from data_engine.bench.review import _bench_home
from data_engine.review.labelstudio.fake import FakeReviewClient
from data_engine.review.push import push_queue
from data_engine.store.warehouse import open_warehouse


def _push_lines(tmp_path, caplog: pytest.LogCaptureFixture) -> list[str]:
    home = _bench_home(tmp_path / "home", "http://127.0.0.1:9", 45)
    with caplog.at_level(logging.INFO, logger="data_engine.progress"), open_warehouse(home) as con:
        result = push_queue(con, FakeReviewClient(), home.config, limit=45, batch_size=20)
    assert (result.sent, result.batches) == (45, 3)
    return [r.getMessage() for r in caplog.records if r.name == "data_engine.progress"
            and r.getMessage().startswith("push to Label Studio")]


def test_push_logs_each_page_when_the_period_has_passed(tmp_path, caplog, monkeypatch):
    monkeypatch.setattr(progress_module, "LOG_EVERY_S", 0.0)
    lines = _push_lines(tmp_path, caplog)
    assert lines[:4] == ["push to Label Studio: 45 tasks", "push to Label Studio: 20/45 tasks",
                         "push to Label Studio: 40/45 tasks", "push to Label Studio: 45/45 tasks"]
    assert len(lines) == 5 and lines[4].startswith("push to Label Studio: done in ")


def test_push_logs_only_start_and_end_within_one_period(tmp_path, caplog, monkeypatch):
    monkeypatch.setattr(progress_module, "LOG_EVERY_S", 3600.0)
    lines = _push_lines(tmp_path, caplog)
    assert len(lines) == 2 and lines[0] == "push to Label Studio: 45 tasks" and "done in" in lines[1]
