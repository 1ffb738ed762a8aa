"""Issue 24, gold leakage: gold examples with an exact or near copy in the training data are left out of
what the gate scores, and the verdict says how many (``gold_leaked``)."""

from __future__ import annotations

import json

import numpy as np

from data_engine.cli import main
from data_engine.ship import gate
from data_engine.ship.leakage import leaked_gold
from data_engine.ship.training import train_candidate
from data_engine.store.warehouse import open_warehouse
from tests.homes import PIXELS, digits_split
from tests.loop_support import insert_examples, make_home


def _gate(tmp_path, planted: np.ndarray | None):
    """Digits: 600 training and 300 gold rows; ``planted`` gold rows copied into training (the first four
    exactly, the rest with one pixel moved by 0.01, a near copy). Returns the split and the verdict."""
    home = make_home(tmp_path)
    info = digits_split(n_train=600, n_gold=300, n_unlabeled=0)
    ids, X, y = info["ids"], info["X"], info["y"]
    train, gold = info["parts"]["train"], info["parts"]["gold"]
    with open_warehouse(home) as con:
        insert_examples(con, home, list(ids[train]), X[train], list(y[train]), batch="train-1")
        insert_examples(con, home, list(ids[gold]), X[gold], list(y[gold]), batch="gold-1", gold=True)
        if planted is not None:
            copies = X[planted].copy()
            copies[4:, 10] += 0.01
            insert_examples(con, home, [f"copy{i}" for i in range(len(planted))], copies, list(y[planted]),
                            batch="train-2")
        train_candidate(con, home)
        return home, gate.run_gate(con, home)


def test_seven_planted_copies_are_left_out_of_gold(tmp_path, capsys):
    info = digits_split(n_train=600, n_gold=300, n_unlabeled=0)
    planted = info["parts"]["gold"][[3, 17, 42, 99, 150, 201, 280]]
    _, clean = _gate(tmp_path / "clean", None)
    assert clean.gold_leaked == 0 and clean.n_gold == 300
    home, verdict = _gate(tmp_path / "leaky", planted)
    assert verdict.gold_leaked == 7
    assert verdict.n_gold == 293  # the gate scored the rest
    assert verdict.metadata()["gold_leaked"] == 7
    assert "left out 7 gold example(s) with an exact or near copy in the training data" in verdict.reason
    assert main(["--home", str(home.root), "evaluate", "--json"]) in (0, 1)
    out = json.loads(capsys.readouterr().out)
    assert out["gold_leaked"] == 7 and out["n_gold"] == 293


def test_near_copies_are_found_and_distinct_rows_are_not():
    info = digits_split(n_train=600, n_gold=300, n_unlabeled=0)
    X, gold_rows, train_rows = info["X"], info["parts"]["gold"], info["parts"]["train"]
    import pandas as pd

    def frame(rows, shift=0.0):
        f = pd.DataFrame(X[rows], columns=PIXELS)
        f[PIXELS[10]] += shift  # a near copy: one pixel (of values 0-16) moved a little
        f["feature_hash"] = [f"h{r}-{shift}" for r in rows]  # no shared hash: only distance can find them
        return f

    schema = dict.fromkeys(PIXELS, "numeric")
    train = pd.concat([frame(train_rows), frame(gold_rows[:5], 0.05)], ignore_index=True)
    found = leaked_gold(frame(gold_rows), train, schema)
    assert found[:5].all() and found.sum() == 5
