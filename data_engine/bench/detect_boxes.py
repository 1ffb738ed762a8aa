"""``bench detect --dataset boxes``: box-error detection on generated drawn scenes, with cleanlab's own call.

Drawn scenes (:mod:`data_engine.demo.drawn_boxes`, one to three shapes of three classes per canvas;
no download) get one box error injected into about ``noise`` of them (a box missing, shifted by 60%
of its size, or given another class). Two sets of predictions are scored:

- ``baseline``: the built-in detector's out-of-fold boxes (:mod:`data_engine.tasks.box_model`);
- ``external``: what a user's good detector would supply (the true boxes, each corner moved by up to
  one pixel, scores 0.96-1.0);
- ``external_imperfect``: a weaker detector's boxes (a tenth of the true boxes missed, each corner
  moved by up to three pixels, scores 0.6-1.0, a spurious box scored 0.3-0.7 on a fifth of the images).

The two external sets go the user's way: written as ``landing/predictions/``-style JSONL rows
(``{"example_id", "boxes": [{"label", "x", "y", "w", "h", "score"}]}``) and read back by the engine's
reader (:func:`data_engine.mine.external.read_external` with the detection task). On each set the
engine's check (the task's ``label_issues``: its flags, its images ranked by label quality score) is
scored against the corrupted scenes beside cleanlab's own call written out here
(``cleanlab.object_detection.filter.find_label_issues``, ``rank.get_label_quality_scores``) on the
same boxes: precision and recall of the flags, precision of the first k (k = the number of injected
errors). The engine calls cleanlab unchanged, so the two agree unless the conversion (file rows,
empty images, pixels -> corners, per-class order) loses something: that is what the figures check.

The scenes are easy (plain backgrounds, shapes apart): the baseline's figures are far above what it
would reach on photographs.
"""

from __future__ import annotations

import time
from typing import Any

import numpy as np
import pandas as pd

from data_engine.bench.scores import detection_scores, flag_line

BOX_DATASETS = ("boxes",)


def jittered_detector(scenes: list, seed: int, *, missed: float = 0.0, scores: tuple[float, float] = (0.96, 1.0),
                      whole_pixels: bool = False) -> list:
    """A good detector's scored boxes per scene: each true box moved by up to a pixel per side, a
    score drawn uniformly from ``scores``, a share ``missed`` of the boxes left out (seeded)."""
    from data_engine.tasks.box_issues import ScoredBox
    from data_engine.tasks.boxes import Box

    rng = np.random.default_rng(seed)
    out = []
    for s in scenes:
        found = []
        for b in s.truth:
            if missed and rng.random() < missed:
                continue
            dx, dy, dw, dh = (int(v) if whole_pixels else v for v in rng.integers(-1, 2, size=4))
            score = float(rng.uniform(*scores))
            found.append(ScoredBox(Box(b.label, max(0.0, b.x + dx), max(0.0, b.y + dy), b.w + dw, b.h + dh),
                                   round(score, 4) if whole_pixels else score))
        out.append(found)
    return out


def _imperfect_predictions(scenes: list, classes: list[str], seed: int) -> list:
    from data_engine.demo.drawn_boxes import SIDE
    from data_engine.tasks.box_issues import ScoredBox
    from data_engine.tasks.boxes import Box

    rng = np.random.default_rng(seed)
    out = []
    for s in scenes:
        found = []
        for b in s.truth:
            if rng.random() < 0.1:
                continue
            dx, dy, dw, dh = rng.integers(-3, 4, size=4)
            found.append(ScoredBox(Box(b.label, max(0.0, b.x + dx), max(0.0, b.y + dy), max(4.0, b.w + dw),
                                       max(4.0, b.h + dh)), float(rng.uniform(0.6, 1.0))))
        if rng.random() < 0.2:
            x, y = (int(v) for v in rng.integers(0, SIDE - 20, size=2))
            side = int(rng.integers(8, 20))
            found.append(ScoredBox(Box(classes[int(rng.integers(len(classes)))], x, y, side, side),
                                   float(rng.uniform(0.3, 0.7))))
        out.append(found)
    return out


def _through_files(ids: list[str], predicted: list, classes: list[str]) -> np.ndarray:
    """The predictions as a user lands them (one JSONL row per image) read back by the engine's reader:
    prediction rows (n, width) in ``ids`` order."""
    import json
    import tempfile
    from pathlib import Path

    from data_engine.mine.external import read_external
    from data_engine.tasks.detection import Detection

    with tempfile.TemporaryDirectory(prefix="bench-boxes-") as tmp:
        rows = [{"example_id": i, "boxes": [{"label": b.box.label, "x": float(b.box.x), "y": float(b.box.y),
                                            "w": float(b.box.w), "h": float(b.box.h), "score": float(b.score)}
                                           for b in p]}
                for i, p in zip(ids, predicted)]
        (Path(tmp) / "detector.jsonl").write_text("".join(json.dumps(r) + "\n" for r in rows), encoding="utf-8")
        table, _ = read_external(Path(tmp), classes, Detection(),
                                 examples=pd.DataFrame({"example_id": ids}), sources={})
    return table.reindex(ids).to_numpy(dtype=float)


def _cleanlab_call(given: list, predicted: list, classes: list[str]) -> tuple[np.ndarray, np.ndarray]:
    """cleanlab's own flags and per-image label quality scores, inputs built here without the engine."""
    from cleanlab.object_detection.filter import find_label_issues
    from cleanlab.object_detection.rank import get_label_quality_scores

    from data_engine.tasks.box_issues import without_forked_pools

    without_forked_pools()
    index = {c: k for k, c in enumerate(classes)}
    labels = [{"bboxes": np.array([[b.x, b.y, b.x + b.w, b.y + b.h] for b in g], dtype=float).reshape(-1, 4),
               "labels": np.array([index[b.label] for b in g], dtype=int)} for g in given]
    preds = []
    for p in predicted:
        arr = np.empty(len(classes), dtype=object)
        for k, c in enumerate(classes):
            arr[k] = np.array([[s.box.x, s.box.y, s.box.x + s.box.w, s.box.y + s.box.h, s.score]
                               for s in p if s.box.label == c], dtype=float).reshape(-1, 5)
        preds.append(arr)
    return (np.asarray(find_label_issues(labels, preds), dtype=bool),
            np.asarray(get_label_quality_scores(labels, preds, verbose=False), dtype=float))


def run_boxes_detect_benchmark(*, rows: int = 500, noise: float = 0.2, seed: int = 0, folds: int = 5) -> dict[str, Any]:
    """Run the benchmark on ``rows`` scenes; return its figures as a JSON-able dict."""
    from data_engine.demo.drawn_boxes import CLASSES, ERROR_KINDS, inject_box_errors, make_scenes
    from data_engine.tasks.box_issues import box_issues
    from data_engine.tasks.box_metrics import average_precision
    from data_engine.tasks.box_model import out_of_fold_boxes
    from data_engine.tasks.boxes import canonical
    from data_engine.tasks.detection import Detection

    classes = list(CLASSES)
    scenes = inject_box_errors(make_scenes(rows, seed=seed), rate=noise, seed=seed + 1)
    ids = [f"img{i}" for i in range(len(scenes))]
    truth = pd.Series([bool(s.error) for s in scenes], index=ids)
    given = [s.given for s in scenes]
    started = time.perf_counter()
    baseline = out_of_fold_boxes([s.image for s in scenes], given, classes, folds=folds, seed=seed)
    seconds = time.perf_counter() - started
    result: dict[str, Any] = {"dataset": "boxes", "rows": len(scenes), "classes": classes, "noise": noise,
                              "seed": seed, "corrupted": int(truth.sum()),
                              "errors_by_kind": {k: sum(s.error == k for s in scenes) for k in ERROR_KINDS},
                              "baseline_fit_predict_seconds": round(seconds, 1)}
    task = Detection()
    y = task.encode([canonical(g) for g in given], classes)
    arms = (("baseline", baseline), ("external", jittered_detector(scenes, seed + 2)),
            ("external_imperfect", _imperfect_predictions(scenes, classes, seed + 3)))
    for name, predicted in arms:
        if name == "baseline":
            found = box_issues(given, predicted, classes)
            flags, scores = found.is_issue, found.scores
        else:  # the user's way: JSONL rows read by the engine, checked by the task
            issues = task.label_issues(y, _through_files(ids, predicted, classes), classes)
            flags, scores = issues.is_issue, issues.scores
        engine_flags = {ids[i] for i in np.flatnonzero(flags)}
        engine = detection_scores(truth, engine_flags, [ids[i] for i in np.argsort(scores, kind="stable")])
        c_flags, c_scores = _cleanlab_call(given, predicted, classes)
        cleanlab = detection_scores(truth, {ids[i] for i in np.flatnonzero(c_flags)},
                                    [ids[i] for i in np.argsort(c_scores, kind="stable")])
        map50, per_class = average_precision([s.truth for s in scenes], predicted, classes)
        result[name] = {"engine": engine, "cleanlab_same_predictions": cleanlab,
                        "engine_flagged_by_kind": {k: sum(s.error == k and ids[i] in engine_flags
                                                          for i, s in enumerate(scenes)) for k in ERROR_KINDS},
                        "map50_vs_truth": round(float(map50), 4) if map50 is not None else None,
                        "per_class_ap": {c: round(v, 4) for c, v in per_class.items()}}
    return result


def format_boxes_result(r: dict[str, Any]) -> str:
    """The benchmark's figures as a few lines of text."""
    out = [f"bench detect --dataset boxes: {r['rows']} drawn scenes, {r['corrupted']} with a box error "
           f"({', '.join(f'{k} {n}' for k, n in r['errors_by_kind'].items())}; seed {r['seed']})"]
    for name in ("baseline", "external", "external_imperfect"):
        p = r[name]
        kinds = ", ".join(f"{k} {p['engine_flagged_by_kind'][k]}/{n}" for k, n in r["errors_by_kind"].items())
        out += [f"{name} predictions (mAP@0.5 vs truth {p['map50_vs_truth']}):",
                flag_line("engine", p["engine"], width=26, indent="  "),
                flag_line("cleanlab, same predictions", p["cleanlab_same_predictions"], width=26, indent="  "),
                f"  engine flags by error kind: {kinds}"]
    return "\n".join(out)
