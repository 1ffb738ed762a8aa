"""Drawn shapes as image files: distinct simple drawings plus known near copies of some of them.

Simple drawings (one circle, square, triangle or line on a plain background) are where perceptual
hashes collide most: pHash keeps only the coarse layout of a 32x32 grayscale, so two different
shapes of about the same place and size, or the same shape in two colours, hash within a few
bits. :func:`write_shape_files` writes such a set with near copies whose origin is known (the
kinds of :func:`data_engine.demo.image_files.near_copy`), to measure near-copy detection on data
it was not tuned to (``tests/mine/test_image_copies.py``).

Distinct means distinct beyond what a copy keeps: every two drawings differ in kind, colour,
background, line width, by at least :data:`SIZE_STEP` pixels in size or :data:`POSITION_STEP`
pixels in position (a copy is shifted by at most 2).
"""

from __future__ import annotations

from dataclasses import dataclass
from itertools import product
from pathlib import Path

import numpy as np
import pandas as pd

CANVAS = 64
KINDS = ("circle", "disc", "square", "box", "triangle", "line", "cross")
FILLED = ("disc", "box")
# Colours, and backgrounds, at least 19 CIEDE2000 units apart: re-encoding as JPEG changes a thin
# stroke's colour about as much as closer colours differ, so those are not distinct once copied.
COLOURS = ((0, 0, 0), (200, 30, 30), (30, 60, 200), (20, 140, 40), (230, 150, 20))
BACKGROUNDS = ((255, 255, 255), (250, 235, 160), (175, 205, 245))
WIDTHS = (2, 4)
SIZE_STEP = 8
SIZES = tuple(range(16, 41, SIZE_STEP))
POSITION_STEP = 6
COPY_KINDS = ("resized", "re-encoded", "shifted")


@dataclass(frozen=True)
class ShapeFiles:
    """What was written: ``manifest`` (``id``, ``image``: path relative to the folder, ``label``:
    the kind of shape) and the near copies (``id``, ``copy_of``, ``kind``)."""

    manifest: pd.DataFrame
    near_copies: pd.DataFrame


def draw_shape(kind: str, centre: tuple[int, int], size: int, colour: tuple[int, int, int],
               background: tuple[int, int, int], width: int, canvas: int = CANVAS) -> object:
    """One shape drawn with Pillow's ``ImageDraw`` on a ``canvas`` square RGB image."""
    from PIL import Image, ImageDraw

    image = Image.new("RGB", (canvas, canvas), background)
    draw = ImageDraw.Draw(image)
    x, y, r = centre[0], centre[1], size // 2
    box = (x - r, y - r, x + r, y + r)
    if kind in ("circle", "disc"):
        draw.ellipse(box, outline=colour, width=width, fill=colour if kind in FILLED else None)
    elif kind in ("square", "box"):
        draw.rectangle(box, outline=colour, width=width, fill=colour if kind in FILLED else None)
    elif kind == "triangle":
        draw.polygon([(x, y - r), (x + r, y + r), (x - r, y + r)], outline=colour, width=width)
    elif kind == "line":
        draw.line([(x - r, y + r), (x + r, y - r)], fill=colour, width=width)
    elif kind == "cross":
        draw.line([(x - r, y), (x + r, y)], fill=colour, width=width)
        draw.line([(x, y - r), (x, y + r)], fill=colour, width=width)
    else:
        raise ValueError(f"unknown shape {kind!r}; expected one of {', '.join(KINDS)}")
    return image


def shape_copy(image: object, kind: str, rng: np.random.Generator) -> tuple[object, str]:
    """A near copy of a drawn ``image``: resized (to 48-96 px), re-encoded as JPEG (quality 70-90)
    or shifted by 1-2 pixels (the uncovered edge filled with the background); with the file format."""
    from PIL import Image

    from data_engine.demo.image_files import near_copy

    if kind != "shifted":
        if kind == "resized":
            side = int(rng.choice([48, 80, 96]))
            return image.resize((side, side), Image.Resampling.BICUBIC), "PNG"
        return near_copy(image, kind, rng)
    dx, dy = [(2, 0), (-1, 0), (0, 2), (0, -1), (1, 1), (-2, -2)][int(rng.integers(0, 6))]
    return image.transform(image.size, Image.Transform.AFFINE, (1, 0, -dx, 0, 1, -dy),
                           fillcolor=image.getpixel((0, 0))), "PNG"


def write_shape_files(folder: Path, *, n: int = 200, near_copies: int = 30, seed: int = 0) -> ShapeFiles:
    """Write ``n`` distinct drawn shapes as PNGs under ``folder/images`` plus ``near_copies`` near
    copies of randomly chosen ones (kinds in turn). Each drawing is a different combination of
    kind, size, colour, background, line width and a position on a :data:`POSITION_STEP` grid."""
    rng = np.random.default_rng(seed)
    margin = max(SIZES) // 2 + 2
    positions = range(margin, CANVAS - margin + 1, POSITION_STEP)
    # A filled shape looks the same at every outline width: one width only, or two "distinct"
    # drawings would be the same picture.
    grid = [g for g in product(KINDS, SIZES, range(len(COLOURS)), range(len(BACKGROUNDS)), WIDTHS, positions, positions)
            if g[0] not in FILLED or g[4] == WIDTHS[0]]
    chosen = rng.choice(len(grid), size=min(n, len(grid)), replace=False)
    (folder / "images").mkdir(parents=True, exist_ok=True)
    rows, images = [], []
    for i, g in enumerate(chosen):
        kind, size, colour, background, width, x, y = grid[g]
        image = draw_shape(kind, (x, y), size, COLOURS[colour], BACKGROUNDS[background], width)
        name = f"images/s{i:04d}.png"
        image.save(folder / name)
        images.append(image)
        rows.append({"id": f"s{i:04d}", "image": name, "label": kind})
    copies = []
    for j, src in enumerate(rng.choice(len(rows), size=min(near_copies, len(rows)), replace=False)):
        kind = COPY_KINDS[j % len(COPY_KINDS)]
        image, fmt = shape_copy(images[src], kind, rng)
        name = f"images/k{j:04d}.{'jpg' if fmt == 'JPEG' else 'png'}"
        image.save(folder / name, fmt)
        rows.append({"id": f"k{j:04d}", "image": name, "label": rows[src]["label"]})
        copies.append({"id": f"k{j:04d}", "copy_of": rows[src]["id"], "kind": kind})
    return ShapeFiles(pd.DataFrame(rows), pd.DataFrame(copies, columns=["id", "copy_of", "kind"]))
