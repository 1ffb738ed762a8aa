"""Detection annotation files in their tools' own shapes, read as one row per image: a COCO JSON file
(an object with ``images``, ``annotations``, ``categories``) and Label Studio's JSON export (a list of
tasks with ``data`` and ``annotations``), for a dataset with ``[dataset] task = "detection"``.

Each image becomes a row ``{id_column: image, image_column: image, label_column: boxes}``: the image
reference as the file wrote it (COCO ``file_name``, the export's ``data`` field named as the image
column, else ``image``) is the example id too when ``[dataset] id_column`` is set, since it is what
stays the same when the tool exports again (COCO image ids and Label Studio task ids are renumbered);
without it the id is the content hash of that reference, as for any row (the batch note says so). References are resolved as for any
image file (beside the annotation file, or under ``[dataset] image_root``). A COCO image without
annotations is labeled with no boxes (``[]``); a Label Studio task without a submitted annotation is
left out and counted in the batch's notes. The files are read by :mod:`data_engine.tasks.box_files`; a structural fault (an
annotation of an unknown image or category, a ``bbox`` that is not four numbers, a rectangle without
its image size) rejects the file with the reason naming the entry and key, while a box outside its
image or of an unknown class is quarantined alone at ingest as in any detection file.
"""

from __future__ import annotations

import json
from pathlib import Path

from data_engine.ingest.unreadable import UnreadableFile
from data_engine.store.config import DatasetConfig


def _kind(path: Path) -> str | None:
    """``coco``, ``label_studio`` or None (another JSON file: an array of row objects)."""
    try:
        doc = json.loads(path.read_text(encoding="utf-8-sig"))
    except (json.JSONDecodeError, UnicodeDecodeError):
        return None  # the JSON reader says what is wrong with it
    if isinstance(doc, dict) and isinstance(doc.get("images"), list):
        return "coco"
    if (isinstance(doc, list) and doc and all(isinstance(t, dict) for t in doc)
            and all(isinstance(t.get("data"), dict) and "annotations" in t for t in doc)):
        return "label_studio"
    return None


def annotation_rows(path: Path, ds: DatasetConfig) -> tuple[list[dict], str] | None:
    """The rows of a COCO file or a Label Studio export at ``path`` for detection dataset ``ds``
    (module docstring) and a note saying how the file was read; None for any other JSON file.

    Raises :class:`UnreadableFile` with the reader's reason (file, entry and key) for a malformed one."""
    from data_engine.tasks.box_files import BadAnnotation, read_coco, read_label_studio_export

    kind = _kind(path)
    if kind is None:
        return None
    field = ds.image_column or "image"
    try:
        if kind == "coco":
            images = read_coco(path)
            unlabeled = 0
        else:
            doc = json.loads(path.read_text(encoding="utf-8-sig"))
            field = field if any(field in t["data"] for t in doc) else "image"
            images = read_label_studio_export(path, image_field=field)
            unlabeled = len(doc) - len(images)
    except BadAnnotation as exc:
        # The readers name the file (they read predictions files too); a batch's reason is printed after
        # the file's path, so the name is dropped here rather than said twice.
        reason = str(exc)
        raise UnreadableFile(reason[len(path.name):].lstrip(": ") if reason.startswith(path.name) else reason) from None
    rows = []
    for img in images:
        row = {ds.image_column or "image": img.image, ds.label_column: [b._asdict() for b in img.boxes]}
        if ds.id_column:
            row = {ds.id_column: img.image, **row}
        rows.append(row)
    ref = "the file_name" if kind == "coco" else f"data.{field}"
    # Without an id column the id is the content hash every row of the dataset gets (the same image
    # landed as JSONL must be the same example), not the reference itself: said, since an oracle or a
    # --where keyed by file name needs [dataset] id_column.
    names = (f"id and image: {ref}" if ds.id_column else
             f"image: {ref}; id: a hash of it, as for any row without [dataset] id_column (set id_column to key "
             f"examples by {ref})")
    if kind == "coco":
        note = f"COCO file read as {len(rows)} images ({names}; boxes from the annotations)"
    else:
        note = f"Label Studio export read as {len(rows)} annotated images ({names}; boxes from the latest submitted annotation)"
    if unlabeled:
        # Not rows: a task nobody annotated says nothing about its image's boxes, and its data field
        # may be a server URL; the count is said so none goes unseen.
        note += f"; {unlabeled} task{'s' if unlabeled > 1 else ''} without a submitted annotation left out"
    return rows, note
