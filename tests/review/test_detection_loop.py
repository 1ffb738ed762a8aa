"""Object detection through the loop (in-memory Label Studio): drawn scenes with injected box errors
are ingested (a box outside its image quarantined alone, the image kept), mined with cleanlab's
object-detection check on the baseline's out-of-fold boxes, pushed with the model's boxes as
rectangles in percent of the image, answered from ``oracle.jsonl`` and pulled as the true box sets;
a detector trained on them is gated on gold mAP@0.5 and predicts boxes."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from data_engine.cli import main
from data_engine.demo.drawn_boxes import CLASSES, inject_box_errors, make_scenes, write_oracle, write_scenes
from data_engine.review.labelstudio.fake import FakeReviewClient
from data_engine.review.oracle import oracle_path, read_oracle
from data_engine.review.pull import pull_verdicts
from data_engine.review.push import push_queue
from data_engine.review.simulate import simulate_reviews
from data_engine.steps import ingest_step, mine_step
from data_engine.store.warehouse import open_warehouse
from data_engine.tasks import task_for
from data_engine.tasks.boxes import canonical
from tests.homes import make_home

CONFIG = {"dataset": {"name": "boxes", "modality": "image", "task": "detection", "id_column": "id",
                      "label_column": "boxes", "image_column": "image", "feature_columns": [], "classes": list(CLASSES)},
          "review": {"budget": 40}, "gate": {"metric": "map50"}, "mining": {"n_jobs": 1}}


@pytest.fixture(scope="module")
def reviewed(tmp_path_factory: pytest.TempPathFactory):
    root: Path = tmp_path_factory.mktemp("detection")
    home = make_home(root, CONFIG)
    scenes = inject_box_errors(make_scenes(120, seed=1), rate=0.2, seed=2)
    path = write_scenes(home.landing, scenes, prefix="s", name="train")
    # one box reaching outside its 96-pixel image: quarantined alone, its image kept
    rows = path.read_text().splitlines()
    first = json.loads(rows[0])
    first["boxes"].append({"label": "disc", "x": 90, "y": 90, "w": 20, "h": 20})
    path.write_text("\n".join([json.dumps(first), *rows[1:]]) + "\n")
    write_oracle(home.root / "oracle.jsonl", scenes, prefix="s")
    ingested = ingest_step(home, [path])
    mined = mine_step(home)
    client = FakeReviewClient()
    with open_warehouse(home) as con:
        pushed = push_queue(con, client, home.config)
    task = task_for(home.config.dataset)
    simulate_reviews(client, pushed.project_id, read_oracle(oracle_path(home), task), list(CLASSES), accuracy=1.0,
                     label_task=task)
    with open_warehouse(home) as con:
        pulled = pull_verdicts(con, client, home.config)
        labels = dict(con.execute("SELECT example_id, label FROM current_labels").fetchall())
        flagged = {r[0] for r in con.execute("SELECT example_id FROM issues WHERE run_id = ? AND issue_type = 'label' "
                                             "AND is_issue", [mined.summary.run_id]).fetchall()}
        boxes_quarantined = con.execute("SELECT reason FROM quarantine").fetchall()
    return home, scenes, ingested, client, pushed, pulled, labels, flagged, boxes_quarantined


def test_a_box_outside_its_image_is_quarantined_alone(reviewed) -> None:
    _, scenes, ingested, *_, labels, _, quarantined = reviewed
    assert ingested[0].rows_ok == 120 and ingested[0].rows_quarantined == 0
    (reason,) = [r[0] for r in quarantined]
    assert "reaches outside the image (96x96 pixels)" in reason and "kept" in reason
    assert labels["s0000"] == canonical(scenes[0].given)
    assert any("1 box on 1 image quarantined" in n for n in ingested[0].notes)


def test_flags_find_injected_errors(reviewed) -> None:
    _, scenes, *_, flagged, _ = reviewed
    wrong = {f"s{i:04d}" for i, s in enumerate(scenes) if s.error}
    hits = len(flagged & wrong)
    assert hits >= 0.6 * len(flagged) and hits >= 0.4 * len(wrong)


def test_tasks_carry_the_model_boxes_in_percent_and_pull_the_true_boxes(reviewed) -> None:
    _, scenes, _, client, pushed, pulled, labels, *_ = reviewed
    tasks = client.tasks_after(pushed.project_id, 0)
    assert pushed.sent == len(tasks) > 5 and pulled.review_events == pushed.sent
    task = tasks[0]
    assert task["data"]["image_width"] == task["data"]["image_height"] == 96
    regions = [r for p in task.get("predictions") or [] for r in p["result"]]
    for r in regions:
        assert r["type"] == "rectanglelabels" and r["original_width"] == 96
        assert 0 <= r["value"]["x"] <= 100 and 0 < r["value"]["width"] <= 100
    for t in tasks:
        e = t["data"]["example_id"]
        assert labels[e] == canonical(scenes[int(e[1:])].truth)


def test_train_gate_evaluate_and_predict(reviewed, capsys: pytest.CaptureFixture[str], tmp_path: Path) -> None:
    home = reviewed[0]
    gold = make_scenes(40, seed=5)
    ingest_step(home, [write_scenes(home.landing / "gold", gold, prefix="g", name="gold", truth=True)], gold=True)
    h = ["--home", str(home.root)]
    assert main([*h, "train"]) == 0
    assert main([*h, "evaluate"]) == 0
    assert "map50" in capsys.readouterr().out
    assert main([*h, "deploy", "promote"]) == 0
    test = write_scenes(tmp_path, make_scenes(30, seed=6), prefix="t", name="test", truth=True)
    capsys.readouterr()
    assert main([*h, "evaluate", "--file", str(test), "--json"]) == 0
    figures = json.loads(capsys.readouterr().out)
    assert set(figures) >= {"map50", "per_class_ap", "n"} and figures["n"] == 30
    assert 0.3 <= figures["map50"] <= 1.0 and set(figures["per_class_ap"]) == set(CLASSES)
    assert figures["map50"] == pytest.approx(sum(figures["per_class_ap"].values()) / len(CLASSES))
    out = tmp_path / "predicted.csv"
    assert main([*h, "predict", str(test), "--out", str(out)]) == 0
    import pandas as pd

    predicted = pd.read_csv(out)
    assert list(predicted.columns)[:3] == ["id", "predicted_boxes", "predicted_score"]
    boxes = json.loads(predicted.loc[0, "predicted_boxes"])
    assert boxes and all(set(b) == {"label", "x", "y", "w", "h", "score"} for b in boxes)
    # /predict: the served champion's boxes in pixels, by falling score, for an image path under the landing
    from fastapi.testclient import TestClient

    from data_engine.ship.serve import create_app

    client = TestClient(create_app(home, poll_seconds=60))
    answer = client.post("/predict", json={"rows": [{"image": "gold/images/g0000.png"}]})
    assert answer.status_code == 200, answer.text
    (served,) = answer.json()["predictions"]
    scores = [b["score"] for b in served["boxes"]]
    assert served["boxes"] and scores == sorted(scores, reverse=True) and all(0 <= v <= 1 for v in scores)
    assert all(set(b) == {"label", "x", "y", "w", "h", "score"} and b["label"] in CLASSES for b in served["boxes"])
    # the same image gives the same boxes through `predict FILE`
    one = home.landing / "gold" / "one.jsonl"
    one.write_text(json.dumps({"id": "q", "image": "images/g0000.png"}) + "\n")
    assert main([*h, "predict", str(one), "--out", str(tmp_path / "one.csv")]) == 0
    same = json.loads(pd.read_csv(tmp_path / "one.csv").loc[0, "predicted_boxes"])
    assert sorted(served["boxes"], key=json.dumps) == sorted(same, key=json.dumps)
    refused = client.post("/predict", json={"rows": [{"image": "../../etc/passwd"}]})
    assert refused.status_code == 422 and refused.json()["detail"][0]["loc"] == ["body", "rows", 0, "image"]
