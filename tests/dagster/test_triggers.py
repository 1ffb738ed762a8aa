"""The sensors' decisions without Dagster: nothing requested while a run of the job is in flight or
when the state equals the last run's; one final retrain once nothing is left to review."""

from __future__ import annotations

import math

import numpy as np
import pytest

from data_engine.ship.training import AlreadyTrained, train_candidate
from data_engine.store.warehouse import open_warehouse
from data_engine.triggers import mining_state, mining_trigger, refill_threshold, retrain_trigger, review_pending
from tests.loop_support import insert_examples, make_home, review, seed_digits


@pytest.fixture()
def env(tmp_path):
    h = make_home(tmp_path, {"retrain": {"min_new_labels": 5}})
    return h, seed_digits(h, n_train=200, n_gold=60, n_unlabeled=20)


def _record_mining_run(con, run_id: int) -> None:
    """A mining run on the warehouse's current state, as store_run records it."""
    state = mining_state(con)
    con.execute("INSERT INTO mining_runs (run_id, started_at, label_snapshot, model_spec, example_versions) "
                "VALUES (?, now(), ?, 'm', ?)", [run_id, state.label_snapshot, state.example_versions])


def _task(con, example_id: str, status: str) -> None:
    con.execute("INSERT INTO review_tasks (project_id, example_id, example_version, opinion, engine_key, run_id, "
                "task_id, status) VALUES (1, ?, 1, 1, ?, '1', ?, ?)",
                [example_id, f"k-{example_id}", abs(hash(example_id)) % 10**9, status])


def test_mining_runs_once_per_state_and_never_beside_a_run_in_flight(env):
    home, info = env
    train_ids = list(info["ids"][info["parts"]["train"]])
    with open_warehouse(home) as con:
        first = mining_trigger(con)
        assert first.run and "no mining run yet" in first.reason
        assert not mining_trigger(con, in_flight=["abcdef123456"]).run
        assert "queued or in progress" in mining_trigger(con, in_flight=["abcdef123456"]).reason
        _record_mining_run(con, 1)
        same = mining_trigger(con)
        assert not same.run and "nothing new since mining run 1" in same.reason and same.run_key == first.run_key
        review(con, {train_ids[0]: "3"})
        labels = mining_trigger(con)
        assert labels.run and "labels changed" in labels.reason and labels.run_key != first.run_key
        _record_mining_run(con, 2)
        insert_examples(con, home, ["new1", "new2"], np.zeros((2, 64)), [None, None], batch="unlabeled-2")
        examples = mining_trigger(con)
        assert examples.run and "2 example version(s) ingested" in examples.reason
        assert not mining_trigger(con, in_flight=["r1"]).run


def test_new_verdicts_alone_re_mine_only_once_reviewers_run_short_of_tasks(env):
    home, info = env
    train_ids = list(info["ids"][info["parts"]["train"]])
    assert refill_threshold(home.config) == math.ceil(home.config.review.refill_below * home.config.review.budget)
    with open_warehouse(home) as con:
        _record_mining_run(con, 1)
        for i in range(3):
            _task(con, f"open{i}", "open")
        review(con, {train_ids[0]: "3"})
        waiting = mining_trigger(con, refill_below=3)
        assert not waiting.run and "3 review task(s) are still open" in waiting.reason and "refill_below" in waiting.reason
        assert mining_trigger(con, refill_below=4).run  # fewer open than the threshold: refill
        assert mining_trigger(con).run  # without the rule (the settling check): labels changed
        con.execute("UPDATE review_tasks SET status = 'done' WHERE example_id = 'open0'")
        assert mining_trigger(con, refill_below=3).run
        con.execute("UPDATE review_tasks SET status = 'open'")
        # New examples re-mine at once, open tasks or not.
        insert_examples(con, home, ["new1"], np.zeros((1, 64)), [None], batch="unlabeled-2")
        assert mining_trigger(con, refill_below=3).run


def test_retrain_never_twice_on_one_snapshot_nor_beside_a_retrain_in_flight(env):
    home, _ = env
    with open_warehouse(home) as con:
        assert retrain_trigger(con, home.config).run
        assert not retrain_trigger(con, home.config, in_flight=["r1"]).run
        v1 = train_candidate(con, home).record
        again = retrain_trigger(con, home.config)
        assert not again.run
        with pytest.raises(AlreadyTrained, match=f"model v{v1.version} .* already trained on label snapshot"):
            train_candidate(con, home)
        assert con.execute("SELECT count(*) FROM models").fetchone()[0] == 1


def test_the_loop_settles_with_one_final_retrain_once_nothing_is_left_to_review(env):
    home, info = env
    train_ids = list(info["ids"][info["parts"]["train"]])
    with open_warehouse(home) as con:
        train_candidate(con, home)
        _task(con, train_ids[0], "done")
        _task(con, train_ids[1], "open")
        review(con, {train_ids[0]: "4"})  # one verdict: below min_new_labels = 5
        waiting = retrain_trigger(con, home.config)
        assert not waiting.run and "1 review task(s) not finished" in waiting.reason
        con.execute("UPDATE review_tasks SET status = 'done'")
        review(con, {train_ids[1]: "5"})
        # Mining has not seen the newest labels: it may still queue something to review.
        assert review_pending(con) == "mining has not seen the newest labels or examples yet"
        assert not retrain_trigger(con, home.config).run
        _record_mining_run(con, 1)
        assert not retrain_trigger(con, home.config, mining_in_flight=["m1"]).run
        assert not retrain_trigger(con, home.config, pull_in_flight=["p1"]).run
        final = retrain_trigger(con, home.config)
        assert final.run and "nothing left to review and 2 reviewed label(s) are in no model" in final.reason
        train_candidate(con, home)
        settled = retrain_trigger(con, home.config)
        assert not settled.run and "trained on the current labels" in settled.reason


def test_at_rest_nothing_is_retrained_and_a_landed_batch_is_mined_before_it_is_trained_on(env):
    home, _ = env
    with open_warehouse(home) as con:
        train_candidate(con, home)
        _record_mining_run(con, 1)
        assert review_pending(con) is None
        idle = retrain_trigger(con, home.config)
        assert not idle.run and "trained on the current labels" in idle.reason
        insert_examples(con, home, ["n1", "n2", "n3"], np.zeros((3, 64)), ["0", "1", "2"], batch="labeled-2")
        waiting = retrain_trigger(con, home.config)
        assert not waiting.run and "waiting for mining to take the 3 new example version(s)" in waiting.reason
        _record_mining_run(con, 2)
        assert retrain_trigger(con, home.config).run


def test_gold_alone_is_not_mined(tmp_path):
    home = make_home(tmp_path)
    with open_warehouse(home) as con:
        insert_examples(con, home, ["g1", "g2"], np.zeros((2, 64)), ["1", "2"], batch="gold", gold=True)
        decision = mining_trigger(con)
    assert not decision.run and "gold data is for evaluation only" in decision.reason


def test_tasks_gone_from_label_studio_start_one_run_that_sends_them_again(env):
    home, _ = env
    with open_warehouse(home) as con:
        _record_mining_run(con, 1)
        assert not mining_trigger(con).run
        _task(con, "a", "open")
        # A pull found the task deleted in Label Studio: back to 'sending', without a task id.
        con.execute("UPDATE review_tasks SET status = 'sending', task_id = NULL")
        con.execute("INSERT INTO review_changes (project_key, kind, task_id) VALUES (1, 'task_deleted', 7)")
        again = mining_trigger(con)
        assert again.run and "1 review task(s) to send again" in again.reason
        assert again.run_key == f"{mining_state(con).run_key}-resend-1"  # once per change noticed
        con.execute("UPDATE review_tasks SET status = 'open', task_id = 9")
        assert not mining_trigger(con).run
