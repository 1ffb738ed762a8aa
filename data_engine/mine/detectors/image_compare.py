"""Whether two image files show the same picture: the check that confirms a near copy found by
perceptual hash or by the embedding (:mod:`data_engine.mine.detectors.image_duplicates`).

A perceptual hash keeps only the coarse brightness layout of a 32x32 grayscale, so it cannot tell
a red circle from a blue one of equal brightness, a 2-pixel stroke from a 4-pixel one, or a shape
from the same shape a few pixels over: among 400 distinct drawn shapes about 200 pairs hashed
within 2 bits. What a copy keeps and those do not is the picture itself, so both are compared:

* at the smaller image's own size, at most :data:`COMPARE_SIDE` pixels (twice the hash's 32, so
  strokes of a few pixels survive; a small image is never blown up, which would smear its edges),
  in CIELAB (``skimage.color``), where distances are perceived differences;
* aligned by cross-correlation (``skimage.registration``) of each pixel's colour distance from
  the image's mean colour, so a copy shifted by a pixel or two lines up; a shift of more than
  :data:`MAX_SHIFT_SHARE` of the side is another picture;
* on the overlap, blurred (``skimage.filters.gaussian``): lightness a little, colour more, and
  colour with more tolerance, because that is what lossy codecs keep (JPEG stores colour at half
  resolution and quantises it more coarsely: it moves a thin blue stroke's colour by 20-30 units);
* by the **largest** difference, not the mean: drawings are mostly background, so a mean would
  dilute a changed stroke to nothing.

Written here is only what the libraries lack: the signal to align on, the shift limit, the
overlap after the shift (array slicing) and the two limits.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

# Largest side (pixels) images are compared at; smaller images are compared at their own size.
COMPARE_SIDE = 64
# Gaussian blur (pixels at COMPARE_SIDE, scaled with the side) of lightness and of colour (a*, b*).
LIGHTNESS_SIGMA = 1.0
CHROMA_SIGMA = 1.5
# Largest differences (CIELAB units) a copy may show: lightness (L*, 0-100) and colour (the a*b*
# distance). Set on 2 x 400 drawn shapes (data_engine.demo.drawn_shapes, seeds 0 and 1): JPEG
# re-encoded (quality 70-90) and resized copies reached 9.0 and 28.6; distinct shapes whose hashes
# were within 2 bits were at least 6.5 with 34.2 (a 2 px against a 4 px orange stroke on pale
# blue) or 13.9 with 28.2 (a thicker cross). Colours closer than that are not told from JPEG's loss.
LIGHTNESS_MAX = 10.0
CHROMA_MAX = 32.0
# Largest shift accepted between a copy and its source, as a share of the side (3.2 px at 64).
MAX_SHIFT_SHARE = 0.05


def load_lab(path: str, side: int) -> np.ndarray:
    """An image file resized to ``side`` x ``side`` in CIELAB, shape (side, side, 3) float32.
    Raises OSError if the file cannot be read."""
    from PIL import Image
    from skimage.color import rgb2lab

    with Image.open(path) as im:
        im.draft("RGB", (side, side))
        rgb = im.convert("RGB")
        if rgb.size != (side, side):
            rgb = rgb.resize((side, side), Image.Resampling.BILINEAR)
    return rgb2lab(np.asarray(rgb, dtype=np.float32) / 255.0).astype(np.float32)


def overlap(a: np.ndarray, b: np.ndarray, dy: int, dx: int) -> tuple[np.ndarray, np.ndarray]:
    """The parts of two equally sized images (shape (H, W, ...)) that coincide once ``b`` is
    moved by (dy, dx) pixels onto ``a``."""
    h, w = a.shape[:2]
    ya, yb = (slice(dy, h), slice(0, h - dy)) if dy >= 0 else (slice(0, h + dy), slice(-dy, h))
    xa, xb = (slice(dx, w), slice(0, w - dx)) if dx >= 0 else (slice(0, w + dx), slice(-dx, w))
    return a[ya, xa], b[yb, xb]


def _content(lab: np.ndarray) -> np.ndarray:
    """Each pixel's colour distance from the image's mean colour: what is drawn, in any colour on
    any background (the border is no background estimate: digits' ink reaches the edges)."""
    from skimage.color import deltaE_cie76

    return deltaE_cie76(lab, lab.reshape(-1, 3).mean(axis=0))


def copy_difference(a: np.ndarray, b: np.ndarray, content_a: np.ndarray | None = None,
                    content_b: np.ndarray | None = None) -> float:
    """How far two images (CIELAB, equal shape (side, side, 3), from :func:`load_lab`) are from
    being copies: after aligning them, the largest lightness difference over LIGHTNESS_MAX or the
    largest colour difference over CHROMA_MAX, whichever is more; at most 1 is a copy. ``inf`` when
    the best alignment moves one by more than MAX_SHIFT_SHARE of the side. ``content_a`` and
    ``content_b`` (shape (side, side)) may pass each image's alignment signal if already computed."""
    from skimage.filters import gaussian
    from skimage.registration import phase_cross_correlation

    side = a.shape[0]
    content_a = _content(a) if content_a is None else content_a
    content_b = _content(b) if content_b is None else content_b
    dy = dx = 0
    if max(content_a.max(), content_b.max()) >= 1.0:  # something drawn to align on
        # Plain cross-correlation: the phase-only kind amplifies JPEG noise in a flat background.
        shift, _, _ = phase_cross_correlation(content_a, content_b, normalization=None)
        dy, dx = (round(float(s)) for s in shift)
    if max(abs(dy), abs(dx)) > MAX_SHIFT_SHARE * side:
        return float("inf")
    # Blurred after cropping, so both parts see the same edges (a shifted copy's filled strip is out).
    part_a, part_b = overlap(a, b, dy, dx)
    scale = side / COMPARE_SIDE
    diff = gaussian(part_a[..., 0] - part_b[..., 0], LIGHTNESS_SIGMA * scale, preserve_range=True)
    chroma = gaussian(part_a[..., 1:] - part_b[..., 1:], CHROMA_SIGMA * scale, channel_axis=2, preserve_range=True)
    return float(max(np.abs(diff).max() / LIGHTNESS_MAX, np.linalg.norm(chroma, axis=-1).max() / CHROMA_MAX))


class ImageComparer:
    """:func:`copy_difference` between rows of ``paths`` (N image files), each file decoded once
    per size it is compared at and each pair compared once (kept for the life of this object)."""

    def __init__(self, paths: Sequence[str]) -> None:
        self.paths = paths
        self._sides: dict[int, int] = {}
        self._images: dict[tuple[int, int], tuple[np.ndarray, np.ndarray]] = {}
        self._pairs: dict[tuple[int, int], float] = {}

    def side(self, k: int) -> int:
        """The side row ``k`` is compared at on its own: its smaller dimension, at most COMPARE_SIDE."""
        from PIL import Image

        if k not in self._sides:
            with Image.open(self.paths[k]) as im:
                self._sides[k] = max(1, min(COMPARE_SIDE, *im.size))
        return self._sides[k]

    def image(self, k: int, side: int) -> tuple[np.ndarray, np.ndarray]:
        """Row ``k`` as CIELAB at ``side`` pixels, and its alignment signal."""
        if (k, side) not in self._images:
            lab = load_lab(str(self.paths[k]), side)
            self._images[(k, side)] = lab, _content(lab)
        return self._images[(k, side)]

    def difference(self, i: int, j: int) -> float:
        """:func:`copy_difference` of rows ``i`` and ``j``, at the smaller of their sides."""
        key = (min(i, j), max(i, j))
        if key not in self._pairs:
            side = min(self.side(i), self.side(j))
            (a, content_a), (b, content_b) = self.image(key[0], side), self.image(key[1], side)
            self._pairs[key] = copy_difference(a, b, content_a, content_b)
        return self._pairs[key]
