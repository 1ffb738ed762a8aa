"""A push in pages: without a terminal it says how far it got in log lines, at most every
LOG_EVERY_S seconds (data_engine.progress), between its start and end lines; each page resolves
the dataset's task plug-in once, not once a task (each lookup reads the installed entry points:
100,000 lookups cost most of a 100,000-task push)."""

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


def test_a_page_of_tasks_resolves_the_task_plugin_once(tmp_path, monkeypatch):
    from data_engine.review import push as push_module
    from data_engine.review.labelstudio import labeling
    from data_engine.tasks import task_for

    calls = {"push": 0, "labeling": 0}

    def counted(where):
        def lookup(ds):
            calls[where] += 1
            return task_for(ds)
        return lookup

    monkeypatch.setattr(push_module, "task_for", counted("push"))
    monkeypatch.setattr(labeling, "task_for", counted("labeling"))
    home = _bench_home(tmp_path / "home", "http://127.0.0.1:9", 45)
    with open_warehouse(home) as con:
        rows = push_module._rows_to_send(con, 0, 1, 45)
        tasks = push_module._build_tasks(con, home.config, rows)
    assert len(tasks) == 45 and calls == {"push": 1, "labeling": 0}
    # Each task still carries the suggestion as the task plug-in renders it.
    first = rows.iloc[0]
    assert tasks[0]["data"]["example_id"] == first["example_id"]
    assert tasks[0]["predictions"][0]["result"] == task_for(home.config.dataset).review_result(
        str(first["suggested_label"]), tasks[0]["data"], from_name=labeling.FROM_NAME, to_name=labeling.TO_NAME)
