"""Push: bulk imports, the review_tasks record, idempotence after an interrupted push (fake server)."""

from __future__ import annotations

import pytest

from data_engine.errors import ReviewServiceError
from data_engine.review.labelstudio.fake import FakeReviewClient
from data_engine.review.project import project_title
from data_engine.review.push import push_queue
from data_engine.store.warehouse import open_warehouse
from tests.review_support import digits_home, make_queue


@pytest.fixture
def queued(tmp_path):
    home, frame = digits_home(tmp_path / "home", n=30)
    make_queue(home, frame)
    return home, frame


def test_push_sends_the_queue_in_bulk_and_records_each_task(queued):
    home, _ = queued
    client = FakeReviewClient()
    with open_warehouse(home) as con:
        result = push_queue(con, client, home.config, batch_size=8)
        rows = con.execute("SELECT status, count(*), count(DISTINCT task_id) FROM review_tasks GROUP BY status").fetchall()
    assert result.sent == 30 and result.batches == 4
    assert client.import_calls == 4  # never one request per task
    assert rows == [("open", 30, 30)]
    assert len(client.tasks) == 30
    project = client.projects[result.project_id]
    assert project["title"] == project_title(home.config)
    assert '<Choice value="not a valid example"/>' in project["label_config"]


def test_task_carries_the_example_the_suggestion_and_the_issue_columns(queued):
    home, frame = queued
    client = FakeReviewClient()
    with open_warehouse(home) as con:
        push_queue(con, client, home.config)
    task = min(client.tasks.values(), key=lambda t: t["id"])
    data = task["data"]
    first = frame.iloc[0]
    assert data["example_id"] == first["id"] and data["engine_key"].startswith(first["id"] + "@v")
    assert data["given_label"] == first["given_label"]
    assert data["image"].startswith("data:image/png;base64,")
    assert data["issue_types"] in ("label", "uncertain") and isinstance(data["label_score"], float)
    (prediction,) = task["predictions"]
    assert prediction["result"][0]["value"]["choices"] == [first["true_label"]]
    assert prediction["model_version"] and 0 < prediction["score"] <= 1


def test_second_push_sends_nothing_new(queued):
    home, _ = queued
    client = FakeReviewClient()
    with open_warehouse(home) as con:
        push_queue(con, client, home.config)
        again = push_queue(con, client, home.config)
    assert again.sent == 0 and len(client.tasks) == 30


def test_budget_caps_open_tasks(tmp_path):
    home, frame = digits_home(tmp_path / "home", n=30, review={"budget": 12})
    make_queue(home, frame)
    client = FakeReviewClient()
    with open_warehouse(home) as con:
        first = push_queue(con, client, home.config)
        second = push_queue(con, client, home.config)
    assert (first.sent, second.sent) == (12, 0)


def test_interrupted_push_is_reconciled_without_duplicates(queued):
    home, _ = queued
    client = FakeReviewClient()
    client.fail_on_import = 2  # the server stores batch 2, but its reply is lost
    with open_warehouse(home) as con:
        with pytest.raises(ReviewServiceError):
            push_queue(con, client, home.config, batch_size=10)
        states = dict(con.execute("SELECT status, count(*) FROM review_tasks GROUP BY status").fetchall())
        assert states == {"open": 10, "sending": 10} and len(client.tasks) == 20
        resumed = push_queue(con, client, home.config, batch_size=10)
        rows = con.execute("SELECT count(*), count(DISTINCT task_id) FROM review_tasks WHERE status = 'open'").fetchall()[0]
    assert resumed.reconciled == 10 and resumed.sent == 10
    assert rows == (30, 30)
    keys = [t["data"]["engine_key"] for t in client.tasks.values()]
    assert len(keys) == len(set(keys)) == 30


def test_failed_import_before_the_server_stored_anything_is_resent(queued):
    home, _ = queued
    client = FakeReviewClient()
    with open_warehouse(home) as con:
        push_queue(con, client, home.config, limit=5)  # project exists now
        client.fail_with = ReviewServiceError("cannot reach Label Studio at http://fake: connection refused")
        with pytest.raises(ReviewServiceError, match="connection refused"):
            push_queue(con, client, home.config, limit=10)
        client.fail_with = None
        resumed = push_queue(con, client, home.config, limit=10)
        n = con.execute("SELECT count(*) FROM review_tasks WHERE status = 'open'").fetchall()[0][0]
    assert resumed.sent == 10 and n == 15 and len(client.tasks) == 15


def test_project_is_found_again_by_title(queued, tmp_path):
    home, frame = queued
    client = FakeReviewClient()
    with open_warehouse(home) as con:
        first = push_queue(con, client, home.config, limit=3)
    other, other_frame = digits_home(tmp_path / "other", n=5)
    make_queue(other, other_frame)
    with open_warehouse(other) as con:
        second = push_queue(con, client, other.config)
    assert first.project_id == second.project_id and len(client.projects) == 1


def test_a_second_opinion_is_a_new_task_of_the_same_version_sent_only_from_a_later_run(tmp_path):
    home, frame = digits_home(tmp_path / "home", n=6)
    make_queue(home, frame, run_id=1)
    client = FakeReviewClient()
    with open_warehouse(home) as con:
        assert push_queue(con, client, home.config).sent == 6
        first = frame.iloc[0]["id"]
        con.execute("UPDATE review_tasks SET status = 'done' WHERE example_id = ?", [first])
        # The run that sent it never sends it again, reviewed or not.
        assert push_queue(con, client, home.config).sent == 0
    make_queue(home, frame, run_id=2, n=2)  # a later run queues the reviewed example and one still open
    with open_warehouse(home) as con:
        again = push_queue(con, client, home.config)
        rows = con.execute("SELECT opinion, engine_key, status FROM review_tasks WHERE example_id = ? "
                           "ORDER BY opinion", [first]).fetchall()
        con.execute("UPDATE review_tasks SET status = 'done' WHERE example_id = ?", [first])
    assert again.sent == 1
    assert [r[0] for r in rows] == [1, 2] and rows[1][1].endswith("/2") and rows[1][2] == "open"
    keys = [t["data"]["engine_key"] for t in client.tasks.values()]
    assert len(keys) == len(set(keys)) == 7
    make_queue(home, frame, run_id=3, n=1)  # two opinions are [review] max_opinions: no third
    with open_warehouse(home) as con:
        assert push_queue(con, client, home.config).sent == 0


def test_a_tied_task_still_waits_for_its_deciding_vote_so_no_second_opinion_goes_out(tmp_path):
    home, frame = digits_home(tmp_path / "home", n=3)
    make_queue(home, frame, run_id=1)
    client = FakeReviewClient()
    with open_warehouse(home) as con:
        push_queue(con, client, home.config)
        con.execute("UPDATE review_tasks SET status = 'tie' WHERE example_id = ?", [frame.iloc[0]["id"]])
    make_queue(home, frame, run_id=2, n=1)
    with open_warehouse(home) as con:
        assert push_queue(con, client, home.config).sent == 0
        con.execute("UPDATE review_tasks SET status = 'done' WHERE example_id = ?", [frame.iloc[0]["id"]])
        assert push_queue(con, client, home.config).sent == 1


def test_a_near_duplicate_task_shows_its_partner_and_the_partners_label(queued):
    home, frame = queued
    first, partner = frame.iloc[0], frame.iloc[5]
    client = FakeReviewClient()
    with open_warehouse(home) as con:
        con.execute("INSERT INTO issues (run_id, example_id, example_version, issue_type, score, is_issue, detail) "
                    "VALUES (1, ?, 1, 'near_duplicate', 0.1, true, ?)",
                    [first["id"], '{"duplicate_of": "%s", "exact": false}' % partner["id"]])
        push_queue(con, client, home.config)
    by_example = {t["data"]["example_id"]: t["data"] for t in client.tasks.values()}
    shown = by_example[first["id"]]
    assert shown["duplicate_of"] == partner["id"] and shown["duplicate_label"] == partner["given_label"]
    assert shown["duplicate_note"] == f"Near-duplicate of: {partner['id']} (its label: {partner['given_label']})"
    assert shown["duplicate_image"].startswith("data:image/png;base64,")
    assert shown["duplicate_image"] == by_example[partner["id"]]["image"]  # the partner as it is shown itself
    other = by_example[frame.iloc[1]["id"]]
    assert other["duplicate_of"] == "none" and other["duplicate_image"].startswith("data:image/png;base64,")
    assert other["duplicate_note"] == ""  # a task without a partner shows no "Near-duplicate of: none"
    config = next(iter(client.projects.values()))["label_config"]
    assert 'value="$duplicate_image"' in config and "$duplicate_note" in config
    # Numbers stay numbers in the task data (the project's saved view types the columns).
    assert isinstance(shown["priority"], float) and isinstance(shown["example_version"], int)
