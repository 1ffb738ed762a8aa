"""The image-files example: scikit-learn's digits written as 32x32 PNG files with a manifest CSV.

Nothing of it is committed: :func:`write_digit_files` writes it on demand (``examples/digits_files.py``,
the tests and ``bench detect --dataset digits-files``). It can also inject near copies of some
images, each made one way: resized, re-encoded as JPEG, or shifted by a pixel, so near-duplicate
detection is measured against copies whose origin is known.
"""

from __future__ import annotations

import io
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd

SIDE = 32
NEAR_COPY_KINDS = ("resized", "re-encoded", "shifted")
# Digits are 8x8 on a 0-16 ink scale: 16 is black ink on white paper.
INK_LEVELS = 16.0


@dataclass(frozen=True)
class DigitFiles:
    """What was written: the manifest (``id``, ``image``, ``label``; true labels), and the injected
    near copies (``id``, ``copy_of``, ``kind``)."""

    manifest_path: Path
    manifest: pd.DataFrame
    near_copies: pd.DataFrame


def digit_image(pixels: np.ndarray, side: int = SIDE) -> object:
    """One 8x8 digit (values 0-16, shape (64,)) as a ``side`` x ``side`` grayscale Pillow image."""
    from PIL import Image

    levels = 255.0 - np.clip(np.asarray(pixels, dtype=float).reshape(8, 8), 0, INK_LEVELS) * (255.0 / INK_LEVELS)
    return Image.fromarray(np.rint(levels).astype(np.uint8), "L").resize((side, side), Image.Resampling.BILINEAR)


def near_copy(image: object, kind: str, rng: np.random.Generator) -> tuple[object, str]:
    """A near copy of a Pillow ``image`` made by ``kind``; returns it and the file format to write."""
    from PIL import Image

    if kind == "resized":
        side = int(rng.choice([24, 40, 48]))
        return image.resize((side, side), Image.Resampling.BICUBIC), "PNG"
    if kind == "re-encoded":
        buf = io.BytesIO()
        image.convert("RGB").save(buf, "JPEG", quality=int(rng.integers(70, 91)))
        return Image.open(io.BytesIO(buf.getvalue())), "JPEG"
    if kind == "shifted":
        dx, dy = [(1, 0), (-1, 0), (0, 1), (0, -1), (1, 1)][int(rng.integers(0, 5))]
        return image.transform(image.size, Image.Transform.AFFINE, (1, 0, -dx, 0, 1, -dy), fillcolor=255), "PNG"
    raise ValueError(f"unknown near-copy kind {kind!r}; expected one of {', '.join(NEAR_COPY_KINDS)}")


def write_digit_files(folder: Path, *, n: int | None = None, near_copies: int = 0, seed: int = 0) -> DigitFiles:
    """Write the first ``n`` digits (all 1,797 by default) as PNGs under ``folder/images`` and the
    manifest ``folder/digits_files.csv`` (image paths relative to it), plus ``near_copies`` near
    copies of randomly chosen digits (kinds in turn), listed in the manifest with their source's label."""
    from sklearn.datasets import load_digits

    digits = load_digits()
    count = len(digits.target) if n is None else min(n, len(digits.target))
    images_dir = folder / "images"
    images_dir.mkdir(parents=True, exist_ok=True)
    rows = []
    for i in range(count):
        name = f"images/d{i:04d}.png"
        digit_image(digits.data[i]).save(folder / name)
        rows.append({"id": f"d{i:04d}", "image": name, "label": str(digits.target[i])})
    rng = np.random.default_rng(seed)
    sources = rng.choice(count, size=min(near_copies, count), replace=False)
    copies = []
    for j, src in enumerate(sources):
        kind = NEAR_COPY_KINDS[j % len(NEAR_COPY_KINDS)]
        image, fmt = near_copy(digit_image(digits.data[src]), kind, rng)
        name = f"images/c{j:04d}.{'jpg' if fmt == 'JPEG' else 'png'}"
        image.save(folder / name, fmt)
        rows.append({"id": f"c{j:04d}", "image": name, "label": str(digits.target[src])})
        copies.append({"id": f"c{j:04d}", "copy_of": f"d{src:04d}", "kind": kind})
    manifest = pd.DataFrame(rows)
    path = folder / "digits_files.csv"
    manifest.to_csv(path, index=False)
    return DigitFiles(path, manifest, pd.DataFrame(copies, columns=["id", "copy_of", "kind"]))


IMAGE_FILES_CONFIG = """[dataset]
name = "digits-files"
modality = "image"
id_column = "id"
label_column = "label"
image_column = "image"
classes = ["0", "1", "2", "3", "4", "5", "6", "7", "8", "9"]
"""
