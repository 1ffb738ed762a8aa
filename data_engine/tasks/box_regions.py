"""Box sets <-> Label Studio rectangle regions: the one place pixels become percentages and back.

Label Studio's ``rectanglelabels`` region gives ``x``, ``y``, ``width``, ``height`` in percent of the
image's size (0-100, top-left origin), with ``original_width`` / ``original_height`` in pixels beside
them (Label Studio docs, "Import pre-annotated data": bounding boxes). A box is stored in pixels
(:mod:`data_engine.tasks.boxes`). Converting there and back multiplies and divides by the size, which
leaves float noise (``12.000000000000002``): answers are rounded to :data:`DECIMALS` decimals of a
pixel, far below what a reviewer can draw, so a pre-drawn box left alone comes back exactly.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from data_engine.tasks.boxes import Box, canonical

DECIMALS = 3


def to_region(box: Box, width: int, height: int, *, from_name: str, to_name: str,
              region_id: str, score: float | None = None) -> dict[str, Any]:
    """One Label Studio ``rectanglelabels`` region of ``box`` (pixels) on an image ``width`` x
    ``height`` pixels: coordinates in percent of the size; ``score`` (the model's, in [0, 1]) kept
    on the region when given. Raises ``ValueError`` for a size that is not positive."""
    if width <= 0 or height <= 0:
        raise ValueError(f"image size {width}x{height}: width and height must be positive pixels")
    region: dict[str, Any] = {
        "id": region_id, "from_name": from_name, "to_name": to_name, "type": "rectanglelabels",
        "original_width": width, "original_height": height, "image_rotation": 0,
        "value": {"x": box.x * 100.0 / width, "y": box.y * 100.0 / height, "width": box.w * 100.0 / width,
                  "height": box.h * 100.0 / height, "rotation": 0, "rectanglelabels": [box.label]},
    }
    if score is not None:
        region["score"] = float(score)
    return region


def regions(boxes: Sequence[Box], width: int, height: int, *, from_name: str, to_name: str,
            prefix: str = "b") -> list[dict[str, Any]]:
    """The regions (:func:`to_region`) of a box set, ids ``<prefix>0``, ``<prefix>1``, ... in order."""
    return [to_region(b, width, height, from_name=from_name, to_name=to_name, region_id=f"{prefix}{i}")
            for i, b in enumerate(boxes)]


def from_region(region: Mapping[str, Any], width: int, height: int) -> Box | None:
    """The box (pixels, :data:`DECIMALS` decimals) a ``rectanglelabels`` region draws on an image
    ``width`` x ``height`` pixels (the region's own ``original_width``/``original_height`` win when
    present: Label Studio measured the image it showed); None for a region that is not a labelled
    unrotated rectangle (the answer comes from the server: malformed regions are skipped, not raised).
    A rotated rectangle is not an axis-aligned box and is skipped too."""
    value = region.get("value")
    if region.get("type") != "rectanglelabels" or not isinstance(value, Mapping):
        return None
    w_px = region.get("original_width") or width
    h_px = region.get("original_height") or height
    nums = [value.get(k) for k in ("x", "y", "width", "height")]
    labels = value.get("rectanglelabels")
    if (not all(isinstance(v, (int, float)) and not isinstance(v, bool) for v in nums)
            or not isinstance(labels, list) or not labels or not isinstance(labels[0], str)
            or not isinstance(w_px, (int, float)) or not isinstance(h_px, (int, float)) or w_px <= 0 or h_px <= 0
            or (value.get("rotation") or 0) != 0):
        return None
    x, y, w, h = nums

    def px(pct: float, size: float) -> float:
        return round(pct * size / 100.0, DECIMALS) + 0.0  # + 0.0: no -0.0 in the stored text

    return Box(labels[0], px(x, w_px), px(y, h_px), px(w, w_px), px(h, h_px))


def answer_boxes(result: Sequence[Mapping[str, Any]], width: int, height: int, *, from_name: str) -> str | None:
    """The box set an annotation ``result`` draws (stored spelling, :func:`data_engine.tasks.boxes.canonical`;
    a submitted annotation with no boxes is ``[]``), from the regions of control ``from_name``;
    None when ``result`` is not a list."""
    if not isinstance(result, list):
        return None
    found = [b for r in result if isinstance(r, Mapping) and r.get("from_name") == from_name
             for b in [from_region(r, width, height)] if b is not None]
    return canonical(found)


def labeling_config(classes: Sequence[str], *, from_name: str, to_name: str, image_field: str = "image") -> str:
    """The Label Studio labeling config of a box review: the image (task field ``image_field``) with
    one ``<RectangleLabels>`` label per class; the given and model boxes come as pre-drawn regions."""
    from xml.sax.saxutils import quoteattr  # here: it loads urllib, http, ssl (30 ms)
    options = "\n    ".join(f"<Label value={quoteattr(c)}/>" for c in classes)
    return f"""<View>
  <Header value="Fix the box set: move, resize, relabel or delete wrong boxes, draw missing ones." size="5"/>
  <Image name="{to_name}" value="${image_field}" zoom="true"/>
  <RectangleLabels name="{from_name}" toName="{to_name}">
    {options}
  </RectangleLabels>
</View>"""
