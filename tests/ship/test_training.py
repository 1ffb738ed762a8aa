"""Training: the training set, candidate registration, the retrain decision, label-trust filtering."""

from __future__ import annotations

import numpy as np
import pytest

from data_engine.errors import EngineError
from data_engine.ship import training
from data_engine.ship.registry import get_model, load_model
from data_engine.ship.retrain_decision import retrain_decision
from data_engine.store.warehouse import open_warehouse
from tests.loop_support import insert_examples, make_home, review, seed_digits


@pytest.fixture()
def env(tmp_path):
    h = make_home(tmp_path, {"retrain": {"min_new_labels": 5}})
    return h, seed_digits(h, n_train=300, n_gold=100, n_unlabeled=50)


def test_training_set_is_labels_in_force_without_gold_discarded_or_unlabeled(env):
    home, info = env
    parts, ids = info["parts"], info["ids"]
    train_ids = list(ids[parts["train"]])
    with open_warehouse(home) as con:
        review(con, {train_ids[0]: None, train_ids[1]: "7" if info["noisy"][parts["train"][1]] != "7" else "8"})
        ts = training.load_training_set(con, home.config)
    assert len(ts.y) == 299  # one discarded; gold and unlabeled never appear
    assert set(ts.example_ids) == set(train_ids[1:])
    i = list(ts.example_ids).index(train_ids[1])
    assert ts.sources[i] == "review" and ts.y[i] in ("7", "8")
    assert list(ts.X.columns) == [f"px{k}" for k in range(64)]
    assert ts.label_snapshot == 300 + 100 + 2


def test_train_candidate_registers_a_loadable_candidate(env):
    home, info = env
    with open_warehouse(home) as con:
        result = training.train_candidate(con, home)
        record = get_model(con, result.record.version)
    assert record.status == "candidate" and record.train_size == 300
    assert record.label_snapshot == 400
    assert record.classes == tuple(str(i) for i in range(10))
    assert record.artifact(home).is_file() and len(record.sha256) == 64
    model = load_model(home, record)
    X = info["X"][info["parts"]["gold"]]
    import pandas as pd

    acc = np.mean(model.predict(pd.DataFrame(X, columns=list(record.input_schema))) == info["y"][info["parts"]["gold"]])
    assert acc > 0.85


def test_retrain_decision_follows_new_labels_and_batches(env):
    home, info = env
    with open_warehouse(home) as con:
        first = retrain_decision(con, home.config)
        assert first.retrain and "no model yet" in first.reason
        training.train_candidate(con, home)
        idle = retrain_decision(con, home.config)
        assert not idle.retrain and "waiting for 5" in idle.reason
        ids = info["ids"][info["parts"]["train"]]
        review(con, {e: "1" for e in ids[:4]})
        assert not retrain_decision(con, home.config).retrain
        review(con, {ids[4]: "1"})
        enough = retrain_decision(con, home.config)
        assert enough.retrain and enough.new_labels == 5
        assert enough.run_key == f"retrain-{enough.label_snapshot}-0"
        training.train_candidate(con, home)
        assert not retrain_decision(con, home.config).retrain
        X = info["X"][:3]
        insert_examples(con, home, ["n1", "n2", "n3"], X, ["0", "1", "2"], batch="later-batch")
        batch = retrain_decision(con, home.config)
    assert batch.retrain and batch.new_batches == 1


def _drifted(con, batch_id: str, drifted: bool, scores: dict[str, float]) -> None:
    """What ingest keeps for a batch it compared (``ingest.batch_drift.store_drift``'s two tables)."""
    con.execute("INSERT INTO batch_drift (batch_id, drifted, columns, auc, report) VALUES (?, ?, '[]', 0.9, '{}')",
                [batch_id, drifted])
    con.executemany("INSERT INTO drift_rows VALUES (?, ?, ?)", [[batch_id, e, s] for e, s in scores.items()])


@pytest.fixture()
def champion_then_new_rows(tmp_path):
    """A home with a first model and 20 unlabeled rows (batch ``unlabeled-1``) it never saw; the ids."""
    home = make_home(tmp_path, {"retrain": {"min_new_labels": 50}})
    info = seed_digits(home, n_train=200, n_gold=60, n_unlabeled=20)
    with open_warehouse(home) as con:
        training.train_candidate(con, home)
    return home, list(info["ids"][info["parts"]["unlabeled"]])


def test_a_drifted_batch_once_labeled_makes_the_champion_re_evaluated_once(champion_then_new_rows):
    home, new = champion_then_new_rows
    with open_warehouse(home) as con:
        _drifted(con, "unlabeled-1", True, {new[0]: 0.9, new[1]: 0.8, new[2]: 0.3})
        assert not retrain_decision(con, home.config).retrain  # its new-looking rows unlabeled
        review(con, {new[0]: "1"})
        assert not retrain_decision(con, home.config).retrain  # one still waits for a label
        review(con, {new[1]: None})  # a discard settles a row too; the row at 0.3 is not new-looking
        decision = retrain_decision(con, home.config)
        assert decision.retrain and decision.new_labels == 2  # far below min_new_labels
        assert "drifted batch unlabeled-1: its 2 new-looking row(s) are labeled (2 by review" in decision.reason
        training.train_candidate(con, home)
        assert not retrain_decision(con, home.config).retrain  # once, not on every later check


def test_an_undrifted_batch_labeled_waits_for_min_new_labels(champion_then_new_rows):
    home, new = champion_then_new_rows
    with open_warehouse(home) as con:
        _drifted(con, "unlabeled-1", False, {new[0]: 0.9})
        review(con, {new[0]: "1"})
        decision = retrain_decision(con, home.config)
    assert not decision.retrain and "waiting for 50" in decision.reason


def test_label_trust_mask_keeps_reviewed_and_unflagged():
    sources = np.array(["ingest", "ingest", "review", "consensus", "ingest"], dtype=object)
    flagged = np.array([True, False, True, True, False])
    assert training.label_trust_mask(sources, flagged).tolist() == [False, True, True, True, True]


def test_weighting_leaves_flagged_unreviewed_labels_out(env, monkeypatch):
    home, info = env
    parts, ids = info["parts"], info["ids"]
    train_ids = ids[parts["train"]]
    flagged_ids = set(train_ids[:20])

    def fake_flags(con, example_ids):
        return np.array([e in flagged_ids for e in example_ids])

    monkeypatch.setattr(training, "latest_label_flags", fake_flags)
    fresh = make_home(home.root.parent, {"retrain": {"min_new_labels": 5, "weight_by_label_quality": True}})
    with open_warehouse(fresh) as con:
        review(con, {train_ids[0]: info["y"][parts["train"][0]]})  # reviewed: trusted again
        result = training.train_candidate(con, fresh)
    assert result.dropped == 19 and result.record.train_size == 281
    assert result.record.params["dropped_flagged_labels"] == 19


def test_training_without_labels_is_a_clear_error(tmp_path):
    h = make_home(tmp_path)
    X = np.zeros((3, 64))
    with open_warehouse(h) as con:
        insert_examples(con, h, ["a", "b", "c"], X, [None, None, None], batch="u")
        with pytest.raises(EngineError, match="no labeled training examples"):
            training.train_candidate(con, h)


def test_latest_label_flags_reads_the_newest_mining_run_on_current_content(env):
    home, info = env
    ids = list(info["ids"][info["parts"]["train"]][:4])
    with open_warehouse(home) as con:
        con.execute("INSERT INTO mining_runs (run_id, started_at, label_snapshot, model_spec) VALUES "
                    "(1, now() - INTERVAL 1 HOUR, 1, 'm'), (2, now(), 1, 'm')")
        con.executemany(
            "INSERT INTO issues (run_id, example_id, example_version, issue_type, score, is_issue) VALUES (?, ?, ?, ?, ?, ?)",
            [[1, ids[0], 1, "label", 0.1, True],      # an older run: ignored
             [2, ids[1], 1, "label", 0.1, True],      # flagged now
             [2, ids[2], 1, "label", 0.9, False],     # scored, not flagged
             [2, ids[3], 1, "outlier", 0.0, True],    # another detector: not a label flag
             [2, ids[0], 7, "label", 0.1, True]],     # a version that is not the current one
        )
        flags = training.latest_label_flags(con, np.array(ids + ["unknown"]))
    assert flags.tolist() == [False, True, False, False, False]


def test_gold_alone_does_not_trigger_training(tmp_path):
    h = make_home(tmp_path)
    with open_warehouse(h) as con:
        insert_examples(con, h, ["g1", "g2"], np.zeros((2, 64)), ["1", "2"], batch="gold", gold=True)
        decision = retrain_decision(con, h.config)
    assert not decision.retrain and "gold data is for evaluation only" in decision.reason
