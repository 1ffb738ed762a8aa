"""Box sets against the real Label Studio server: a project with an ``<Image>`` and ``<RectangleLabels>``
takes the model's boxes pre-drawn as a prediction (percent of the image size), and a reviewer's
edited box set comes back as pixels exact to the pixel (the region conversion of
``data_engine.tasks.box_regions``). The task plug-in that pushes these from the queue is not built yet:
this checks the format against the server itself."""

from __future__ import annotations

import base64
import io
import uuid

import pytest

from data_engine.demo.drawn_boxes import CLASSES, make_scenes
from data_engine.review.labelstudio.client import LabelStudioClient
from data_engine.tasks import box_regions as br
from data_engine.tasks.boxes import Box, canonical

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
