"""Learning from verdicts: the look-alike detector, propagation (policy, precedence, undo), copies."""

from __future__ import annotations

import json
import re
from collections.abc import Callable

import numpy as np
import pandas as pd
import pytest

from data_engine.bench.invalid import invalid_text
from data_engine.errors import EngineError
from data_engine.ingest.batch import ingest_file
from data_engine.mine.detectors import MiningData, get_detector
from data_engine.mine.detectors.lookalike import choose_threshold
from data_engine.mine.run import run_mining
from data_engine.store.ledger import append_events
from data_engine.mine.propagate import PropagationPlan, apply_propagation, propagation_report, undo_propagation
from data_engine.store.home import Home
from data_engine.store.warehouse import open_warehouse

TEXT_CONFIG = """\
[dataset]
name = "reviews"
modality = "text"
id_column = "id"
label_column = "label"
text_column = "sentence"
classes = ["neg", "pos"]

[mining]
model = "linear"
folds = 3
n_jobs = 1

[review]
budget = 60
propagate = "{policy}"
propagate_min_verdicts = 10
propagate_audit = 0.1
"""

POS = "great good lovely excellent tasty friendly fast superb nice recommend".split()
NEG = "bad awful slow rude broken terrible cold bland poor avoid".split()
FILL = "the food service phone screen movie was is really quite and very this it".split()


def sentences(n: int, rng: np.random.Generator) -> tuple[list[str], list[str]]:
    """``n`` short review sentences and their true labels."""
    labels = rng.integers(0, 2, n)
    out = []
    for y in labels:
        words = [FILL[i] for i in rng.integers(0, len(FILL), 5)] + [(POS if y else NEG)[rng.integers(0, 10)]]
        rng.shuffle(words)
        out.append(" ".join(words).capitalize() + ".")
    return out, ["pos" if y else "neg" for y in labels]


def text_home(make_home: Callable[..., Home], policy: str, *, n_clean: int = 240, n_junk: int = 120,
              seed: int = 0) -> tuple[Home, pd.Series]:
    """A text home with clean sentences and junk rows (random labels); returns it and the truth
    per example id (None = junk)."""
    rng = np.random.default_rng(seed)
    text, truth = sentences(n_clean, rng)
    vocab = sorted(set(POS + NEG + FILL))
    junk, _ = invalid_text(n_junk, rng, vocab)
    frame = pd.DataFrame({"sentence": list(text) + list(junk),
                          "label": truth + list(np.array(["neg", "pos"], dtype=object)[rng.integers(0, 2, n_junk)])})
    frame.insert(0, "id", [f"s{i:04d}" for i in range(len(frame))])
    home = make_home(TEXT_CONFIG.format(policy=policy))
    path = home.landing / "reviews.csv"
    frame.to_csv(path, index=False)
    with open_warehouse(home) as con:
        assert ingest_file(con, home.config.dataset, path).status == "ingested"
    return home, pd.Series(truth + [None] * n_junk, index=frame["id"], dtype=object)


def review(con, ids, truth: pd.Series) -> None:
    """A reviewer's verdicts from the truth: the true label, or a discard for junk."""
    append_events(con, pd.DataFrame({"example_id": list(ids), "example_version": 1,
                                     "label": truth.reindex(list(ids)).to_numpy(dtype=object), "source": "review",
                                     "actor": "tester", "detail": "{}"}))


def labels_in_force(con) -> pd.DataFrame:
    return con.execute("SELECT example_id, label, is_discarded, source, event_id FROM current_labels "
                       "ORDER BY example_id").fetchdf()


def test_threshold_reaches_the_precision_target_on_enough_heldout_verdicts() -> None:
    p = np.array([0.99, 0.97, 0.95, 0.9, 0.8, 0.7, 0.6, 0.4])
    discarded = np.array([1, 1, 1, 1, 0, 1, 0, 0], bool)
    assert choose_threshold(p, discarded, 1.0, 2) == (0.9, 1.0, 4)
    assert choose_threshold(p, discarded, 0.8, 2) == (0.7, 0.8333, 6)
    assert choose_threshold(p, discarded, 1.0, 5) == (None, None, 0)  # too few verdicts above any good threshold


def test_detector_learns_junk_from_a_few_discards_and_asks_where_unsure() -> None:
    rng = np.random.default_rng(3)
    text, truth = sentences(300, rng)
    junk, _ = invalid_text(150, rng, sorted(set(POS + FILL)))
    inputs = pd.DataFrame({"sentence": list(text) + list(junk)})
    ids = np.array([f"e{i}" for i in range(len(inputs))], dtype=object)
    is_junk = np.r_[np.zeros(300, bool), np.ones(150, bool)]
    reviewed = np.r_[rng.choice(300, 10, replace=False), 300 + rng.choice(150, 40, replace=False)]
    verdicts = pd.DataFrame({"example_id": ids[reviewed], "feature_hash": [f"h{i}" for i in reviewed],
                             "is_discarded": is_junk[reviewed], "label": np.where(is_junk[reviewed], None, "pos"),
                             "given_label": "pos", "sentence": inputs["sentence"].to_numpy()[reviewed]})
    n = len(ids)
    data = MiningData(ids, np.zeros(n, np.int64), ("neg", "pos"), np.full((n, 2), 0.5), np.ones(n, bool),
                      np.array([f"h{i}" for i in range(n)], dtype=object), inputs=inputs,
                      schema={"sentence": "text"}, modality="text", verdicts=verdicts)
    result = get_detector("lookalike", min_count=5, ask=10).find_issues(data)
    found = result.issues.set_index("example_id")
    assert not found.index.isin(ids[reviewed]).any()  # scores only for the unreviewed
    p = found["detail"].map(lambda d: json.loads(d)["p_discard"])
    truth_junk = pd.Series(is_junk, index=ids).reindex(found.index)
    flagged = p >= 0.5
    from sklearn.metrics import roc_auc_score

    # From 40 discards: what it flags is junk, and it ranks the rest of the junk first.
    assert truth_junk[flagged].mean() >= 0.9 and flagged[truth_junk].mean() >= 0.3
    assert roc_auc_score(truth_junk, p) >= 0.9
    asked = found["detail"].map(lambda d: json.loads(d)["asked"])
    assert asked.sum() == 10 and found.loc[asked, "is_issue"].all()
    assert p[asked].between(0.1, 0.5, inclusive="left").all()  # unsure, not confidently kept
    assert result.summary["status"] == "trained" and result.summary["verdicts"] == 50
    assert found.loc[flagged, "reason"].str.contains(r"examples reviewers discarded|which a reviewer discarded").all()


def test_apply_discards_lookalikes_never_overrides_a_reviewer_and_undo_restores_exactly(make_home) -> None:
    home, truth = text_home(make_home, "apply")
    rng = np.random.default_rng(1)
    junk_ids = truth.index[truth.isna()]
    clean_ids = truth.index[truth.notna()]
    first = list(rng.choice(junk_ids, 30, replace=False)) + list(rng.choice(clean_ids, 30, replace=False))
    with open_warehouse(home) as con:
        review(con, first, truth)
        before = labels_in_force(con)
        summary = run_mining(con, home.config, home=home)
        after = labels_in_force(con)
        prop = summary.propagation
        assert prop["policy"] == "apply" and prop["lookalikes"] > 0, summary.detector_summaries["lookalike"]
        touched = con.execute("SELECT example_id FROM propagated_examples").fetchdf()["example_id"]
        # Reviewed examples keep the reviewer's verdict; propagation only discarded unreviewed junk.
        assert not touched.isin(first).any()
        kept = after.set_index("example_id").loc[first]
        assert (kept["source"] == "review").all()
        assert truth.reindex(touched).isna().mean() >= 0.95
        events = con.execute("SELECT actor, detail FROM label_events WHERE source = 'propagated'").fetchdf()
        assert len(events) == len(touched) and events["actor"].str.startswith("detector:lookalike@").all()
        detail = json.loads(events["detail"].iloc[0])
        assert {"score", "verdicts", "propagation_id"} <= set(detail) and detail["verdicts"] == 60
        # The audited share goes back to the queue.
        audit = con.execute("SELECT example_id FROM propagated_examples WHERE audit").fetchdf()["example_id"]
        queued = set(con.execute("SELECT example_id FROM review_queue WHERE run_id = ?",
                                 [summary.run_id]).fetchdf()["example_id"])
        assert len(audit) >= 1 and set(audit) <= queued
        assert not (set(touched) - set(audit)) & queued
        # A reviewer's later verdict on a propagated example wins, and it counts towards precision.
        target = audit.iloc[0]
        review(con, [target], pd.Series({target: "pos"}))
        assert labels_in_force(con).set_index("example_id").loc[target, "source"] == "review"
        report = propagation_report(con)[0]
        assert report["reviewed"] == 1 and report["measured_precision"] == 0.0
        # An older propagated event never beats an earlier review either (precedence, not order).
        with_review = labels_in_force(con)
        undo = undo_propagation(con, prop["propagation_id"], "tester")
        assert undo["undone_at"] is not None
        restored = labels_in_force(con)
        expected = before.set_index("example_id").drop(columns="event_id")
        got = restored.set_index("example_id").drop(columns="event_id")
        # Exactly the labels from before, except the one a reviewer decided since.
        changed = got.index[(got.fillna("~") != expected.reindex(got.index).fillna("~")).any(axis=1)]
        assert list(changed) == [target]
        assert len(after) == len(before) and len(with_review) == len(before)
        with pytest.raises(EngineError, match="already undone"):
            undo_propagation(con, prop["propagation_id"], "tester")


def test_propagated_event_never_beats_a_review_whatever_the_order(make_home) -> None:
    home, truth = text_home(make_home, "apply", n_clean=40, n_junk=20)
    with open_warehouse(home) as con:
        review(con, ["s0001"], truth)
        plan = PropagationPlan(pd.DataFrame({"example_id": ["s0001", "s0002"], "example_version": [1, 1],
                                             "kind": ["lookalike", "lookalike"], "label": [None, None],
                                             "score": [0.99, 0.99], "partner_id": [None, None],
                                             "audit": [False, False]}),
                               "detector:lookalike@1", 0.9, 0.98, 0.99, 40)
        apply_propagation(con, plan, None)
        labels = labels_in_force(con).set_index("example_id")
        assert labels.loc["s0001", "source"] == "review" and labels.loc["s0001", "label"] == truth["s0001"]
        assert labels.loc["s0002", "source"] == "propagated" and labels.loc["s0002", "is_discarded"]


def test_exact_copies_take_the_reviewed_partners_verdict(make_home) -> None:
    home, truth = text_home(make_home, "apply", n_clean=60, n_junk=30)
    extra = pd.DataFrame({"id": ["copy1", "copy2"], "sentence": ["Fine words here.", "Fine words here."],
                          "label": ["pos", "pos"]})
    path = home.landing / "copies.csv"
    extra.to_csv(path, index=False)
    with open_warehouse(home) as con:
        ingest_file(con, home.config.dataset, path)
        review(con, ["copy1"], pd.Series({"copy1": "neg"}))  # a correction
        summary = run_mining(con, home.config, home=home)
        row = con.execute("SELECT label, source FROM current_labels WHERE example_id = 'copy2'").fetchone()
        assert row == ("neg", "propagated"), summary.detector_summaries["lookalike"]
        pe = con.execute("SELECT kind, partner_id FROM propagated_examples WHERE example_id = 'copy2'").fetchone()
        assert pe == ("copy", "copy1")


def test_suggest_queues_lookalikes_and_writes_nothing(make_home) -> None:
    home, truth = text_home(make_home, "suggest", n_clean=120, n_junk=60)
    junk_ids = list(truth.index[truth.isna()][:15])
    clean_ids = list(truth.index[truth.notna()][:15])
    with open_warehouse(home) as con:
        review(con, junk_ids + clean_ids, truth)
        summary = run_mining(con, home.config, home=home)
        assert con.execute("SELECT count(*) FROM label_events WHERE source = 'propagated'").fetchone()[0] == 0
        assert summary.counts["lookalike"] > 0 and "propagation_id" not in summary.propagation
        queued = con.execute("SELECT example_id FROM review_queue WHERE run_id = ? AND list_contains(issue_types, "
                             "'lookalike')", [summary.run_id]).fetchdf()["example_id"]
        assert len(queued) > 0 and truth.reindex(queued).isna().mean() >= 0.6


def test_propagate_policy_is_checked(make_home) -> None:
    from data_engine.errors import ConfigError
    from data_engine.store.config import parse_config

    base = {"dataset": {"name": "d", "modality": "text", "id_column": "id", "label_column": "label",
                        "text_column": "t"}}
    assert parse_config(base).review.propagate == "suggest"
    for bad in ({"propagate": "always"}, {"propagate_precision": 1.5}, {"propagate_audit": -0.1}):
        with pytest.raises(ConfigError, match="review.propagate"):
            parse_config({**base, "review": bad})


def test_mine_cli_reports_the_propagation(make_home, capsys: pytest.CaptureFixture[str]) -> None:
    from data_engine.cli import main

    home, truth = text_home(make_home, "apply", n_clean=120, n_junk=60)
    with open_warehouse(home) as con:
        review(con, list(truth.index[truth.isna()][:20]) + list(truth.index[truth.notna()][:20]), truth)
    assert main(["--home", str(home.root), "mine"]) == 0
    out = capsys.readouterr().out
    assert "propagation 1: discarded" in out and "back to review" in out
    assert main(["--home", str(home.root), "review", "status"]) == 0
    assert "propagation 1 (mining run 1): touched" in capsys.readouterr().out
    assert main(["--home", str(home.root), "review", "undo-propagation", "1"]) == 0
    assert "undone" in capsys.readouterr().out
    assert main(["--home", str(home.root), "review", "undo-propagation", "7"]) == 2
    # The next mining run's report says the earlier run is undone (it read as a new propagation).
    assert main(["--home", str(home.root), "mine", "--force"]) == 0
    assert re.search(r"propagation 1: touched \d+, .*; undone ", capsys.readouterr().out)


def test_undone_propagation_sticks_the_next_mining_run_does_not_propagate_those_examples(make_home) -> None:
    home, truth = text_home(make_home, "apply")
    rng = np.random.default_rng(2)
    first = (list(rng.choice(truth.index[truth.isna()], 30, replace=False))
             + list(rng.choice(truth.index[truth.notna()], 30, replace=False)))
    with open_warehouse(home) as con:
        review(con, first, truth)
        before = labels_in_force(con)
        pid = run_mining(con, home.config, home=home).propagation["propagation_id"]
        undone = set(con.execute("SELECT example_id FROM propagated_examples WHERE propagation_id = ?",
                                 [pid]).fetchdf()["example_id"])
        assert undone
        undo_propagation(con, pid, "tester")
        # Undo restores exactly the labels in force before, event ids included.
        pd.testing.assert_frame_equal(labels_in_force(con), before)
        again = run_mining(con, home.config, home=home)
        repropagated = con.execute("SELECT example_id FROM propagated_examples WHERE propagation_id <> ?",
                                   [pid]).fetchdf()["example_id"]
        assert not undone & set(repropagated)
        # The detector still flags them; they may go to a reviewer, who decides.
        flagged = set(con.execute("SELECT example_id FROM issues WHERE run_id = ? AND issue_type = 'lookalike' "
                                  "AND is_issue", [again.run_id]).fetchdf()["example_id"])
        assert undone & flagged
        now = labels_in_force(con).set_index("example_id").loc[sorted(undone)]
        assert (now["source"] == "ingest").all()


def test_lookalike_asks_nothing_where_it_is_sure() -> None:
    # Confident answers everywhere (every unreviewed example far from the discards): no question
    # is worth a review slot, however many the detector may ask.
    rng = np.random.default_rng(3)
    n = 200
    x = np.r_[rng.normal(0, 1, (150, 4)), rng.normal(30, 1, (50, 4))]
    inputs = pd.DataFrame(x, columns=[f"x{i}" for i in range(4)])
    ids = np.array([f"e{i}" for i in range(n)], dtype=object)
    reviewed = np.r_[np.arange(140, 150), np.arange(150, 160)]
    junk = reviewed >= 150
    verdicts = pd.DataFrame({"example_id": ids[reviewed], "feature_hash": [f"h{i}" for i in reviewed],
                             "is_discarded": junk, "label": np.where(junk, None, "pos"), "given_label": "pos",
                             **{c: inputs[c].to_numpy()[reviewed] for c in inputs}})
    data = MiningData(ids, np.zeros(n, np.int64), ("neg", "pos"), np.full((n, 2), 0.5), np.ones(n, bool),
                      np.array([f"h{i}" for i in range(n)], dtype=object), inputs=inputs,
                      schema={c: "numeric" for c in inputs}, modality="tabular", verdicts=verdicts)
    result = get_detector("lookalike", min_count=5, ask=25).find_issues(data)
    found = result.issues.set_index("example_id")
    p = found["detail"].map(lambda d: json.loads(d)["p_discard"])
    asked = found["detail"].map(lambda d: json.loads(d)["asked"])
    assert result.summary["status"] == "trained"
    assert not asked[(p < 0.1) | (p >= 0.5)].any()
    assert asked.sum() == int(((p >= 0.1) & (p < 0.5)).sum().clip(max=25))
