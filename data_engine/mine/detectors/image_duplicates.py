"""Near copies among image files, for the ``near_duplicate`` detector: candidates by perceptual
hash and among close embedding neighbours, each confirmed by comparing the images.

Two ways to find candidates, because neither alone reaches the common near copies:

* **Perceptual hash** (imagehash's 64-bit pHash, computed once per image at ingest): a resized or
  re-encoded copy keeps its hash within a few bits; on the digits written as 32x32 PNGs, every
  resized (24-48 px) and JPEG re-encoded copy stayed within 2 bits. Pairs are found by the
  pigeonhole principle: two 64-bit hashes at most ``b`` bits apart share at least one of ``b + 1``
  equal bands, so only rows sharing a band are compared (no all-pairs loop).
* **Embedding neighbours**: a copy shifted by a pixel or two can move its hash by 10-20 bits, but
  it stays among the nearest neighbours in the embedding (its :data:`ALIGNED_NEIGHBOURS` nearest,
  within :data:`ALIGNED_MAX_RATIO` times the median nearest-neighbour distance).

A close hash alone is no copy: pHash sees only the coarse brightness layout, and on simple drawn
images distinct pictures share it (different colours, stroke widths, a shape a few pixels over:
the hash and 32x32 grayscale alone called 202 of 340 distinct drawn shapes copies, and 15 of the
1,707 distinct digits). Every candidate is therefore confirmed by comparing the two images aligned, in
colour, at up to 64 pixels (:mod:`data_engine.mine.detectors.image_compare`).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from itertools import pairwise

import numpy as np

from data_engine.mine.detectors.base import Neighbours
from data_engine.mine.detectors.image_compare import ImageComparer

# Hashes at most this many bits apart are candidate near copies (see the module doc).
HASH_MAX_BITS = 2
# A candidate is a copy when the images agree: copy_difference at most this (1 = the lightness
# and colour limits of image_compare, which hold the measurements).
COPY_MAX_DIFFERENCE = 1.0
# Comparisons per row against the pictures already seen under hashes near its own.
MAX_COMPARISONS = 8
# How many nearest neighbours of each row are compared, and only those closer than this multiple
# of the median nearest-neighbour distance (farther ones are not copies, and comparing every pair
# would cost N x k image loads). On drawn shapes, shifted copies among the 3 nearest lay up to 1.34x.
ALIGNED_NEIGHBOURS = 3
ALIGNED_MAX_RATIO = 1.5


@dataclass(frozen=True)
class ImageCopies:
    """The closest near copy found for each of N rows.

    partner : shape (N,), row index of the copy, -1 when none
    bits : shape (N,), Hamming distance of the perceptual hashes to the partner (-1 if not by hash)
    difference : shape (N,), the images' difference that confirmed the copy (``copy_difference``,
        at most COPY_MAX_DIFFERENCE; NaN when none)
    """

    partner: np.ndarray
    bits: np.ndarray
    difference: np.ndarray

    @property
    def found(self) -> np.ndarray:
        """Boolean mask of shape (N,): rows with a near copy."""
        return self.partner >= 0


def hash_pairs(hashes: np.ndarray, max_bits: int = HASH_MAX_BITS) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """All pairs of rows whose 64-bit hashes (shape (N,), uint64) differ in at most ``max_bits`` bits.

    Returns ``(i, j, bits)`` with i < j. Candidates are rows sharing one of ``max_bits + 1`` bands
    of the hash (pigeonhole), so the cost follows the candidate pairs, not N squared.
    """
    h = np.asarray(hashes, dtype=np.uint64)
    n, bands = len(h), max_bits + 1
    if n < 2:
        empty = np.array([], dtype=np.int64)
        return empty, empty, empty
    edges = np.linspace(0, 64, bands + 1).astype(np.uint64)
    found = []
    rows = np.arange(n)
    for lo, hi in pairwise(edges):
        band = (h >> lo) & np.uint64((1 << int(hi - lo)) - 1)
        order = np.argsort(band, kind="stable")
        keys = band[order]
        starts = np.r_[0, np.flatnonzero(keys[1:] != keys[:-1]) + 1]
        sizes = np.diff(np.r_[starts, n])
        # Pairs within each group of equal band values (a loop over groups of 2 or more rows only).
        for s, size in zip(starts[sizes > 1], sizes[sizes > 1]):
            members = rows[order[s:s + size]]
            a, b = np.triu_indices(size, k=1)
            found.append(np.stack([members[a], members[b]], axis=1))
    if not found:
        empty = np.array([], dtype=np.int64)
        return empty, empty, empty
    pairs = np.unique(np.sort(np.vstack(found), axis=1), axis=0)
    bits = np.bitwise_count(h[pairs[:, 0]] ^ h[pairs[:, 1]]).astype(np.int64)
    keep = bits <= max_bits
    return pairs[keep, 0], pairs[keep, 1], bits[keep]


def _hash_neighbours(h: np.ndarray) -> tuple[np.ndarray, dict[int, list[tuple[int, int]]]]:
    """Each row's distinct hash value (shape (N,), index into the sorted distinct values) and, per
    value, the other values within HASH_MAX_BITS as ``(bits, value)``, closest first.

    Pairs are searched among the distinct hash values only: many rows with one hash (blank or
    repeated images) are one value, not a quadratic number of pairs.
    """
    uniq, inverse = np.unique(h, return_inverse=True)
    near: dict[int, list[tuple[int, int]]] = {}
    for a, b, bits in zip(*hash_pairs(uniq)):
        near.setdefault(int(a), []).append((int(bits), int(b)))
        near.setdefault(int(b), []).append((int(bits), int(a)))
    for found in near.values():
        found.sort()
    return inverse.ravel(), near


def _confirmed_by_hash(h: np.ndarray, images: ImageComparer, partner: np.ndarray, bits: np.ndarray,
                       difference: np.ndarray) -> None:
    """Fill ``partner``, ``bits`` and ``difference`` (each shape (N,)) for rows whose hash is within
    HASH_MAX_BITS of another row's and whose images agree (``images.difference`` at most
    COPY_MAX_DIFFERENCE).

    Rows are grouped greedily: each row is compared with the rows standing for the distinct
    pictures already seen under its hash and the hashes near it (closest hash first, at most
    MAX_COMPARISONS), joins the first that agrees, and otherwise stands for a new picture. So
    a thousand copies of one image cost a thousand comparisons, not half a million, and distinct
    drawings that share a hash stay apart.
    """
    inverse, near = _hash_neighbours(h)
    counts = np.bincount(inverse)
    has_near = np.zeros(len(counts), bool)
    has_near[list(near)] = True
    standing: dict[int, list[int]] = {}
    # A loop over rows with a hash candidate: each needs image comparisons, one pair at a time.
    for r in np.flatnonzero((counts[inverse] > 1) | has_near[inverse]):
        value, tried = int(inverse[r]), 0
        for b, other in [(0, value), *near.get(value, [])]:
            for rep in standing.get(other, [])[:MAX_COMPARISONS - tried]:
                tried += 1
                diff = images.difference(int(r), rep)
                if diff <= COPY_MAX_DIFFERENCE:
                    partner[r], bits[r], difference[r] = rep, b, diff
                    if partner[rep] < 0:
                        partner[rep], bits[rep], difference[rep] = r, b, diff
                    break
            if partner[r] >= 0 or tried >= MAX_COMPARISONS:
                break
        if partner[r] < 0:
            standing.setdefault(value, []).append(int(r))


def find_image_copies(hashes: np.ndarray | None, paths: Sequence[str] | None, neighbours: Neighbours | None,
                      *, exclude: np.ndarray | None = None) -> ImageCopies:
    """Near copies among N image rows: candidates by perceptual hash and among close embedding
    neighbours, each confirmed by comparing the two images (:mod:`image_compare`).

    ``hashes``: shape (N,) uint64 (or None); ``paths``: N absolute image paths (without them no
    candidate can be confirmed and none is reported); ``exclude``: boolean (N,) rows already judged
    (exact copies) that need no partner. Raises OSError if an image file cannot be read.
    """
    n = len(hashes) if hashes is not None else len(paths or ())
    partner = np.full(n, -1, dtype=np.int64)
    bits = np.full(n, -1, dtype=np.int64)
    difference = np.full(n, np.nan)
    skip = np.zeros(n, bool) if exclude is None else np.asarray(exclude, bool)
    if paths is None or n < 2:
        return ImageCopies(partner, bits, difference)
    images = ImageComparer(paths)
    if hashes is not None:
        _confirmed_by_hash(np.asarray(hashes, dtype=np.uint64), images, partner, bits, difference)
    if neighbours is not None and n >= 3:
        nn_d = neighbours.distances[:, :ALIGNED_NEIGHBOURS]
        nn_i = neighbours.indices[:, :ALIGNED_NEIGHBOURS]
        positive = neighbours.distances[:, 0][neighbours.distances[:, 0] > 0]
        median = float(np.median(positive)) if len(positive) else 0.0
        todo = ~skip & (partner < 0)
        cand = todo[:, None] & (nn_d <= ALIGNED_MAX_RATIO * median) & (nn_i >= 0)
        # A loop over candidate pairs: the comparison needs the two images, one pair at a time.
        for r, c in zip(*np.nonzero(cand)):
            if partner[r] >= 0:
                continue
            other = int(nn_i[r, c])
            diff = images.difference(int(r), other)
            if diff <= COPY_MAX_DIFFERENCE:
                partner[r], difference[r] = other, diff
    partner[skip] = -1
    found = partner >= 0
    return ImageCopies(partner, np.where(found, bits, -1), np.where(found, difference, np.nan))
