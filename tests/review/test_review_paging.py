"""Push and pull in bounded pages (fake server): a pull records each page before reading the next,
keeps what it recorded when the server fails on a later page, leaves answers given while it reads
to the next pull; a push imports page by page and lists the project's tasks only when the server
has fewer than recorded, so a push with nothing new costs the same few requests at any size."""

from __future__ import annotations

import pytest

from data_engine.errors import ReviewServiceError
from data_engine.review.labelstudio.labeling import choice_result
from data_engine.review.pull import pull_verdicts
from data_engine.review.push import push_queue
from data_engine.store.warehouse import open_warehouse
from tests.review_support import digits_home, make_queue, pushed_to_fake


def _answer(client, frame, rows):
    tasks = {t["data"]["example_id"]: t["id"] for t in client.tasks.values()}
    for ex in rows.itertuples():
        client.create_annotation(tasks[ex.id], choice_result(ex.true_label))


def _reviews(con):
    return con.execute("SELECT count(*) FROM label_events WHERE source = 'review'").fetchall()[0][0]


def _cursor(con):
    rows = con.execute("SELECT updated_after FROM review_cursor").fetchall()
    return rows[0][0] if rows else None


def test_a_pull_records_each_page_before_it_reads_the_next(tmp_path):
    home, frame, client = pushed_to_fake(tmp_path, 12)
    _answer(client, frame, frame.head(7))
    read = client.annotated_page
    with open_warehouse(home) as con:
        recorded_before_each_page = []

        def page(*args):
            recorded_before_each_page.append(_reviews(con))
            return read(*args)

        client.annotated_page = page
        result = pull_verdicts(con, client, home.config, page_size=3)
    # 7 answered tasks in pages of 3: the third page is read after 6 verdicts were recorded.
    assert recorded_before_each_page == [0, 3, 6]
    assert result.tasks_seen == 7 and result.review_events == 7


def test_a_server_failing_on_a_later_page_keeps_the_pages_before_and_the_next_pull_completes(tmp_path):
    home, frame, client = pushed_to_fake(tmp_path, 12)
    _answer(client, frame, frame.head(7))
    read = client.annotated_page
    calls = []

    def failing_second_page(*args):
        calls.append(args)
        if len(calls) == 2:
            raise ReviewServiceError("Label Studio at http://fake failed with HTTP 502 while reading")
        return read(*args)

    client.annotated_page = failing_second_page
    with open_warehouse(home) as con:
        with pytest.raises(ReviewServiceError, match="HTTP 502"):
            pull_verdicts(con, client, home.config, page_size=3)
        kept, cursor = _reviews(con), _cursor(con)
        client.annotated_page = read
        resumed = pull_verdicts(con, client, home.config, page_size=3)
        total = _reviews(con)
        verdicts = con.execute("SELECT count(*), count(DISTINCT task_id) FROM review_verdicts").fetchall()[0]
    # The first page stays recorded; the cursor did not move, so the window is read again whole and
    # only the 4 answers not yet recorded become events.
    assert kept == 3 and cursor is None
    assert resumed.tasks_seen == 7 and resumed.annotations_new == 4 and resumed.review_events == 4
    assert total == 7 and verdicts == (7, 7)


def test_answers_given_while_a_pull_reads_wait_for_the_next_pull(tmp_path):
    home, frame, client = pushed_to_fake(tmp_path, 12)
    _answer(client, frame, frame.head(4))
    read = client.annotated_page

    def answered_meanwhile(*args):
        if not answered_meanwhile.done:
            answered_meanwhile.done = True
            _answer(client, frame, frame.iloc[10:11])  # the highest task id: the last page would hold it
        return read(*args)

    answered_meanwhile.done = False
    client.annotated_page = answered_meanwhile
    with open_warehouse(home) as con:
        first = pull_verdicts(con, client, home.config, page_size=2)
        second = pull_verdicts(con, client, home.config, page_size=2)
        total = _reviews(con)
    assert first.review_events == 4 and second.review_events == 1 and total == 5


def test_a_push_imports_page_by_page_recording_each_before_the_next(tmp_path):
    home, frame = digits_home(tmp_path / "home", n=10)
    make_queue(home, frame)
    from data_engine.review.labelstudio.fake import FakeReviewClient

    client = FakeReviewClient()
    imported = client.import_tasks
    with open_warehouse(home) as con:
        seen = []

        def import_page(project_id, tasks):
            open_now = con.execute("SELECT count(*) FROM review_tasks WHERE status = 'open'").fetchall()[0][0]
            seen.append((len(tasks), open_now))
            return imported(project_id, tasks)

        client.import_tasks = import_page
        result = push_queue(con, client, home.config, batch_size=4)
    assert seen == [(4, 0), (4, 4), (2, 8)]
    assert result.sent == 10 and result.batches == 3


def _listing_counter(client):
    listed = []
    inventory = client.task_inventory
    client.task_inventory = lambda *args: listed.append(args) or inventory(*args)
    return listed


def test_a_push_lists_the_tasks_only_when_the_server_has_fewer_than_recorded(tmp_path):
    home, frame, client = pushed_to_fake(tmp_path, 8)
    listed = _listing_counter(client)
    with open_warehouse(home) as con:
        quiet = push_queue(con, client, home.config)
        assert listed == [] and quiet.notices == [] and quiet.sent == 0
        client.delete_task(next(iter(client.tasks)))
        noticed = push_queue(con, client, home.config)
    assert len(listed) == 1 and len(noticed.notices) == 1 and "1 still open will be sent again" in noticed.notices[0]
    assert noticed.sent == 1


def test_a_push_with_nothing_new_costs_the_same_requests_at_any_project_size(tmp_path):
    costs = []
    for n in (6, 60):
        home, frame, client = pushed_to_fake(tmp_path / str(n), n)
        _answer(client, frame, frame.head(3))
        with open_warehouse(home) as con:
            pull_verdicts(con, client, home.config)
            again = push_queue(con, client, home.config)
        costs.append((again.sent, again.requests))
    assert costs[0] == costs[1] and costs[0][0] == 0
