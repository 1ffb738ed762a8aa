"""Box sets: the stored spelling of an object-detection label, and the checks a box set must pass.

A detection label is the *set* of boxes drawn on one image file, each ``{"label", "x", "y", "w",
"h"}``: ``label`` the object class, ``x``/``y`` the top-left corner and ``w``/``h`` the width and
height, all in pixels of the image (x to the right, y down, as COCO's ``bbox`` and Label Studio
count). It is stored as one VARCHAR: a JSON array of the boxes sorted by (label, x, y, w, h), keys in
that order, the class in its normalised spelling (:func:`data_engine.store.values.normalize_text`),
a whole-number coordinate written without a fraction (``3.0`` -> ``3``), no spaces. ``[]`` is
"labeled: nothing to detect", distinct from an unlabeled image (NULL). The same boxes in another
order make the same text, so re-landing a reordered file makes no new label version.
"""

from __future__ import annotations

import json
import math
from collections.abc import Iterable, Mapping, Sequence
from typing import NamedTuple

from data_engine.errors import EngineError
from data_engine.store.values import normalize_text
from data_engine.tasks.setlabels import json_items

FIELDS = ("label", "x", "y", "w", "h")


class Box(NamedTuple):
    """One object: class ``label``, top-left corner (``x``, ``y``), width ``w`` and height ``h`` in pixels."""

    label: str
    x: float
    y: float
    w: float
    h: float


class NotABoxSet(EngineError):
    """A value that is not a JSON array of ``{"label", "x", "y", "w", "h"}`` objects."""


def _number(v: float) -> int | float:
    """A coordinate as JSON writes it in the stored spelling: whole numbers without a fraction."""
    return int(v) if float(v).is_integer() else float(v)


def canonical(boxes: Iterable[Box | Mapping]) -> str:
    """The stored spelling of ``boxes`` (Box tuples or ``{"label", "x", "y", "w", "h"}`` mappings):
    unique, sorted by (label, x, y, w, h), compact JSON. Raises :class:`NotABoxSet` as :func:`parse`."""
    out = sorted({_as_box(b) for b in boxes})
    return json.dumps([{"label": b.label, "x": _number(b.x), "y": _number(b.y), "w": _number(b.w),
                        "h": _number(b.h)} for b in out], ensure_ascii=False, separators=(",", ":"))


def parse(value: object) -> list[Box]:
    """The boxes of one label value: a list of box objects, or its JSON text; sorted as :func:`canonical`,
    a box given twice kept twice (:func:`split_valid` quarantines the copy, with its reason).

    Raises :class:`NotABoxSet` naming what is wrong (not JSON, not an array, a box without a text
    ``label`` or a finite number for each of ``x``, ``y``, ``w``, ``h``). Whether a box lies in the
    image and is of a known class is :func:`problems`' business: it needs the image size and classes.
    """
    items = json_items(value, NotABoxSet, noun="boxes",
                       empty="an empty value is unlabeled, not a box set (write [] for an image with no objects)")
    return sorted(_as_box(item) for item in items)


def _as_box(item: object) -> Box:
    if isinstance(item, Box):
        return item
    shown = json.dumps(item, default=str)[:80]
    if not isinstance(item, Mapping):
        raise NotABoxSet(f"box {shown} is not an object with label, x, y, w and h")
    label = item.get("label")
    if not isinstance(label, str) or not normalize_text(label):
        raise NotABoxSet(f"box {shown}: label must be a non-empty class name")
    coords = []
    for key in FIELDS[1:]:
        v = item.get(key)
        if isinstance(v, bool) or not isinstance(v, (int, float)) or not math.isfinite(v):
            raise NotABoxSet(f"box {shown}: {key} must be a number of pixels")
        coords.append(float(v))
    return Box(normalize_text(label), *coords)


def problems(boxes: Sequence[Box], width: int, height: int, classes: Sequence[str] | None) -> list[str]:
    """Why the boxes of one image (sorted, as :func:`parse` gives them) cannot be its label on an image
    ``width`` x ``height`` pixels with object ``classes`` (None: any class): one sentence per bad box
    (zero or negative size, reaching outside the image, unknown class, the same box given twice);
    ``[]`` when every box is valid. Ingest quarantines the bad boxes with these reasons and keeps the
    image with its other boxes (:func:`split_valid`)."""
    return [why for _, why in split_valid(boxes, width, height, classes)[1]]


def box_problems(b: Box, width: int, height: int, classes: Sequence[str] | None) -> list[str]:
    """The reasons (see :func:`problems`) one box ``b`` is not valid on its own; ``[]`` when it is."""
    out = []
    if b.w <= 0 or b.h <= 0:
        out.append(f"{_where(b)} has zero or negative size")
    elif b.x < 0 or b.y < 0 or b.x + b.w > width or b.y + b.h > height:
        out.append(f"{_where(b)} reaches outside the image ({width}x{height} pixels)")
    if classes is not None and b.label not in classes:
        out.append(f"{_where(b)}: class {b.label!r} is not one of the classes ({', '.join(classes)})")
    return out


def _where(b: Box) -> str:
    return f"box {b.label} at x={_number(b.x)}, y={_number(b.y)}, w={_number(b.w)}, h={_number(b.h)}"


def split_valid(boxes: Sequence[Box], width: int, height: int,
                classes: Sequence[str] | None) -> tuple[list[Box], list[tuple[Box, str]]]:
    """The valid boxes of one image and the others with their reasons (joined by "; "): each bad box
    (:func:`box_problems`) and each further copy of a box already kept.

    The image keeps its valid boxes as its label; each quarantined box is reported, never dropped
    in silence."""
    kept: list[Box] = []
    bad: list[tuple[Box, str]] = []
    for b in boxes:
        why = box_problems(b, width, height, classes)
        if not why and b in kept:
            why = [f"{_where(b)} is given twice"]
        if why:
            bad.append((b, "; ".join(why)))
        else:
            kept.append(b)
    return kept, bad


def boxes_of(label: str) -> list[Box]:
    """The boxes of a stored label (its canonical JSON)."""
    return [Box(str(d["label"]), float(d["x"]), float(d["y"]), float(d["w"]), float(d["h"]))
            for d in json.loads(label)]



def iou(a: Box, b: Box) -> float:
    """Intersection over union of two boxes (0 for boxes of no area)."""
    iw = max(0.0, min(a.x + a.w, b.x + b.w) - max(a.x, b.x))
    ih = max(0.0, min(a.y + a.h, b.y + b.h) - max(a.y, b.y))
    inter = iw * ih
    union = a.w * a.h + b.w * b.h - inter
    return inter / union if union > 0 else 0.0


def same_object(a: Box, b: Box, min_iou: float = 0.5) -> bool:
    """Whether two boxes are the same object: same class, IoU at least ``min_iou``."""
    return a.label == b.label and iou(a, b) >= min_iou


def same_objects(given: Sequence[Box], predicted: Sequence[Box], min_iou: float = 0.5) -> bool:
    """Whether two box sets hold the same objects (:func:`same_object`), one to one."""
    if len(given) != len(predicted):
        return False
    left = list(predicted)
    for g in given:
        hit = next((p for p in left if same_object(g, p, min_iou)), None)
        if hit is None:
            return False
        left.remove(hit)
    return True
