"""The baseline detector on drawn scenes: out-of-fold boxes good enough for cleanlab to find injected box errors."""

from __future__ import annotations

import numpy as np

from data_engine.demo.drawn_boxes import CLASSES, ERROR_KINDS, inject_box_errors, make_scenes
from data_engine.tasks.box_issues import box_issues
from data_engine.tasks.box_metrics import average_precision
from data_engine.tasks.box_model import _iou, out_of_fold_boxes, proposals


def test_injected_errors_are_of_each_kind_and_change_the_box_set():
    scenes = inject_box_errors(make_scenes(120, seed=3), rate=0.3, seed=4)
    kinds = {s.error for s in scenes if s.error}
    assert kinds == set(ERROR_KINDS)
    for s in scenes:
        assert (s.given != s.truth) == bool(s.error)
        if s.error == "shifted":
            moved = [g for g in s.given if g not in s.truth]
            assert len(moved) == 1 and max(_iou(moved[0], t) for t in s.truth) < 0.5


def test_proposals_find_every_drawn_shape():
    scenes = make_scenes(40, seed=5)
    found = [any(_iou(p, b) >= 0.5 for p in proposals(s.image)) for s in scenes for b in s.truth]
    assert np.mean(found) >= 0.95


def test_out_of_fold_baseline_finds_most_injected_errors_on_unseen_seed():
    scenes = inject_box_errors(make_scenes(90, seed=11), rate=0.2, seed=12)
    oof = out_of_fold_boxes([s.image for s in scenes], [s.given for s in scenes], CLASSES, folds=3, seed=0)
    m, _ = average_precision([s.truth for s in scenes], oof, CLASSES)
    assert m > 0.8
    found = box_issues([s.given for s in scenes], oof, CLASSES)
    err = np.array([bool(s.error) for s in scenes])
    k = int(err.sum())
    assert k >= 10
    # precision at the number of injected errors, ranked by cleanlab's label quality score
    assert err[np.argsort(found.scores, kind="stable")[:k]].mean() >= 0.6
