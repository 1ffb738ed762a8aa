"""``bench detect --dataset digit-boxes``: scenes of the bundled handwritten digit scans with injected
box errors, mined in engine homes (the built-in detector; a good detector's boxes landed as external
predictions) beside cleanlab's own object-detection call on the same predictions."""

from __future__ import annotations

import numpy as np

from data_engine.bench.detect_digit_boxes import format_digit_boxes_result, run_digit_boxes_benchmark
from data_engine.demo.digit_boxes import CLASSES, SIDE, make_digit_scenes
from data_engine.demo.drawn_boxes import _overlaps
from data_engine.tasks.boxes import Box


def test_digit_scenes_box_every_stroke_and_nothing_else() -> None:
    scenes = make_digit_scenes(40, seed=4)
    assert scenes[0].truth == [Box("5", 19, 49, 24, 32), Box("8", 14, 15, 18, 24), Box("9", 60, 13, 15, 24)]
    assert make_digit_scenes(40, seed=4)[7].truth == scenes[7].truth
    for s in scenes:
        assert 1 <= len(s.truth) <= 3 and s.given == s.truth and s.image.shape == (SIDE, SIDE, 3)
        assert all(b.label in CLASSES and b.x >= 0 and b.y >= 0 and b.x + b.w <= SIDE and b.y + b.h <= SIDE
                   for b in s.truth)
        assert not any(_overlaps(a, b, gap=0) for i, a in enumerate(s.truth) for b in s.truth[i + 1:])
        inside = np.zeros((SIDE, SIDE), dtype=bool)
        for b in s.truth:
            inside[b.y:b.y + b.h, b.x:b.x + b.w] = True
            # each box's outer rows and columns hold ink (the box is tight)
            crop = s.image[b.y:b.y + b.h, b.x:b.x + b.w, 0] < 255
            assert crop[0].any() and crop[-1].any() and crop[:, 0].any() and crop[:, -1].any()
        assert (s.image[~inside] == 255).all()


def test_engine_flags_are_cleanlabs_call_on_the_same_predictions_for_both_arms() -> None:
    r = run_digit_boxes_benchmark(rows=120, noise=0.3, seed=1)
    assert (r["corrupted"], r["boxes"], r["errors_by_kind"]) == (34, 225, {"missing": 15, "shifted": 7, "swapped": 12})
    base, ext = r["baseline"], r["external"]
    assert base["engine"]["model_spec"].startswith("hgb+linear+knn/image/") and \
        ext["engine"]["model_spec"].startswith("external:detector/")
    for arm in (base, ext):
        engine, cleanlab = arm["engine"], arm["cleanlab_same_predictions"]
        assert (engine["precision"], engine["recall"], engine["flagged"]) == \
            (cleanlab["precision"], cleanlab["recall"], cleanlab["flagged"])
    assert (base["engine"]["flagged"], base["engine"]["recall"], base["map50_vs_truth"]) == (9, 0.2647, 0.7729)
    assert base["engine_flagged_by_kind"] == {"missing": 3, "shifted": 4, "swapped": 2}
    assert (ext["engine"]["flagged"], ext["engine"]["recall"], ext["map50_vs_truth"]) == (13, 0.3824, 0.9822)
    assert ext["engine_flagged_by_kind"] == {"missing": 5, "shifted": 6, "swapped": 2}
    assert "a good detector's boxes, landed" in format_digit_boxes_result(r)
