"""A push in pages: without a terminal it says how far it got in log lines, at most every
LOG_EVERY_S seconds (data_engine.progress), between its start and end lines; every task resolves
the dataset's task plug-in, and the task registry reads the installed entry points once for the
whole push (a read per lookup cost most of a 100,000-task push)."""

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


def test_a_push_of_several_pages_reads_the_entry_points_once(tmp_path, monkeypatch):
    from data_engine import plugins
    from data_engine.review.labelstudio import labeling
    from data_engine.tasks import TASKS, task_for

    home = _bench_home(tmp_path / "home", "http://127.0.0.1:9", 45)
    reads: list[str] = []

    def counted(*, group):
        reads.append(group)
        return real(group=group)

    real = plugins.entry_points
    monkeypatch.setattr(plugins, "entry_points", counted)
    monkeypatch.setattr(TASKS, "_read", None)  # as in a fresh process
    client = FakeReviewClient()
    with open_warehouse(home) as con:
        result = push_queue(con, client, home.config, limit=45, batch_size=20)
    # 45 tasks in 3 pages, each task's suggestion rendered by the task plug-in: one read of the metadata.
    assert (result.sent, result.batches) == (45, 3) and reads == ["data_engine.tasks"]
    first = client.tasks[1]
    assert first["predictions"][0]["result"] == task_for(home.config.dataset).review_result(
        first["data"]["suggested_label"], first["data"], from_name=labeling.FROM_NAME, to_name=labeling.TO_NAME)
