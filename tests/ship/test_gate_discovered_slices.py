"""The gate guards discovered weak slices (data_engine.mine.slices) like configured slices: a
candidate tied overall but worse on one is refused; one without gold rows is left out."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pandas as pd

from data_engine.mine.slices import stored_slice_masks
from data_engine.ship.gate import decide_promotion, evaluate_predictions
from data_engine.store.config import GateConfig
from tests.homes import make_home
from tests.mine.test_slices import CONFIG, frame, planted


def test_the_gate_refuses_a_candidate_worse_on_a_discovered_slice():
    gold = frame(240, 5)
    rule = [{"column": "x3", "op": ">", "value": 2.5}, {"column": "plan", "op": "==", "value": "basic"}]
    row = pd.DataFrame([{"name": "discovered-1", "conditions": json.dumps(rule), "centroids": None,
                         "embedding": None, "cluster": None}])
    masks, _ = stored_slice_masks(row, gold)
    inside = masks["discovered-1"]
    assert inside.sum() >= 15
    y = np.array(["a", "b"] * 120, dtype=object)
    flip = {"a": "b", "b": "a"}
    champ = y.copy()
    cand = y.copy()
    # Overall a tie: the candidate loses every slice row and wins as many rows elsewhere.
    out = np.flatnonzero(~inside)[: int(inside.sum())]
    cand[inside] = [flip[v] for v in y[inside]]
    champ[out] = [flip[v] for v in y[out]]
    gate = GateConfig(min_gold=20)
    ev_c = evaluate_predictions(y, cand, frame=gold, version=2, masks=masks)
    ev_h = evaluate_predictions(y, champ, frame=gold, version=1, masks=masks)
    assert ev_c.slices["discovered-1"].n == inside.sum()
    verdict = decide_promotion(ev_c, ev_h, gate, pairs=(y, cand, champ), slice_masks=masks)
    assert not verdict.promote and "slice 'discovered-1'" in verdict.reason
    # Without the discovered slice the same candidate ties and is promoted.
    assert decide_promotion(evaluate_predictions(y, cand, version=2), evaluate_predictions(y, champ, version=1),
                            gate, pairs=(y, cand, champ)).promote


def test_gate_gold_checks_the_discovered_slices_it_is_given(tmp_path: Path, monkeypatch):
    """The wiring run_gate uses: gate_gold's ``discovered`` masks become slice checks (and one without
    gold rows is left out instead of refusing)."""
    from types import SimpleNamespace

    import data_engine.ship.gate as gate_module

    home = make_home(tmp_path, CONFIG)
    gold = frame(240, 5)
    gold["label"] = np.array(["a", "b"] * 120, dtype=object)
    inside = planted(gold)
    y = gold["label"].to_numpy()
    flip = {"a": "b", "b": "a"}
    cand, champ = y.copy(), y.copy()
    cand[inside] = [flip[v] for v in y[inside]]
    out = np.flatnonzero(~inside)[: int(inside.sum())]
    champ[out] = [flip[v] for v in y[out]]
    monkeypatch.setattr(gate_module, "predict_gold", lambda home, record, gold: cand if record.version == 2 else champ)
    record, champion = (SimpleNamespace(version=v, classes=["a", "b"], params={}) for v in (2, 1))
    empty = np.zeros(len(gold), dtype=bool)
    verdict = gate_module.gate_gold(home, home.config, record, champion, gold, classes=["a", "b"],
                                    discovered={"discovered-1": inside, "discovered-2": empty})
    assert not verdict.promote and "slice 'discovered-1'" in verdict.reason
    assert "discovered-2" not in verdict.reason
    assert gate_module.gate_gold(home, home.config, record, champion, gold, classes=["a", "b"],
                                 discovered={"discovered-2": empty}).promote
