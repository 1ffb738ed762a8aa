"""Box sets: stored spelling, ingest checks, annotation files, Label Studio regions, cleanlab's check and mAP."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from data_engine.tasks import box_regions as br
from data_engine.tasks.box_files import (
    BadAnnotation,
    read_box_predictions,
    read_coco,
    read_jsonl,
    read_label_studio_export,
)
from data_engine.tasks.box_issues import ScoredBox, box_issues
from data_engine.tasks.box_metrics import average_precision, paired_bootstrap_map
from data_engine.tasks.boxes import Box, NotABoxSet, canonical, parse, problems, split_valid


def test_canonical_is_order_free_and_writes_whole_pixels_without_fraction():
    a = [{"label": "dog", "x": 3.0, "y": 4, "w": 10, "h": 2.5}, {"label": " cat", "x": 1, "y": 1, "w": 1, "h": 1}]
    assert canonical(a) == canonical(list(reversed(a)))
    assert canonical(a) == ('[{"label":"cat","x":1,"y":1,"w":1,"h":1},'
                            '{"label":"dog","x":3,"y":4,"w":10,"h":2.5}]')
    assert canonical([]) == "[]"


@pytest.mark.parametrize("value, words", [
    ("", "unlabeled"), ("{", "not valid JSON"), ('{"a": 1}', "not a list"),
    ('[{"label": "a", "x": 1, "y": 1, "w": "2", "h": 1}]', "w must be a number"),
    ('[{"x": 1, "y": 1, "w": 2, "h": 1}]', "label must be"),
])
def test_parse_names_what_is_wrong(value, words):
    with pytest.raises(NotABoxSet, match=words):
        parse(value)


def test_bad_boxes_are_quarantined_with_reasons_and_the_image_keeps_the_others():
    boxes = parse([{"label": "cat", "x": 0, "y": 0, "w": 10, "h": 10},
                   {"label": "cat", "x": 60, "y": 0, "w": 10, "h": 10},
                   {"label": "cat", "x": 5, "y": 5, "w": -1, "h": 3},
                   {"label": "cow", "x": 1, "y": 1, "w": 2, "h": 2}])
    kept, bad = split_valid(boxes, 64, 48, ["cat", "dog"])
    assert kept == [Box("cat", 0, 0, 10, 10)]
    reasons = dict((b, why) for b, why in bad)
    assert "reaches outside the image (64x48 pixels)" in reasons[Box("cat", 60, 0, 10, 10)]
    assert "zero or negative size" in reasons[Box("cat", 5, 5, -1, 3)]
    assert "class 'cow' is not one of the classes (cat, dog)" in reasons[Box("cow", 1, 1, 2, 2)]
    assert problems(kept, 64, 48, ["cat"]) == []
    twice = parse([{"label": "cat", "x": 0, "y": 0, "w": 10, "h": 10}] * 2)
    assert split_valid(twice, 64, 48, None) == ([Box("cat", 0, 0, 10, 10)],
                                                [(Box("cat", 0, 0, 10, 10), "box cat at x=0, y=0, w=10, h=10 is given twice")])
    # touching the far edge is inside: x + w == width
    assert problems([Box("cat", 54, 38, 10, 10)], 64, 48, None) == []


def test_jsonl_and_coco_give_the_same_box_sets(tmp_path: Path):
    (tmp_path / "a.jsonl").write_text(
        '{"image": "img/1.png", "boxes": [{"label": "cat", "x": 1, "y": 2, "w": 3, "h": 4}]}\n\n'
        '{"image": "img/2.png", "boxes": []}\n')
    coco = {"images": [{"id": 7, "file_name": "img/1.png", "width": 64, "height": 48},
                       {"id": 8, "file_name": "img/2.png", "width": 64, "height": 48}],
            "categories": [{"id": 1, "name": "cat"}],
            "annotations": [{"id": 1, "image_id": 7, "category_id": 1, "bbox": [1, 2, 3, 4]}]}
    (tmp_path / "c.json").write_text(json.dumps(coco))
    rows, cocos = read_jsonl(tmp_path / "a.jsonl"), read_coco(tmp_path / "c.json")
    assert [(r.image, r.boxes) for r in rows] == [(c.image, c.boxes) for c in cocos]
    assert [r.row for r in rows] == [1, 3]
    assert (cocos[0].width, cocos[0].height) == (64, 48)


def test_annotation_errors_name_file_row_and_key(tmp_path: Path):
    (tmp_path / "a.jsonl").write_text('{"image": "x.png"}\n')
    with pytest.raises(BadAnnotation, match=r"a.jsonl line 1: key 'boxes' is missing"):
        read_jsonl(tmp_path / "a.jsonl")
    (tmp_path / "c.json").write_text(json.dumps({"images": [{"id": 1, "file_name": "x.png"}], "categories": [],
                                                 "annotations": [{"image_id": 1, "category_id": 3, "bbox": [0, 0, 1, 1]}]}))
    with pytest.raises(BadAnnotation, match=r"c.json: annotations\[0\]: key 'category_id'"):
        read_coco(tmp_path / "c.json")


@pytest.mark.parametrize("size", [(64, 48), (640, 480), (1920, 1080), (333, 777)])
def test_label_studio_percentages_round_trip_exactly_to_the_pixel(size):
    w, h = size
    rng = np.random.default_rng(w)
    boxes = []
    for _ in range(50):
        x, y = int(rng.integers(0, w - 2)), int(rng.integers(0, h - 2))
        boxes.append(Box("cat", x, y, int(rng.integers(1, w - x)), int(rng.integers(1, h - y))))
    result = br.regions(boxes, w, h, from_name="boxes", to_name="image")
    assert br.answer_boxes(result, w, h, from_name="boxes") == canonical(boxes)


def test_label_studio_region_values_by_hand():
    r = br.to_region(Box("dog", 16, 12, 32, 24), 64, 48, from_name="boxes", to_name="image", region_id="b0")
    assert r["value"] == {"x": 25.0, "y": 25.0, "width": 50.0, "height": 50.0, "rotation": 0,
                          "rectanglelabels": ["dog"]}
    # a reviewer's drawing at sub-pixel percentages: 12.5% of 640 px is 80 px, 33.3333% of 480 is 159.99984
    drawn = {"from_name": "boxes", "type": "rectanglelabels", "original_width": 640, "original_height": 480,
             "value": {"x": 12.5, "y": 33.3333, "width": 10, "height": 5, "rotation": 0, "rectanglelabels": ["cat"]}}
    assert br.from_region(drawn, 640, 480) == Box("cat", 80.0, 160.0, 64.0, 24.0)
    assert br.answer_boxes([drawn, {"from_name": "other", "value": {}}, "junk"], 640, 480, from_name="boxes") == \
        '[{"label":"cat","x":80,"y":160,"w":64,"h":24}]'
    assert br.answer_boxes([], 640, 480, from_name="boxes") == "[]"
    rotated = {**drawn, "value": {**drawn["value"], "rotation": 30}}
    assert br.from_region(rotated, 640, 480) is None
    assert "<RectangleLabels" in br.labeling_config(["cat", "dog"], from_name="boxes", to_name="image")


def test_average_precision_against_hand_computed_values():
    cats = ["cat", "dog"]
    gold = [[Box("cat", 0, 0, 10, 10), Box("dog", 20, 20, 10, 10)], [Box("cat", 0, 0, 10, 10)]]
    # cat: 3 predictions by score: TP (0.9), FP (0.8, nothing there), TP (0.7) over 2 gold cats.
    # precision/recall: (1, 1/2), (1/2, 1/2), (2/3, 1); all-point interpolated AP = 1/2*1 + 1/2*2/3 = 5/6.
    # dog: one prediction shifted to IoU 25/175 < 0.5: FP, AP 0. mAP = 5/12.
    pred = [[ScoredBox(Box("cat", 0, 0, 10, 10), 0.9), ScoredBox(Box("cat", 40, 40, 5, 5), 0.8),
             ScoredBox(Box("dog", 25, 25, 10, 10), 0.6)],
            [ScoredBox(Box("cat", 1, 0, 10, 10), 0.7)]]
    m, per = average_precision(gold, pred, cats)
    assert per["cat"] == pytest.approx(5 / 6, abs=1e-6)
    assert per["dog"] == pytest.approx(0.0)
    assert m == pytest.approx(5 / 12, abs=1e-6)
    perfect = [[ScoredBox(b, 1.0) for b in g] for g in gold]
    assert average_precision(gold, perfect, cats)[0] == pytest.approx(1.0)
    assert average_precision([[]], [[]], cats) == (None, {})


def _three_errors() -> tuple[list, list, list[str]]:
    """40 images of one box each (and one empty), their predictions, and three errors: images 0-2
    a missing, a swapped and a shifted box."""
    cats = ["cat", "dog"]
    rng = np.random.default_rng(0)
    given, pred = [], []
    for i in range(40):
        x, y = int(rng.integers(0, 40)), int(rng.integers(0, 40))
        c = cats[i % 2]
        truth = [Box(c, x, y, 20, 20)]
        given.append(list(truth))
        # above cleanlab's HIGH_PROBABILITY_THRESHOLD (0.95): only such boxes count as overlooked or swapped
        pred.append([ScoredBox(b, 0.99) for b in truth])
    given.append([]); pred.append([])                                   # an image with nothing, both sides
    given[0] = []                                                       # a missing box
    given[1] = [Box("cat", given[1][0].x, given[1][0].y, 20, 20)]       # swapped dog -> cat
    b = given[2][0]; given[2] = [Box(b.label, b.x + 15, b.y + 15, 20, 20)]  # shifted
    return given, pred, cats


def test_cleanlab_flags_a_missing_a_swapped_and_a_shifted_box_and_takes_empty_images():
    found = box_issues(*_three_errors())
    assert found.scores.shape == (41,) and found.is_issue.shape == (41,)
    assert set(np.flatnonzero(found.is_issue)) == {0, 1, 2}
    assert set(np.argsort(found.scores)[:3]) == {0, 1, 2}
    assert len(found.overlooked) == 41 and found.overlooked[0].shape == (1,)



def test_cleanlabs_box_check_forks_no_process(monkeypatch):
    # cleanlab opens a fork pool per call; in the engine's threaded processes a forked worker hung a
    # whole test run (box_issues.without_forked_pools). With fork refused, the check still answers.
    import os

    def refuse_fork() -> int:
        raise AssertionError("cleanlab's box check forked a process")

    monkeypatch.setattr(os, "fork", refuse_fork)
    found = box_issues(*_three_errors())
    assert set(np.flatnonzero(found.is_issue)) == {0, 1, 2}


def _random_sets(rng, n, classes):
    gold, pred = [], []
    for _ in range(n):
        g = [Box(str(rng.choice(classes)), int(rng.integers(0, 60)), int(rng.integers(0, 60)), 20, 20)
             for _ in range(int(rng.integers(0, 3)))]
        p = [ScoredBox(Box(b.label if rng.random() < 0.8 else str(rng.choice(classes)), b.x + int(rng.integers(-6, 7)),
                           max(0, b.y + int(rng.integers(-6, 7))), 20, 20), float(rng.uniform(0.05, 1.0))) for b in g]
        p += [ScoredBox(Box(str(rng.choice(classes)), 70, 70, 10, 10), float(rng.uniform(0, 1)))
              for _ in range(int(rng.integers(0, 2)))]
        gold.append(g)
        pred.append(p)
    return gold, pred


def test_average_precision_equals_cleanlabs_own_ap_on_random_sets():
    from cleanlab.object_detection.filter import _calculate_ap_per_class

    from data_engine.tasks.box_issues import cleanlab_labels, cleanlab_predictions

    cats = ["a", "b", "c"]
    gold, pred = _random_sets(np.random.default_rng(1), 60, cats)
    _, per = average_precision(gold, pred, cats)
    theirs = _calculate_ap_per_class(cleanlab_labels(gold, cats), cleanlab_predictions(pred, cats), iou_threshold=0.5)
    assert per == pytest.approx({c: float(np.ravel(theirs[k])[0]) for k, c in enumerate(cats)}, abs=1e-6)


def test_paired_bootstrap_prefers_the_better_detector_and_calls_equals_equal():
    cats = ["a", "b", "c"]
    rng = np.random.default_rng(2)
    gold, worse = _random_sets(rng, 80, cats)
    better = [[ScoredBox(b, 0.9) for b in g] for g in gold]
    d = paired_bootstrap_map(gold, better, worse, cats, alpha=0.05, n_resamples=300)
    assert d.diff == pytest.approx(1.0 - average_precision(gold, worse, cats)[0])
    assert d.diff > 0 and d.low > 0 and d.p_better < 0.05 and d.n == 80
    same = paired_bootstrap_map(gold, worse, worse, cats, alpha=0.05, n_resamples=300)
    assert (same.diff, same.p_worse, same.p_better) == (0.0, 1.0, 1.0)


def test_a_users_detector_boxes_are_read_with_scores_and_bad_rows_named(tmp_path: Path):
    path = tmp_path / "det.jsonl"
    path.write_text('{"example_id": "e1", "boxes": [{"label": "cat", "x": 1, "y": 2, "w": 3, "h": 4, "score": 0.5}]}\n'
                    '{"image": "img/2.png", "boxes": []}\n')
    got = read_box_predictions(path)
    assert got == {"e1": [ScoredBox(Box("cat", 1, 2, 3, 4), 0.5)], "img/2.png": []}
    for row, words in [('{"image": "a", "boxes": [{"label": "cat", "x": 1, "y": 2, "w": 3, "h": 4}]}',
                        r"line 2, key 'boxes'\[0\]: 'score' must be a number in \[0, 1\]"),
                       ('{"image": "a", "boxes": [{"label": "cat", "x": 1, "y": 2, "w": 3, "score": 1}]}',
                        r"line 2, key 'boxes'\[0\]: box .*h must be a number"),
                       ('{"image": "a"}', r"line 2: key 'boxes' must be a list"),
                       ('{"example_id": "e1", "boxes": []}', r"line 2: 'e1' appears twice")]:
        path.write_text('{"example_id": "e1", "boxes": []}\n' + row + "\n")
        with pytest.raises(BadAnnotation, match=words):
            read_box_predictions(path)


def test_a_label_studio_export_gives_pixels_from_its_percentages(tmp_path: Path):
    regions = br.regions([Box("cat", 17, 5, 11, 13), Box("dog", 0, 0, 96, 48)], 96, 64, from_name="b", to_name="i")
    export = [{"id": 1, "data": {"image": "/data/upload/1/a.png"},
               "annotations": [{"was_cancelled": False, "updated_at": "2026-01-02", "result": regions},
                               {"was_cancelled": False, "updated_at": "2026-01-01", "result": []}]},
              {"id": 2, "data": {"image": "b.png"}, "annotations": [{"was_cancelled": True, "result": regions}]},
              {"id": 3, "data": {"image": "c.png"}, "annotations": [{"result": []}]}]
    (tmp_path / "ls.json").write_text(json.dumps(export))
    got = read_label_studio_export(tmp_path / "ls.json")
    assert [(g.image, canonical(g.boxes), g.row, g.width) for g in got] == [
        ("/data/upload/1/a.png", canonical([Box("cat", 17, 5, 11, 13), Box("dog", 0, 0, 96, 48)]), 1, 96),
        ("c.png", "[]", 3, None)]
    del export[0]["annotations"][0]["result"][0]["original_width"]
    (tmp_path / "ls.json").write_text(json.dumps(export))
    with pytest.raises(BadAnnotation, match=r"ls.json: task 1, result\[0\]: keys 'original_width'"):
        read_label_studio_export(tmp_path / "ls.json")
