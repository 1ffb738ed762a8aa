"""Label Studio failing under the engine: answering 401, 500, timing out or dropping the connection
(through a fault-injecting loopback proxy in front of the real server), and the real server stopped
in the middle of a push and of a pull, then restarted with its data.

Every failure is one line on stderr naming the URL and the cause, exit status 2, no traceback;
afterwards no task exists twice on the server, every verdict is in ``label_events`` exactly once,
and the next push/pull resumes.
"""

from __future__ import annotations

import json
from collections import Counter

import pytest

from data_engine.cli import main as cli_main
from data_engine.errors import ReviewServiceError
from data_engine.review.labelstudio.client import LabelStudioClient
from data_engine.review.project import make_client, project_title
from data_engine.review.pull import pull_verdicts
from data_engine.review.push import push_queue
from data_engine.review.simulate import read_oracle, simulate_reviews
from data_engine.store.warehouse import open_warehouse
from tests.reliability.faulty_proxy import FaultyProxy

pytestmark = [pytest.mark.integration, pytest.mark.timeout(900)]
CLASSES = [str(i) for i in range(10)]
# What each fault must say, after the URL.
CAUSE = {"badtoken": "refused the API key (HTTP 401)", "500": "failed with HTTP 500", "hang": "did not answer within",
         "drop": "cannot talk to Label Studio"}


def _cli_fails(capsys, home, *args: str, url: str, cause: str) -> None:
    code = cli_main(["--home", str(home.root), *args])
    captured = capsys.readouterr()
    err = captured.err.strip()
    assert code == 2, (code, captured.out, err)
    assert len(err.splitlines()) == 1 and "Traceback" not in err and err.startswith("data-engine: error: "), err
    assert url in err and cause in err, err


def _server_keys(label_studio, pid: int) -> Counter:
    direct = LabelStudioClient(label_studio.url, label_studio.token)
    try:
        return Counter(t["data"].get("engine_key") for t in direct.tasks_after(pid, 0))
    finally:
        direct.close()


def _assert_tasks_once(home, label_studio, pid: int, expected: int) -> None:
    keys = _server_keys(label_studio, pid)
    assert len(keys) == expected and set(keys.values()) == {1}, keys.most_common(3)
    with open_warehouse(home, read_only=True) as con:
        rows = con.execute("SELECT engine_key, task_id, status FROM review_tasks").fetchall()
    assert sorted(r[0] for r in rows) == sorted(keys) and all(r[1] is not None and r[2] != "sending" for r in rows)


def _assert_verdicts_once(home, label_studio, pid: int) -> int:
    """Every answer on the server is in label_events exactly once (by annotation id)."""
    direct = LabelStudioClient(label_studio.url, label_studio.token)
    try:
        answered = {a["id"] for t in direct.annotated_tasks(pid, None) for a in t["annotations"] if not a["was_cancelled"]}
    finally:
        direct.close()
    with open_warehouse(home, read_only=True) as con:
        ids = Counter(json.loads(d)["annotation_id"] for (d,) in
                      con.execute("SELECT detail FROM label_events WHERE source = 'review'").fetchall())
    assert set(ids) == answered and set(ids.values()) <= {1}, (len(ids), len(answered), ids.most_common(2))
    return len(answered)


@pytest.fixture
def proxied(review_home, label_studio):
    proxy = FaultyProxy(label_studio.url, hang_s=5.0).start()
    home, frame = review_home(n=30, url=proxy.url, import_batch_size=5, timeout_seconds=2.0)
    try:
        yield home, frame, proxy
    finally:
        proxy.stop()


def test_push_through_401_500_timeouts_and_drops_resumes_without_duplicates(proxied, label_studio, capsys):
    home, _, proxy = proxied
    for mode in ("badtoken", "500", "hang", "drop"):
        # Each push sends up to 10 new tasks in batches of 5; the fault hits its second bulk import
        # (401 and 500 and the drop: the server never stored it; the timeout: it did, the reply was lost).
        proxy.fail(mode, "/import", method="POST", skip=1, times=1)
        _cli_fails(capsys, home, "review", "push", "--limit", "10", url=proxy.url, cause=CAUSE[mode])
        assert proxy.rules[0].fired == 1
        proxy.heal()
        assert cli_main(["--home", str(home.root), "status"]) == 0
    assert cli_main(["--home", str(home.root), "review", "push"]) == 0
    capsys.readouterr()
    with open_warehouse(home, read_only=True) as con:
        pid = con.execute("SELECT project_id FROM review_projects").fetchall()[0][0]
    _assert_tasks_once(home, label_studio, pid, 30)


def test_pull_through_401_500_timeouts_and_drops_records_each_verdict_once(proxied, label_studio, capsys):
    home, _, proxy = proxied
    assert cli_main(["--home", str(home.root), "review", "push"]) == 0
    with open_warehouse(home, read_only=True) as con:
        pid = con.execute("SELECT project_id FROM review_projects").fetchall()[0][0]
    direct = LabelStudioClient(label_studio.url, label_studio.token)
    oracle = read_oracle(home.oracle_path)
    pulled_before = 0
    for mode, path in (("badtoken", "/api/tasks"), ("500", "/api/users"), ("hang", "/api/tasks"), ("drop", "/api/users")):
        simulate_reviews(direct, pid, oracle, CLASSES, accuracy=1.0, limit=4)  # 4 new verdicts each round
        proxy.fail(mode, path, method="GET", times=1)
        _cli_fails(capsys, home, "review", "pull", url=proxy.url, cause=CAUSE[mode])
        proxy.heal()
        with open_warehouse(home, read_only=True) as con:
            kept = con.execute("SELECT count(*) FROM label_events WHERE source = 'review'").fetchall()[0][0]
        assert kept == pulled_before  # a failed pull writes nothing
        assert cli_main(["--home", str(home.root), "review", "pull"]) == 0
        pulled_before = _assert_verdicts_once(home, label_studio, pid)
    direct.close()
    capsys.readouterr()
    assert pulled_before == 16


def test_label_studio_stopped_during_a_push_and_a_pull_then_restarted_with_its_data(review_home, label_studio,
                                                                                 monkeypatch, capsys):
    home, _ = review_home(n=15, import_batch_size=5)
    client = make_client(home)
    real_import = client.import_tasks
    calls = {"n": 0}

    def stop_before_second_batch(project_id, tasks):
        calls["n"] += 1
        if calls["n"] == 2:
            label_studio.stop()  # the real server goes away mid-push
        return real_import(project_id, tasks)

    monkeypatch.setattr(client, "import_tasks", stop_before_second_batch)
    try:
        with open_warehouse(home) as con, pytest.raises(ReviewServiceError) as err:
            push_queue(con, client, home.config)
        # The pooled connection breaks (or a new one is refused): either way one line naming the URL.
        message = str(err.value)
        assert label_studio.url in message and ("connection refused" in message or "connection closed" in message)
        assert cli_main(["--home", str(home.root), "status"]) == 0
    finally:
        label_studio.restart()
    client = make_client(home)
    with open_warehouse(home) as con:
        pushed = push_queue(con, client, home.config)
        pid = pushed.project_id
    assert pushed.sent == 10
    _assert_tasks_once(home, label_studio, pid, 15)

    simulate_reviews(client, pid, read_oracle(home.oracle_path), CLASSES, accuracy=1.0)
    real_users = client.users

    def stop_then_list_users():
        label_studio.stop()  # annotated tasks were read; the server goes away before the pull's last read
        return real_users()

    monkeypatch.setattr(client, "users", stop_then_list_users)
    try:
        with open_warehouse(home) as con, pytest.raises(ReviewServiceError) as err:
            pull_verdicts(con, client, home.config)
        assert "connection refused" in str(err.value) or "connection closed" in str(err.value)
        with open_warehouse(home, read_only=True) as con:
            assert con.execute("SELECT count(*) FROM label_events WHERE source = 'review'").fetchall()[0][0] == 0
    finally:
        label_studio.restart()
    with open_warehouse(home) as con:
        assert pull_verdicts(con, make_client(home), home.config).review_events == 15
        assert pull_verdicts(con, make_client(home), home.config).review_events == 0
    assert _assert_verdicts_once(home, label_studio, pid) == 15
    assert project_title(home.config)
    capsys.readouterr()
