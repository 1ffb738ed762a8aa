"""The gate measures detection's classes on gold by their gold boxes (trial 22: every candidate was
refused as "0 gold examples" for classes gold held 30 boxes of), and its wording is coherent."""

from __future__ import annotations

import json

import numpy as np

from data_engine.ship.evaluation import evaluate_predictions
from data_engine.ship.gate import decide_promotion
from data_engine.ship.gold import assess_unmeasured
from data_engine.store.config import GateConfig
from data_engine.tasks.detection import Detection

CLASSES = ["blob", "plus", "bar"]


def _boxes(*boxes: tuple[str, float, float, float]) -> str:
    return json.dumps([{"label": c, "x": x, "y": 10.0, "w": 20.0, "h": 20.0, "score": s} for c, x, s, _ in boxes])


def test_class_recall_counts_gold_boxes_matched_by_kept_boxes():
    gold = [_boxes(("blob", 0, 1, 0), ("plus", 50, 1, 0)), _boxes(("blob", 0, 1, 0)), _boxes(("bar", 0, 1, 0))]
    pred = [_boxes(("blob", 1, 0.9, 0), ("plus", 50, 0.3, 0)),  # plus scored below 0.5: not predicted
            _boxes(("blob", 15, 0.9, 0)),                           # IoU 5*20/(2*400-100) = 0.14: a miss
            _boxes(("bar", 0, 0.8, 0), ("blob", 40, 0.9, 0))]       # an extra box does not lower recall
    assert Detection().class_recall(np.array(gold, dtype=object), np.array(pred, dtype=object)) == {
        "blob": (0.5, 2), "plus": (0.0, 1), "bar": (1.0, 1)}


def test_a_better_detector_is_promoted_with_every_class_measured():
    gold = np.array([_boxes((CLASSES[i % 3], 0, 1, 0)) for i in range(30)], dtype=object)
    cand = np.array([_boxes((CLASSES[i % 3], 0, 0.9, 0)) for i in range(30)], dtype=object)
    champ = np.array([_boxes((CLASSES[i % 3], 0 if i < 18 else 30, 0.9, 0)) for i in range(30)], dtype=object)
    task, cfg = Detection(), GateConfig()
    ev_c = evaluate_predictions(gold, cand, version=2, task=task, classes=CLASSES)
    ev_h = evaluate_predictions(gold, champ, version=1, task=task, classes=CLASSES)
    assert ev_c.per_class_support == {"blob": 10, "plus": 10, "bar": 10}
    assert ev_h.per_class_recall == {"blob": 0.6, "plus": 0.6, "bar": 0.6}
    # No out-of-fold figures (the detector is not scored out of fold): measured classes need none.
    unmeasured = assess_unmeasured(CLASSES, ev_c.per_class_support, ev_c.per_class_recall, cfg,
                                   candidate_oof=None, champion_oof=None, champion_classes=CLASSES)
    assert unmeasured == ()
    v = decide_promotion(ev_c, ev_h, cfg, pairs=(gold, cand, champ), unmeasured=unmeasured, task=task)
    assert (v.promote, v.outcome) == (True, "better")
    assert v.reason.startswith("better beyond what gold resolves (alpha 0.05): candidate v2 vs champion v1 on 30 "
                               "gold examples: map50 +0.4000 (90% CI [")
    assert "paired bootstrap one-sided p-values: 1 for worse, 0 for better, n = 30)" in v.reason
    assert "refused" not in v.reason


def test_an_unmeasured_refusal_is_not_prefixed_twice_and_a_tie_says_no_test():
    gold = np.array([_boxes(("blob", 0, 1, 0)) for _ in range(20)] + [_boxes(("bar", 0, 1, 0))], dtype=object)
    cand = gold.copy()
    task, cfg = Detection(), GateConfig()
    ev = evaluate_predictions(gold, cand, version=2, task=task, classes=CLASSES)
    unmeasured = assess_unmeasured(CLASSES, ev.per_class_support, ev.per_class_recall, cfg,
                                   candidate_oof=None, champion_oof=None, champion_classes=CLASSES)
    assert [(u.name, u.gold_support, u.passed) for u in unmeasured] == [("plus", 0, False), ("bar", 1, False)]
    v = decide_promotion(ev, ev, cfg, pairs=(gold, cand, cand), unmeasured=unmeasured, task=task)
    assert v.promote is False
    assert v.reason.startswith("gold cannot measure class(es) 'plus', 'bar' and [gate] unmeasured = 'out_of_fold'")
    assert ("map50 +0.0000 (90% CI [+0.0000, +0.0000], paired bootstrap no gold example tells the two apart, "
            "so no test, n = 21)") in v.reason


def test_a_detection_homes_gate_counts_no_class_style_wins_or_losses(tmp_path):
    """Champion and candidate of a detection home on gold: a box set compared as text never equals
    gold, so counting "gold examples only one model gets right" that way would read 0 and 0 (trial
    22); the gate leaves the counts out instead."""
    from data_engine.demo.drawn_boxes import CLASSES as DRAWN, make_scenes, write_scenes
    from data_engine.review.rules import apply_rule
    from data_engine.ship.gate import run_gate
    from data_engine.ship.step import gate_and_promote
    from data_engine.ship.training import train_candidate
    from data_engine.steps import ingest_step
    from data_engine.store.warehouse import open_warehouse
    from tests.homes import make_home

    home = make_home(tmp_path, {"dataset": {"name": "boxes", "modality": "image", "task": "detection",
                                            "id_column": "id", "label_column": "boxes", "image_column": "image",
                                            "feature_columns": [], "classes": list(DRAWN)},
                                "mining": {"n_jobs": 1, "folds": 3}, "gate": {"metric": "map50"}})
    ingest_step(home, [write_scenes(home.landing, make_scenes(30, seed=1), prefix="s", name="train")])
    ingest_step(home, [write_scenes(home.landing / "gold", make_scenes(20, seed=5), prefix="g", name="gold",
                                    truth=True)], gold=True)
    with open_warehouse(home) as con:
        train_candidate(con, home)
        assert gate_and_promote(con, home)[1] is not None  # v1 is the champion
    # A person's discard changes the labels in force, so a second candidate trains (no batch: no drift check).
    assert apply_rule(home, "example_id = 's0000'", discard=True).changed == 1
    with open_warehouse(home) as con:
        version = train_candidate(con, home).record.version
        verdict = run_gate(con, home, version=version)
    assert (version, verdict.champion_version, verdict.n_gold, verdict.outcome) == (2, 1, 20, "tied")
    assert (verdict.wins, verdict.losses) == (None, None)
    meta = verdict.metadata()
    assert (meta["gold_only_candidate_right"], meta["gold_only_champion_right"]) == (None, None)
