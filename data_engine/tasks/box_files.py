"""Detection annotation files (one JSONL row per image, a COCO JSON file, or Label Studio's JSON
export) as box sets per image,
and a user's detector's boxes (``landing/predictions/*.jsonl``) as scored box sets.

JSONL: ``{"image": path, "boxes": [{"label", "x", "y", "w", "h"}]}`` per line, pixels. COCO: the
``images`` / ``annotations`` / ``categories`` lists of the COCO format (``bbox`` is ``[x, y, w, h]``
in pixels, as here). Image paths are kept as the file gives them (resolved against the annotation
file's folder by the caller). An image without boxes is a valid label (``[]``). Box validity against
the image size and the classes is :func:`data_engine.tasks.boxes.split_valid`'s business.

Read by hand: pycocotools is not a dependency (and needs a compiler); the two formats are small.
"""

from __future__ import annotations

import json
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path

from data_engine.tasks.box_issues import ScoredBox
from data_engine.tasks.box_regions import from_region
from data_engine.tasks.boxes import Box, NotABoxSet, parse
from data_engine.tasks.setlabels import jsonl_objects


@dataclass(frozen=True)
class ImageBoxes:
    """One image's label from an annotation file: ``image`` its path as written, ``boxes`` its box
    set, ``row`` where it was (1-based line of a JSONL file; the COCO ``images`` entry's index + 1);
    ``width``/``height`` in pixels when the file says (COCO), else None."""

    image: str
    boxes: list[Box]
    row: int
    width: int | None = None
    height: int | None = None


class BadAnnotation(NotABoxSet):
    """An annotation file row (or COCO entry) that cannot be read as one image's boxes; the message
    names the file, the row and the key."""


def _jsonl_objects(path: Path) -> Iterator[tuple[int, dict]]:
    """Each non-blank line of a JSONL file as (1-based line number, object); :class:`BadAnnotation`
    naming file and line for a line that is not a JSON object."""
    return jsonl_objects(path, BadAnnotation)


def read_jsonl(path: Path) -> list[ImageBoxes]:
    """The images and box sets of a JSONL annotation file, in file order (blank lines skipped).

    Raises :class:`BadAnnotation` naming file, line and key for a row that is not JSON, lacks a text
    ``image`` or a ``boxes`` list, or holds a malformed box."""
    out = []
    for n, row in _jsonl_objects(path):
        if not isinstance(row.get("image"), str) or not row["image"].strip():
            raise BadAnnotation(f"{path.name} line {n}: key 'image' must be the image file's path")
        if "boxes" not in row:
            raise BadAnnotation(f"{path.name} line {n}: key 'boxes' is missing (write [] for an image with no objects)")
        try:
            boxes = parse(row["boxes"])
        except NotABoxSet as exc:
            raise BadAnnotation(f"{path.name} line {n}, key 'boxes': {exc}") from None
        out.append(ImageBoxes(row["image"], boxes, n))
    return out


def read_coco(path: Path) -> list[ImageBoxes]:
    """The images and box sets of a COCO JSON file, in ``images`` order (an image without
    annotations has no boxes); category names are the classes.

    Raises :class:`BadAnnotation` naming file, list, entry and key for a file that is not COCO (no
    ``images`` list), an annotation of an unknown image or category id, or a ``bbox`` that is not
    four numbers."""
    try:
        doc = json.loads(path.read_text(encoding="utf-8-sig"))
    except json.JSONDecodeError as exc:
        raise BadAnnotation(f"{path.name}: not valid JSON ({exc.msg}, line {exc.lineno})") from None
    if not isinstance(doc, dict) or not isinstance(doc.get("images"), list):
        raise BadAnnotation(f"{path.name}: not a COCO file (no 'images' list)")
    for key in ("categories", "annotations"):  # a text value would be read character by character
        if not isinstance(doc.get(key) or [], list):
            raise BadAnnotation(f"{path.name}: key {key!r} must be a list, not {type(doc[key]).__name__}")
    names = {}
    for i, cat in enumerate(doc.get("categories") or []):
        if not isinstance(cat, dict) or "id" not in cat or not isinstance(cat.get("name"), str):
            raise BadAnnotation(f"{path.name}: categories[{i}] needs an 'id' and a text 'name'")
        names[cat["id"]] = cat["name"]
    images: dict[object, int] = {}
    for i, img in enumerate(doc["images"]):
        if not isinstance(img, dict) or "id" not in img or not isinstance(img.get("file_name"), str):
            raise BadAnnotation(f"{path.name}: images[{i}] needs an 'id' and a text 'file_name'")
        images[img["id"]] = i
    boxes: list[list[dict]] = [[] for _ in doc["images"]]
    for i, ann in enumerate(doc.get("annotations") or []):
        where = f"{path.name}: annotations[{i}]"
        if not isinstance(ann, dict) or ann.get("image_id") not in images:
            raise BadAnnotation(f"{where}: key 'image_id' names no image of the file")
        if ann.get("category_id") not in names:
            raise BadAnnotation(f"{where}: key 'category_id' names no category of the file")
        bbox = ann.get("bbox")
        if not isinstance(bbox, list) or len(bbox) != 4:
            raise BadAnnotation(f"{where}: key 'bbox' must be [x, y, width, height] in pixels")
        boxes[images[ann["image_id"]]].append(dict(zip(("x", "y", "w", "h"), bbox), label=names[ann["category_id"]]))
    out = []
    for i, img in enumerate(doc["images"]):
        try:
            parsed = parse(boxes[i])
        except NotABoxSet as exc:
            raise BadAnnotation(f"{path.name}: image {img['file_name']!r}: {exc}") from None
        w, h = img.get("width"), img.get("height")
        out.append(ImageBoxes(img["file_name"], parsed, i + 1, w if isinstance(w, int) else None,
                              h if isinstance(h, int) else None))
    return out


def coco_classes(path: Path) -> list[str]:
    """The category names of a COCO file in ``categories`` order (the dataset's classes)."""
    doc = json.loads(path.read_text(encoding="utf-8-sig"))
    return [c["name"] for c in doc.get("categories") or [] if isinstance(c, dict) and isinstance(c.get("name"), str)]


def read_box_predictions(path: Path) -> dict[str, list[ScoredBox]]:
    """A user's detector's boxes: JSONL rows ``{"example_id" or "image": key, "boxes": [{"label", "x",
    "y", "w", "h", "score"}]}`` (pixels, score in [0, 1]; ``[]`` = the detector found nothing) keyed by
    the example id or image path as written.

    Raises :class:`BadAnnotation` as :func:`box_prediction_rows`, and naming the line of a key given twice."""
    out: dict[str, list[ScoredBox]] = {}
    for row in box_prediction_rows(path):
        if row.key in out:
            raise BadAnnotation(f"{path.name} line {row.line}: {row.key!r} appears twice")
        out[row.key] = row.boxes
    return out


@dataclass(frozen=True)
class PredictedRow:
    """One row of a detector's predictions file: its 1-based ``line``, which key named the image
    (``"example_id"`` or ``"image"``), the ``key``'s value and the scored ``boxes``."""

    line: int
    kind: str
    key: str
    boxes: list[ScoredBox]


def box_prediction_rows(path: Path, classes: Sequence[str] | None = None) -> Iterator[PredictedRow]:
    """The rows of a detector's predictions file (see :func:`read_box_predictions`) in file order.

    Raises :class:`BadAnnotation` naming file, line and key: a row that is not JSON, without a text
    ``example_id`` or ``image``, a box without a score in [0, 1], malformed
    (:func:`data_engine.tasks.boxes.parse`), of no size, or of a class outside ``classes`` (when given)."""
    for n, row in _jsonl_objects(path):
        where = f"{path.name} line {n}"
        kind = "example_id" if "example_id" in row else "image"
        key = row.get(kind)
        if kind == "example_id" and isinstance(key, int) and not isinstance(key, bool):
            key = str(key)  # ids are text; a JSON number names the same example as its digits
        if not isinstance(key, str) or not key.strip():
            raise BadAnnotation(f"{where}: key 'example_id' (or 'image') must name the image")
        boxes = row.get("boxes")
        if not isinstance(boxes, list):
            raise BadAnnotation(f"{where}: key 'boxes' must be a list (write [] when the detector found nothing)")
        yield PredictedRow(n, kind, key, scored_boxes(boxes, f"{where}, key 'boxes'", classes))


def scored_boxes(boxes: object, where: str, classes: Sequence[str] | None = None) -> list[ScoredBox]:
    """A detector's boxes of one image, ``[{"label", "x", "y", "w", "h", "score"}]`` in pixels, as
    scored boxes (the external predictions' rows and the user's trainer's ``PRED.parquet``).

    Raises :class:`BadAnnotation` starting with ``where`` (file, row and key): not a list, a box
    without a finite score in [0, 1], malformed (:func:`data_engine.tasks.boxes.parse`: a text
    label, finite numbers), of no size, or of a class outside ``classes`` (when given)."""
    if not isinstance(boxes, list):
        raise BadAnnotation(f"{where} must be a list (write [] when the detector found nothing)")
    scored = []
    for j, item in enumerate(boxes):
        score = item.get("score") if isinstance(item, dict) else None
        # NaN fails both comparisons: refused here, not kept as a score
        if isinstance(score, bool) or not isinstance(score, (int, float)) or not 0.0 <= score <= 1.0:
            raise BadAnnotation(f"{where}[{j}]: 'score' must be a number in [0, 1]")
        try:
            (box,) = parse([{k: v for k, v in item.items() if k != "score"}])
        except NotABoxSet as exc:
            raise BadAnnotation(f"{where}[{j}]: {exc}") from None
        if box.w <= 0 or box.h <= 0:
            raise BadAnnotation(f"{where}[{j}]: w and h must be positive pixels")
        if classes is not None and box.label not in classes:
            raise BadAnnotation(f"{where}[{j}]: class {box.label!r} is not one of the classes ({', '.join(classes)})")
        scored.append(ScoredBox(box, float(score)))
    return scored


def read_label_studio_export(path: Path, *, image_field: str = "image") -> list[ImageBoxes]:
    """The box sets of Label Studio's JSON export (a list of tasks, each ``data[image_field]`` and its
    ``annotations``): per task the latest annotation that was not cancelled, its ``rectanglelabels``
    regions turned into pixels by their ``original_width`` / ``original_height``
    (:func:`data_engine.tasks.box_regions.from_region`). A task without such an annotation is left
    out (not labeled); ``row`` is the task's index + 1.

    Raises :class:`BadAnnotation` naming file, task and key: not a JSON list of tasks, a task without
    a text ``data[image_field]``, a rectangle region without its image size or not readable as a box."""
    try:
        doc = json.loads(path.read_text(encoding="utf-8-sig"))
    except json.JSONDecodeError as exc:
        raise BadAnnotation(f"{path.name}: not valid JSON ({exc.msg}, line {exc.lineno})") from None
    if not isinstance(doc, list):
        raise BadAnnotation(f"{path.name}: not a Label Studio JSON export (a list of tasks)")
    out = []
    for t, task in enumerate(doc):
        where = f"{path.name}: task {t + 1}"
        data = task.get("data") if isinstance(task, dict) else None
        if not isinstance(data, dict) or not isinstance(data.get(image_field), str):
            raise BadAnnotation(f"{where}: key 'data.{image_field}' must be the image's path or URL")
        if not isinstance(task.get("annotations") or [], list):  # a text value would be read character by character
            raise BadAnnotation(f"{where}: key 'annotations' must be a list of annotations")
        done = [a for a in task.get("annotations") or [] if isinstance(a, dict) and not a.get("was_cancelled")]
        if not done:
            continue
        latest = max(done, key=lambda a: str(a.get("updated_at") or a.get("created_at") or ""))
        boxes, width, height = [], None, None
        if not isinstance(latest.get("result") or [], list):  # else read as no boxes: a wrong label
            raise BadAnnotation(f"{where}: key 'result' of its latest annotation must be a list of regions")
        for r, region in enumerate(latest.get("result") or []):
            if not isinstance(region, dict) or region.get("type") != "rectanglelabels":
                continue
            size = (region.get("original_width"), region.get("original_height"))
            if not all(isinstance(v, int) and v > 0 for v in size):
                raise BadAnnotation(f"{where}, result[{r}]: keys 'original_width' and 'original_height' must give "
                                    "the image size in pixels")
            box = from_region(region, *size)
            if box is None:
                raise BadAnnotation(f"{where}, result[{r}]: key 'value' is not an unrotated labelled rectangle")
            boxes.append(box)
            width, height = size
        out.append(ImageBoxes(data[image_field], sorted(boxes), t + 1, width, height))
    return out
