"""Boxes through the user's trainer ([dataset] task = "detection", [model] trainer = "command"):
drawn scenes with injected box errors are mined on the example box trainer's out-of-fold boxes
(K fit/predict calls), its candidate is trained, gated on gold mAP@0.5 and promoted, and `predict
FILE`, `evaluate --file` and /predict (through its worker) answer the boxes its own `predict` returns."""

from __future__ import annotations

import io
import json
import sys
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from data_engine.demo.drawn_boxes import CLASSES, inject_box_errors, make_scenes, write_scenes
from data_engine.steps import ingest_step
from data_engine.store.warehouse import open_warehouse
from data_engine.tasks import box_pack as bp
from tests.homes import make_home
from tests.ship.own_model_support import cli, mine_flags, promoted_champion

EXAMPLE = Path(__file__).resolve().parents[2] / "examples" / "own_model" / "train_boxes.py"


def config(command: list[str]) -> dict:
    return {"dataset": {"name": "boxes", "modality": "image", "task": "detection", "id_column": "id",
                        "label_column": "boxes", "image_column": "image", "feature_columns": [],
                        "classes": list(CLASSES)},
            "review": {"budget": 40}, "gate": {"metric": "map50"}, "mining": {"n_jobs": 1, "folds": 3},
            "model": {"trainer": "command", "command": command, "timeout_s": 300}}


def test_boxes_through_the_trainer_mine_train_gate_promote_predict_serve(tmp_path, capsys):
    home = make_home(tmp_path, config([sys.executable, str(EXAMPLE)]))
    scenes = inject_box_errors(make_scenes(90, seed=1), rate=0.2, seed=2)
    ingest_step(home, [write_scenes(home.landing, scenes, prefix="s", name="train")])
    gold = make_scenes(30, seed=5)
    ingest_step(home, [write_scenes(home.landing / "gold", gold, prefix="g", name="gold", truth=True)], gold=True)
    # Unlabeled images: mining scores them with the trainer fitted on all labels, told the class names.
    new = write_scenes(home.landing / "new", make_scenes(6, seed=7), prefix="u", name="new")
    new.write_text("".join(json.dumps({k: v for k, v in json.loads(line).items() if k != "boxes"}) + "\n"
                           for line in new.read_text().splitlines()))
    ingest_step(home, [new])
    flagged = mine_flags(capsys, home)
    with open_warehouse(home, read_only=True) as con:
        oof = np.array([r[0] for r in con.execute("SELECT probs FROM predictions WHERE kind = 'oof'").fetchall()])
        full = dict(con.execute("SELECT example_id, probs FROM predictions WHERE kind = 'full'").fetchall())
    assert oof.shape == (90, bp.MAX_BOXES * bp.SLOT)
    truth = make_scenes(6, seed=7)
    assert sorted(full) == [f"u{i:04d}" for i in range(6)]
    assert [sorted(sb.box.label for sb in bp.unpack(full[f"u{i:04d}"], list(CLASSES))) for i in range(6)] == \
        [sorted(b.label for b in s.truth) for s in truth]
    # The rule finds every drawn shape: each image's out-of-fold boxes are as many as its true ones.
    counts = (oof.reshape(90, bp.MAX_BOXES, bp.SLOT)[:, :, 4] >= 0).sum(axis=1)
    assert (counts == [len(s.truth) for s in scenes]).mean() > 0.9
    # cleanlab's object-detection check on the trainer's out-of-fold boxes finds the injected errors
    # (measured: 16 of the 17, nothing else flagged).
    wrong = {f"s{i:04d}" for i, s in enumerate(scenes) if s.error}
    hits = len(flagged & wrong)
    assert hits >= 0.8 * len(wrong) and hits >= 0.9 * len(flagged), (hits, len(wrong), len(flagged))
    model = promoted_champion(capsys, home, ("evaluate",))  # the gate on gold mAP@0.5, then the promotion
    assert type(model).__name__ == "CommandBoxes" and list(model.classes_) == list(CLASSES)
    with open_warehouse(home, read_only=True) as con:
        passed, reason = con.execute("SELECT passed, reason FROM gate_verdicts ORDER BY verdict_id").fetchone()
    assert passed and "map50 1.0000 on" in reason  # the trainer's boxes on the 30 gold scenes
    test_scenes = make_scenes(12, seed=6)
    test = write_scenes(tmp_path / "test", test_scenes, prefix="t", name="test", truth=True)
    code, out, err = cli(capsys, "--home", str(home.root), "predict", str(test))
    assert code == 0, err
    served = pd.read_csv(io.StringIO(out))
    paths = pd.DataFrame({"image": [str(tmp_path / "test" / "images" / f"t{i:04d}.png") for i in range(12)]})
    own = list(model.predict(paths))  # the trainer's own predict on the same images
    assert [json.loads(v) for v in served["predicted_boxes"]] == [json.loads(v) for v in own]
    code, out, err = cli(capsys, "--home", str(home.root), "evaluate", "--file", str(test), "--json")
    assert code == 0, err
    figures = json.loads(out)
    assert figures["n"] == 12 and figures["map50"] > 0.9 and set(figures["per_class_ap"]) == set(CLASSES)
    from fastapi.testclient import TestClient

    from data_engine.ship.serve import create_app

    with TestClient(create_app(home)) as api:
        body = api.post("/predict", json={"rows": [{"image": "gold/images/g0000.png"}]})
        worker = api.get("/health").json()["worker"]
    assert body.status_code == 200, body.text
    assert worker["state"] == "running" and worker["answered"] == 1
    (answer,) = body.json()["predictions"]
    mine = bp.scored_of(model.predict(pd.DataFrame({"image": [str(home.landing / "gold" / "images" / "g0000.png")]}))[0])
    assert sorted(answer["boxes"], key=json.dumps) == sorted(json.loads(bp.scored_text(mine)), key=json.dumps)
