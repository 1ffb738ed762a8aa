"""Drawn scenes with boxes: canvases holding a few drawn shapes each, their true box sets, and box errors.

Each scene is a :data:`SIDE` x :data:`SIDE` RGB canvas on a plain background with one to three
shapes of the classes :data:`CLASSES` (drawn as :func:`data_engine.demo.drawn_shapes.draw_shape`
draws them), not touching one another; the true label is the box around each shape. About ``rate``
of the scenes then get one injected error (:func:`inject_box_errors`): a box dropped (missing), a box
moved by at least half its size (shifted: IoU with the truth below 0.5) or a box given another class
(swapped). No download: the scenes are drawn with Pillow at a seed.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np

from data_engine.tasks.boxes import Box

SIDE = 96
CLASSES = ("disc", "square", "cross")
ERROR_KINDS = ("missing", "shifted", "swapped")
_COLOURS = ((0, 0, 0), (200, 30, 30), (30, 60, 200), (20, 140, 40))
_BACKGROUNDS = ((255, 255, 255), (250, 235, 160), (175, 205, 245))


@dataclass(frozen=True)
class Scene:
    """One canvas: ``image`` (SIDE, SIDE, 3) uint8, ``truth`` its true boxes, ``given`` the boxes a
    labeler gave (the truth, or the truth with one injected error), ``error`` the error's kind ('' none)."""

    image: np.ndarray
    truth: list[Box]
    given: list[Box]
    error: str = ""


def _overlaps(a: Box, b: Box, gap: int = 4) -> bool:
    return not (a.x + a.w + gap <= b.x or b.x + b.w + gap <= a.x or a.y + a.h + gap <= b.y or b.y + b.h + gap <= a.y)


def make_scenes(n: int, *, seed: int = 0) -> list[Scene]:
    """``n`` scenes with their true boxes (``given`` = ``truth``), drawn at ``seed``."""
    from PIL import Image, ImageDraw

    rng = np.random.default_rng(seed)
    scenes = []
    for _ in range(n):
        background = _BACKGROUNDS[int(rng.integers(len(_BACKGROUNDS)))]
        image = Image.new("RGB", (SIDE, SIDE), background)
        draw = ImageDraw.Draw(image)
        boxes: list[Box] = []
        for _ in range(int(rng.integers(1, 4)) * 10):  # tries: place up to 1-3 shapes that do not touch
            if len(boxes) == 3:
                break
            size = int(rng.integers(8, 15)) * 2
            x, y = int(rng.integers(2, SIDE - size - 2)), int(rng.integers(2, SIDE - size - 2))
            box = Box(CLASSES[int(rng.integers(len(CLASSES)))], x, y, size + 1, size + 1)
            if any(_overlaps(box, b) for b in boxes):
                continue
            colour = _COLOURS[int(rng.integers(len(_COLOURS)))]
            corners = (x, y, x + size, y + size)
            if box.label == "disc":
                draw.ellipse(corners, fill=colour)
            elif box.label == "square":
                draw.rectangle(corners, outline=colour, width=3)
            else:
                draw.line([(x, y + size // 2), (x + size, y + size // 2)], fill=colour, width=3)
                draw.line([(x + size // 2, y), (x + size // 2, y + size)], fill=colour, width=3)
            boxes.append(box)
        scenes.append(Scene(np.asarray(image, dtype=np.uint8), sorted(boxes), sorted(boxes)))
    return scenes


def inject_box_errors(scenes: list[Scene], *, rate: float, seed: int, classes: tuple[str, ...] = CLASSES,
                      side: int = SIDE) -> list[Scene]:
    """The scenes with one error injected into about ``rate`` of them (a seeded choice), the kind
    drawn evenly from :data:`ERROR_KINDS`; the others unchanged. ``classes``: the classes a swap
    draws from; ``side``: the canvas size a shifted box stays inside."""
    rng = np.random.default_rng(seed)
    out = []
    for s in scenes:
        if rng.random() >= rate or not s.truth:
            out.append(s)
            continue
        kind = ERROR_KINDS[int(rng.integers(len(ERROR_KINDS)))]
        j = int(rng.integers(len(s.truth)))
        b = s.truth[j]
        rest = [t for i, t in enumerate(s.truth) if i != j]
        if kind == "missing":
            given = rest
        elif kind == "shifted":
            # moved by 60% of its size along each axis, kept in the canvas: IoU with the truth < 0.5
            dx = int(round(0.6 * b.w)) * (1 if b.x + 1.6 * b.w <= side else -1)
            dy = int(round(0.6 * b.h)) * (1 if b.y + 1.6 * b.h <= side else -1)
            given = [*rest, Box(b.label, max(0, b.x + dx), max(0, b.y + dy), b.w, b.h)]
        else:
            others = [c for c in classes if c != b.label]
            given = [*rest, Box(others[int(rng.integers(len(others)))], b.x, b.y, b.w, b.h)]
        out.append(Scene(s.image, s.truth, sorted(given), kind))
    return out


def write_scenes(folder: Path, scenes: list[Scene], *, prefix: str, name: str, truth: bool = False) -> Path:
    """Write ``scenes`` as PNG files ``folder/images/<prefix><i>.png`` and one JSONL row per scene
    (``id``, ``image`` relative to the file, ``boxes``: the given boxes, or the true ones with
    ``truth``) to ``folder/<name>.jsonl``; returns the JSONL path."""
    import json

    from PIL import Image

    (folder / "images").mkdir(parents=True, exist_ok=True)
    lines = []
    for i, s in enumerate(scenes):
        image = f"images/{prefix}{i:04d}.png"
        Image.fromarray(s.image).save(folder / image)
        boxes = s.truth if truth else s.given
        lines.append(json.dumps({"id": f"{prefix}{i:04d}", "image": image, "boxes": [b._asdict() for b in boxes]}))
    path = folder / f"{name}.jsonl"
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    return path


def write_oracle(path: Path, scenes: list[Scene], *, prefix: str, append: bool = False) -> None:
    """The true box sets of ``scenes`` as oracle rows ``{"id", "label": [boxes]}`` (the simulated reviewer's answers)."""
    import json

    rows = "".join(json.dumps({"id": f"{prefix}{i:04d}", "label": [b._asdict() for b in s.truth]}) + "\n"
                   for i, s in enumerate(scenes))
    with path.open("a" if append else "w", encoding="utf-8") as fh:
        fh.write(rows)


DETECTION_CONFIG = """[dataset]
name = "drawn-boxes"
modality = "image"
task = "detection"
id_column = "id"
label_column = "boxes"
image_column = "image"
classes = ["disc", "square", "cross"]
"""
