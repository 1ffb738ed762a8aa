"""Detection annotations in their tools' shapes land as they are: a COCO JSON file and Label Studio's
JSON export are read as one row per image (id and image: the reference the file wrote), an image
without boxes is labeled ``[]``, a box outside its image is quarantined alone, and a structural fault
rejects the file naming the entry and key."""

from __future__ import annotations

import hashlib
import json
import tomllib
from pathlib import Path

import pytest
import tomlkit

from data_engine.demo.drawn_boxes import CLASSES, SIDE, make_scenes, write_scenes
from data_engine.steps import ingest_step
from data_engine.store.warehouse import open_warehouse
from data_engine.tasks import box_regions as br
from data_engine.tasks.boxes import Box, canonical
from tests.homes import config_text, make_home

CONFIG = {"dataset": {"name": "boxes", "modality": "image", "task": "detection", "id_column": "id",
                      "label_column": "boxes", "image_column": "image", "feature_columns": [], "classes": list(CLASSES)},
          "gate": {"metric": "map50"}}


@pytest.fixture()
def home_with_images(tmp_path: Path):
    home = make_home(tmp_path / "home", CONFIG)
    scenes = make_scenes(4, seed=3)
    write_scenes(home.landing, scenes, prefix="c", name="unused").unlink()
    return home, scenes


def _labels(home) -> dict[str, str | None]:
    with open_warehouse(home) as con:
        return dict(con.execute("SELECT ce.example_id, cl.label FROM current_examples ce "
                                "LEFT JOIN current_labels cl USING (example_id)").fetchall())


def _coco(scenes) -> dict:
    images = [{"id": 10 + i, "file_name": f"images/c{i:04d}.png", "width": SIDE, "height": SIDE} for i in range(3)]
    cats = [{"id": k + 1, "name": c} for k, c in enumerate(CLASSES)]
    anns = [{"id": len(images) * 10 + j, "image_id": 10 + i, "category_id": CLASSES.index(b.label) + 1,
             "bbox": [b.x, b.y, b.w, b.h]} for i in (0, 1) for j, b in enumerate(scenes[i].truth)]
    # image 1 gets a box reaching outside its 96-pixel image: quarantined alone
    anns.append({"id": 999, "image_id": 11, "category_id": 1, "bbox": [90, 90, 20, 20]})
    return {"images": images, "annotations": anns, "categories": cats}


def test_a_coco_file_lands_one_labeled_image_per_entry(home_with_images):
    home, scenes = home_with_images
    path = home.landing / "coco.json"
    path.write_text(json.dumps(_coco(scenes)))
    (result,) = ingest_step(home, [path])
    assert result.status == "ingested" and result.rows_ok == 3, result
    assert ("COCO file read as 3 images (id and image: the file_name; boxes from the annotations)"
            in result.notes)
    labels = _labels(home)
    assert labels["images/c0000.png"] == canonical(scenes[0].truth)
    assert labels["images/c0001.png"] == canonical(scenes[1].truth)  # its other boxes kept
    assert labels["images/c0002.png"] == "[]"  # no annotations: nothing to detect
    with open_warehouse(home) as con:
        (reason,) = [r[0] for r in con.execute("SELECT reason FROM quarantine").fetchall()]
    assert "reaches outside the image (96x96 pixels)" in reason


def test_a_coco_file_with_a_byte_order_mark_is_read_as_without(home_with_images):
    # Trial 22: the kind check allowed the mark, the reader did not ("not valid JSON").
    home, scenes = home_with_images
    path = home.landing / "coco.json"
    path.write_text(json.dumps(_coco(scenes)), encoding="utf-8-sig")
    (result,) = ingest_step(home, [path])
    assert (result.status, result.rows_ok) == ("ingested", 3), result
    assert _labels(home)["images/c0000.png"] == canonical(scenes[0].truth)


def test_without_an_id_column_a_coco_image_is_keyed_by_a_hash_of_its_file_name_and_the_note_says_so(tmp_path):
    config = tomllib.loads(config_text(CONFIG))
    del config["dataset"]["id_column"]
    home = make_home(tmp_path / "home", tomlkit.dumps(config))
    scenes = make_scenes(4, seed=3)
    write_scenes(home.landing, scenes, prefix="c", name="unused").unlink()
    path = home.landing / "coco.json"
    path.write_text(json.dumps(_coco(scenes)))
    (result,) = ingest_step(home, [path])
    assert result.status == "ingested" and result.rows_ok == 3, result
    assert ("COCO file read as 3 images (image: the file_name; id: a hash of it, as for any row without [dataset] "
            "id_column (set id_column to key examples by the file_name); boxes from the annotations)") in result.notes
    ids = {"c" + hashlib.md5(f"images/c{i:04d}.png".encode()).hexdigest()[:16] for i in range(3)}
    assert set(_labels(home)) == ids


def test_a_coco_annotation_of_an_unknown_category_rejects_the_file_naming_it(home_with_images):
    home, scenes = home_with_images
    doc = _coco(scenes)
    doc["annotations"][1]["category_id"] = 42
    path = home.landing / "coco.json"
    path.write_text(json.dumps(doc))
    (result,) = ingest_step(home, [path])
    assert result.status == "rejected"
    # The file is named once, by the path the reason is printed after (it read 'bad_cat.json: bad_cat.json: ...').
    assert result.reason == "annotations[1]: key 'category_id' names no category of the file"


def test_a_label_studio_export_lands_its_annotated_images_in_pixels(home_with_images):
    home, scenes = home_with_images
    boxes = [Box("disc", 17, 5, 11, 13), Box("cross", 40, 40, 30, 20)]
    export = [
        {"id": 1, "data": {"image": "images/c0000.png"},
         "annotations": [{"was_cancelled": False, "updated_at": "2026-01-02",
                          "result": br.regions(boxes, SIDE, SIDE, from_name="b", to_name="i")}]},
        {"id": 2, "data": {"image": "images/c0001.png"}, "annotations": [{"was_cancelled": False, "result": []}]},
        {"id": 3, "data": {"image": "images/c0002.png"}, "annotations": []},
    ]
    path = home.landing / "export.json"
    path.write_text(json.dumps(export))
    (result,) = ingest_step(home, [path])
    assert result.status == "ingested" and result.rows_ok == 2, result
    assert any("1 task without a submitted annotation left out" in n for n in result.notes)
    labels = _labels(home)
    assert labels == {"images/c0000.png": canonical(boxes), "images/c0001.png": "[]"}


def test_a_plain_json_array_of_rows_is_still_read_as_rows(home_with_images):
    home, scenes = home_with_images
    path = home.landing / "rows.json"
    path.write_text(json.dumps([{"id": "r1", "image": "images/c0003.png",
                                 "boxes": [b._asdict() for b in scenes[3].truth]}]))
    (result,) = ingest_step(home, [path])
    assert result.status == "ingested" and _labels(home) == {"r1": canonical(scenes[3].truth)}


def test_box_quarantine_notes_go_in_row_order_and_keep_a_missing_images_name(home_with_images):
    home, scenes = home_with_images
    ok = [b._asdict() for b in scenes[0].truth]
    rows = [{"id": f"r{i}", "image": f"images/c{i % 4:04d}.png", "boxes": ok} for i in range(8)]
    rows[1]["boxes"] = [*ok, {"label": CLASSES[0], "x": 90, "y": 90, "w": 20, "h": 20}]  # outside the image
    rows[5]["boxes"] = [*ok, ok[0]]  # a box given twice
    rows[6]["image"] = "images/missing.png"
    path = home.landing / "rows.jsonl"
    path.write_text("".join(json.dumps(r) + "\n" for r in rows))
    (result,) = ingest_step(home, [path])
    assert result.rows_ok == 7
    (note,) = [n for n in result.notes if "boxes on" in n]
    assert note.startswith("2 boxes on 2 images quarantined, each image kept with its other boxes (first: row 2: box "
                           f"{CLASSES[0]} at x=90, y=90, w=20, h=20 reaches outside the image (96x96 pixels)")
    assert [q["row_number"] for q in result.quarantine_preview] == [2, 6, 7]
    missing = result.quarantine_preview[2]["reason"]
    assert missing == f"image: {home.landing / 'images' / 'missing.png'}: no such image file"


def test_a_jsonl_boxes_value_that_is_not_a_list_quarantines_its_row_alone(home_with_images):
    # Trial 22: "boxes": "oops" raised DuckDB's "Malformed JSON" and lost the file's other rows.
    home, scenes = home_with_images
    rows = [{"id": "m1", "image": "images/c0000.png", "boxes": "oops"},
            {"id": "m2", "image": "images/c0001.png", "boxes": [b._asdict() for b in scenes[1].truth]},
            {"id": "m3", "image": "images/c0002.png", "boxes": 5},
            {"id": "m4", "image": "images/c0003.png", "boxes": '[{"label":'},
            {"id": "m5", "image": "images/c0000.png", "boxes": None},
            {"id": "m6", "image": "images/c0001.png"}]
    path = home.landing / "mixed.jsonl"
    path.write_text("".join(json.dumps(r) + "\n" for r in rows))
    (result,) = ingest_step(home, [path])
    assert (result.status, result.rows_ok, result.rows_quarantined) == ("ingested", 3, 3), result
    shape = ('is not a list of boxes (a JSON array of {"label": class, "x", "y", "w", "h": pixels}, '
             "or [] for an image with no objects)")
    with open_warehouse(home) as con:
        reasons = con.execute("SELECT row_number, reason FROM quarantine ORDER BY row_number").fetchall()
    assert reasons == [(1, f"column boxes: label oops {shape}"), (3, f"column boxes: label 5 {shape}"),
                       (4, f'column boxes: label [{{"label": {shape}')]
    assert _labels(home) == {"m2": canonical(scenes[1].truth), "m5": None, "m6": None}  # null or missing: unlabeled


def test_a_coco_or_label_studio_list_given_as_text_rejects_the_file_naming_the_key(home_with_images):
    home, scenes = home_with_images
    doc = _coco(scenes)
    doc["annotations"] = "oops"
    path = home.landing / "coco.json"
    path.write_text(json.dumps(doc))
    (result,) = ingest_step(home, [path])
    assert (result.status, result.reason) == ("rejected", "key 'annotations' must be a list, not str")
    export = [{"id": 1, "data": {"image": "images/c0000.png"}, "annotations": [{"result": "oops"}]}]
    path = home.landing / "export.json"
    path.write_text(json.dumps(export))
    (result,) = ingest_step(home, [path])
    assert (result.status, result.reason) == (
        "rejected", "task 1: key 'result' of its latest annotation must be a list of regions")
