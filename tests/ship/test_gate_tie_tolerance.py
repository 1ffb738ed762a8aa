"""A paired tie goes to the model trained on more reviewed labels only when the candidate is not
worse on gold's point estimate beyond ``[gate] tie_tolerance`` of the champion's figure, in the
metric's direction, for every task (the multi-label gate promoted a challenger 0.017 micro-F1
worse on gold "because it saw more reviewed labels")."""

from __future__ import annotations

import json

import numpy as np
import pytest

from data_engine.ship.gate import decide_promotion, evaluate_predictions, tie_shortfall
from data_engine.ship.verdict import Provenance
from data_engine.store.config import GateConfig
from data_engine.tasks import TASKS

GATE = GateConfig(min_gold=20)
MORE, FEWER = Provenance(250, 900), Provenance(120, 700)  # the candidate saw more reviewed labels
TAGS = ["a", "b", "c"]


def _tags(rng: np.random.Generator, n: int) -> list[list[str]]:
    return [[t for t in TAGS if rng.random() < 0.5] for _ in range(n)]


def _drop_tags(truth: list[list[str]], rows: list[int]) -> list[list[str]]:
    """The true tags with the first tag removed in ``rows`` (one missed tag each)."""
    rows = set(rows)
    return [t[1:] if i in rows and t else t for i, t in enumerate(truth)]


def _js(tags: list[list[str]]) -> np.ndarray:
    return np.array([json.dumps(sorted(t)) for t in tags], dtype=object)


def _decide(task_name: str, y: np.ndarray, cand: np.ndarray, champ: np.ndarray, classes: list[str] | None = None):
    task = TASKS[task_name]()
    ev_c = evaluate_predictions(y, cand, version=2, task=task, classes=classes)
    ev_h = evaluate_predictions(y, champ, version=1, task=task, classes=classes)
    return decide_promotion(ev_c, ev_h, GATE, pairs=(y, cand, champ), candidate_seen=MORE, champion_seen=FEWER,
                            task=task)


def _multilabel(extra_misses: int):
    rng = np.random.default_rng(4)
    truth = _tags(rng, 200)
    tagged = [i for i, t in enumerate(truth) if t]
    # Each misses a tag on its own examples (so each gets some right the other misses); the
    # candidate on ``extra_misses`` more.
    champ = _drop_tags(truth, tagged[:25])
    cand = _drop_tags(truth, tagged[25:50 + extra_misses])
    return _decide("multilabel", _js(truth), _js(cand), _js(champ), TAGS)


def test_tags_a_challenger_worse_on_gold_is_not_promoted_by_the_tie_break() -> None:
    v = _multilabel(extra_misses=8)
    diff = v.headline.diff
    assert -0.03 < diff < -0.01  # about the reported -0.017 micro-F1
    assert v.headline.p_worse >= GATE.alpha  # the paired test alone calls it a tie
    assert not v.promote and v.outcome == "tied"
    assert f"worse on gold by {-diff:.4f} micro_f1" in v.reason and "so the champion stays" in v.reason


def test_tags_a_challenger_within_the_tolerance_still_wins_the_tie() -> None:
    v = _multilabel(extra_misses=1)
    assert v.headline.diff < 0 and -v.headline.diff <= GATE.tie_tolerance * v.champion.metric("micro_f1")
    assert v.promote and v.outcome == "tied" and "trained on 250 reviewed labels" in v.reason


@pytest.mark.parametrize("scale,promoted", [(1.04, False), (1.002, True), (0.98, True)])
def test_numbers_a_higher_mae_is_worse(scale: float, promoted: bool) -> None:
    """Lower MAE is better: 4 % more error is refused, 0.2 % more is a tie the candidate wins, less wins."""
    rng = np.random.default_rng(5)
    y = rng.normal(50.0, 10.0, 60)
    champ_err = rng.normal(0.0, 5.0, 60)
    # The candidate's own errors (so each model is closer on some examples), scaled to ``scale``
    # times the champion's MAE.
    cand_err = rng.normal(0.0, 5.0, 60)
    cand_err *= scale * np.abs(champ_err).mean() / np.abs(cand_err).mean()
    y_s, champ, cand = y.astype(str), (y + champ_err).astype(str), (y + cand_err).astype(str)
    v = _decide("regression", y_s, cand, champ)
    assert v.metric == "mae" and v.headline.p_worse >= GATE.alpha
    assert v.promote is promoted, v.reason
    if not promoted:
        assert "worse on gold by" in v.reason and "mae" in v.reason


def test_classes_a_challenger_worse_beyond_the_tolerance_stays_out() -> None:
    rng = np.random.default_rng(6)
    y = rng.choice(["x", "y", "z"], 200)
    champ = np.where(np.arange(200) < 20, "x", y)  # about 13 wrong
    cand = np.where(np.arange(200) < 26, "x", y)  # about 4 more wrong
    v = _decide("classification", y, cand, champ)
    assert v.headline.p_worse >= GATE.alpha and v.headline.diff < -0.01
    assert not v.promote and "worse on gold by" in v.reason


def test_shortfall_follows_the_metric_direction() -> None:
    assert tie_shortfall(-0.02, 0.8, True, 0.01) == pytest.approx((0.02, 0.008))
    assert tie_shortfall(+0.02, 0.8, True, 0.01) == pytest.approx((0.0, 0.008))
    assert tie_shortfall(+0.5, 10.0, False, 0.01) == pytest.approx((0.5, 0.1))  # MAE up 0.5: worse
    assert tie_shortfall(-0.5, 10.0, False, 0.01) == pytest.approx((0.0, 0.1))
