"""Box sets against the real Label Studio server: a project with an ``<Image>`` and ``<RectangleLabels>``
takes the model's boxes pre-drawn as a prediction (percent of the image size), and a reviewer's
edited box set comes back as pixels exact to the pixel (the region conversion of
``data_engine.tasks.box_regions``); and the detection task's loop through the server: the queue pushed
with the model's boxes pre-drawn, an edited box set, a discard and the simulated reviewer's answers
pulled as ledger verdicts exact to the pixel."""

from __future__ import annotations

import base64
import io
import json
import uuid

import pytest

from data_engine.demo.drawn_boxes import CLASSES, make_scenes
from data_engine.review.labelstudio.client import LabelStudioClient
from data_engine.tasks import box_regions as br
from data_engine.tasks.boxes import Box, boxes_of, canonical

pytestmark = [pytest.mark.integration, pytest.mark.timeout(900)]


def test_pre_drawn_boxes_and_an_edited_box_set_round_trip_to_the_pixel(label_studio):
    from PIL import Image

    scene = make_scenes(1, seed=9)[0]
    side = scene.image.shape[1]
    png = io.BytesIO()
    Image.fromarray(scene.image).save(png, format="PNG")
    data_uri = "data:image/png;base64," + base64.b64encode(png.getvalue()).decode()
    client = LabelStudioClient(label_studio.url, label_studio.token)
    project = client.create_project(f"it-boxes-{uuid.uuid4().hex[:10]}",
                                    br.labeling_config(CLASSES, from_name="boxes", to_name="image"))
    model = br.regions(scene.truth, side, side, from_name="boxes", to_name="image", prefix="m")
    (task_id,) = client.import_tasks(project, [{"data": {"image": data_uri},
                                                "predictions": [{"model_version": "baseline", "result": model}]}])
    stored = client._sdk.tasks.get(id=task_id)
    (prediction,) = [p if isinstance(p, dict) else p.dict() for p in stored.predictions]
    # the server kept the pre-drawn boxes; read back, they are the model's boxes to the pixel
    assert br.answer_boxes(prediction["result"], side, side, from_name="boxes") == canonical(scene.truth)
    # the reviewer moves the first box by 7 pixels right and 3 down, relabels it, and draws a new one
    # at coordinates whose percentages do not end (17/96 = 17.708333...%)
    first = scene.truth[0]
    edited = [Box("cross" if first.label != "cross" else "disc", first.x + 7, first.y + 3, first.w, first.h),
              *scene.truth[1:], Box("square", 17, 5, 11, 13)]
    edited = [b for b in edited if b.x + b.w <= side and b.y + b.h <= side]
    client.create_annotation(task_id, br.regions(edited, side, side, from_name="boxes", to_name="image", prefix="a"))
    (task,) = [t for t in client.annotated_tasks(project, None) if t["id"] == task_id]
    (annotation,) = task["annotations"]
    assert br.answer_boxes(annotation["result"], side, side, from_name="boxes") == canonical(edited)


def test_the_detection_loop_round_trips_through_the_server(tmp_path, label_studio, monkeypatch):
    from data_engine.demo.drawn_boxes import inject_box_errors, write_oracle, write_scenes
    from data_engine.review.labelstudio.labeling import DISCARD_CHOICE, FROM_NAME, TO_NAME
    from data_engine.steps import ingest_step, mine_step
    from data_engine.tasks.ner import DISCARD_SUFFIX
    from tests.integration.round_trip import answer_and_pull, push_and_read_back, server_home, shoot_flagged_task

    monkeypatch.delenv("LABEL_STUDIO_API_KEY", raising=False)
    scenes = inject_box_errors(make_scenes(100, seed=11), rate=0.25, seed=12)
    config = {"dataset": {"name": "boxes", "modality": "image", "task": "detection", "id_column": "id",
                          "label_column": "boxes", "image_column": "image", "feature_columns": [],
                          "classes": list(CLASSES)},
              "mining": {"n_jobs": 1}, "gate": {"metric": "map50"},
              "review": {"url": label_studio.url, "project_title": f"it-det-{uuid.uuid4().hex[:10]}",
                         "local_files_root": str(label_studio.document_root)}}
    home = server_home(tmp_path, label_studio, config)
    path = write_scenes(home.landing, scenes, prefix="s", name="train")
    write_oracle(home.root / "oracle.jsonl", scenes, prefix="s")
    ingest_step(home, [path])
    mined = mine_step(home, budget=20)
    pushed = push_and_read_back(home, mined.summary.run_id)
    # The server kept the model's boxes as rectangles; read back in pixels they are the suggestion.
    assert br.answer_boxes(pushed.regions, 0, 0, from_name=FROM_NAME) == canonical(
        boxes_of(json.dumps(pushed.suggested)))
    # What a reviewer sees (headless Chromium): the image with the model's boxes pre-drawn.
    shoot_flagged_task(home, label_studio, pushed, "review-boxes-task.png", tmp_path)
    ids = sorted(pushed.by_example)
    first = scenes[int(ids[0][1:])]
    # An edited box set: the truth with its first box moved 5 right and 2 down, and a new box at
    # coordinates whose percentages do not end (17/96).
    b = first.truth[0]
    edited = [Box(b.label, min(b.x + 5, 96 - b.w), min(b.y + 2, 96 - b.h), b.w, b.h), *first.truth[1:],
              Box("square", 17, 5, 11, 13)]
    answers = {ids[0]: br.regions(edited, 96, 96, from_name=FROM_NAME, to_name=TO_NAME, prefix="a"),
               ids[1]: [{"from_name": FROM_NAME + DISCARD_SUFFIX, "to_name": TO_NAME, "type": "choices",
                         "value": {"choices": [DISCARD_CHOICE]}}]}
    pulled, in_force = answer_and_pull(home, pushed, answers, list(CLASSES))
    assert pulled.review_events == pushed.sent and pulled.discards == 1
    assert in_force[ids[0]] == (canonical(edited), False, "review")
    assert in_force[ids[1]][1] is True
    for e in ids[2:]:
        assert in_force[e] == (canonical(scenes[int(e[1:])].truth), False, "review")
