"""``bench detect --dataset digit-boxes``: box errors on scenes of real handwritten digits, through a
real engine home, engine vs cleanlab's own object-detection call on the same predictions.

Scenes of scikit-learn's bundled handwritten digit scans (:mod:`data_engine.demo.digit_boxes`; one to
three digits per 96x96 canvas, classes "0"-"9", no download) get one box error injected into about
``noise`` of them (a box missing, shifted by 60 % of its size, or given another digit), as the drawn
set does. Nothing in the engine was tuned to this set. Each arm is a fresh engine home: the scenes
written as PNG files with one JSONL annotation row per image, ingested and mined by the engine's own
steps (:func:`data_engine.steps.ingest_step`, :func:`data_engine.steps.mine_step`):

- ``baseline``: the built-in detector's out-of-fold boxes (:mod:`data_engine.tasks.box_model`), fitted
  by the mining run; cleanlab's call reads the same stored out-of-fold boxes back from the warehouse;
- ``external``: a good detector's boxes landed as ``landing/predictions/detector.jsonl`` with
  ``[mining] predictions = "external"`` (the true boxes with each corner moved by up to one pixel,
  scored 0.9-1.0, and :data:`MISSED` of them missed, as a real detector misses a few); cleanlab's
  call reads the same boxes as generated.

Scores: the engine's label flags (the ``issues`` table) and its queue's first k (k = the number of
injected errors) against the corrupted scenes; cleanlab's flags
(``cleanlab.object_detection.filter.find_label_issues``) and its images ranked by
``rank.get_label_quality_scores``.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from data_engine.bench.detect_boxes import _cleanlab_call, jittered_detector
from data_engine.bench.folders import bench_folder
from data_engine.bench.scores import detection_scores, flag_line

DIGIT_BOX_DATASETS = ("digit-boxes",)
# The share of true boxes the simulated external detector misses.
MISSED = 0.03



def _config(classes: list[str], seed: int, budget: int, external: bool) -> str:
    return ('[dataset]\nname = "digit-boxes"\nmodality = "image"\ntask = "detection"\nid_column = "id"\n'
            f'label_column = "boxes"\nimage_column = "image"\nclasses = {json.dumps(classes)}\n\n'
            f'[mining]\nseed = {seed}\nn_jobs = 1\n' + ('predictions = "external"\n' if external else '')
            + f'\n[review]\nbudget = {budget}\n\n[gate]\nmetric = "map50"\n')


def _arm(root: Path, scenes: list, ids: list[str], classes: list[str], seed: int, truth: pd.Series,
         external: list | None) -> dict[str, Any]:
    """One engine home mined on the scenes; the engine's and cleanlab's figures on the same predictions."""
    from data_engine.demo.drawn_boxes import ERROR_KINDS, write_scenes
    from data_engine.steps import ingest_step, mine_step
    from data_engine.store.home import Home
    from data_engine.store.warehouse import open_warehouse
    from data_engine.tasks import box_pack
    from data_engine.tasks.box_metrics import average_precision

    home = Home(root.resolve())
    home.make_dirs()
    home.config_path.write_text(_config(classes, seed, max(1, int(truth.sum())), external is not None), encoding="utf-8")
    ingest_step(home, [write_scenes(home.landing, scenes, prefix="d", name="digits")])
    if external is not None:
        home.predictions_landing.mkdir(parents=True, exist_ok=True)
        (home.predictions_landing / "detector.jsonl").write_text("".join(
            json.dumps({"example_id": i, "boxes": [{**b.box._asdict(), "score": b.score} for b in p]}) + "\n"
            for i, p in zip(ids, external)), encoding="utf-8")
    mined = mine_step(home)
    run_id = mined.summary.run_id
    with open_warehouse(home) as con:
        flags = set(con.execute("SELECT example_id FROM issues WHERE run_id = ? AND issue_type = 'label' AND is_issue",
                                [run_id]).fetchdf()["example_id"])
        queue = con.execute("SELECT example_id FROM review_queue WHERE run_id = ? ORDER BY rank",
                            [run_id]).fetchdf()["example_id"].tolist()
        stored = dict(con.execute("SELECT example_id, probs FROM predictions WHERE kind = 'oof' AND model_spec = ?",
                                  [mined.summary.model_spec]).fetchall())
    predicted = external if external is not None else [box_pack.unpack(np.asarray(stored[i], dtype=float), classes)
                                                        for i in ids]
    c_flags, c_scores = _cleanlab_call([s.given for s in scenes], predicted, classes)
    map50, per_class = average_precision([s.truth for s in scenes], predicted, classes)
    return {"engine": detection_scores(truth, flags, queue) | {"model_spec": mined.summary.model_spec},
            "cleanlab_same_predictions": detection_scores(truth, {ids[i] for i in np.flatnonzero(c_flags)},
                                                          [ids[i] for i in np.argsort(c_scores, kind="stable")]),
            "engine_flagged_by_kind": {k: sum(s.error == k and i in flags for i, s in zip(ids, scenes))
                                       for k in ERROR_KINDS},
            "map50_vs_truth": round(float(map50), 4) if map50 is not None else None,
            "per_class_ap": {c: round(v, 4) for c, v in per_class.items()}}


def run_digit_boxes_benchmark(*, rows: int = 500, noise: float = 0.2, seed: int = 0,
                              keep: Path | None = None) -> dict[str, Any]:
    """Run the benchmark on ``rows`` digit scenes (at most 800: the bundled scans run out); return its
    figures as a JSON-able dict (see :func:`format_digit_boxes_result`)."""
    from data_engine.demo.digit_boxes import CLASSES, SIDE, make_digit_scenes
    from data_engine.demo.drawn_boxes import ERROR_KINDS, inject_box_errors

    classes = list(CLASSES)
    scenes = inject_box_errors(make_digit_scenes(rows, seed=seed), rate=noise, seed=seed + 1, classes=CLASSES, side=SIDE)
    ids = [f"d{i:04d}" for i in range(len(scenes))]
    truth = pd.Series([bool(s.error) for s in scenes], index=ids)
    with bench_folder(keep, "bench-digit-boxes-") as workdir:
        root = keep or workdir
        result: dict[str, Any] = {"dataset": "digit-boxes", "rows": len(scenes), "classes": classes, "noise": noise,
                                  "seed": seed, "corrupted": int(truth.sum()), "boxes": sum(len(s.truth) for s in scenes),
                                  "errors_by_kind": {k: sum(s.error == k for s in scenes) for k in ERROR_KINDS}}
        result["baseline"] = _arm(root / "baseline", scenes, ids, classes, seed, truth, None)
        good = jittered_detector(scenes, seed + 2, missed=MISSED, scores=(0.9, 1.0), whole_pixels=True)
        result["external"] = _arm(root / "external", scenes, ids, classes, seed, truth, good)
    return result


def format_digit_boxes_result(r: dict[str, Any]) -> str:
    """The benchmark's figures as a few lines of text."""
    out = [f"bench detect --dataset digit-boxes: {r['rows']} scenes of handwritten digits ({r['boxes']} boxes), "
           f"{r['corrupted']} with a box error ({', '.join(f'{k} {n}' for k, n in r['errors_by_kind'].items())}; "
           f"seed {r['seed']})"]
    for name, words in (("baseline", "built-in detector, out of fold"), ("external", "a good detector's boxes, landed")):
        p = r[name]
        kinds = ", ".join(f"{k} {p['engine_flagged_by_kind'][k]}/{n}" for k, n in r["errors_by_kind"].items())
        out += [f"{words} (mAP@0.5 vs truth {p['map50_vs_truth']}):",
                flag_line("engine (flags, queue)", p["engine"], width=26, indent="  "),
                flag_line("cleanlab, same predictions", p["cleanlab_same_predictions"], width=26, indent="  "),
                f"  engine flags by error kind: {kinds}"]
    return "\n".join(out)
