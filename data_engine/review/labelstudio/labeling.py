"""What a reviewer sees: the labeling config per modality and the task built from one queue row.

* text: the example's text as ``<Text>``;
* image files: the stored image, served by Label Studio's local-files storage from the engine home
  (``/data/local-files/?d=<path under the server's document root>``), never inlined;
* image pixel columns: rendered to a small grayscale PNG ``data:`` URI shown by ``<Image>``
  (no file server, no media storage; a digit is about 200 bytes);
* tabular: a ``<Table>`` of feature names and values.

The choices are the classes plus :data:`DISCARD_CHOICE`. Header lines show the given label, the
model's suggestion and the issue types; the same values are task data fields, which Label Studio's
Data Manager shows as columns a reviewer can sort and filter by (numbers stay JSON numbers; the
project's saved view types them as numbers, see :data:`NUMERIC_FIELDS`). The model's suggestion is
also pre-filled as a prediction carrying its score and model version. A near-duplicate shows its
partner below the example: the partner's own rendering and its label in force.

``priority`` is on the [0, 1] scale of :func:`data_engine.mine.queue.priority_scale` (fixed across
mining runs); ``*_score`` fields are the detectors' scores in [0, 1], low = likely a problem.
"""

from __future__ import annotations

import base64
import math
import struct
import zlib
from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np

from data_engine.store.config import DatasetConfig
from data_engine.tasks import Classification, task_for

DISCARD_CHOICE = "not a valid example"
FROM_NAME = "verdict"
TO_NAME = "item"
# Upscaling factor of image examples: 8x8 digits become 64x64 (still ~250 bytes as PNG); many
# large base64 tasks make Label Studio's pages slow.
IMAGE_SCALE = 8
MAX_IMAGE_SIDE = 128


# Task data fields holding numbers: the saved "to review, by priority" view shows, sorts and filters
# them as numbers (Label Studio types task data columns per view; see project.REVIEW_VIEW).
NUMERIC_FIELDS: tuple[str, ...] = ("priority", "suggested_score", "example_version", "opinion")
# The partner of a near-duplicate, in every task (Label Studio refuses tasks missing a field the
# labeling config names): its id ("none" when there is no partner), its label, a header line
# naming both (empty without a partner), its rendering.
PARTNER_PREFIX = "duplicate_"


def _item_tag(ds: DatasetConfig, name: str, field: str) -> str:
    if ds.modality == "text":
        return f'<Text name="{name}" value="${field}text"/>'
    if ds.modality == "image":
        return (f'<Image name="{name}" value="${field}image" width="256px" maxWidth="256px" '
                f'zoom="false" rotateControl="false"/>')
    return f'<Table name="{name}" value="${field}features"/>'


def label_config(ds: DatasetConfig, classes: Sequence[str]) -> str:
    """The Label Studio labeling config (XML) for dataset ``ds`` and its ``classes``, built by the
    dataset's task plug-in (:meth:`data_engine.tasks.Task.labeling_config`) around this modality's tags."""
    return task_for(ds).labeling_config(
        _item_tag(ds, TO_NAME, ""), _item_tag(ds, "partner", PARTNER_PREFIX), classes,
        from_name=FROM_NAME, to_name=TO_NAME, discard=DISCARD_CHOICE, partner_prefix=PARTNER_PREFIX)


def partner_fields(ds: DatasetConfig, partner_id: str | None, label: str | None,
                   item: Mapping[str, Any] | None) -> dict[str, Any]:
    """The task fields showing a near-duplicate's partner (``item`` from :func:`render_items`), or
    empty ones when the example has no partner."""
    if partner_id is None or item is None:
        # An empty header line shows nothing: a task without a partner does not say "none".
        blank = {"text": "", "features": {}}.get(_field(ds)) if ds.modality != "image" else BLANK_IMAGE
        return {f"{PARTNER_PREFIX}of": "none", f"{PARTNER_PREFIX}label": "-", f"{PARTNER_PREFIX}note": "",
                f"{PARTNER_PREFIX}{_field(ds)}": blank}
    shown = _text(label) or "unlabeled"
    return {f"{PARTNER_PREFIX}of": str(partner_id), f"{PARTNER_PREFIX}label": shown,
            f"{PARTNER_PREFIX}note": f"Near-duplicate of: {partner_id} (its label: {shown})",
            **{f"{PARTNER_PREFIX}{k}": v for k, v in item.items()}}


def _field(ds: DatasetConfig) -> str:
    return {"text": "text", "image": "image"}.get(ds.modality, "features")


def choice_result(choice: str) -> list[dict[str, Any]]:
    """An annotation/prediction ``result`` selecting class ``choice`` (classification's answer; the
    stages ask the dataset's task, :meth:`data_engine.tasks.Task.prediction_result`)."""
    return Classification().prediction_result(choice, from_name=FROM_NAME, to_name=TO_NAME)


def chosen(result: Sequence[Mapping[str, Any]]) -> str | None:
    """The class picked in an annotation ``result`` (None when nothing was chosen): classification's
    reading (the pull asks the dataset's task, :meth:`data_engine.tasks.Task.answer_label`)."""
    return Classification().answer_label(result, from_name=FROM_NAME)


def task_key(example_id: str, example_version: int, opinion: int = 1) -> str:
    """The engine's key of a task, stored in its data: one task per example version and opinion
    (``x@v2`` for the first, ``x@v2/2`` for a second opinion on the same content)."""
    base = f"{example_id}@v{int(example_version)}"
    return base if int(opinion) <= 1 else f"{base}/{int(opinion)}"


def build_task(
    ds: DatasetConfig,
    row: Mapping[str, Any],
    features: Mapping[str, Any],
    *,
    model_version: str,
    item: Mapping[str, Any] | None = None,
    partner: Mapping[str, Any] | None = None,
) -> dict[str, Any]:
    """One Label Studio task (``data`` + ``predictions``) for a review queue ``row``.

    ``row`` holds the queue columns (example_id, example_version, run_id, issue_types, priority,
    suggested_label, suggested_score, given_label, scores); ``features`` the example's input
    columns by name; ``item`` the already rendered example fields (see :func:`render_items`),
    else they are rendered from ``features``; ``partner`` the near-duplicate partner's fields (see
    :func:`partner_fields`; empty ones when None). The suggestion is rendered by the dataset's task
    plug-in (``task_for(ds)``: the task registry keeps its read of the installed entry points, so a
    lookup per task does not read them again).
    """
    scores = _as_dict(row.get("scores"))
    issue_types = list(row.get("issue_types") or [])
    data: dict[str, Any] = {
        "engine_key": task_key(row["example_id"], row["example_version"], _opinion(row)),
        "opinion": _opinion(row),
        "example_id": str(row["example_id"]),
        "example_version": int(row["example_version"]),
        "run_id": str(row.get("run_id") or ""),
        "given_label": _text(row.get("given_label")),
        "suggested_label": _text(row.get("suggested_label")),
        "suggested_score": _round(row.get("suggested_score")),
        "issue_types": ", ".join(issue_types) if issue_types else "none",
        "priority": _round(row.get("priority")),
        # The label check's words on this example ("given 120, predicted 31 [25, 38]"; for tags
        # "tag 'urgent' likely missing (p=0.93)"), '' if none.
        "label_note": _text(row.get("label_note")) or "",
    }
    # A copy of an example a reviewer already decided: the partner and its verdict, to decide alike.
    for key in ("partner_id", "partner_verdict"):
        if _text(row.get(key)):
            data[key] = _text(row.get(key))
    # One numeric column per issue score, so the Data Manager can sort by each.
    for name, value in sorted(scores.items()):
        data[f"{name}_score"] = _round(value)
    data.update(item if item is not None else render_item(ds, features))
    data.update(partner if partner is not None else partner_fields(ds, None, None, None))
    task: dict[str, Any] = {"data": data}
    suggestion = row.get("suggested_label")
    if suggestion is not None and str(suggestion) != "":
        prediction: dict[str, Any] = {"model_version": model_version, "result": task_for(ds).review_result(
            str(suggestion), data, from_name=FROM_NAME, to_name=TO_NAME)}
        score = _round(row.get("suggested_score"))
        if score is not None:
            prediction["score"] = score
        task["predictions"] = [prediction]
    return task


def _opinion(row: Mapping[str, Any]) -> int:
    value = row.get("opinion")
    return 1 if value is None or value != value else int(value)


def local_files_url(path: str) -> str:
    """The URL path under which Label Studio serves a file at ``path`` (relative to its
    LOCAL_FILES_DOCUMENT_ROOT, ``/``-separated) from a local-files storage."""
    from urllib.parse import quote

    return f"{LOCAL_FILES_URL}{quote(path)}"


LOCAL_FILES_URL = "/data/local-files/?d="


def render_items(ds: DatasetConfig, frame: Any, *, image_prefix: str = "") -> list[dict[str, Any]]:
    """:func:`render_item` for every row of a DataFrame of input columns (images vectorised).

    For image files, ``frame``'s image column holds the stored home-relative paths and
    ``image_prefix`` the home's path under the server's document root ('' when they are the same).
    """
    if len(frame) == 0:
        return []
    if ds.image_column:
        return [{"image": local_files_url(image_prefix + str(p)) if p is not None else ""}
                for p in frame[ds.image_column].tolist()]
    if ds.modality == "image":
        import pandas as pd

        cols = list(ds.feature_columns)
        matrix = frame.reindex(columns=cols).apply(pd.to_numeric, errors="coerce").to_numpy(dtype=float)
        return [{"image": uri} for uri in pixel_rows_to_data_uris(matrix)]
    return [render_item(ds, r) for r in frame.to_dict("records")]


def render_item(ds: DatasetConfig, features: Mapping[str, Any]) -> dict[str, Any]:
    """The task data fields that show the example itself (``text``, ``image`` or ``features``)."""
    if ds.modality == "text":
        return {"text": _text(features.get(ds.text_column or "")) or ""}
    if ds.image_column:
        return {"image": local_files_url(str(features.get(ds.image_column) or ""))}
    if ds.modality == "image":
        return {"image": pixels_to_data_uri([features.get(c) for c in ds.feature_columns])}
    return {"features": {c: _display(features.get(c)) for c in ds.feature_columns}}


def pixels_to_data_uri(values: Sequence[Any], *, scale: int = IMAGE_SCALE) -> str:
    """Render a flat row of pixel values to a grayscale PNG ``data:`` URI (see :func:`pixel_rows_to_data_uris`)."""
    row = [f if (f := _num(v)) is not None else float("nan") for v in values]
    return pixel_rows_to_data_uris([row], scale=scale)[0]


def pixel_rows_to_data_uris(rows: Any, *, scale: int = IMAGE_SCALE) -> list[str]:
    """Render each row of pixel values to a grayscale PNG ``data:`` URI (dark ink on white).

    rows : array-like of shape (N, P). The image side is sqrt(P) when P is a perfect square (8x8
    digits), else the image is one row of P pixels. Per row, values up to 16 are read on the
    digits' 0-16 scale, up to 255 as bytes, otherwise relative to the row's maximum; missing
    values render white. Vectorised over rows; only the PNG compression runs per image.
    """
    arr = np.array(rows, dtype=float, ndmin=2)
    n, p = arr.shape
    side = math.isqrt(p)
    width, height = (side, side) if side * side == p and p > 0 else (max(p, 1), 1)
    scale = max(1, min(scale, MAX_IMAGE_SIDE // max(width, height, 1)))
    present = np.isfinite(arr)
    top = np.where(present, arr, -np.inf).max(axis=1, initial=0.0)
    full = np.where(top <= 16, 16.0, np.where(top <= 255, 255.0, top))[:, None]
    levels = 255.0 - np.rint(255.0 * np.clip(np.where(present, arr, 0.0), 0.0, full) / full)
    levels[~present] = 255.0
    if p == 0:
        levels = np.full((n, 1), 255.0)
    img = levels.reshape(n, height, width).astype(np.uint8)
    img = img.repeat(scale, axis=1).repeat(scale, axis=2)
    # Each PNG scanline starts with its filter type (0 = none).
    raw = np.concatenate([np.zeros((n, height * scale, 1), np.uint8), img], axis=2).reshape(n, -1)
    png = [_png_gray(raw[i].tobytes(), width * scale, height * scale) for i in range(n)]
    return ["data:image/png;base64," + base64.b64encode(b).decode("ascii") for b in png]


def _png_gray(raw: bytes, width: int, height: int) -> bytes:
    """A minimal 8-bit grayscale PNG from filtered scanlines (no dependency on Pillow)."""
    def chunk(kind: bytes, payload: bytes) -> bytes:
        return struct.pack(">I", len(payload)) + kind + payload + struct.pack(">I", zlib.crc32(kind + payload))

    header = struct.pack(">IIBBBBB", width, height, 8, 0, 0, 0, 0)
    return b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", header) + chunk(b"IDAT", zlib.compress(raw, 6)) + chunk(b"IEND", b"")


def _as_dict(value: Any) -> dict[str, Any]:
    if value is None:
        return {}
    if isinstance(value, str):
        import json

        try:
            value = json.loads(value)
        except ValueError:
            return {}
    return dict(value) if isinstance(value, Mapping) else {}


def _num(value: Any) -> float | None:
    try:
        f = float(value)
    except (TypeError, ValueError):
        return None
    return f if math.isfinite(f) else None


def _round(value: Any) -> float | None:
    f = _num(value)
    return None if f is None else round(f, 4)


def _text(value: Any) -> str | None:
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return None
    return str(value)


def _display(value: Any) -> Any:
    """A feature value as JSON: numbers stay numbers (rounded), the rest becomes text."""
    f = _num(value) if not isinstance(value, str) else None
    if f is not None:
        return int(f) if f.is_integer() else round(f, 6)
    return _text(value) or ""


# A 1x1 white pixel: the partner image of a task without a near-duplicate.
BLANK_IMAGE = "data:image/png;base64," + base64.b64encode(_png_gray(b"\x00\xff", 1, 1)).decode("ascii")
