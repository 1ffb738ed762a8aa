"""A user's detector's boxes as the detection task's stored predictions (``[mining] predictions =
"external"``): one JSONL row per image in ``landing/predictions/``,
``{"example_id" or "image": ..., "boxes": [{"label", "x", "y", "w", "h", "score"}]}`` in pixels
(:func:`data_engine.tasks.box_files.box_prediction_rows` reads and checks each row).

An ``image`` is matched to its example by the reference the landed annotation file wrote (the
``image_sources`` the ingest recorded), else by its file name when exactly one landed image has it
(a detector often writes absolute paths or bare names). The boxes become one prediction row per
image (:func:`data_engine.tasks.box_pack.pack`: the :data:`~data_engine.tasks.box_pack.MAX_BOXES`
highest-scoring boxes kept, as COCO's evaluation keeps 100).
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Mapping, Sequence
from pathlib import Path, PurePosixPath

import pandas as pd

from data_engine.tasks.box_files import BadAnnotation, box_prediction_rows
from data_engine.tasks.box_pack import pack, slot_columns

JSONL = (".jsonl", ".ndjson")


def _name(reference: str) -> str:
    return PurePosixPath(reference.replace("\\", "/")).name


def external_box_rows(path: Path, classes: Sequence[str], sources: Mapping[str, str]) -> pd.DataFrame | None:
    """The boxes of the JSONL predictions file ``path`` as prediction rows (one per image, columns
    :func:`~data_engine.tasks.box_pack.slot_columns`) indexed by ``example_id``; None for another
    kind of file (CSV or Parquet hold the slot columns themselves).

    ``sources``: each image reference as landed -> its example id. An ``image`` that matches no
    landed image keeps its text as the id (mining then reports it as unused). Raises
    :class:`~data_engine.tasks.box_files.BadAnnotation` naming file, line and key: a bad row (see
    :func:`~data_engine.tasks.box_files.box_prediction_rows`), an image reference or name several
    landed images share (``sources`` maps a shared reference to ``""``), or an image given twice."""
    if not path.name.lower().endswith(JSONL):
        return None
    by_name: dict[str, set[str]] = defaultdict(set)
    for source, example_id in sources.items():
        # A shared reference counts as two images of its name: matching by name is then ambiguous too.
        by_name[_name(source)].update({example_id} if example_id else {"", " "})
    ids, boxes, line_of = [], [], {}
    for row in box_prediction_rows(path, [str(c) for c in classes]):
        example_id = row.key
        if row.kind == "image":
            if sources.get(row.key) == "":
                raise BadAnnotation(f"{path.name} line {row.line}, key 'image': {row.key!r} was landed for several "
                                    "examples; give the example_id")
            if row.key in sources:
                example_id = sources[row.key]
            elif len(by_name.get(_name(row.key), ())) == 1:
                (example_id,) = by_name[_name(row.key)]
            elif len(by_name.get(_name(row.key), ())) > 1:
                raise BadAnnotation(f"{path.name} line {row.line}, key 'image': {row.key!r} matches "
                                    f"{len(by_name[_name(row.key)])} landed images by name; give the path as the "
                                    "annotation file wrote it, or the example_id")
        if example_id in line_of:
            raise BadAnnotation(f"{path.name} line {row.line}: image {row.key!r} was given on line {line_of[example_id]}")
        line_of[example_id] = row.line
        ids.append(example_id)
        boxes.append(row.boxes)
    return pd.DataFrame(pack(boxes, [str(c) for c in classes]), columns=slot_columns(),
                        index=pd.Index(ids, name="example_id", dtype=object))
