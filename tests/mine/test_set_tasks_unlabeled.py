"""Mining a detection home that holds unlabeled images with the built-in detector: the served model
is given the dataset's classes as training gives them (its labels are an encoded box matrix), so
the unlabeled images are scored instead of the run failing ("an encoded box matrix needs the
detector's classes")."""

from __future__ import annotations

import json

import numpy as np

from data_engine.demo.drawn_boxes import CLASSES, make_scenes, write_scenes
from data_engine.steps import ingest_step, mine_step
from data_engine.store.warehouse import open_warehouse
from data_engine.tasks import box_pack as bp
from tests.homes import make_home


def test_builtin_detection_mining_scores_unlabeled_images(tmp_path):
    home = make_home(tmp_path, {"dataset": {"name": "boxes", "modality": "image", "task": "detection",
                                            "id_column": "id", "label_column": "boxes", "image_column": "image",
                                            "feature_columns": [], "classes": list(CLASSES)},
                                "mining": {"n_jobs": 1, "folds": 3}, "gate": {"metric": "map50"}})
    ingest_step(home, [write_scenes(home.landing, make_scenes(30, seed=1), prefix="s", name="train")])
    new = write_scenes(home.landing / "new", make_scenes(4, seed=7), prefix="u", name="new")
    new.write_text("".join(json.dumps({k: v for k, v in json.loads(line).items() if k != "boxes"}) + "\n"
                           for line in new.read_text().splitlines()))
    ingest_step(home, [new])
    mine_step(home)
    with open_warehouse(home, read_only=True) as con:
        full = dict(con.execute("SELECT example_id, probs FROM predictions WHERE kind = 'full'").fetchall())
    assert sorted(full) == ["u0000", "u0001", "u0002", "u0003"]
    rows = np.array([full[k] for k in sorted(full)])
    assert rows.shape == (4, bp.MAX_BOXES * bp.SLOT) and bp.slot_problem(rows, len(CLASSES)) is None
    assert all(bp.unpack(r, list(CLASSES)) for r in rows)  # the baseline finds boxes on every image
