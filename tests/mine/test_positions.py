"""One ids -> rows lookup (data_engine.positions.positions_of), used by the issues table's versions
and by the neighbour index's re-alignment."""

from __future__ import annotations

import types

import numpy as np
import pandas as pd

import data_engine.mine.runs as runs
from data_engine import positions
from data_engine.mine.detectors import neighbours as nb
from data_engine.positions import positions_of
from tests.mine.test_detectors import frame_of


def test_a_missing_id_is_minus_one():
    np.testing.assert_array_equal(positions_of(["b", "zz", "a"], np.array(["a", "b"])), [1, -1, 0])
    assert positions_of(np.array([], dtype=str), ["a"]).dtype == np.int64


def test_duplicate_ids_held_give_the_first_and_wanted_twice_give_it_twice():
    np.testing.assert_array_equal(positions_of(pd.Series(["a", "b", "a"]), ["b", "a", "b"]), [1, 0, 1])


def test_the_wanted_order_is_kept_and_held_parts_count_as_one():
    held = np.array([f"k{i}" for i in range(50)])
    order = np.random.default_rng(0).permutation(50)
    np.testing.assert_array_equal(positions_of(held[order], held), order)
    np.testing.assert_array_equal(positions_of(pd.Series(["x", "a", "y"]), pd.Series(["a", "b"]),
                                               pd.Series(["x", "y"])), [2, 0, 3])


def _counting(monkeypatch, module):
    calls = []

    def spy(*args):
        calls.append(len(args))
        return positions.positions_of(*args)
    monkeypatch.setattr(module, "positions_of", spy)
    return calls


def test_example_versions_and_align_index_both_use_it(monkeypatch):
    seen = _counting(monkeypatch, runs)
    state = types.SimpleNamespace(train=pd.DataFrame({"example_id": ["a", "b"], "version": [1, 2]}),
                                  unlabeled=pd.DataFrame({"example_id": ["u"], "version": [3]}))
    got = runs.example_versions(pd.Series(["u", "missing", "a", "a"]), state)
    assert list(got.fillna(-1)) == [3, -1, 1, 1] and seen == [3]

    seen = _counting(monkeypatch, nb)
    rng = np.random.default_rng(1)
    keys = np.array([f"k{i}" for i in range(40)], dtype=object)
    index = nb.build_index(keys, frame_of(rng.normal(0, 1, (40, 2))), {"u": "numeric", "v": "numeric"}, "image", k=3)
    order = rng.permutation(40)
    moved = nb.align_index(index, keys[order])
    assert seen == [2]
    np.testing.assert_array_equal(moved.distances, index.neighbours.distances[order])
    assert nb.align_index(index, np.array([f"k{i}" for i in range(1, 41)])) is None
